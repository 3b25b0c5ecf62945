// Intel TDX (v4, v5) and SGX (v3) DCAP quotes from real hardware (../shared/vectors/tdx, sgx):
// the valid ones verify to the pinned Intel SGX Root CA and expose exactly the stated fields;
// the invalid ones and copies tampered here fail, each with its reason.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "evidence/tdx/collateral.h"
#include "evidence/tdx/quote.h"
#include "evidence/tpm2/eventlog.h"
#include "vectors.h"

namespace attestnet::evidence::tdx {
namespace {

using test::vectors_dir;

Bytes read(const std::filesystem::path& p) {
  return test::read_bytes(p);
}

Hash32 intel_root() {
  auto c = crypto::Certificate::from_der(as_view(read(
      vectors_dir() / "tdx" / "intel-root" / "Intel_SGX_Provisioning_Certification_RootCA.cer")));
  EXPECT_TRUE(c.ok());
  return c.ok() ? c->fingerprint() : Hash32{};
}

constexpr int64_t k2026 = 1772496000;  // 2026-03-03, inside every PCK leaf's validity

struct Expect {
  const char* path;
  uint16_t version;
  const char* fmspc;
  const char* mrtd_or_mrenclave;
  const char* report_data_prefix;
};

TEST(Tdx, RealQuotesVerifyToTheIntelRootWithTheirFields) {
  REQUIRE_VECTORS();
  const Expect cases[] = {
      {"tdx/v4-spr-e4-go-tdx-guest/quote.dat", 4, "50806f000000",
       "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7"
       "215cbb",
       "6c62dec1b8191749"},
      {"tdx/v4-trustee-quote6-gnr/quote.dat", 4, "00a06d080000",
       "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6becff"
       "bb1e88",
       "26cae1c77185617f"},
      {"tdx/v4-dcap-rs-00806f050000/quote.dat", 4, "00806f050000",
       "935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240b3f1f"
       "ed55d8",
       "0000000000000000"},
      {"tdx/v5-go-tdx-guest/quote.dat", 5, "90c06f000000",
       "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3b"
       "c8f876",
       "945eaacf5abc1f71"},
      {"sgx/v3-occlum-trustee/quote.dat", 3, "00606a000000",
       "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68", "7465737400000000"},
      {"sgx/v3-dcap-rs-00a067110000/quote.dat", 3, "00a067110000",
       "a39d532e6ac9fe8ad9418851bbe26e1dee7408006505fce8580b511b97e704b4", "0000000000000000"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    auto v = verify_quote(as_view(read(vectors_dir() / c.path)), {intel_root()}, k2026);
    ASSERT_TRUE(v.ok()) << v.error().to_string();
    EXPECT_EQ(v->quote.version, c.version);
    EXPECT_EQ(to_hex(v->pck.fmspc), c.fmspc);
    const Bytes& m = v->quote.is_tdx() ? v->quote.td.mr_td : v->quote.enclave.mr_enclave;
    EXPECT_EQ(to_hex(m), c.mrtd_or_mrenclave);
    EXPECT_EQ(to_hex(v->quote.report_data()).substr(0, 16), c.report_data_prefix);
    EXPECT_EQ(to_hex(v->quote.qe_report.mr_signer).substr(0, 8),
              v->quote.is_tdx() ? "dc9e2a7c" : "8c4f5775");
  }
}

TEST(Tdx, SprE4FieldsAndTcbComponents) {
  REQUIRE_VECTORS();
  auto v = verify_quote(as_view(read(vectors_dir() / "tdx/v4-spr-e4-go-tdx-guest/quote.dat")),
                        {intel_root()}, k2026);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  const TdReport& t = v->quote.td;
  EXPECT_EQ(to_hex(t.tee_tcb_svn), "03000400000000000000000000000000");
  EXPECT_EQ(to_hex(t.td_attributes), "0000004000000000");
  EXPECT_EQ(to_hex(t.xfam), "e71a060000000000");
  EXPECT_EQ(to_hex(t.rtmr[0]).substr(0, 16), "2927da70461cd632");
  EXPECT_EQ(to_hex(t.rtmr[2]).substr(0, 16), "8652f0caaba7e215");
  EXPECT_FALSE(t.debug());
  EXPECT_EQ(v->pck.tcb_components,
            (std::vector<uint8_t>{3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(v->pck.pce_svn, 11);
  EXPECT_EQ(v->quote.qe_report.isv_prod_id, 2);
  EXPECT_EQ(v->quote.qe_report.isv_svn, 4);
  EXPECT_EQ(v->quote.trailing, 39u);
  // go-tdx-guest: at 2053 the PCK leaf has expired.
  auto late = verify_quote(as_view(read(vectors_dir() / "tdx/v4-spr-e4-go-tdx-guest/quote.dat")),
                           {intel_root()}, 2635200000 /* 2053-07-01 */);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().reason.find("expired"), std::string::npos) << late.error().reason;
}

TEST(Tdx, V5BodyCarriesTdx15Fields) {
  REQUIRE_VECTORS();
  auto v = verify_quote(as_view(read(vectors_dir() / "tdx/v5-go-tdx-guest/quote.dat")),
                        {intel_root()}, k2026);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(v->quote.body_type, 3);
  EXPECT_EQ(to_hex(v->quote.td.tee_tcb_svn2), "0d010400000000000000000000000000");
  EXPECT_EQ(v->pck.pce_svn, 13);
}

TEST(Tdx, InvalidVectorsFailWithTheirReasons) {
  REQUIRE_VECTORS();
  auto bad = [&](const char* f) {
    return verify_quote(as_view(read(vectors_dir() / f)), {intel_root()}, k2026);
  };
  auto v3 = bad("tdx/invalid/spr-e4-version-byte-3.dat");
  ASSERT_FALSE(v3.ok());
  EXPECT_NE(v3.error().reason.find("quote format not supported"), std::string::npos);
  for (const char* f :
       {"tdx/invalid/spr-e4-header-byte-0x1E.dat", "tdx/invalid/spr-e4-tdbody-byte-0x3C.dat",
        "sgx/invalid/occlum-reportdata-flip.dat"}) {
    auto r = bad(f);
    ASSERT_FALSE(r.ok()) << f;
    EXPECT_NE(r.error().reason.find("does not verify with its attestation key"), std::string::npos)
        << f << ": " << r.error().reason;
  }
  auto leaf = bad("tdx/invalid/spr-e4-pck-leaf-byte-0xB77.dat");
  ASSERT_FALSE(leaf.ok());
  EXPECT_EQ(leaf.error().code, Errc::kCertificate) << leaf.error().reason;
}

TEST(Tdx, TamperedCopiesAreEachRejected) {
  REQUIRE_VECTORS();
  Bytes good = read(vectors_dir() / "tdx/v4-spr-e4-go-tdx-guest/quote.dat");
  auto q = parse_quote(as_view(good));
  ASSERT_TRUE(q.ok());
  struct Flip {
    size_t at;
    const char* needle;
  };
  // Offsets: header 48, TD report 584 (MRTD at 48+136, REPORTDATA at 48+520, TEE_TCB_SVN at
  // 48), signature at 636; the QE report follows the attestation key and cert data header.
  size_t qe = 636 + 64 + 64 + 6;
  for (Flip f : {Flip{636 + 5, "attestation key"}, Flip{48 + 136, "attestation key"},
                 Flip{48 + 520, "attestation key"}, Flip{48, "attestation key"},
                 Flip{qe + 10, "QE report signature"}, Flip{qe + 384 + 3, "QE report signature"}}) {
    Bytes b = good;
    b[f.at] ^= 0x01;
    auto r = verify_quote(as_view(b), {intel_root()}, k2026);
    ASSERT_FALSE(r.ok()) << f.at;
    EXPECT_NE(r.error().reason.find(f.needle), std::string::npos)
        << f.at << ": " << r.error().reason;
  }
  // Another root pinned (a chain ending in a root the policy does not trust).
  auto other = verify_quote(as_view(good), {Hash32{1}}, k2026);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().reason.find("not a root the policy pins"), std::string::npos);
}

TEST(Tdx, CcelReplaysToTheQuotedRtmrs) {
  REQUIRE_VECTORS();
  auto q = parse_quote(as_view(read(vectors_dir() / "tdx/v4-gce-cos113-ccel/quote.dat")));
  ASSERT_TRUE(q.ok()) << q.error().to_string();
  auto log =
      tpm2::parse_event_log(as_view(read(vectors_dir() / "tdx/v4-gce-cos113-ccel/ccel_data.dat")));
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  tpm2::PcrValues mr = tpm2::replay(*log);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(to_hex(mr[tpm2::kAlgSha384][static_cast<uint32_t>(i + 1)]), to_hex(q->td.rtmr[i]))
        << "RTMR" << i;
}

TEST(Tdx, ParserNeverCrashesOnTruncationsAndMutations) {
  REQUIRE_VECTORS();
  Bytes good = read(vectors_dir() / "tdx/v4-spr-e4-go-tdx-guest/quote.dat");
  for (size_t n = 0; n < good.size(); n += 7) (void)parse_quote(ByteView(good.data(), n));
  for (size_t i = 0; i < 1200; i += 3) {
    Bytes b = good;
    b[i] ^= 0xFF;
    (void)verify_quote(as_view(b), {intel_root()}, k2026);
  }
}

}  // namespace
}  // namespace attestnet::evidence::tdx

namespace attestnet::evidence::tdx {
namespace {

std::string text(const std::filesystem::path& p) {
  Bytes b = read(p);
  return std::string(b.begin(), b.end());
}

Collateral collateral(const std::string& dir, const std::string& tcbinfo = "tcbinfo.json",
                      const std::string& qe = "qe_identity.json",
                      const std::string& chain = "tcb_signing_cert.pem") {
  auto d = vectors_dir() / dir;
  return Collateral{text(d / tcbinfo), text(d / qe), text(d / chain), {}};
}

VerifiedQuote verified(const char* path) {
  auto v = verify_quote(as_view(read(vectors_dir() / path)), {intel_root()}, k2026);
  EXPECT_TRUE(v.ok()) << path << ": " << v.error().to_string();
  return std::move(v).value();
}

crypto::VerifyKey tcb_signing_key() {
  auto c = crypto::Certificate::from_pem_bundle(
      text(vectors_dir() / "tdx/collateral/fmspc-50806f000000-2023-06/tcb_info_issuer_chain.pem"));
  EXPECT_TRUE(c.ok());
  return *c->front().public_key();
}

constexpr int64_t k20250213 = 1739419232;  // dcap-rs' pinned time

TEST(TdxCollateral, SapphireRapidsIsOutOfDateWithItsAdvisories) {
  REQUIRE_VECTORS();
  auto q = verified("tdx/v4-dcap-rs-00806f050000/quote.dat");
  auto r = evaluate_collateral(q, collateral("tdx/collateral/fmspc-00806f050000-2025-02"),
                               {intel_root()}, k20250213);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->platform, TcbStatus::kOutOfDate);
  ASSERT_TRUE(r->tdx_module.has_value());
  EXPECT_EQ(*r->tdx_module, TcbStatus::kUpToDate);
  EXPECT_EQ(r->qe, TcbStatus::kUpToDate);
  EXPECT_EQ(r->status, TcbStatus::kOutOfDate);
  EXPECT_EQ(r->tcb_date, "2023-08-09T00:00:00Z");
  EXPECT_EQ(r->advisories,
            (std::vector<std::string>{"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}));
  // A month later the TCB Info has expired.
  auto late = evaluate_collateral(q, collateral("tdx/collateral/fmspc-00806f050000-2025-02"),
                                  {intel_root()}, k20250213 + 40 * 86400);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().reason.find("expired"), std::string::npos) << late.error().reason;
}

TEST(TdxCollateral, GraniteRapidsAndEmeraldRapidsStatuses) {
  REQUIRE_VECTORS();
  crypto::VerifyKey key = tcb_signing_key();
  {
    auto q = verified("tdx/v4-trustee-quote6-gnr/quote.dat");
    auto c = collateral("tdx/collateral/fmspc-00a06d080000-2025-10");
    auto info = verify_signed_document(c.tcb_info_json, "tcbInfo", key);
    auto qe = verify_signed_document(c.qe_identity_json, "enclaveIdentity", key);
    ASSERT_TRUE(info.ok() && qe.ok()) << info.error().to_string();
    auto r = derive_tcb_status(q, *info, *qe);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->platform, TcbStatus::kOutOfDate);
    EXPECT_EQ(*r->tdx_module, TcbStatus::kUpToDate);
    EXPECT_EQ(r->qe, TcbStatus::kUpToDate);
  }
  {
    auto q = verified("tdx/v5-go-tdx-guest/quote.dat");
    auto info = verify_signed_document(
        text(vectors_dir() / "tdx/collateral/fmspc-90c06f000000-2026-02/tcbinfo.json"), "tcbInfo",
        key);
    auto qe = verify_signed_document(
        text(vectors_dir() / "tdx/collateral/fmspc-50806f000000-2023-06/qe_identity.json"),
        "enclaveIdentity", key);
    ASSERT_TRUE(info.ok() && qe.ok());
    auto r = derive_tcb_status(q, *info, *qe);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->status, TcbStatus::kUpToDate);
  }
}

TEST(TdxCollateral, SprE4HasNoMatchingLevelAndSgxOcclumIsOutOfDate) {
  REQUIRE_VECTORS();
  auto c = collateral("tdx/collateral/fmspc-50806f000000-2023-06", "tcbinfo.json",
                      "qe_identity.json", "tcb_info_issuer_chain.pem");
  auto r = evaluate_collateral(verified("tdx/v4-spr-e4-go-tdx-guest/quote.dat"), c, {intel_root()},
                               1688169600 /* 2023-07-01 */);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("TCB level not supported"), std::string::npos)
      << r.error().reason;
  auto sgx = evaluate_collateral(
      verified("sgx/v3-occlum-trustee/quote.dat"),
      collateral("sgx/collateral/fmspc-00606a000000-2025-02", "tcbinfo_v2.json"), {intel_root()},
      k20250213);
  ASSERT_TRUE(sgx.ok()) << sgx.error().to_string();
  EXPECT_EQ(sgx->platform, TcbStatus::kOutOfDate);
  EXPECT_EQ(sgx->qe, TcbStatus::kUpToDate);
  // Collateral of another platform (FMSPC) is refused.
  auto wrong = evaluate_collateral(verified("sgx/v3-occlum-trustee/quote.dat"),
                                   collateral("tdx/collateral/fmspc-00806f050000-2025-02"),
                                   {intel_root()}, k20250213);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().reason.find("FMSPC"), std::string::npos);
}

TEST(TdxCollateral, AlteredCollateralFailsItsSignature) {
  REQUIRE_VECTORS();
  auto c = collateral("tdx/collateral/fmspc-00806f050000-2025-02");
  size_t at = c.tcb_info_json.find("\"tcbStatus\":\"OutOfDate\"");
  ASSERT_NE(at, std::string::npos);
  c.tcb_info_json.replace(at, 23, "\"tcbStatus\":\"UpToDate\" ");
  auto r = evaluate_collateral(verified("tdx/v4-dcap-rs-00806f050000/quote.dat"), c, {intel_root()},
                               k20250213);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadSignature);
}

}  // namespace
}  // namespace attestnet::evidence::tdx

