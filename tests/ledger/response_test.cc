// The light client: a valid response verifies from genesis alone; every way a response can be
// wrong is rejected with its own error code.
#include "ledger/response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crypto/merkle.h"
#include "crypto/merkle_log.h"

namespace attestnet::ledger {
namespace {

class LightClient : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::init();
    genesis.chain_id = "attestnet-test";
    genesis.genesis_time = 1700000000000;
    for (int i = 0; i < 4; ++i) {
      keys.push_back(
          crypto::SecretKey::from_seed(crypto::test_seed("member-" + std::to_string(i))));
      genesis.members.push_back({"node" + std::to_string(i), keys.back().public_key(),
                                 "127.0.0.1:" + std::to_string(7000 + i)});
    }
    // A log of 10 records; the response proves record 6.
    std::vector<Hash32> leaves;
    crypto::MerkleFrontier log;
    for (int i = 0; i < 10; ++i) {
      AttestationRecord r;
      r.request_id = Hash32{static_cast<uint8_t>(i)};
      r.vm_id = "vm-" + std::to_string(i);
      r.platform = "tpm2";
      r.measurements = {{"kernel", Bytes(32, static_cast<uint8_t>(i))}};
      r.verdict = Verdict::kAffirming;
      r.policy_id = "default";
      r.policy_version = 3;
      r.claims = {{"secure_boot", "enabled"}};
      r.timestamp = 1700000000000 + i;
      records.push_back(r);
      leaves.push_back(r.leaf_hash());
      log.append(leaves.back());
    }
    resp.record = records[6];
    resp.record_hash = leaves[6];
    resp.leaf_index = 6;
    resp.inclusion_proof = crypto::merkle_inclusion_proof(leaves, 6);
    BlockHeader& h = resp.header;
    h.chain_id = genesis.chain_id;
    h.height = 3;
    h.log_size = log.size();
    h.log_root = log.root();
    h.committee_hash = genesis.committee().hash();
    h.next_committee_hash = h.committee_hash;
    h.block_time = 1700000000010;
    resign({0, 1, 3});
  }
  void resign(std::initializer_list<uint32_t> who) {
    resp.certificate = {};
    for (uint32_t i : who) sign_header(resp.certificate, resp.header, keys[i], i);
  }
  Errc fails() {
    auto r = verify_response(resp, genesis);
    EXPECT_FALSE(r.ok()) << "expected a failure";
    if (r.ok()) return Errc::kInvalidArgument;
    EXPECT_FALSE(r.error().reason.empty());
    return r.error().code;
  }

  Genesis genesis;
  std::vector<crypto::SecretKey> keys;
  std::vector<AttestationRecord> records;
  AttestationResponse resp;
};

TEST_F(LightClient, AValidResponseVerifiesFromGenesisAlone) {
  auto r = verify_response(resp, genesis);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->vm_id, "vm-6");
  EXPECT_EQ(r->verdict, Verdict::kAffirming);
}

TEST_F(LightClient, BinaryAndJsonFormsRoundTrip) {
  Bytes bin = resp.encode(4);
  auto back = AttestationResponse::decode(as_view(bin), 4);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_TRUE(verify_response(*back, genesis).ok());
  auto j = resp.to_json(4);
  EXPECT_EQ(j["verdict"], "affirming");
  auto fromj = AttestationResponse::from_json(nlohmann::json::parse(j.dump()), 4);
  ASSERT_TRUE(fromj.ok());
  EXPECT_TRUE(verify_response(*fromj, genesis).ok());
  bin.push_back(0);
  EXPECT_EQ(AttestationResponse::decode(as_view(bin), 4).error().code, Errc::kTrailingBytes);
}

TEST_F(LightClient, RejectsAnotherChain) {
  resp.header.chain_id = "other-chain";
  resign({0, 1, 2});
  EXPECT_EQ(fails(), Errc::kWrongChain);
}

TEST_F(LightClient, RejectsACertificateBelowThreshold) {
  resign({0, 2});
  EXPECT_EQ(fails(), Errc::kBelowThreshold);
}

TEST_F(LightClient, RejectsAnUnknownSigner) {
  resp.certificate.sigs.sigs.push_back({9, resp.certificate.sigs.sigs[0].sig});
  EXPECT_EQ(fails(), Errc::kUnknownSigner);
}

TEST_F(LightClient, RejectsADuplicateSigner) {
  resp.certificate.sigs.sigs.push_back(resp.certificate.sigs.sigs[0]);
  EXPECT_EQ(fails(), Errc::kDuplicateSigner);
}

TEST_F(LightClient, RejectsABadSignature) {
  resp.certificate.sigs.sigs[1].sig[10] ^= 4;
  EXPECT_EQ(fails(), Errc::kBadSignature);
}

TEST_F(LightClient, RejectsAHeaderChangedAfterSigning) {
  resp.header.block_time += 1;  // the signatures no longer cover this header
  EXPECT_EQ(fails(), Errc::kBadSignature);
}

