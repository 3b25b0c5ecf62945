// SEV-SNP reports from real AMD hardware (../shared/vectors/sev-snp, PROVENANCE.md): the valid
// ones verify and expose exactly the stated fields; the invalid ones and the copies tampered
// here fail, each with its own reason.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "evidence/sevsnp/report.h"
#include "vectors.h"

namespace attestnet::evidence::sevsnp {
namespace {

using test::vectors_dir;

Bytes read(const std::filesystem::path& p) {
  return test::read_bytes(p);
}

std::filesystem::path snp() {
  return vectors_dir() / "sev-snp";
}

std::vector<crypto::Certificate> pem_chain(const std::string& name) {
  auto c = crypto::Certificate::parse_any(as_view(read(snp() / "amd-roots" / name)));
  EXPECT_TRUE(c.ok()) << name;
  return c.ok() ? *c : std::vector<crypto::Certificate>{};
}

Hash32 ark_of(const std::string& name) {
  return pem_chain(name).back().fingerprint();
}

CertChain chain(const std::string& dir, const std::string& leaf, const std::string& roots) {
  auto l = crypto::Certificate::from_der(as_view(read(snp() / dir / leaf)));
  EXPECT_TRUE(l.ok());
  return CertChain{*l, pem_chain(roots)};
}

constexpr int64_t k2024 = 1717200000;  // 2024-06-01
constexpr int64_t k2025 = 1748736000;  // 2025-06-01

TEST(SevSnp, GoSevGuestMilanReportVerifiesWithExactFields) {
  REQUIRE_VECTORS();
  auto c = chain("milan-vcek-go-sev-guest", "vcek.der", "ask_ark_milan.pem");
  auto v = verify_report(as_view(read(snp() / "milan-vcek-go-sev-guest" / "report.bin")), c,
                         {ark_of("ask_ark_milan.pem")}, k2024);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  const Report& r = v->report;
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.guest_svn, 0u);
  EXPECT_EQ(r.policy, 0xb0000u);
  EXPECT_TRUE(r.debug_allowed());
  EXPECT_EQ(r.vmpl, 0u);
  EXPECT_EQ(r.platform_info, 1u);
  EXPECT_EQ(to_hex(r.measurement),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0c"
            "f2e4872b01");
  EXPECT_EQ(to_hex(r.report_data).substr(0, 10), "0102030405");
  EXPECT_EQ(to_hex(r.report_id),
            "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a");
  EXPECT_EQ(r.reported_tcb, 0x4405000000000002u);
  EXPECT_EQ(v->reported_tcb.bootloader, 2);
  EXPECT_EQ(v->reported_tcb.tee, 0);
  EXPECT_EQ(v->reported_tcb.snp, 5);
  EXPECT_EQ(v->reported_tcb.microcode, 68);
  EXPECT_EQ(r.current_major, 1);
  EXPECT_EQ(r.current_minor, 49);
  EXPECT_EQ(r.current_build, 3);
  EXPECT_EQ(v->leaf.product, "Milan-B0");
  EXPECT_EQ(v->leaf.hwid, r.chip_id);
}

TEST(SevSnp, TrusteeMilanReportUsesReportedTcbNotCurrent) {
  REQUIRE_VECTORS();
  auto c = chain("milan-vcek-trustee", "vcek.der", "ask_ark_milan.pem");
  Bytes report = read(snp() / "milan-vcek-trustee" / "report.bin");
  auto v = verify_report(as_view(report), c, {ark_of("ask_ark_milan.pem")}, k2024);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(v->report.guest_svn, 4u);
  EXPECT_EQ(v->report.policy, 0x3001fu);
  EXPECT_FALSE(v->report.debug_allowed());
  EXPECT_EQ(v->report.current_tcb, 0xce08000000000003u);
  EXPECT_EQ(v->reported_tcb.microcode, 115);
  EXPECT_EQ(v->reported_tcb.snp, 8);
  EXPECT_EQ(to_hex(v->report.id_key_digest).substr(0, 16), "0356215882a82527");
  // Byte 384 (REPORTED_TCB) + 1: the signature fails first.
  Bytes tcb = report;
  tcb[384] += 1;
  auto bad = verify_report(as_view(tcb), c, {ark_of("ask_ark_milan.pem")}, k2024);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kBadSignature);
}

