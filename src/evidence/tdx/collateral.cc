#include "evidence/tdx/collateral.h"

#include <openssl/x509.h>
#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/codec.h"

namespace attestnet::evidence::tdx {

using nlohmann::json;

namespace {
const char* const kNames[] = {"UpToDate",
                              "SWHardeningNeeded",
                              "ConfigurationNeeded",
                              "ConfigurationAndSWHardeningNeeded",
                              "OutOfDate",
                              "OutOfDateConfigurationNeeded",
                              "Revoked"};
}  // namespace

const char* tcb_status_name(TcbStatus s) {
  return kNames[static_cast<int>(s)];
}

Result<TcbStatus> tcb_status_from(std::string_view name) {
  for (int i = 0; i < 7; ++i)
    if (name == kNames[i]) return static_cast<TcbStatus>(i);
  return make_error(Errc::kBadValue, "unknown TCB status '" + std::string(name) + "'");
}

namespace {
TcbStatus worst(TcbStatus a, TcbStatus b) {
  return static_cast<uint8_t>(a) >= static_cast<uint8_t>(b) ? a : b;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<int64_t> iso_time(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm))
    return make_error(Errc::kBadValue, "date '" + s + "' is not ISO 8601 UTC");
  return static_cast<int64_t>(timegm(&tm));
}
}  // namespace

Result<std::string> raw_json_member(std::string_view text, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\"";
  size_t k = text.find(needle);
  if (k == std::string_view::npos)
    return make_error(Errc::kNotFound, "no \"" + std::string(key) + "\" member in the document");
  size_t i = text.find(':', k + needle.size());
  if (i == std::string_view::npos) return make_error(Errc::kBadValue, "malformed JSON");
  ++i;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i >= text.size() || text[i] != '{')
    return make_error(Errc::kBadValue, "\"" + std::string(key) + "\" is not a JSON object");
  int depth = 0;
  bool in_str = false;
  for (size_t j = i; j < text.size(); ++j) {
    char c = text[j];
    if (in_str) {
      if (c == '\\') {
        ++j;
      } else if (c == '"') {
        in_str = false;
      }
      continue;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return std::string(text.substr(i, j - i + 1));
    }
  }
  return make_error(Errc::kTruncated, "unterminated JSON object");
}

Result<std::string> verify_signed_document(std::string_view text, std::string_view member,
                                           const crypto::VerifyKey& key) {
  ATN_TRY(std::string body, raw_json_member(text, member));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("signature") || !j["signature"].is_string())
    return make_error(Errc::kBadValue, std::string(member) + " document has no signature");
  auto sig = from_hex(j["signature"].get<std::string>());
  if (!sig || sig->size() != 64)
    return make_error(Errc::kBadValue, std::string(member) + " signature is not 64 bytes of hex");
  ByteView s(*sig);
  if (!key.verify_ecdsa_rs(crypto::HashAlg::kSha256, as_view(body), s.subspan(0, 32),
                           s.subspan(32, 32))
           .ok())
    return make_error(Errc::kBadSignature,
                      std::string(member) +
                          " signature does not verify with the Intel TCB Signing key: the "
                          "collateral was altered");
  return body;
}

