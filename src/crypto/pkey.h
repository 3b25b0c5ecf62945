// Public-key signatures and X.509 chains of hardware vendors (TPM AKs and EKs, AMD and Intel
// certificates) on OpenSSL 3. Pure functions: bytes in, a verdict or a typed Error out; no
// files, no network, no clock (a chain is checked at a time the caller passes in).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace attestnet::crypto {

enum class HashAlg : uint8_t { kSha1, kSha256, kSha384, kSha512 };
const char* hash_name(HashAlg a);
size_t hash_size(HashAlg a);
Bytes digest(HashAlg a, ByteView data);
// Incremental form, for extend chains (PCR = H(PCR || digest)).
Bytes digest2(HashAlg a, ByteView first, ByteView second);

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const;
};
struct X509Deleter {
  void operator()(X509* p) const;
};
using PkeyPtr = std::shared_ptr<EVP_PKEY>;
using X509Ptr = std::shared_ptr<X509>;

// A verification key. Shared, immutable once built; safe to use from several threads.
class VerifyKey {
 public:
  enum class Type : uint8_t { kRsa, kEcP256, kEcP384, kOther };

  static Result<VerifyKey> from_spki_der(ByteView der);
  static Result<VerifyKey> from_pem(std::string_view pem);  // PUBLIC KEY or CERTIFICATE
  static Result<VerifyKey> from_rsa(ByteView modulus, uint32_t exponent);
  // Uncompressed affine coordinates, each of the curve's size (big endian).
  static Result<VerifyKey> from_ec(Type curve, ByteView x, ByteView y);

  // Takes ownership of an OpenSSL public key (RSA or EC P-256/P-384).
  static Result<VerifyKey> adopt(EVP_PKEY* key);

  Type type() const { return type_; }
  int bits() const { return bits_; }
  std::string describe() const;  // "RSA-2048", "ECDSA P-256"
  Bytes spki_der() const;
  EVP_PKEY* get() const { return key_.get(); }

  // RSASSA-PKCS1-v1_5 over H(msg).
  Status verify_pkcs1(HashAlg h, ByteView msg, ByteView sig) const;
  // RSASSA-PSS over H(msg), MGF1 with the same hash; any salt length (TPMs differ).
  Status verify_pss(HashAlg h, ByteView msg, ByteView sig, int salt_len = -1) const;
  // ECDSA over H(msg), signature as (r, s) big-endian integers or as DER.
  Status verify_ecdsa_rs(HashAlg h, ByteView msg, ByteView r, ByteView s) const;
  Status verify_ecdsa_der(HashAlg h, ByteView msg, ByteView der) const;

 private:
  Status verify_impl(HashAlg h, ByteView msg, ByteView sig, int padding, int salt) const;
  PkeyPtr key_;
  Type type_ = Type::kOther;
  int bits_ = 0;
};

// An X.509 certificate, parsed.
class Certificate {
 public:
  static Result<Certificate> from_der(ByteView der);
  // One or more PEM certificates, in file order.
  static Result<std::vector<Certificate>> from_pem_bundle(std::string_view pem);
  // DER or PEM, whichever the bytes are.
  static Result<std::vector<Certificate>> parse_any(ByteView bytes);

  X509* get() const { return cert_.get(); }
  Bytes der() const;
  Hash32 fingerprint() const { return fingerprint_; }  // SHA-256 of the DER
  std::string subject() const;
  std::string issuer() const;
  Result<VerifyKey> public_key() const;

 private:
  void set(X509* raw);
  X509Ptr cert_;
  Hash32 fingerprint_{};
};

// Verifies leaf -> intermediates -> one of roots at time `at_unix` (seconds). Only the given
// roots are trusted: nothing from the system store. Returns the reason OpenSSL gives, with
// the subject of the certificate it concerns.
Status verify_chain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                    const std::vector<Certificate>& roots, int64_t at_unix);

// verify_chain, memoised by the certificates' fingerprints: a platform's VCEK/ASK/ARK or PCK
// chain is verified once and later reports only pay their own signature. A cached success
// holds only inside every certificate's validity window, so the time still counts. Thread-safe;
// bounded (cleared when full). The result equals verify_chain's.
class ChainCache {
 public:
  explicit ChainCache(size_t capacity = 4096) : capacity_(capacity) {}
  Status verify(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                const std::vector<Certificate>& roots, int64_t at_unix);
  // Facts a caller proved once about fixed bytes (e.g. "this QE report verifies with this
  // PCK"), keyed by a digest of those bytes. Only successes are remembered.
  bool known(const Hash32& fact);
  void remember(const Hash32& fact);
  // A value derived from fixed bytes (parsed certificates, keys), made once per key. Keys must
  // be domain-separated digests of the bytes the value is derived from.
  template <typename T, typename F>
  Result<std::shared_ptr<const T>> memo(const Hash32& key, F&& make) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = objects_.find(key);
      if (it != objects_.end()) return std::static_pointer_cast<const T>(it->second);
    }
    Result<T> made = make();
    if (!made.ok()) return made.error();
    auto p = std::make_shared<const T>(std::move(made).value());
    std::lock_guard<std::mutex> lock(mu_);
    if (objects_.size() >= capacity_) objects_.clear();
    objects_[key] = p;
    return std::shared_ptr<const T>(p);
  }

 private:
  struct Entry {
    int64_t not_before = 0, not_after = 0;
  };
  size_t capacity_;
  std::mutex mu_;
  std::unordered_map<Hash32, Entry, Hash32Hasher> ok_;
  std::unordered_map<Hash32, bool, Hash32Hasher> facts_;
  std::unordered_map<Hash32, std::shared_ptr<const void>, Hash32Hasher> objects_;
};

}  // namespace attestnet::crypto