TEST(SevSnp, VlekReportVerifiesOnlyWhileTheVlekIsValidAndOnlyWithTheAsvk) {
  REQUIRE_VECTORS();
  auto c = chain("milan-vlek-trustee", "vlek.der", "ask_ark_milan_vlek.pem");
  Bytes report = read(snp() / "milan-vlek-trustee" / "report.bin");
  auto v = verify_report(as_view(report), c, {ark_of("ask_ark_milan_vlek.pem")}, k2025);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(v->report.version, 3u);
  EXPECT_EQ(v->report.signing_key, SigningKey::kVlek);
  EXPECT_EQ(v->report.vmpl, 1u);
  EXPECT_EQ(v->report.platform_info, 0x27u);
  EXPECT_FALSE(v->leaf.has_hwid);
  EXPECT_EQ(v->reported_tcb.microcode, 217);
  EXPECT_EQ(v->reported_tcb.snp, 24);
  EXPECT_EQ(v->report.cpuid_fam, 0x19);
  // Expired today (2026-12): the chain is refused with OpenSSL's reason.
  auto expired = verify_report(as_view(report), c, {ark_of("ask_ark_milan_vlek.pem")},
                               1796083200 /* 2026-12-01 */);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.error().reason.find("expired"), std::string::npos) << expired.error().reason;
  // The VLEK is not signed by the plain ASK.
  auto wrong = CertChain{c.leaf, pem_chain("ask_ark_milan.pem")};
  auto bad = verify_report(as_view(report), wrong, {ark_of("ask_ark_milan.pem")}, k2025);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kCertificate);
}

TEST(SevSnp, InvalidVectorsFailWithTheirReasons) {
  REQUIRE_VECTORS();
  auto gsg = chain("milan-vcek-go-sev-guest", "vcek.der", "ask_ark_milan.pem");
  auto trustee = chain("milan-vcek-trustee", "vcek.der", "ask_ark_milan.pem");
  std::vector<Hash32> pins{ark_of("ask_ark_milan.pem")};
  auto inv = [&](const char* f) { return read(snp() / "invalid" / f); };
  for (const char* f : {"gsg-measurement-bitflip.bin", "gsg-signature-r-bitflip.bin"}) {
    auto r = verify_report(as_view(inv(f)), gsg, pins, k2024);
    ASSERT_FALSE(r.ok()) << f;
    EXPECT_EQ(r.error().code, Errc::kBadSignature) << f;
    EXPECT_NE(r.error().reason.find("does not verify with the VCEK"), std::string::npos);
  }
  auto trunc = verify_report(as_view(inv("gsg-truncated-1183.bin")), gsg, pins, k2024);
  ASSERT_FALSE(trunc.ok());
  EXPECT_EQ(trunc.error().code, Errc::kTruncated);
  auto b42 = verify_report(as_view(inv("trustee-byte42-plus1.bin")), trustee, pins, k2024);
  ASSERT_FALSE(b42.ok());
  EXPECT_EQ(b42.error().code, Errc::kBadSignature);
  // The go-sev-guest report with the trustee chip's VCEK.
  auto other = verify_report(as_view(read(snp() / "milan-vcek-go-sev-guest" / "report.bin")),
                             trustee, pins, k2024);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, Errc::kBadSignature);
}