namespace {

// A level's 16 SGX components and PCESVN, in either TCB Info format (v2 names, v3 arrays).
bool level_components(const json& tcb, std::vector<int>& sgx, int& pcesvn, std::vector<int>& tdx) {
  sgx.assign(16, 0);
  tdx.clear();
  if (tcb.contains("sgxtcbcomponents")) {
    const auto& a = tcb["sgxtcbcomponents"];
    if (!a.is_array() || a.size() != 16) return false;
    for (size_t i = 0; i < 16; ++i) sgx[i] = a[i].value("svn", 0);
  } else {
    for (int i = 0; i < 16; ++i) {
      char name[24];
      std::snprintf(name, sizeof name, "sgxtcbcomp%02dsvn", i + 1);
      if (!tcb.contains(name)) return false;
      sgx[static_cast<size_t>(i)] = tcb[name].get<int>();
    }
  }
  if (!tcb.contains("pcesvn")) return false;
  pcesvn = tcb["pcesvn"].get<int>();
  if (tcb.contains("tdxtcbcomponents")) {
    const auto& a = tcb["tdxtcbcomponents"];
    if (!a.is_array() || a.size() != 16) return false;
    for (size_t i = 0; i < 16; ++i) tdx.push_back(a[i].value("svn", 0));
  }
  return true;
}

Bytes hex_or_empty(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return {};
  return from_hex(j[key].get<std::string>()).value_or(Bytes{});
}

bool masked_equal(const Bytes& value, const Bytes& expect, const Bytes& mask) {
  if (value.size() < expect.size() || mask.size() != expect.size()) return false;
  for (size_t i = 0; i < expect.size(); ++i)
    if ((value[i] & mask[i]) != (expect[i] & mask[i])) return false;
  return true;
}

Bytes le32_bytes(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}

Result<TcbStatus> qe_status(const EnclaveReport& qe, const json& id) {
  Bytes misc = hex_or_empty(id, "miscselect"), misc_mask = hex_or_empty(id, "miscselectMask");
  // miscselect is shown big-endian in the identity; the report holds it little-endian.
  Bytes qe_misc = le32_bytes(qe.misc_select);
  std::reverse(qe_misc.begin(), qe_misc.end());
  if (!masked_equal(qe_misc, misc, misc_mask))
    return make_error(Errc::kBadValue, "the QE's MISCSELECT does not match its QE identity");
  if (!masked_equal(qe.attributes, hex_or_empty(id, "attributes"),
                    hex_or_empty(id, "attributesMask")))
    return make_error(Errc::kBadValue, "the QE's attributes do not match its QE identity");
  if (lower(to_hex(qe.mr_signer)) != lower(id.value("mrsigner", "")))
    return make_error(Errc::kBadValue,
                      "the QE's MRSIGNER is not Intel's: the quote was not made by Intel's QE");
  if (qe.isv_prod_id != id.value("isvprodid", -1))
    return make_error(Errc::kBadValue, "the QE's ISVPRODID does not match its QE identity");
  for (const auto& level : id["tcbLevels"]) {
    if (qe.isv_svn >= level["tcb"].value("isvsvn", 0x10000))
      return tcb_status_from(level.value("tcbStatus", ""));
  }
  return make_error(Errc::kBadValue, "the QE's ISVSVN " + std::to_string(qe.isv_svn) +
                                         " is below every level of its QE identity (revoked)");
}

}  // namespace

