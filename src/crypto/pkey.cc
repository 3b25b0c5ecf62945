#include "crypto/pkey.h"
#include "core/codec.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "core/hash.h"

namespace attestnet::crypto {

namespace {

const EVP_MD* md_of(HashAlg a) {
  switch (a) {
    case HashAlg::kSha1:
      return EVP_sha1();
    case HashAlg::kSha256:
      return EVP_sha256();
    case HashAlg::kSha384:
      return EVP_sha384();
    case HashAlg::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

// The DER encoding of an OpenSSL object through its i2d_* function.
template <typename T, typename I2d>
Bytes to_der(T* obj, I2d i2d) {
  unsigned char* der = nullptr;
  int n = i2d(obj, &der);
  Bytes out;
  if (n > 0) out.assign(der, der + n);
  OPENSSL_free(der);
  return out;
}

PkeyPtr wrap(EVP_PKEY* p) {
  return PkeyPtr(p, PkeyDeleter{});
}

Result<VerifyKey> from_pkey(EVP_PKEY* raw);

// A public key of `type` from the parameters in `bld` (consumed); nullptr when they are invalid.
EVP_PKEY* public_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
      EVP_PKEY_fromdata(ctx, &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    raw = nullptr;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return raw;
}

}  // namespace

void PkeyDeleter::operator()(EVP_PKEY* p) const {
  EVP_PKEY_free(p);
}
void X509Deleter::operator()(X509* p) const {
  X509_free(p);
}

const char* hash_name(HashAlg a) {
  switch (a) {
    case HashAlg::kSha1:
      return "sha1";
    case HashAlg::kSha256:
      return "sha256";
    case HashAlg::kSha384:
      return "sha384";
    case HashAlg::kSha512:
      return "sha512";
  }
  return "?";
}

size_t hash_size(HashAlg a) {
  switch (a) {
    case HashAlg::kSha1:
      return 20;
    case HashAlg::kSha256:
      return 32;
    case HashAlg::kSha384:
      return 48;
    case HashAlg::kSha512:
      return 64;
  }
  return 0;
}

Bytes digest(HashAlg a, ByteView data) {
  if (a == HashAlg::kSha256) {
    Hash32 h = sha256(data);
    return Bytes(h.begin(), h.end());
  }
  Bytes out(hash_size(a));
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md_of(a), nullptr);
  return out;
}

Bytes digest2(HashAlg a, ByteView first, ByteView second) {
  Bytes out(hash_size(a));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, md_of(a), nullptr);
  EVP_DigestUpdate(ctx, first.data(), first.size());
  EVP_DigestUpdate(ctx, second.data(), second.size());
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

namespace {

Result<VerifyKey> from_pkey(EVP_PKEY* raw) {
  if (!raw) return make_error(Errc::kBadValue, "not a public key: " + openssl_reason());
  return VerifyKey::adopt(raw);
}

}  // namespace

Result<VerifyKey> VerifyKey::from_spki_der(ByteView der) {
  const unsigned char* p = der.data();
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!raw)
    return make_error(Errc::kBadValue, "not a DER SubjectPublicKeyInfo: " + openssl_reason());
  if (p != der.data() + der.size()) {
    EVP_PKEY_free(raw);
    return make_error(Errc::kTrailingBytes, "bytes after the DER SubjectPublicKeyInfo");
  }
  return adopt(raw);
}

Result<VerifyKey> VerifyKey::adopt(EVP_PKEY* raw) {
  VerifyKey k;
  k.key_ = wrap(raw);
  k.bits_ = EVP_PKEY_get_bits(raw);
  int id = EVP_PKEY_get_base_id(raw);
  if (id == EVP_PKEY_RSA) {
    k.type_ = Type::kRsa;
  } else if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t glen = 0;
    EVP_PKEY_get_utf8_string_param(raw, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen);
    std::string g(group);
    if (g == "prime256v1" || g == "P-256") {
      k.type_ = Type::kEcP256;
    } else if (g == "secp384r1" || g == "P-384") {
      k.type_ = Type::kEcP384;
    } else {
      return make_error(Errc::kUnsupported,
                        "EC public key on curve " + g + ": only P-256 and P-384 are supported");
    }
  } else {
    return make_error(Errc::kUnsupported,
                      "public key type " + std::to_string(id) + " is not RSA or EC");
  }
  return k;
}

Result<VerifyKey> VerifyKey::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (raw) return from_pkey(raw);
  ERR_clear_error();
  auto certs = Certificate::from_pem_bundle(pem);
  if (!certs.ok() || certs->empty())
    return make_error(Errc::kBadValue, "no PEM PUBLIC KEY or CERTIFICATE found");
  return (*certs)[0].public_key();
}