TEST(SevSnp, TamperedCopiesAreEachRejected) {
  REQUIRE_VECTORS();
  auto c = chain("milan-vcek-go-sev-guest", "vcek.der", "ask_ark_milan.pem");
  Bytes good = read(snp() / "milan-vcek-go-sev-guest" / "report.bin");
  std::vector<Hash32> pins{ark_of("ask_ark_milan.pem")};
  struct Flip {
    size_t at;
    const char* what;
  };
  for (Flip f : {Flip{0x2E8, "signature s"}, Flip{0x90 + 10, "measurement"},
                 Flip{0x50, "report data"}, Flip{0x180, "reported TCB"}}) {
    Bytes b = good;
    b[f.at] ^= 0x01;
    auto r = verify_report(as_view(b), c, pins, k2024);
    ASSERT_FALSE(r.ok()) << f.what;
    EXPECT_EQ(r.error().code, Errc::kBadSignature) << f.what;
  }
  // A certificate chain of the wrong product line (Genoa ASK/ARK for a Milan VCEK).
  CertChain genoa{c.leaf, pem_chain("ask_ark_genoa.pem")};
  auto pl = verify_report(as_view(good), genoa, {ark_of("ask_ark_genoa.pem")}, k2024);
  ASSERT_FALSE(pl.ok());
  EXPECT_EQ(pl.error().code, Errc::kCertificate);
  // A chain ending in a root the policy does not pin (here: Milan's, with Genoa pinned).
  auto unpinned = verify_report(as_view(good), c, {ark_of("ask_ark_genoa.pem")}, k2024);
  ASSERT_FALSE(unpinned.ok());
  EXPECT_NE(unpinned.error().reason.find("not an ARK the policy pins"), std::string::npos);
  // A self-made root: a fresh self-signed certificate standing in for the ARK.
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  X509* x = X509_new();
  X509_set_version(x, 2);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400L * 3650);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ARK-Milan"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, k);
  X509_sign(x, k, EVP_sha384());
  unsigned char* der = nullptr;
  int n = i2d_X509(x, &der);
  auto fake = crypto::Certificate::from_der(ByteView(der, static_cast<size_t>(n)));
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(k);
  ASSERT_TRUE(fake.ok());
  CertChain self_made{c.leaf, {pem_chain("ask_ark_milan.pem")[0], *fake}};
  auto sm = verify_report(as_view(good), self_made, {fake->fingerprint()}, k2024);
  ASSERT_FALSE(sm.ok());
  EXPECT_EQ(sm.error().code, Errc::kCertificate) << sm.error().reason;
}

TEST(SevSnp, RootsAndTurinChainVerify) {
  REQUIRE_VECTORS();
  for (const char* f :
       {"ask_ark_milan.pem", "ask_ark_milan_vlek.pem", "ask_ark_genoa.pem",
        "ask_ark_genoa_vlek.pem", "ask_ark_turin_vcek.pem", "ask_ark_turin_vlek.pem"}) {
    auto c = pem_chain(f);
    ASSERT_EQ(c.size(), 2u) << f;
    EXPECT_TRUE(crypto::verify_chain(c[0], {}, {c[1]}, k2024).ok()) << f;
    EXPECT_TRUE(crypto::verify_chain(c[1], {}, {c[1]}, k2024).ok()) << f;
  }
  auto turin =
      crypto::Certificate::from_der(as_view(read(snp() / "turin-vcek-virtee" / "vcek_turin.der")));
  ASSERT_TRUE(turin.ok());
  auto chain_pem = crypto::Certificate::parse_any(
      as_view(read(snp() / "turin-vcek-virtee" / "cert_chain_turin.pem")));
  ASSERT_TRUE(chain_pem.ok());
  EXPECT_TRUE(crypto::verify_chain(*turin, {(*chain_pem)[0]}, {(*chain_pem)[1]}, k2025).ok());
  auto li = leaf_info(*turin);
  ASSERT_TRUE(li.ok()) << li.error().to_string();
  EXPECT_GE(li->fmc, 0) << "Turin VCEKs carry an fmcSPL";
}

TEST(SevSnp, ParserRejectsEveryWrongSizeAndNeverCrashes) {
  Bytes r(kReportSize, 0);
  r[0] = 2;
  r[0x34] = 1;
  EXPECT_TRUE(parse_report(as_view(r)).ok());
  r[0] = 1;
  EXPECT_EQ(parse_report(as_view(r)).error().code, Errc::kBadVersion);
  r[0] = 2;
  r[0x34] = 2;
  EXPECT_EQ(parse_report(as_view(r)).error().code, Errc::kUnsupported);
  Bytes longer(kReportSize + 1, 0);
  EXPECT_EQ(parse_report(as_view(longer)).error().code, Errc::kTrailingBytes);
}

}  // namespace
}  // namespace attestnet::evidence::sevsnp