#include <nlohmann/json.hpp>

#include "evidence/tdx/bundle.h"
#include "policy/policy.h"

namespace attestnet::evidence::tdx {
namespace {

policy::AppraisalResult appraise_dcap(const std::string& platform, const nlohmann::json& pj,
                                      const Bytes& bundle, const Bytes& binding, int64_t at) {
  auto p = policy::parse_policy(pj.dump());
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  policy::AppraisalInput in;
  in.platform = platform;
  in.evidence = as_view(bundle);
  in.expected_binding = binding;
  in.at_unix = at;
  return policy::appraise(&*p, in);
}

std::string why(const policy::AppraisalResult& r) {
  std::string s;
  for (const auto& x : r.reasons) s += x + "\n";
  return s;
}

TEST(DcapPolicy, TdxWithCollateralAndReferenceValues) {
  REQUIRE_VECTORS();
  DcapEvidence e;
  e.quote = read(vectors_dir() / "tdx/v4-dcap-rs-00806f050000/quote.dat");
  e.collateral = collateral("tdx/collateral/fmspc-00806f050000-2025-02");
  Bytes bundle = e.encode();
  Bytes zeros(64, 0);
  nlohmann::json pj = {
      {"id", "tdx"},
      {"version", 1},
      {"tdx",
       {{"root_fingerprints", {to_hex(intel_root())}},
        {"mrtd",
         {"935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240b"
          "3f1fed55d8"}},
        {"tcb_statuses", {"UpToDate", "OutOfDate"}}}}};
  auto ok = appraise_dcap("tdx", pj, bundle, zeros, k20250213);
  EXPECT_EQ(ok.verdict, policy::Verdict::kAffirming) << why(ok);
  nlohmann::json strict = pj;
  strict["tdx"]["tcb_statuses"] = {"UpToDate"};
  auto old = appraise_dcap("tdx", strict, bundle, zeros, k20250213);
  EXPECT_EQ(old.verdict, policy::Verdict::kContraindicated);
  EXPECT_NE(why(old).find("TCB status is OutOfDate"), std::string::npos) << why(old);
  nlohmann::json other = pj;
  other["tdx"]["mrtd"] = {std::string(96, 'b')};
  EXPECT_NE(why(appraise_dcap("tdx", other, bundle, zeros, k20250213)).find("mrtd"),
            std::string::npos);
  // The same quote presented as SGX is refused; without collateral a status rule cannot hold.
  EXPECT_EQ(
      appraise_dcap(
          "sgx",
          {{"id", "s"}, {"version", 1}, {"sgx", {{"root_fingerprints", {to_hex(intel_root())}}}}},
          bundle, zeros, k20250213)
          .verdict,
      policy::Verdict::kContraindicated);
  DcapEvidence bare;
  bare.quote = e.quote;
  auto none = appraise_dcap("tdx", strict, bare.encode(), zeros, k20250213);
  EXPECT_NE(why(none).find("carries no collateral"), std::string::npos);
}

TEST(DcapPolicy, SgxEnclaveValuesAndDebug) {
  REQUIRE_VECTORS();
  DcapEvidence e;
  e.quote = read(vectors_dir() / "sgx/v3-occlum-trustee/quote.dat");
  Bytes bundle = e.encode();
  Bytes rd = *from_hex("74657374");
  nlohmann::json pj = {
      {"id", "sgx"},
      {"version", 1},
      {"sgx",
       {{"root_fingerprints", {to_hex(intel_root())}},
        {"mrenclave", {"8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68"}},
        {"mrsigner", {"83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"}}}}};
  // This Occlum test enclave runs in debug mode (ATTRIBUTES.DEBUG, 0x07 = INIT|DEBUG|MODE64):
  // refused unless the policy allows it.
  auto dbg = appraise_dcap("sgx", pj, bundle, rd, k2026);
  EXPECT_EQ(dbg.verdict, policy::Verdict::kContraindicated);
  EXPECT_NE(why(dbg).find("debuggable"), std::string::npos);
  pj["sgx"]["allow_debug"] = true;
  auto r = appraise_dcap("sgx", pj, bundle, rd, k2026);
  EXPECT_EQ(r.verdict, policy::Verdict::kAffirming) << why(r);
  auto foreign = appraise_dcap("sgx", pj, bundle, Bytes(32, 1), k2026);
  EXPECT_NE(why(foreign).find("made for another request"), std::string::npos);
}

}  // namespace
}  // namespace attestnet::evidence::tdx

