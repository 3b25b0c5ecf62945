#include "evidence/sevsnp/report.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "core/codec.h"
#include "core/hash.h"

namespace attestnet::evidence::sevsnp {

std::string Tcb::to_string() const {
  std::string s = "bl=" + std::to_string(bootloader) + " tee=" + std::to_string(tee) +
                  " snp=" + std::to_string(snp) + " ucode=" + std::to_string(microcode);
  if (fmc) s = "fmc=" + std::to_string(fmc) + " " + s;
  return s;
}

Tcb decode_tcb(uint64_t raw, bool turin) {
  Tcb t;
  t.raw = raw;
  auto byte = [&](int i) { return static_cast<uint8_t>(raw >> (8 * i)); };
  if (turin) {
    t.fmc = byte(0);
    t.bootloader = byte(1);
    t.tee = byte(2);
    t.snp = byte(3);
  } else {
    t.bootloader = byte(0);
    t.tee = byte(1);
    t.snp = byte(6);
  }
  t.microcode = byte(7);
  return t;
}

namespace {

uint32_t le32(ByteView b, size_t off) {
  return static_cast<uint32_t>(b[off]) | static_cast<uint32_t>(b[off + 1]) << 8 |
         static_cast<uint32_t>(b[off + 2]) << 16 | static_cast<uint32_t>(b[off + 3]) << 24;
}
uint64_t le64(ByteView b, size_t off) {
  return static_cast<uint64_t>(le32(b, off)) | static_cast<uint64_t>(le32(b, off + 4)) << 32;
}
Bytes slice(ByteView b, size_t off, size_t n) {
  return Bytes(b.begin() + off, b.begin() + off + n);
}
Bytes reversed(Bytes v) {
  std::reverse(v.begin(), v.end());
  return v;
}

}  // namespace

Result<Report> parse_report(ByteView in) {
  if (in.size() != kReportSize)
    return make_error(in.size() < kReportSize ? Errc::kTruncated : Errc::kTrailingBytes,
                      "an SEV-SNP attestation report is exactly 1184 (0x4A0) bytes; got " +
                          std::to_string(in.size()));
  Report r;
  r.raw.assign(in.begin(), in.end());
  r.version = le32(in, 0x00);
  if (r.version < 2 || r.version > 5)
    return make_error(Errc::kBadVersion, "SEV-SNP report version " + std::to_string(r.version) +
                                             " (this build reads versions 2 to 5)");
  r.guest_svn = le32(in, 0x04);
  r.policy = le64(in, 0x08);
  r.family_id = slice(in, 0x10, 16);
  r.image_id = slice(in, 0x20, 16);
  r.vmpl = le32(in, 0x30);
  r.signature_algo = le32(in, 0x34);
  if (r.signature_algo != 1)
    return make_error(Errc::kUnsupported, "SEV-SNP report signature algorithm " +
                                              std::to_string(r.signature_algo) +
                                              " (only 1, ECDSA P-384 with SHA-384, is defined)");
  r.current_tcb = le64(in, 0x38);
  r.platform_info = le64(in, 0x40);
  uint32_t flags = le32(in, 0x48);
  r.author_key_en = flags & 1;
  r.mask_chip_id = (flags >> 1) & 1;
  uint32_t sk = (flags >> 2) & 7;
  if (sk != 0 && sk != 1 && sk != 7)
    return make_error(Errc::kBadValue, "SEV-SNP report SIGNING_KEY " + std::to_string(sk) +
                                           " is not VCEK (0), VLEK (1) or none (7)");
  r.signing_key = static_cast<SigningKey>(sk);
  r.report_data = slice(in, 0x50, 64);
  r.measurement = slice(in, 0x90, 48);
  r.host_data = slice(in, 0xC0, 32);
  r.id_key_digest = slice(in, 0xE0, 48);
  r.author_key_digest = slice(in, 0x110, 48);
  r.report_id = slice(in, 0x140, 32);
  r.report_id_ma = slice(in, 0x160, 32);
  r.reported_tcb = le64(in, 0x180);
  if (r.version >= 3) {
    r.cpuid_fam = in[0x188];
    r.cpuid_mod = in[0x189];
    r.cpuid_step = in[0x18A];
  }
  r.chip_id = slice(in, 0x1A0, 64);
  r.committed_tcb = le64(in, 0x1E0);
  r.current_build = in[0x1E8];
  r.current_minor = in[0x1E9];
  r.current_major = in[0x1EA];
  r.committed_build = in[0x1EC];
  r.committed_minor = in[0x1ED];
  r.committed_major = in[0x1EE];
  r.launch_tcb = le64(in, 0x1F0);
  r.signature_r = reversed(slice(in, 0x2A0, 72));
  r.signature_s = reversed(slice(in, 0x2E8, 72));
  return r;
}

namespace {

// The DER value of a certificate extension, by OID text.
const ASN1_OCTET_STRING* ext_value(X509* cert, const char* oid) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  int idx = X509_get_ext_by_OBJ(cert, obj, -1);
  ASN1_OBJECT_free(obj);
  if (idx < 0) return nullptr;
  return X509_EXTENSION_get_data(X509_get_ext(cert, idx));
}

int int_ext(X509* cert, const char* oid) {
  const ASN1_OCTET_STRING* v = ext_value(cert, oid);
  if (!v) return -1;
  const unsigned char* p = ASN1_STRING_get0_data(v);
  ASN1_INTEGER* i = d2i_ASN1_INTEGER(nullptr, &p, ASN1_STRING_length(v));
  if (!i) return -2;
  long val = ASN1_INTEGER_get(i);
  ASN1_INTEGER_free(i);
  return val < 0 || val > 255 ? -2 : static_cast<int>(val);
}

}  // namespace