Result<TcbResult> derive_tcb_status(const VerifiedQuote& vq, std::string_view tcb_info_body,
                                    std::string_view qe_identity_body) {
  json info = json::parse(tcb_info_body, nullptr, false);
  json qe = json::parse(qe_identity_body, nullptr, false);
  if (info.is_discarded() || qe.is_discarded())
    return make_error(Errc::kBadValue, "TCB Info or QE Identity is not valid JSON");
  const Quote& q = vq.quote;
  try {
    if (lower(info.value("fmspc", "")) != lower(to_hex(vq.pck.fmspc)))
      return make_error(Errc::kBadValue, "TCB Info is for FMSPC " + info.value("fmspc", "?") +
                                             " but the PCK's is " + to_hex(vq.pck.fmspc));
    if (lower(info.value("pceId", "")) != lower(to_hex(vq.pck.pce_id)))
      return make_error(Errc::kBadValue, "TCB Info is for another PCE ID");
    bool tdx_info = info.value("id", "") == "TDX";
    if (q.is_tdx() != tdx_info)
      return make_error(Errc::kBadValue, std::string("TCB Info is for ") +
                                             (tdx_info ? "TDX" : "SGX") + " but the quote is " +
                                             (q.is_tdx() ? "TDX" : "SGX"));
    TcbResult r;
    r.tcb_evaluation_data_number = info.value("tcbEvaluationDataNumber", 0u);
    bool module_identities = q.is_tdx() && info.contains("tdxModuleIdentities");
    bool skip_module_svns =
        module_identities && q.td.tee_tcb_svn.size() == 16 && q.td.tee_tcb_svn[1] > 0;
    bool matched = false;
    for (const auto& level : info["tcbLevels"]) {
      std::vector<int> sgx, tdx;
      int pcesvn = 0;
      if (!level_components(level["tcb"], sgx, pcesvn, tdx))
        return make_error(Errc::kBadValue, "a TCB level of the TCB Info is malformed");
      bool ok = vq.pck.pce_svn >= pcesvn;
      for (size_t i = 0; ok && i < 16; ++i) ok = vq.pck.tcb_components[i] >= sgx[i];
      if (ok && q.is_tdx()) {
        if (tdx.size() != 16) return make_error(Errc::kBadValue, "TDX TCB level without TDX SVNs");
        for (size_t i = skip_module_svns ? 2 : 0; ok && i < 16; ++i)
          ok = q.td.tee_tcb_svn[i] >= tdx[i];
      }
      if (!ok) continue;
      ATN_TRY(r.platform, tcb_status_from(level.value("tcbStatus", "")));
      r.tcb_date = level.value("tcbDate", "");
      if (level.contains("advisoryIDs"))
        for (const auto& a : level["advisoryIDs"]) r.advisories.push_back(a.get<std::string>());
      matched = true;
      break;
    }
    if (!matched)
      return make_error(Errc::kBadValue,
                        "TCB level not supported: the platform's TCB (PCK SVNs, PCESVN" +
                            std::string(q.is_tdx() ? ", TEE_TCB_SVN" : "") +
                            ") is below every level of the TCB Info");
    r.status = r.platform;
    if (skip_module_svns) {
      char id[16];
      std::snprintf(id, sizeof id, "TDX_%02X", q.td.tee_tcb_svn[1]);
      const json* ident = nullptr;
      for (const auto& m : info["tdxModuleIdentities"])
        if (m.value("id", "") == id) ident = &m;
      if (!ident)
        return make_error(Errc::kBadValue,
                          std::string("TCB Info has no identity for TDX module ") + id);
      if (lower((*ident).value("mrsigner", "")) != lower(to_hex(q.td.mr_signer_seam)))
        return make_error(Errc::kBadValue,
                          std::string("the TDX module's MRSIGNERSEAM is not ") + id + "'s");
      std::optional<TcbStatus> ms;
      for (const auto& level : (*ident)["tcbLevels"])
        if (q.td.tee_tcb_svn[0] >= level["tcb"].value("isvsvn", 0x10000)) {
          ATN_TRY(TcbStatus s, tcb_status_from(level.value("tcbStatus", "")));
          ms = s;
          break;
        }
      if (!ms)
        return make_error(Errc::kBadValue,
                          std::string("TDX module ") + id + " SVN is below every level");
      r.tdx_module = *ms;
      r.status = worst(r.status, *ms);
    }
    ATN_TRY(r.qe, qe_status(q.qe_report, qe));
    r.status = worst(r.status, r.qe);
    return r;
  } catch (const json::exception& e) {
    return make_error(Errc::kBadValue,
                      std::string("collateral has a value of the wrong type: ") + e.what());
  }
}