TEST_F(LightClient, RejectsASigningCommitteeTheGenesisDoesNotName) {
  auto outsider = crypto::SecretKey::from_seed(crypto::test_seed("outsider"));
  Committee other = genesis.committee();
  other.members[2] = outsider.public_key();
  resp.header.committee_hash = other.hash();
  resign({0, 1, 3});
  EXPECT_EQ(fails(), Errc::kCommitteeMismatch);
}

TEST_F(LightClient, RejectsALaterEpochUntilHandOversExist) {
  resp.header.epoch = 5;
  resign({0, 1, 3});
  EXPECT_EQ(fails(), Errc::kCommitteeMismatch);
}

TEST_F(LightClient, RejectsARecordThatDoesNotHashToTheProvenLeaf) {
  resp.record.verdict = Verdict::kContraindicated;  // flip the verdict after the fact
  EXPECT_EQ(fails(), Errc::kRecordMismatch);
}

TEST_F(LightClient, RejectsAnInclusionProofMismatch) {
  resp.inclusion_proof[1][0] ^= 1;
  EXPECT_EQ(fails(), Errc::kProofMismatch);
}

TEST_F(LightClient, RejectsAProofForAnotherRecordsPosition) {
  resp.record = records[5];
  resp.record_hash = records[5].leaf_hash();  // consistent record, but not at leaf 6
  EXPECT_EQ(fails(), Errc::kProofMismatch);
}

TEST(Genesis, JsonRoundTripAndCanonicalHash) {
  Genesis g;
  g.chain_id = "c";
  for (int i = 0; i < 4; ++i) {
    g.members.push_back(
        {"n" + std::to_string(i),
         crypto::SecretKey::from_seed(crypto::test_seed(std::to_string(i))).public_key(),
         "127.0.0.1:1"});
  }
  auto j = g.to_json();
  auto back = Genesis::from_json(nlohmann::json::parse(j.dump(2)));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, g);
  EXPECT_EQ(back->hash(), g.hash());

  auto tampered = j;
  tampered["chain_id"] = "d";
  EXPECT_EQ(Genesis::from_json(tampered).error().code, Errc::kRecordMismatch);
  auto five = j;
  five.erase("hash");
  five["members"].push_back(five["members"][0]);
  five["members"][4]["public_key"] = std::string(64, 'a');
  EXPECT_EQ(Genesis::from_json(five).error().code, Errc::kBadValue);
  auto dup = j;
  dup.erase("hash");
  dup["members"][1]["public_key"] = dup["members"][0]["public_key"];
  EXPECT_EQ(Genesis::from_json(dup).error().code, Errc::kDuplicateSigner);
  auto badhex = j;
  badhex.erase("hash");
  badhex["members"][0]["public_key"] = "zz";
  EXPECT_EQ(Genesis::from_json(badhex).error().code, Errc::kBadValue);
  EXPECT_EQ(Genesis::from_json(nlohmann::json::object()).error().code, Errc::kBadValue);
}

TEST(Genesis, TheAdmissionPolicyIsPartOfTheAnchor) {
  Genesis g;
  g.chain_id = "c";
  for (int i = 0; i < 4; ++i)
    g.members.push_back(
        {"n" + std::to_string(i),
         crypto::SecretKey::from_seed(crypto::test_seed(std::to_string(i))).public_key(), ""});
  Hash32 none = g.hash();
  g.admission_policy = R"({"id":"admit","version":1})";
  EXPECT_NE(g.hash(), none) << "changing who may join changes the genesis hash";
  auto j = g.to_json();
  ASSERT_TRUE(j["admission_policy"].is_object());
  auto back = Genesis::from_json(nlohmann::json::parse(j.dump(2)));  // whitespace and key order
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->admission_policy, g.admission_policy);
  EXPECT_EQ(back->hash(), g.hash());
  auto tampered = j;
  tampered["admission_policy"]["version"] = 2;
  EXPECT_EQ(Genesis::from_json(tampered).error().code, Errc::kRecordMismatch);
  auto bad = j;
  bad.erase("hash");
  bad["admission_policy"] = "admit everyone";
  auto r = Genesis::from_json(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("admission_policy"), std::string::npos);
}

TEST(Record, DecoderRejectsEveryTruncationAndBadVerdict) {
  AttestationRecord r;
  r.vm_id = "vm";
  r.measurements = {{"k", Bytes(3, 1)}};
  r.reasons = {"why"};
  Bytes b = r.encode();
  ASSERT_TRUE(AttestationRecord::decode(as_view(b)).ok());
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_FALSE(AttestationRecord::decode(ByteView(b.data(), n)).ok()) << n;
  }
  Bytes bad = b;
  size_t verdict_at = 3 + 32 + 4 + 2 + 4 + 0 + 4 + (4 + 1 + 4 + 3) + 32 + 64;
  bad[verdict_at] = 9;
  EXPECT_EQ(AttestationRecord::decode(as_view(bad)).error().code, Errc::kBadValue);
}

}  // namespace
}  // namespace attestnet::ledger