namespace attestnet::evidence::tdx {
namespace {

TEST(TdxCollateral, PckCrlIsCheckedWhenGiven) {
  REQUIRE_VECTORS();
  auto q = verified("tdx/v4-dcap-rs-00806f050000/quote.dat");
  Bytes crl =
      read(vectors_dir() / "tdx/collateral/fmspc-00806f050000-2025-02/pck_platform_crl.der");
  // Signed by the Intel SGX PCK Platform CA of the quote's chain, current, and not listing it.
  Status ok = check_pck_crl(q, as_view(crl), k20250213);
  EXPECT_TRUE(ok.ok()) << ok.error().to_string();
  auto c = collateral("tdx/collateral/fmspc-00806f050000-2025-02");
  c.pck_crl = crl;
  auto r = evaluate_collateral(q, c, {intel_root()}, k20250213);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, TcbStatus::kOutOfDate);
  // Past its nextUpdate, and altered: refused.
  EXPECT_EQ(check_pck_crl(q, as_view(crl), k20250213 + 40 * 86400).error().code, Errc::kStale);
  Bytes bad = crl;
  bad[bad.size() - 10] ^= 1;
  EXPECT_FALSE(check_pck_crl(q, as_view(bad), k20250213).ok());
  // The Root CA's CRL is not the PCK issuer's.
  Bytes root_crl = read(vectors_dir() / "tdx/intel-root/intel_root_ca_crl.der");
  auto wrong = check_pck_crl(q, as_view(root_crl), k20250213);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().reason.find("not from the CA"), std::string::npos);
}

}  // namespace
}  // namespace attestnet::evidence::tdx