Result<TcbResult> evaluate_collateral(const VerifiedQuote& q, const Collateral& c,
                                      const std::vector<Hash32>& pinned_roots, int64_t at_unix) {
  auto certs = crypto::Certificate::from_pem_bundle(c.signing_chain_pem);
  if (!certs.ok() || certs->empty())
    return make_error(Errc::kCertificate, "the collateral has no TCB Signing certificate chain");
  std::vector<crypto::Certificate> roots, mid;
  for (size_t i = 1; i < certs->size(); ++i) {
    const auto& cert = (*certs)[i];
    if (std::find(pinned_roots.begin(), pinned_roots.end(), cert.fingerprint()) !=
        pinned_roots.end())
      roots.push_back(cert);
    else
      mid.push_back(cert);
  }
  if (roots.empty())
    return make_error(Errc::kCertificate,
                      "the TCB Signing chain does not end in a root the policy pins");
  ATN_CHECK(crypto::verify_chain(certs->front(), mid, roots, at_unix));
  ATN_TRY(auto key, certs->front().public_key());
  ATN_TRY(std::string info, verify_signed_document(c.tcb_info_json, "tcbInfo", key));
  ATN_TRY(std::string qe, verify_signed_document(c.qe_identity_json, "enclaveIdentity", key));
  for (const auto& [name, body] : {std::pair{"tcbInfo", &info}, std::pair{"QE identity", &qe}}) {
    json j = json::parse(*body, nullptr, false);
    // As Intel's library: collateral past its nextUpdate has expired (an issue date later than
    // the appraisal time is only clock skew between PCS and the ledger, not a weakness).
    ATN_TRY(int64_t next, iso_time(j.value("nextUpdate", "")));
    if (at_unix > next)
      return make_error(Errc::kStale, std::string(name) + " has expired (nextUpdate " +
                                          j.value("nextUpdate", "") + ")");
  }
  ATN_TRY(TcbResult r, derive_tcb_status(q, info, qe));
  if (!c.pck_crl.empty()) {
    Status crl = check_pck_crl(q, as_view(c.pck_crl), at_unix);
    if (!crl.ok()) {
      if (crl.error().code != Errc::kCertificate ||
          crl.error().reason.find("revoked") == std::string::npos)
        return crl.error();
      r.status = TcbStatus::kRevoked;
      r.advisories.push_back(crl.error().reason);
    }
  }
  return r;
}

Status check_pck_crl(const VerifiedQuote& q, ByteView der, int64_t at_unix) {
  const unsigned char* p = der.data();
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (!crl) return make_error(Errc::kBadValue, "the PCK CRL is not a DER X.509 CRL");
  struct Free {
    X509_CRL* c;
    ~Free() { X509_CRL_free(c); }
  } guard{crl};
  const crypto::Certificate& leaf = q.pck_chain.front();
  const crypto::Certificate* issuer = nullptr;
  for (size_t i = 1; i < q.pck_chain.size(); ++i)
    if (X509_NAME_cmp(X509_get_subject_name(q.pck_chain[i].get()), X509_CRL_get_issuer(crl)) == 0 &&
        X509_NAME_cmp(X509_get_subject_name(q.pck_chain[i].get()),
                      X509_get_issuer_name(leaf.get())) == 0)
      issuer = &q.pck_chain[i];
  if (!issuer)
    return make_error(Errc::kBadValue, "the PCK CRL is not from the CA that issued this PCK (" +
                                           leaf.issuer() + ")");
  ATN_TRY(auto key, issuer->public_key());
  if (X509_CRL_verify(crl, key.get()) != 1)
    return make_error(Errc::kBadSignature,
                      "the PCK CRL's signature does not verify with " + issuer->subject());
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
  time_t t = static_cast<time_t>(at_unix);
  if (next && X509_cmp_time(next, &t) < 0)
    return make_error(Errc::kStale, "the PCK CRL has expired (past its nextUpdate)");
  X509_REVOKED* revoked = nullptr;
  if (X509_CRL_get0_by_serial(crl, &revoked, X509_get0_serialNumber(leaf.get())) == 1)
    return make_error(Errc::kCertificate,
                      "the PCK certificate " + leaf.subject() + " is revoked by its CA's CRL");
  return {};
}

}  // namespace attestnet::evidence::tdx
