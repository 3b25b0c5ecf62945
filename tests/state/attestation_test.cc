// The attestation application: signed requests carrying evidence become the ledger records
// every replica computes identically, with the verdict of the policy engine.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "evidence/binding.h"
#include "evidence/sevsnp/bundle.h"
#include "evidence/sim/sim.h"
#include "state/attestation.h"
#include "vectors.h"

namespace attestnet::state {
namespace {

crypto::SecretKey platform() {
  return crypto::SecretKey::from_seed(crypto::test_seed("platform"));
}
crypto::SecretKey vm_key() {
  return crypto::SecretKey::from_seed(crypto::test_seed("vm-1"));
}
Bytes good_kernel() {
  return crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("kernel-6.1")));
}

std::shared_ptr<const policy::Policy> sim_policy() {
  nlohmann::json j = {{"id", "fleet"},
                      {"version", 3},
                      {"sim",
                       {{"platform_keys", {to_hex(ByteView(platform().public_key()))}},
                        {"measurements", {{"kernel", {to_hex(good_kernel())}}}}}}};
  auto p = policy::parse_policy(j.dump());
  EXPECT_TRUE(p.ok());
  return std::make_shared<const policy::Policy>(*p);
}

consensus::Request request_for(const Hash32& anchor, const Bytes& kernel,
                               const crypto::SecretKey& key = vm_key()) {
  crypto::PublicKey pk = key.public_key();
  Hash32 b = evidence::evidence_binding(anchor, pk);
  Bytes ev =
      evidence::sim::make_sim_evidence(platform(), as_view(b), {{"kernel", kernel}}).encode();
  AttestationRequest r = AttestationRequest::make(key, "vm-1", "sim", ev, anchor);
  consensus::Request q;
  q.client_id = 1;
  q.client_seq = 1;
  q.payload = r.encode();
  return q;
}

const Hash32 kGenesis = sha256(as_view(std::string("genesis")));

TEST(AttestationApp, AffirmingAndContraindicatedRecordsFromTheSamePolicy) {
  AttestationApp app(sim_policy());
  MemoryLedgerView view(kGenesis, 16);
  auto ok = request_for(kGenesis, good_kernel());
  ASSERT_TRUE(app.validate(ok).ok());
  auto rec = app.execute(ok, 1700000000000, view);
  EXPECT_EQ(rec.verdict, policy::Verdict::kAffirming);
  EXPECT_EQ(rec.vm_id, "vm-1");
  EXPECT_EQ(rec.platform, "sim");
  EXPECT_EQ(rec.policy_id, "fleet");
  EXPECT_EQ(rec.policy_version, 3u);
  EXPECT_EQ(rec.request_id, ok.id());
  EXPECT_EQ(rec.vm_public_key, vm_key().public_key());
  ASSERT_EQ(rec.measurements.size(), 1u);
  EXPECT_EQ(rec.measurements[0].digest, good_kernel());
  // Another replica with its own app and view computes the same bytes.
  AttestationApp other(sim_policy());
  MemoryLedgerView other_view(kGenesis, 16);
  EXPECT_EQ(other.execute(ok, 1700000000000, other_view).encode(), rec.encode());

  auto bad = app.execute(request_for(kGenesis, Bytes(32, 7)), 1700000000000, view);
  EXPECT_EQ(bad.verdict, policy::Verdict::kContraindicated);
  ASSERT_FALSE(bad.reasons.empty());
  EXPECT_NE(bad.reasons[0].find("not a reference value"), std::string::npos);
}