Result<LeafInfo> leaf_info(const crypto::Certificate& leaf) {
  LeafInfo li;
  X509* c = leaf.get();
  if (const ASN1_OCTET_STRING* v = ext_value(c, "1.3.6.1.4.1.3704.1.2")) {
    const unsigned char* p = ASN1_STRING_get0_data(v);
    ASN1_IA5STRING* s = d2i_ASN1_IA5STRING(nullptr, &p, ASN1_STRING_length(v));
    if (s) {
      li.product.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                        static_cast<size_t>(ASN1_STRING_length(s)));
      ASN1_IA5STRING_free(s);
    }
  }
  if (const ASN1_OCTET_STRING* v = ext_value(c, "1.3.6.1.4.1.3704.1.4")) {
    const unsigned char* p = ASN1_STRING_get0_data(v);
    const unsigned char* start = p;
    ASN1_OCTET_STRING* hw = d2i_ASN1_OCTET_STRING(nullptr, &p, ASN1_STRING_length(v));
    if (hw) {
      li.hwid.assign(ASN1_STRING_get0_data(hw), ASN1_STRING_get0_data(hw) + ASN1_STRING_length(hw));
      ASN1_OCTET_STRING_free(hw);
    } else {  // some KDS versions store the raw 64 bytes
      li.hwid.assign(start, start + ASN1_STRING_length(v));
    }
    li.has_hwid = true;
  }
  li.bl = int_ext(c, "1.3.6.1.4.1.3704.1.3.1");
  li.tee = int_ext(c, "1.3.6.1.4.1.3704.1.3.2");
  li.snp = int_ext(c, "1.3.6.1.4.1.3704.1.3.3");
  li.ucode = int_ext(c, "1.3.6.1.4.1.3704.1.3.8");
  li.fmc = int_ext(c, "1.3.6.1.4.1.3704.1.3.9");
  if (li.bl < 0 || li.tee < 0 || li.snp < 0 || li.ucode < 0)
    return make_error(Errc::kCertificate,
                      "certificate " + leaf.subject() +
                          " lacks the AMD TCB extensions (blSPL, teeSPL, snpSPL, ucodeSPL): it is "
                          "not a VCEK or VLEK");
  return li;
}