Result<VerifyKey> VerifyKey::from_rsa(ByteView modulus, uint32_t exponent) {
  if (modulus.size() < 128 || modulus.size() > 1024)
    return make_error(Errc::kBadValue, "RSA modulus of " + std::to_string(modulus.size() * 8) +
                                           " bits is outside 1024..8192");
  BnPtr n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  BnPtr e(BN_new());
  BN_set_word(e.get(), exponent == 0 ? 65537 : exponent);  // TPM: 0 means the default 2^16+1
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n.get());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e.get());
  return from_pkey(public_from_params("RSA", bld));
}

Result<VerifyKey> VerifyKey::from_ec(Type curve, ByteView x, ByteView y) {
  size_t n = curve == Type::kEcP256 ? 32 : curve == Type::kEcP384 ? 48 : 0;
  if (n == 0) return make_error(Errc::kUnsupported, "EC curve is not P-256 or P-384");
  if (x.size() > n || y.size() > n)
    return make_error(Errc::kBadValue,
                      "EC coordinate longer than the curve's " + std::to_string(n) + " bytes");
  Bytes point(1 + 2 * n, 0);
  point[0] = 0x04;
  std::memcpy(point.data() + 1 + (n - x.size()), x.data(), x.size());
  std::memcpy(point.data() + 1 + n + (n - y.size()), y.data(), y.size());
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                  curve == Type::kEcP256 ? "prime256v1" : "secp384r1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  EVP_PKEY* raw = public_from_params("EC", bld);
  if (!raw) return make_error(Errc::kBadValue, "EC point is not on the curve: " + openssl_reason());
  return from_pkey(raw);
}

std::string VerifyKey::describe() const {
  switch (type_) {
    case Type::kRsa:
      return "RSA-" + std::to_string(bits_);
    case Type::kEcP256:
      return "ECDSA P-256";
    case Type::kEcP384:
      return "ECDSA P-384";
    case Type::kOther:
      break;
  }
  return "unknown key";
}

Bytes VerifyKey::spki_der() const {
  return to_der(key_.get(), i2d_PUBKEY);
}

Status VerifyKey::verify_impl(HashAlg h, ByteView msg, ByteView sig, int padding, int salt) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  int rc = EVP_DigestVerifyInit(ctx, &pctx, md_of(h), nullptr, key_.get());
  if (rc > 0 && padding != 0) {
    rc = EVP_PKEY_CTX_set_rsa_padding(pctx, padding);
    if (rc > 0 && padding == RSA_PKCS1_PSS_PADDING) {
      rc = EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt < 0 ? RSA_PSS_SALTLEN_AUTO : salt);
      if (rc > 0) rc = EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_of(h));
    }
  }
  if (rc > 0) rc = EVP_DigestVerify(ctx, sig.data(), sig.size(), msg.data(), msg.size());
  EVP_MD_CTX_free(ctx);
  if (rc == 1) return {};
  ERR_clear_error();
  return make_error(Errc::kBadSignature, "");
}

Status VerifyKey::verify_pkcs1(HashAlg h, ByteView msg, ByteView sig) const {
  if (type_ != Type::kRsa) return make_error(Errc::kBadValue, "an RSA signature needs an RSA key");
  return verify_impl(h, msg, sig, RSA_PKCS1_PADDING, 0);
}

Status VerifyKey::verify_pss(HashAlg h, ByteView msg, ByteView sig, int salt_len) const {
  if (type_ != Type::kRsa) return make_error(Errc::kBadValue, "an RSA signature needs an RSA key");
  return verify_impl(h, msg, sig, RSA_PKCS1_PSS_PADDING, salt_len);
}

Status VerifyKey::verify_ecdsa_der(HashAlg h, ByteView msg, ByteView der) const {
  if (type_ != Type::kEcP256 && type_ != Type::kEcP384)
    return make_error(Errc::kBadValue, "an ECDSA signature needs an EC key");
  return verify_impl(h, msg, der, 0, 0);
}

Status VerifyKey::verify_ecdsa_rs(HashAlg h, ByteView msg, ByteView r, ByteView s) const {
  ECDSA_SIG* es = ECDSA_SIG_new();
  BIGNUM* br = BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr);
  BIGNUM* bs = BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr);
  ECDSA_SIG_set0(es, br, bs);
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (n <= 0) return make_error(Errc::kBadValue, "ECDSA (r, s) cannot be encoded");
  Bytes d(der, der + n);
  OPENSSL_free(der);
  return verify_ecdsa_der(h, msg, as_view(d));
}

