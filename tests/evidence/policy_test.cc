// Policies, sim evidence, the appraisal result's encoding, and the parsers' robustness on
// hostile input (every truncation and many mutations of a real-format log: a typed error, never
// a crash).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "evidence/binding.h"
#include "evidence/sim/sim.h"
#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/eventlog.h"
#include "policy/policy.h"

namespace attestnet::policy {
namespace {

using evidence::sim::make_sim_evidence;
using evidence::sim::SimMeasurement;

crypto::SecretKey platform_key() {
  return crypto::SecretKey::from_seed(crypto::test_seed("sim-platform"));
}

Bytes binding() {
  Hash32 anchor = sha256(as_view(std::string("anchor")));
  Hash32 b = evidence::evidence_binding(anchor, platform_key().public_key());
  return Bytes(b.begin(), b.end());
}

Bytes kernel_digest() {
  return crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("kernel 6.1")));
}

Bytes sim_evidence(const Bytes& report_data, const Bytes& kernel) {
  return make_sim_evidence(platform_key(), as_view(report_data), {{"kernel", kernel}}).encode();
}

Policy sim_policy() {
  nlohmann::json j = {{"id", "sim-only"},
                      {"version", 4},
                      {"sim",
                       {{"platform_keys", {to_hex(ByteView(platform_key().public_key()))}},
                        {"measurements", {{"kernel", {to_hex(kernel_digest())}}}}}}};
  auto p = parse_policy(j.dump());
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  return *p;
}

AppraisalResult run(const Policy* p, const std::string& platform, const Bytes& ev, const Bytes& b) {
  AppraisalInput in;
  in.platform = platform;
  in.evidence = as_view(ev);
  in.expected_binding = b;
  return appraise(p, in);
}

TEST(Policy, SimEvidenceIsAcceptedOnlyByAPolicyThatNamesSim) {
  Policy sim = sim_policy();
  Bytes ev = sim_evidence(binding(), kernel_digest());
  auto ok = run(&sim, "sim", ev, binding());
  EXPECT_EQ(ok.verdict, Verdict::kAffirming);
  EXPECT_EQ(ok.policy_id, "sim-only");
  EXPECT_EQ(ok.policy_version, 4u);
  ASSERT_EQ(ok.measurements.size(), 1u);
  EXPECT_EQ(ok.measurements[0].digest, kernel_digest());

  auto tpm_only = parse_policy(R"({"id":"tpm-only","version":1,"tpm2":{}})");
  ASSERT_TRUE(tpm_only.ok());
  auto rejected = run(&*tpm_only, "sim", ev, binding());
  EXPECT_EQ(rejected.verdict, Verdict::kContraindicated);
  ASSERT_FALSE(rejected.reasons.empty());
  EXPECT_NE(rejected.reasons[0].find("does not name platform sim"), std::string::npos);
}

TEST(Policy, SimEvidenceFailuresEachHaveAReason) {
  Policy sim = sim_policy();
  auto wrong_kernel = run(&sim, "sim", sim_evidence(binding(), Bytes(32, 1)), binding());
  EXPECT_EQ(wrong_kernel.verdict, Verdict::kContraindicated);
  EXPECT_NE(wrong_kernel.reasons.at(0).find("not a reference value"), std::string::npos);

  Bytes other_binding(32, 7);
  auto foreign = run(&sim, "sim", sim_evidence(other_binding, kernel_digest()), binding());
  EXPECT_EQ(foreign.verdict, Verdict::kContraindicated);
  EXPECT_NE(foreign.reasons.at(0).find("binding"), std::string::npos);

  Bytes forged = sim_evidence(binding(), kernel_digest());
  forged[40] ^= 1;
  auto bad = run(&sim, "sim", forged, binding());
  EXPECT_EQ(bad.verdict, Verdict::kContraindicated);

  auto other_key = make_sim_evidence(crypto::SecretKey::from_seed(crypto::test_seed("rogue")),
                                     as_view(binding()), {{"kernel", kernel_digest()}});
  auto rogue = run(&sim, "sim", other_key.encode(), binding());
  EXPECT_EQ(rogue.verdict, Verdict::kContraindicated);
  EXPECT_NE(rogue.reasons.at(0).find("platform key"), std::string::npos);
}

