#include "evidence/tdx/quote.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>

#include "core/codec.h"
#include "core/hash.h"

namespace attestnet::evidence::tdx {

namespace {

Error where(const Error& e, const char* field) {
  return make_error(e.code, std::string("DCAP quote ") + field + ": " + e.reason);
}

#define TDX_READ(decl, expr, field)                                                          \
  auto ATN_CONCAT(r_, __LINE__) = (expr);                                                    \
  if (!ATN_CONCAT(r_, __LINE__).ok()) return where(ATN_CONCAT(r_, __LINE__).error(), field); \
  decl = std::move(ATN_CONCAT(r_, __LINE__)).value()

Result<EnclaveReport> read_enclave_report(Reader& r) {
  EnclaveReport e;
  TDX_READ(e.raw, r.fixed(384), "enclave report");
  ByteView b = as_view(e.raw);
  auto sub = [&](size_t off, size_t n) { return Bytes(b.begin() + off, b.begin() + off + n); };
  e.cpu_svn = sub(0, 16);
  e.misc_select =
      static_cast<uint32_t>(b[16] | b[17] << 8 | b[18] << 16 | static_cast<uint32_t>(b[19]) << 24);
  e.attributes = sub(48, 16);
  e.mr_enclave = sub(64, 32);
  e.mr_signer = sub(128, 32);
  e.isv_prod_id = static_cast<uint16_t>(b[256] | b[257] << 8);
  e.isv_svn = static_cast<uint16_t>(b[258] | b[259] << 8);
  e.report_data = sub(320, 64);
  return e;
}

Result<TdReport> read_td_report(Reader& r, bool v15) {
  TdReport t;
  TDX_READ(t.tee_tcb_svn, r.fixed(16), "TEE_TCB_SVN");
  TDX_READ(t.mr_seam, r.fixed(48), "MRSEAM");
  TDX_READ(t.mr_signer_seam, r.fixed(48), "MRSIGNERSEAM");
  TDX_READ(t.seam_attributes, r.fixed(8), "SEAMATTRIBUTES");
  TDX_READ(t.td_attributes, r.fixed(8), "TDATTRIBUTES");
  TDX_READ(t.xfam, r.fixed(8), "XFAM");
  TDX_READ(t.mr_td, r.fixed(48), "MRTD");
  TDX_READ(t.mr_config_id, r.fixed(48), "MRCONFIGID");
  TDX_READ(t.mr_owner, r.fixed(48), "MROWNER");
  TDX_READ(t.mr_owner_config, r.fixed(48), "MROWNERCONFIG");
  for (auto& m : t.rtmr) {
    TDX_READ(m, r.fixed(48), "RTMR");
  }
  TDX_READ(t.report_data, r.fixed(64), "REPORTDATA");
  if (v15) {
    TDX_READ(t.tee_tcb_svn2, r.fixed(16), "TEE_TCB_SVN_2");
    TDX_READ(t.mr_service_td, r.fixed(48), "MRSERVICETD");
  }
  return t;
}

}  // namespace

Result<Quote> parse_quote(ByteView in) {
  Reader r(in, 1u << 20);
  Quote q;
  TDX_READ(q.version, r.u16(), "header");
  TDX_READ(q.att_key_type, r.u16(), "header");
  TDX_READ(q.tee_type, r.u32(), "header");
  TDX_READ(q.qe_svn, r.u16(), "header");
  TDX_READ(q.pce_svn, r.u16(), "header");
  TDX_READ(q.qe_vendor_id, r.fixed(16), "header");
  TDX_READ(q.user_data, r.fixed(20), "header");
  if (q.att_key_type != 2)
    return make_error(Errc::kUnsupported, "DCAP quote attestation key type " +
                                              std::to_string(q.att_key_type) +
                                              " (only 2, ECDSA-256 with P-256, is supported)");
  if (q.version == 3) {
    if (q.tee_type != kTeeSgx)
      return make_error(Errc::kBadVersion,
                        "quote format not supported: version 3 is an SGX quote but the TEE type "
                        "is TDX (0x81)");
    ATN_TRY(q.enclave, read_enclave_report(r));
  } else if (q.version == 4) {
    if (q.tee_type == kTeeTdx) {
      ATN_TRY(q.td, read_td_report(r, false));
    } else if (q.tee_type == kTeeSgx) {
      ATN_TRY(q.enclave, read_enclave_report(r));
    } else {
      return make_error(Errc::kBadValue, "DCAP quote TEE type " + std::to_string(q.tee_type));
    }
  } else if (q.version == 5) {
    TDX_READ(q.body_type, r.u16(), "body descriptor");
    TDX_READ(uint32_t body_size, r.u32(), "body descriptor");
    size_t before = r.position();
    if (q.body_type == 1) {
      ATN_TRY(q.enclave, read_enclave_report(r));
    } else if (q.body_type == 2 || q.body_type == 3) {
      if (q.tee_type != kTeeTdx)
        return make_error(Errc::kBadValue,
                          "v5 quote with a TD body but TEE type " + std::to_string(q.tee_type));
      ATN_TRY(q.td, read_td_report(r, q.body_type == 3));
    } else {
      return make_error(Errc::kUnsupported,
                        "v5 quote body type " + std::to_string(q.body_type) + " (1, 2 or 3)");
    }
    if (r.position() - before != body_size)
      return make_error(Errc::kBadValue, "v5 quote body size " + std::to_string(body_size) +
                                             " does not match its type " +
                                             std::to_string(q.body_type));
  } else {
    return make_error(Errc::kBadVersion, "quote format not supported: DCAP quote version " +
                                             std::to_string(q.version) + " (3, 4 and 5 are)");
  }
  q.signed_size = r.position();
  TDX_READ(uint32_t sig_len, r.u32(), "signature data length");
  if (sig_len > r.remaining())
    return make_error(Errc::kTruncated, "DCAP quote signature data of " + std::to_string(sig_len) +
                                            " bytes, but only " + std::to_string(r.remaining()) +
                                            " remain");
  size_t sig_end = r.position() + sig_len;
  TDX_READ(q.signature, r.fixed(64), "ECDSA signature");
  TDX_READ(q.attestation_key, r.fixed(64), "attestation key");
  if (q.version >= 4) {
    TDX_READ(uint16_t outer_type, r.u16(), "certification data type");
    TDX_READ(uint32_t outer_size, r.u32(), "certification data size");
    if (outer_type != 6)
      return make_error(Errc::kUnsupported, "certification data type " +
                                                std::to_string(outer_type) +
                                                " (6, QE report certification data, expected)");
    if (outer_size > r.remaining())
      return make_error(Errc::kTruncated, "certification data size " + std::to_string(outer_size) +
                                              " exceeds the quote");
  }
  ATN_TRY(q.qe_report, read_enclave_report(r));
  TDX_READ(q.qe_report_signature, r.fixed(64), "QE report signature");
  TDX_READ(uint16_t auth_size, r.u16(), "QE authentication data size");
  TDX_READ(q.qe_auth_data, r.fixed(auth_size), "QE authentication data");
  TDX_READ(q.cert_type, r.u16(), "PCK certification data type");
  TDX_READ(uint32_t cert_size, r.u32(), "PCK certification data size");
  TDX_READ(q.cert_data, r.fixed(cert_size), "PCK certification data");
  if (q.cert_type != 5)
    return make_error(Errc::kUnsupported, "PCK certification data type " +
                                              std::to_string(q.cert_type) +
                                              " (5, the PEM PCK chain, is supported)");
  if (r.position() != sig_end)
    return make_error(Errc::kBadValue, "DCAP quote signature data length " +
                                           std::to_string(sig_len) + " does not match its parts");
  q.trailing = r.remaining();
  q.raw.assign(in.begin(), in.begin() + static_cast<long>(sig_end));
  return q;
}

namespace {

struct TypeStack {
  STACK_OF(ASN1_TYPE) * s = nullptr;
  ~TypeStack() {
    if (s) sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
  }
};

bool parse_seq(const unsigned char* p, long len, TypeStack& out) {
  out.s = d2i_ASN1_SEQUENCE_ANY(nullptr, &p, len);
  return out.s != nullptr;
}

std::string oid_text(const ASN1_OBJECT* o) {
  char buf[128];
  OBJ_obj2txt(buf, sizeof buf, o, 1);
  return buf;
}

Bytes octets(const ASN1_TYPE* t) {
  if (t->type != V_ASN1_OCTET_STRING) return {};
  const ASN1_STRING* s = t->value.octet_string;
  return Bytes(ASN1_STRING_get0_data(s), ASN1_STRING_get0_data(s) + ASN1_STRING_length(s));
}

long integer(const ASN1_TYPE* t) {
  if (t->type != V_ASN1_INTEGER) return -1;
  return ASN1_INTEGER_get(t->value.integer);
}

}  // namespace

Result<PckInfo> pck_info(const crypto::Certificate& pck) {
  ASN1_OBJECT* obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
  int idx = X509_get_ext_by_OBJ(pck.get(), obj, -1);
  ASN1_OBJECT_free(obj);
  if (idx < 0)
    return make_error(Errc::kCertificate, "certificate " + pck.subject() +
                                              " has no Intel SGX extension: it is not a PCK "
                                              "certificate");
  const ASN1_OCTET_STRING* v = X509_EXTENSION_get_data(X509_get_ext(pck.get(), idx));
  TypeStack top;
  if (!parse_seq(ASN1_STRING_get0_data(v), ASN1_STRING_length(v), top))
    return make_error(Errc::kCertificate, "the PCK's SGX extension is not a DER SEQUENCE");
  PckInfo info;
  bool have_tcb = false, have_fmspc = false;
  for (int i = 0; i < sk_ASN1_TYPE_num(top.s); ++i) {
    ASN1_TYPE* item = sk_ASN1_TYPE_value(top.s, i);
    if (item->type != V_ASN1_SEQUENCE) continue;
    TypeStack pair;
    if (!parse_seq(ASN1_STRING_get0_data(item->value.sequence),
                   ASN1_STRING_length(item->value.sequence), pair) ||
        sk_ASN1_TYPE_num(pair.s) != 2 || sk_ASN1_TYPE_value(pair.s, 0)->type != V_ASN1_OBJECT)
      continue;
    std::string oid = oid_text(sk_ASN1_TYPE_value(pair.s, 0)->value.object);
    ASN1_TYPE* val = sk_ASN1_TYPE_value(pair.s, 1);
    if (oid == "1.2.840.113741.1.13.1.1") {
      info.ppid = octets(val);
    } else if (oid == "1.2.840.113741.1.13.1.3") {
      info.pce_id = octets(val);
    } else if (oid == "1.2.840.113741.1.13.1.4") {
      info.fmspc = octets(val);
      have_fmspc = info.fmspc.size() == 6;
    } else if (oid == "1.2.840.113741.1.13.1.2" && val->type == V_ASN1_SEQUENCE) {
      TypeStack tcb;
      if (!parse_seq(ASN1_STRING_get0_data(val->value.sequence),
                     ASN1_STRING_length(val->value.sequence), tcb))
        continue;
      info.tcb_components.assign(16, 0);
      int found = 0;
      for (int j = 0; j < sk_ASN1_TYPE_num(tcb.s); ++j) {
        ASN1_TYPE* c = sk_ASN1_TYPE_value(tcb.s, j);
        if (c->type != V_ASN1_SEQUENCE) continue;
        TypeStack comp;
        if (!parse_seq(ASN1_STRING_get0_data(c->value.sequence),
                       ASN1_STRING_length(c->value.sequence), comp) ||
            sk_ASN1_TYPE_num(comp.s) != 2 || sk_ASN1_TYPE_value(comp.s, 0)->type != V_ASN1_OBJECT)
          continue;
        std::string coid = oid_text(sk_ASN1_TYPE_value(comp.s, 0)->value.object);
        const std::string prefix = "1.2.840.113741.1.13.1.2.";
        if (coid.rfind(prefix, 0) != 0) continue;
        int n = std::stoi(coid.substr(prefix.size()));
        ASN1_TYPE* cv = sk_ASN1_TYPE_value(comp.s, 1);
        if (n >= 1 && n <= 16) {
          long svn = integer(cv);
          if (svn < 0 || svn > 255) continue;
          info.tcb_components[static_cast<size_t>(n - 1)] = static_cast<uint8_t>(svn);
          ++found;
        } else if (n == 17) {
          long svn = integer(cv);
          if (svn >= 0 && svn <= 65535) info.pce_svn = static_cast<uint16_t>(svn), ++found;
        } else if (n == 18) {
          info.cpu_svn = octets(cv);
        }
      }
      have_tcb = found == 17;
    }
  }
  if (!have_tcb || !have_fmspc)
    return make_error(Errc::kCertificate,
                      "the PCK's SGX extension lacks its TCB (16 components + PCESVN) or FMSPC");
  return info;
}

namespace {

struct ParsedPck {
  std::vector<crypto::Certificate> certs;
  PckInfo info;
  crypto::VerifyKey key;
};

Result<ParsedPck> parse_pck(const Bytes& cert_data) {
  std::string pem(cert_data.begin(), cert_data.end());
  while (!pem.empty() && pem.back() == '\0') pem.pop_back();
  auto certs = crypto::Certificate::from_pem_bundle(pem);
  if (!certs.ok() || certs->size() < 2)
    return make_error(Errc::kCertificate,
                      "the quote's PCK certification data is not a PEM chain of at least two "
                      "certificates");
  ParsedPck p;
  p.certs = std::move(certs).value();
  ATN_TRY(p.info, pck_info(p.certs.front()));
  ATN_TRY(p.key, p.certs.front().public_key());
  return p;
}

Result<crypto::VerifyKey> attestation_key(const Bytes& xy) {
  return crypto::VerifyKey::from_ec(crypto::VerifyKey::Type::kEcP256, ByteView(xy.data(), 32),
                                    ByteView(xy.data() + 32, 32));
}

template <typename T, typename F>
Result<std::shared_ptr<const T>> maybe_memo(crypto::ChainCache* cache, const char* domain,
                                            const Bytes& input, F&& make) {
  if (!cache) {
    Result<T> r = make();
    if (!r.ok()) return r.error();
    return std::make_shared<const T>(std::move(r).value());
  }
  return cache->memo<T>(hash_domain(domain, as_view(input)), make);
}

}  // namespace

Result<VerifiedQuote> verify_quote(ByteView bytes, const std::vector<Hash32>& pinned_roots,
                                   int64_t at_unix, crypto::ChainCache* cache) {
  ATN_TRY(Quote q, parse_quote(bytes));
  // 2. the quote signature, by the attestation key.
  ATN_TRY(auto att_key,
          maybe_memo<crypto::VerifyKey>(cache, "attestnet/dcap-att-key", q.attestation_key,
                                        [&] { return attestation_key(q.attestation_key); }));
  ByteView sig(q.signature);
  if (!att_key
           ->verify_ecdsa_rs(crypto::HashAlg::kSha256, ByteView(q.raw.data(), q.signed_size),
                             sig.subspan(0, 32), sig.subspan(32, 32))
           .ok())
    return make_error(Errc::kBadSignature,
                      "the quote signature does not verify with its attestation key: the header "
                      "or the " +
                          std::string(q.is_tdx() ? "TD report" : "enclave report") +
                          " was altered");
  // 5 (first half). The PCK chain in the quote (parsed once per chain with a cache).
  ATN_TRY(auto pck, maybe_memo<ParsedPck>(cache, "attestnet/dcap-pck-chain", q.cert_data,
                                          [&] { return parse_pck(q.cert_data); }));
  const crypto::Certificate& leaf = pck->certs.front();
  // 3. the QE report, signed by the PCK leaf. (The QE report is the same for every quote of a
  // platform's QE: with a cache it is checked once per PCK certificate.)
  Sha256 fact_h;
  fact_h.update(as_view(std::string("attestnet/qe-report-by-pck")))
      .update(as_view(q.qe_report.raw))
      .update(as_view(q.qe_report_signature))
      .update(as_view(leaf.fingerprint()));
  Hash32 fact = fact_h.finish();
  if (!cache || !cache->known(fact)) {
    ByteView qsig(q.qe_report_signature);
    if (!pck->key
             .verify_ecdsa_rs(crypto::HashAlg::kSha256, as_view(q.qe_report.raw),
                              qsig.subspan(0, 32), qsig.subspan(32, 32))
             .ok())
      return make_error(Errc::kBadSignature,
                        "the QE report signature does not verify with the PCK certificate (" +
                            leaf.subject() + ")");
    if (cache) cache->remember(fact);
  }
  // 4. the QE report binds the attestation key and the authentication data.
  Bytes bind = q.attestation_key;
  bind.insert(bind.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  Hash32 h = sha256(as_view(bind));
  Bytes expect(h.begin(), h.end());
  expect.resize(64, 0);
  if (q.qe_report.report_data != expect)
    return make_error(Errc::kBindingMismatch,
                      "the QE report data is not SHA-256(attestation key || QE authentication "
                      "data): the attestation key was not certified by this QE");
  // 5. the chain to a pinned root.
  std::vector<crypto::Certificate> roots, intermediates;
  Hash32 root{};
  for (size_t i = 1; i < pck->certs.size(); ++i) {
    Hash32 fp = pck->certs[i].fingerprint();
    if (std::find(pinned_roots.begin(), pinned_roots.end(), fp) != pinned_roots.end()) {
      roots.push_back(pck->certs[i]);
      root = fp;
    } else {
      intermediates.push_back(pck->certs[i]);
    }
  }
  if (roots.empty())
    return make_error(Errc::kCertificate, "the PCK chain ends in " + pck->certs.back().subject() +
                                              " (sha256 " +
                                              to_hex(pck->certs.back().fingerprint()) +
                                              "), which is not a root the policy pins");
  ATN_CHECK(cache ? cache->verify(leaf, intermediates, roots, at_unix)
                  : crypto::verify_chain(leaf, intermediates, roots, at_unix));
  VerifiedQuote v;
  v.quote = std::move(q);
  v.pck_chain = pck->certs;
  v.pck = pck->info;
  v.root_fingerprint = root;
  return v;
}

}  // namespace attestnet::evidence::tdx