// --- certificates ---

Result<Certificate> Certificate::from_der(ByteView der) {
  const unsigned char* p = der.data();
  X509* raw = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!raw) return make_error(Errc::kBadValue, "not a DER X.509 certificate: " + openssl_reason());
  Certificate c;
  c.set(raw);
  return c;
}

Result<std::vector<Certificate>> Certificate::from_pem_bundle(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::vector<Certificate> out;
  while (X509* raw = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    Certificate c;
    c.set(raw);
    out.push_back(std::move(c));
  }
  ERR_clear_error();
  BIO_free(bio);
  if (out.empty()) return make_error(Errc::kBadValue, "no PEM CERTIFICATE block found");
  return out;
}

Result<std::vector<Certificate>> Certificate::parse_any(ByteView bytes) {
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos)
    return from_pem_bundle(text);
  ATN_TRY(auto c, from_der(bytes));
  return std::vector<Certificate>{c};
}

Bytes Certificate::der() const {
  return to_der(cert_.get(), i2d_X509);
}

void Certificate::set(X509* raw) {
  cert_ = X509Ptr(raw, X509Deleter{});
  fingerprint_ = sha256(as_view(der()));
}

namespace {
std::string name_string(const X509_NAME* n) {
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}
}  // namespace

std::string Certificate::subject() const {
  return name_string(X509_get_subject_name(cert_.get()));
}
std::string Certificate::issuer() const {
  return name_string(X509_get_issuer_name(cert_.get()));
}

Result<VerifyKey> Certificate::public_key() const {
  EVP_PKEY* k = X509_get_pubkey(cert_.get());  // new reference
  if (!k) return make_error(Errc::kBadValue, "certificate has no usable public key");
  return from_pkey(k);
}

Status verify_chain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                    const std::vector<Certificate>& roots, int64_t at_unix) {
  if (roots.empty())
    return make_error(Errc::kCertificate,
                      "no trusted root is pinned: nothing can verify " + leaf.subject());
  X509_STORE* store = X509_STORE_new();
  for (const auto& r : roots) X509_STORE_add_cert(store, r.get());
  STACK_OF(X509)* chain = sk_X509_new_null();
  for (const auto& c : intermediates) sk_X509_push(chain, c.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.get(), chain);
  X509_VERIFY_PARAM* vp = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_time(vp, static_cast<time_t>(at_unix));
  int ok = X509_verify_cert(ctx);
  Status st;
  if (ok != 1) {
    int err = X509_STORE_CTX_get_error(ctx);
    X509* bad = X509_STORE_CTX_get_current_cert(ctx);
    std::string who = bad ? name_string(X509_get_subject_name(bad)) : leaf.subject();
    st = make_error(Errc::kCertificate,
                    std::string("certificate chain of ") + leaf.subject() +
                        " does not verify to a pinned root: " + X509_verify_cert_error_string(err) +
                        " (at " + who + ")");
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);
  ERR_clear_error();
  return st;
}

namespace {
int64_t asn1_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}
}  // namespace

Status ChainCache::verify(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                          const std::vector<Certificate>& roots, int64_t at_unix) {
  Sha256 h;
  std::vector<const Certificate*> all{&leaf};
  for (const auto& c : intermediates) all.push_back(&c);
  h.update(as_view(std::string("roots")));
  for (const auto& c : roots) all.push_back(&c);
  for (const auto* c : all) {
    Hash32 fp = c->fingerprint();
    h.update(as_view(fp));
  }
  Hash32 key = h.finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ok_.find(key);
    if (it != ok_.end() && at_unix >= it->second.not_before && at_unix <= it->second.not_after)
      return {};
  }
  ATN_CHECK(verify_chain(leaf, intermediates, roots, at_unix));
  Entry e{INT64_MIN, INT64_MAX};
  for (const auto* c : all) {
    e.not_before = std::max(e.not_before, asn1_time(X509_get0_notBefore(c->get())));
    e.not_after = std::min(e.not_after, asn1_time(X509_get0_notAfter(c->get())));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (ok_.size() >= capacity_) ok_.clear();
  ok_[key] = e;
  return {};
}

bool ChainCache::known(const Hash32& fact) {
  std::lock_guard<std::mutex> lock(mu_);
  return facts_.count(fact) > 0;
}

void ChainCache::remember(const Hash32& fact) {
  std::lock_guard<std::mutex> lock(mu_);
  if (facts_.size() >= capacity_) facts_.clear();
  facts_[fact] = true;
}

}  // namespace attestnet::crypto