TEST(AttestationApp, ForgedRequestsAreRefusedOnArrivalAndRecordedAsSuchIfCommitted) {
  AttestationApp app(sim_policy());
  MemoryLedgerView view(kGenesis, 16);
  auto q = request_for(kGenesis, good_kernel());
  q.payload[q.payload.size() - 3] ^= 1;  // the VM signature
  auto st = app.validate(q);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kBadSignature);
  auto rec = app.execute(q, 1, view);
  EXPECT_EQ(rec.verdict, policy::Verdict::kContraindicated);
  consensus::Request junk;
  junk.client_id = 9;
  junk.payload = Bytes{1, 2, 3};
  EXPECT_FALSE(app.validate(junk).ok());
  EXPECT_EQ(app.execute(junk, 1, view).verdict, policy::Verdict::kContraindicated);
}

TEST(AttestationApp, EvidenceBoundToAnotherKeyOrAStaleAnchorIsContraindicated) {
  AttestationApp app(sim_policy());
  MemoryLedgerView view(kGenesis, 2);
  // Evidence made for another VM key, resigned by this VM: the binding does not match.
  Hash32 b = evidence::evidence_binding(kGenesis, platform().public_key());
  Bytes ev = evidence::sim::make_sim_evidence(platform(), as_view(b), {{"kernel", good_kernel()}})
                 .encode();
  consensus::Request q;
  q.client_id = 1;
  q.payload = AttestationRequest::make(vm_key(), "vm-1", "sim", ev, kGenesis).encode();
  auto foreign = app.execute(q, 1, view);
  EXPECT_EQ(foreign.verdict, policy::Verdict::kContraindicated);
  // After more blocks than the window, genesis is no longer a fresh anchor.
  for (int i = 0; i < 3; ++i) view.note_header(sha256(as_view(std::string(1, char('a' + i)))));
  auto stale = app.execute(request_for(kGenesis, good_kernel()), 1, view);
  EXPECT_EQ(stale.verdict, policy::Verdict::kContraindicated);
  EXPECT_NE(stale.reasons[0].find("not a recent block"), std::string::npos);
  Hash32 recent = sha256(as_view(std::string(1, 'c')));
  EXPECT_EQ(app.execute(request_for(recent, good_kernel()), 1, view).verdict,
            policy::Verdict::kAffirming);
}

TEST(AttestationApp, SevSnpEvidenceIsJudgedAtTheBlockTime) {
  REQUIRE_VECTORS();
  auto snp = test::vectors_dir() / "sev-snp";
  evidence::sevsnp::SevSnpEvidence e;
  e.report = test::read_bytes(snp / "milan-vlek-trustee" / "report.bin");
  e.leaf = test::read_bytes(snp / "milan-vlek-trustee" / "vlek.der");
  auto chain = crypto::Certificate::parse_any(
      as_view(test::read_bytes(snp / "amd-roots/ask_ark_milan_vlek.pem")));
  ASSERT_TRUE(chain.ok());
  for (const auto& c : *chain) e.chain.push_back(c.der());
  nlohmann::json j = {{"id", "snp"},
                      {"version", 1},
                      {"sev-snp", {{"ark_fingerprints", {to_hex(chain->back().fingerprint())}}}}};
  auto p = policy::parse_policy(j.dump());
  ASSERT_TRUE(p.ok());
  AttestationApp app(std::make_shared<const policy::Policy>(*p));
  MemoryLedgerView view(kGenesis, 16);
  consensus::Request q;
  q.client_id = 1;
  q.payload =
      AttestationRequest::make(vm_key(), "aws-vm", "sev-snp", e.encode(), kGenesis).encode();
  // The report's REPORT_DATA is not our binding (it is a real report), so the verdict is
  // contraindicated either way; what changes with the block time is the certificate check.
  auto in_validity = app.execute(q, 1748736000000 /* 2025-06-01 */, view);
  auto expired = app.execute(q, 1796083200000 /* 2026-12-01 */, view);
  std::string a, b;
  for (const auto& r : in_validity.reasons) a += r + "\n";
  for (const auto& r : expired.reasons) b += r + "\n";
  EXPECT_NE(a.find("binding"), std::string::npos) << a;
  EXPECT_NE(b.find("expired"), std::string::npos) << b;
}

}  // namespace
}  // namespace attestnet::state