TEST(Policy, WarnOnlyDowngradesAPolicyRuleButNeverAnEvidenceFailure) {
  nlohmann::json j =
      nlohmann::json::parse(R"({"id":"w","version":1,"warn_only":["measurements"]})");
  j["sim"] = {{"platform_keys", {to_hex(ByteView(platform_key().public_key()))}},
              {"measurements", {{"kernel", {to_hex(kernel_digest())}}}}};
  auto p = parse_policy(j.dump());
  ASSERT_TRUE(p.ok());
  auto warn = run(&*p, "sim", sim_evidence(binding(), Bytes(32, 1)), binding());
  EXPECT_EQ(warn.verdict, Verdict::kWarning);
  auto still_bad = run(&*p, "sim", sim_evidence(Bytes(32, 9), Bytes(32, 1)), binding());
  EXPECT_EQ(still_bad.verdict, Verdict::kContraindicated);
}

TEST(Policy, NoPolicyVerifiesButGivesNoVerdict) {
  auto r = run(nullptr, "sim", sim_evidence(binding(), kernel_digest()), binding());
  EXPECT_EQ(r.verdict, Verdict::kNone);
  EXPECT_TRUE(r.reasons.empty());
  auto bad = run(nullptr, "sim", sim_evidence(Bytes(32, 3), kernel_digest()), binding());
  EXPECT_EQ(bad.verdict, Verdict::kContraindicated);
}

TEST(Policy, MalformedPoliciesAreRefusedWithTheirLocation) {
  struct Case {
    const char* json;
    const char* needle;
  };
  const Case cases[] = {
      {"[]", "must be a JSON object"},
      {"{", "not valid JSON"},
      {R"({"version":1})", "id"},
      {R"({"id":"x"})", "version"},
      {R"({"id":"x","version":1,"tpm3":{}})", "unknown key 'tpm3'"},
      {R"({"id":"x","version":1,"tpm2":{"pcrs":{"md5":{}}}})", "unknown PCR bank 'md5'"},
      {R"({"id":"x","version":1,"tpm2":{"pcrs":{"sha256":{"24":["00"]}}}})", "PCR 24"},
      {R"({"id":"x","version":1,"tpm2":{"pcrs":{"sha256":{"1":["00"]}}}})", "wrong size"},
      {R"({"id":"x","version":1,"tpm2":{"components":{"kernal":[]}}})", "unknown component"},
      {R"({"id":"x","version":1,"tpm2":{"event_log":"maybe"}})", "required"},
      {R"({"id":"x","version":1,"tpm2":{"ima":{"files":{"/a":["zz"]}}}})", "alg:hex"},
      {R"({"id":"x","version":1,"sim":{}})", "platform_keys"},
      {R"({"id":"x","version":1,"tpm2":{"required_pcrs":{"sha256":"all"}}})", "array"},
  };
  for (const auto& c : cases) {
    auto p = parse_policy(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_NE(p.error().reason.find(c.needle), std::string::npos)
        << c.json << " -> " << p.error().reason;
  }
}

TEST(Policy, ResultEncodingRoundTripsAndIsCanonical) {
  Policy sim = sim_policy();
  auto r = run(&sim, "sim", sim_evidence(binding(), kernel_digest()), binding());
  Bytes enc = r.encode();
  auto back = AppraisalResult::decode(as_view(enc));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->encode(), enc);
  enc.push_back(0);
  EXPECT_EQ(AppraisalResult::decode(as_view(enc)).error().code, Errc::kTrailingBytes);
  // The policy digest is over canonical JSON: key order and spacing do not change it.
  auto a = parse_policy(R"({"id":"d","version":1,"tpm2":{"event_log":"required"}})");
  auto b = parse_policy(R"({ "tpm2" : { "event_log" : "required" }, "version" : 1, "id" : "d" })");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->digest, b->digest);
}

TEST(Policy, GarbageTpmEvidenceIsContraindicatedNotACrash) {
  auto p = parse_policy(R"({"id":"t","version":1,"tpm2":{}})");
  ASSERT_TRUE(p.ok());
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    Bytes junk(rng() % 300);
    for (auto& c : junk) c = static_cast<uint8_t>(rng());
    if (i % 2 == 0 && junk.size() > 3) junk[0] = 0x01, junk[1] = 0x04, junk[2] = 1;
    auto r = run(&*p, "tpm2", junk, binding());
    EXPECT_EQ(r.verdict, Verdict::kContraindicated);
    EXPECT_FALSE(r.reasons.empty());
  }
  auto unknown = run(&*p, "cca", Bytes{1, 2, 3}, binding());
  EXPECT_EQ(unknown.verdict, Verdict::kContraindicated);
}

}  // namespace
}  // namespace attestnet::policy