// The same reports through the policy engine (what a node runs).
#include <nlohmann/json.hpp>

#include "evidence/sevsnp/bundle.h"
#include "policy/policy.h"

namespace attestnet::evidence::sevsnp {
namespace {

struct SnpCase {
  Bytes bundle;
  Bytes report_data;
};

SnpCase gsg_bundle() {
  SevSnpEvidence e;
  e.report = read(snp() / "milan-vcek-go-sev-guest" / "report.bin");
  e.leaf = read(snp() / "milan-vcek-go-sev-guest" / "vcek.der");
  for (const auto& c : pem_chain("ask_ark_milan.pem")) e.chain.push_back(c.der());
  auto r = parse_report(as_view(e.report));
  return {e.encode(), r->report_data};
}

policy::AppraisalResult appraise_snp(const nlohmann::json& pj, const SnpCase& c,
                                     const Bytes& binding) {
  auto p = policy::parse_policy(pj.dump());
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  policy::AppraisalInput in;
  in.platform = "sev-snp";
  in.evidence = as_view(c.bundle);
  in.expected_binding = binding;
  in.at_unix = k2024;
  return policy::appraise(&*p, in);
}

std::string all_reasons(const policy::AppraisalResult& r) {
  std::string s;
  for (const auto& x : r.reasons) s += x + "\n";
  return s;
}

TEST(SevSnpPolicy, AffirmingWithReferenceValuesAndEachRuleHasItsReason) {
  REQUIRE_VECTORS();
  SnpCase c = gsg_bundle();
  nlohmann::json pj = {
      {"id", "snp"},
      {"version", 1},
      {"sev-snp",
       {{"ark_fingerprints", {to_hex(ark_of("ask_ark_milan.pem"))}},
        {"measurements",
         {"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0"
          "cf2e4872b01"}},
        {"allow_debug", true},
        {"min_tcb", {{"bootloader", 2}, {"snp", 5}, {"microcode", 68}}},
        {"vmpl", {0}}}}};
  auto ok = appraise_snp(pj, c, c.report_data);
  EXPECT_EQ(ok.verdict, policy::Verdict::kAffirming) << all_reasons(ok);

  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json p = pj;
    p["sev-snp"][key] = v;
    return appraise_snp(p, c, c.report_data);
  };
  auto debug = with("allow_debug", false);
  EXPECT_EQ(debug.verdict, policy::Verdict::kContraindicated);
  EXPECT_NE(all_reasons(debug).find("allows debugging"), std::string::npos);
  auto tcb = with("min_tcb", {{"microcode", 69}});
  EXPECT_NE(all_reasons(tcb).find("microcode SPL 68 is below"), std::string::npos);
  auto meas = with("measurements", {std::string(96, 'a')});
  EXPECT_NE(all_reasons(meas).find("MEASUREMENT"), std::string::npos);
  auto vmpl = with("vmpl", {1});
  EXPECT_NE(all_reasons(vmpl).find("VMPL 0"), std::string::npos);
  auto vlek_only = with("signing_keys", {"vlek"});
  EXPECT_NE(all_reasons(vlek_only).find("VCEK are not allowed"), std::string::npos);
  // Another request's binding.
  auto foreign = appraise_snp(pj, c, Bytes(32, 9));
  EXPECT_EQ(foreign.verdict, policy::Verdict::kContraindicated);
  EXPECT_NE(all_reasons(foreign).find("made for another request"), std::string::npos);
  // A policy pinning only Genoa's ARK: the Milan chain is not trusted.
  auto genoa = with("ark_fingerprints", {to_hex(ark_of("ask_ark_genoa.pem"))});
  EXPECT_NE(all_reasons(genoa).find("not an ARK the policy pins"), std::string::npos);
  // A TPM-only policy does not accept SEV-SNP evidence.
  auto tpm_only = appraise_snp({{"id", "t"}, {"version", 1}, {"tpm2", nlohmann::json::object()}}, c,
                               c.report_data);
  EXPECT_EQ(tpm_only.verdict, policy::Verdict::kContraindicated);
}

}  // namespace
}  // namespace attestnet::evidence::sevsnp