Result<VerifiedReport> verify_report(ByteView bytes, const CertChain& certs,
                                     const std::vector<Hash32>& pinned_arks, int64_t at_unix,
                                     crypto::ChainCache* cache) {
  ATN_TRY(Report r, parse_report(bytes));
  if (r.signing_key == SigningKey::kNone)
    return make_error(Errc::kBadSignature,
                      "the SEV-SNP report says it is not signed (SIGNING_KEY 7)");
  ATN_TRY(LeafInfo li, leaf_info(certs.leaf));
  ATN_TRY(auto key, certs.leaf.public_key());
  if (key.type() != crypto::VerifyKey::Type::kEcP384)
    return make_error(Errc::kCertificate,
                      "the " + std::string(r.signing_key == SigningKey::kVlek ? "VLEK" : "VCEK") +
                          " certificate's key is " + key.describe() + ", not ECDSA P-384");
  auto sig = key.verify_ecdsa_rs(crypto::HashAlg::kSha384, ByteView(r.raw.data(), kSignedSize),
                                 as_view(r.signature_r), as_view(r.signature_s));
  if (!sig.ok())
    return make_error(Errc::kBadSignature,
                      std::string("SEV-SNP report signature does not verify with the ") +
                          (r.signing_key == SigningKey::kVlek ? "VLEK" : "VCEK") +
                          " in the bundle (" + certs.leaf.subject() +
                          "): the report was altered or comes from another chip");
  // The chain: everything pinned is a root, the rest intermediates.
  std::vector<crypto::Certificate> roots, intermediates;
  Hash32 ark{};
  for (const auto& c : certs.chain) {
    Hash32 fp = c.fingerprint();
    if (std::find(pinned_arks.begin(), pinned_arks.end(), fp) != pinned_arks.end()) {
      roots.push_back(c);
      ark = fp;
    } else {
      intermediates.push_back(c);
    }
  }
  if (roots.empty()) {
    std::string last = certs.chain.empty() ? std::string("nothing")
                                           : certs.chain.back().subject() + " (sha256 " +
                                                 to_hex(certs.chain.back().fingerprint()) + ")";
    return make_error(Errc::kCertificate,
                      "the certificate chain ends in " + last +
                          ", which is not an ARK the policy pins: a self-made or unknown root");
  }
  ATN_CHECK(cache ? cache->verify(certs.leaf, intermediates, roots, at_unix)
                  : crypto::verify_chain(certs.leaf, intermediates, roots, at_unix));
  bool turin = li.product.rfind("Turin", 0) == 0 || li.fmc >= 0;
  VerifiedReport v;
  v.reported_tcb = decode_tcb(r.reported_tcb, turin);
  v.current_tcb = decode_tcb(r.current_tcb, turin);
  v.committed_tcb = decode_tcb(r.committed_tcb, turin);
  v.launch_tcb = decode_tcb(r.launch_tcb, turin);
  const Tcb& t = v.reported_tcb;
  if (li.bl != t.bootloader || li.tee != t.tee || li.snp != t.snp || li.ucode != t.microcode ||
      (li.fmc >= 0 && li.fmc != t.fmc))
    return make_error(Errc::kCertificate,
                      "the certificate's TCB (bl=" + std::to_string(li.bl) +
                          " tee=" + std::to_string(li.tee) + " snp=" + std::to_string(li.snp) +
                          " ucode=" + std::to_string(li.ucode) +
                          ") is not the report's REPORTED_TCB (" + t.to_string() +
                          "): the VCEK is for another TCB version");
  if (r.signing_key == SigningKey::kVcek) {
    if (!li.has_hwid)
      return make_error(Errc::kCertificate, "the VCEK certificate has no hwID extension");
    if (r.mask_chip_id)
      return make_error(Errc::kBadValue,
                        "the report masks its CHIP_ID, so it cannot be matched to the VCEK's hwID");
    if (li.hwid != r.chip_id)
      return make_error(Errc::kCertificate,
                        "the VCEK's hwID is not the report's CHIP_ID: the VCEK belongs to another "
                        "chip");
  }
  v.report = std::move(r);
  v.leaf = std::move(li);
  v.ark_fingerprint = ark;
  return v;
}

}  // namespace attestnet::evidence::sevsnp