namespace attestnet::evidence::tpm2 {
namespace {

TEST(EventLog, WriterRoundTripsAndReplaysLikeTheTpmWould) {
  BootImage img;
  img.firmware = Bytes(100, 1);
  img.boot_loader = Bytes(100, 2);
  img.kernel = Bytes(100, 3);
  img.initrd = Bytes(100, 4);
  img.cmdline = "ro quiet";
  MeasuredBoot mb = measure_boot(img);
  auto log = parse_event_log(as_view(mb.log));
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  EXPECT_TRUE(log->crypto_agile);
  EXPECT_EQ(log->algorithms, (std::vector<uint16_t>{kAlgSha1, kAlgSha256}));
  // Extending the same digests from zero gives what replay computes.
  PcrValues tpm;
  for (const auto& e : mb.extends)
    for (const auto& [alg, d] : e.digests) {
      auto h = *hash_of(alg);
      auto& v = tpm[alg][e.pcr];
      if (v.empty()) v.assign(crypto::hash_size(h), 0);
      v = crypto::digest2(h, as_view(v), as_view(d));
    }
  EXPECT_EQ(replay(*log), tpm);
  BootState st = extract_components(*log);
  ASSERT_TRUE(st.secure_boot.has_value());
  EXPECT_TRUE(*st.secure_boot);
  std::map<std::string, std::string> by_kind;
  for (const auto& c : st.components) by_kind[c.kind] = c.description;
  EXPECT_EQ(by_kind["kernel_cmdline"], "ro quiet");
  EXPECT_EQ(by_kind["kernel"], "/boot/vmlinuz");
  EXPECT_EQ(by_kind["initrd"], "/boot/initrd.img");
  EXPECT_EQ(by_kind["boot_loader"], "\\EFI\\attestnet\\grubx64.efi");
}

TEST(EventLog, EveryTruncationAndManyMutationsGiveATypedErrorOrAValidLog) {
  BootImage img;
  img.kernel = Bytes(10, 3);
  img.cmdline = "x";
  Bytes log = measure_boot(img).log;
  for (size_t n = 0; n < log.size(); ++n) {
    auto r = parse_event_log(ByteView(log.data(), n));
    if (!r.ok()) {
      EXPECT_FALSE(r.error().reason.empty());
    }
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    Bytes m = log;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) m[rng() % m.size()] = rng();
    auto r = parse_event_log(as_view(m));
    if (r.ok()) {
      (void)replay(*r);
      (void)extract_components(*r);
    }
  }
}

TEST(EventLog, ImaParsersRejectMalformedLines) {
  EXPECT_FALSE(parse_ima_ascii("10 zz ima-ng sha256:00 /a\n").ok());
  EXPECT_FALSE(parse_ima_ascii("10 0000000000000000000000000000000000000000 ima-ng\n").ok());
  EXPECT_EQ(
      parse_ima_ascii("10 0000000000000000000000000000000000000000 ima-xx a b\n").error().code,
      Errc::kUnsupported);
  EXPECT_FALSE(parse_ima_binary(Bytes{10, 0, 0, 0, 1, 2}).ok());
}

TEST(Bundle, EncodingIsCanonicalAndBounded) {
  Tpm2Evidence e;
  e.ak_public = {1, 2};
  e.quote = {3};
  e.signature = {4};
  e.pcrs[kAlgSha256][0] = Bytes(32, 0);
  e.pcrs[kAlgSha1][7] = Bytes(20, 1);
  Bytes enc = e.encode();
  auto back = Tpm2Evidence::decode(as_view(enc));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->encode(), enc);
  Bytes bad = enc;
  bad.push_back(0);
  EXPECT_FALSE(Tpm2Evidence::decode(as_view(bad)).ok());
  Tpm2Evidence wrong = e;
  wrong.pcrs[kAlgSha256][1] = Bytes(20, 0);  // a SHA-1 sized value in the SHA-256 bank
  EXPECT_FALSE(Tpm2Evidence::decode(as_view(wrong.encode())).ok());
}

}  // namespace
}  // namespace attestnet::evidence::tpm2
