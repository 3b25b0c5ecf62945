// Public-key signatures and X.509 chains of hardware vendors (TPM AKs and EKs, AMD and Intel
// certificates) on OpenSSL 3. Pure functions: bytes in, a verdict or a typed Error out; no
// files, no network, no clock (a chain is checked at a time the caller passes in).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
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
  Hash32 fingerprint() const;  // SHA-256 of the DER
  std::string subject() const;
  std::string issuer() const;
  Result<VerifyKey> public_key() const;

 private:
  X509Ptr cert_;
};

// Verifies leaf -> intermediates -> one of roots at time `at_unix` (seconds). Only the given
// roots are trusted: nothing from the system store. Returns the reason OpenSSL gives, with
// the subject of the certificate it concerns.
Status verify_chain(const Certificate& leaf, const std::vector<Certificate>& intermediates,
                    const std::vector<Certificate>& roots, int64_t at_unix);

}  // namespace attestnet::crypto
