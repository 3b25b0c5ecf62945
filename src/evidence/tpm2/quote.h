// TPM 2.0 quotes: TPMS_ATTEST, TPMT_SIGNATURE and TPMT_PUBLIC are unmarshalled by tpm2-tss's
// libtss2-mu (never by hand); signatures are checked with OpenSSL. Pure functions over bytes.
//
// What verify_quote establishes, in order, each failure with its own Error:
//   1. the attestation structure is a TPM-generated quote (magic, type, no trailing bytes);
//   2. the signature verifies with the AK over the exact TPMS_ATTEST bytes
//      (RSASSA, RSAPSS, ECDSA P-256 / P-384; SHA-1/256/384/512);
//   3. the PCR values supplied cover exactly the quoted selection, and their digest with the
//      signature's hash equals the quoted pcrDigest.
// The qualifying data (nonce / binding) is compared by the caller (policy/), which knows what
// it must be.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/pkey.h"

namespace attestnet::evidence::tpm2 {

// TPM_ALG_ID values of the hash algorithms a PCR bank can use.
constexpr uint16_t kAlgSha1 = 0x0004;
constexpr uint16_t kAlgSha256 = 0x000B;
constexpr uint16_t kAlgSha384 = 0x000C;
constexpr uint16_t kAlgSha512 = 0x000D;
std::optional<crypto::HashAlg> hash_of(uint16_t tpm_alg);
uint16_t tpm_alg_of(crypto::HashAlg h);
std::string alg_name(uint16_t tpm_alg);                        // "sha256", or "0x0012"
std::optional<uint16_t> alg_from_name(std::string_view name);  // "sha1" | "sha256" | ...

using PcrBank = std::map<uint32_t, Bytes>;      // PCR index -> value
using PcrValues = std::map<uint16_t, PcrBank>;  // TPM hash algorithm -> bank

struct PcrSelection {
  uint16_t hash_alg = 0;
  std::vector<uint32_t> pcrs;  // ascending
  bool operator==(const PcrSelection&) const = default;
};
std::string selection_string(const std::vector<PcrSelection>& sel);  // "sha1:8,9+sha256:0"

struct Quote {
  Bytes raw;  // the signed TPMS_ATTEST
  Bytes qualified_signer;
  Bytes extra_data;
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> selection;
  Bytes pcr_digest;
};
Result<Quote> parse_quote(ByteView tpms_attest);

struct Signature {
  uint16_t sig_alg = 0;   // TPM_ALG_RSASSA / RSAPSS / ECDSA
  uint16_t hash_alg = 0;  // TPM_ALG_SHA*
  Bytes rsa;              // RSA signature
  Bytes r, s;             // ECDSA
  Bytes der;              // ECDSA as DER (plain format)
};
std::string sig_alg_name(uint16_t sig_alg);
Result<Signature> parse_signature(ByteView tpmt_signature);

// The attestation key. Accepted as TPM2B_PUBLIC or TPMT_PUBLIC (then the name, scheme and
// object attributes are known) or as an SPKI (PEM or DER).
struct AkPublic {
  crypto::VerifyKey key;
  std::optional<Bytes> public_area;  // marshalled TPMT_PUBLIC
  Bytes name;                        // nameAlg || H(public_area), when known
  uint32_t attributes = 0;
  uint16_t scheme = 0;       // 0 when unknown
  uint16_t scheme_hash = 0;  // 0 when unknown
  std::string describe() const;
};
Result<AkPublic> parse_ak(ByteView bytes);

// Parsed AKs by SHA-256 of their bytes. Building an OpenSSL key (and its first use, which
// precomputes the RSA Montgomery context) costs more than a verification, and a node sees each
// VM's AK again at every attestation. Thread-safe; bounded (cleared when full). Memoisation
// only: appraisal gives the same result with or without it.
class AkCache {
 public:
  explicit AkCache(size_t capacity = 4096) : capacity_(capacity) {}
  Result<std::shared_ptr<const AkPublic>> get(ByteView ak_public);
  size_t size() const;
  // Quote signatures already verified, by H(AK public, TPMS_ATTEST, signature bytes): a node
  // checks a quote's signature when the request arrives and finds it here at execution.
  static Hash32 signature_key(ByteView ak_public, ByteView attest, ByteView signature,
                              uint16_t plain_hash);
  bool signature_known(const Hash32& key) const;
  void remember_signature(const Hash32& key);

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<Hash32, std::shared_ptr<const AkPublic>, Hash32Hasher> map_;
  std::unordered_set<Hash32, Hash32Hasher> signatures_;
};

// A signature file as tpm2_quote writes it: `tss` (TPMT_SIGNATURE) or `plain` (raw RSA
// bytes / DER ECDSA). For plain, the scheme comes from the AK public area when known, else
// RSASSA or ECDSA by key type, and the hash is `plain_hash`.
Result<Signature> parse_signature_file(ByteView bytes, const AkPublic& ak,
                                       uint16_t plain_hash = kAlgSha256);

// tpm2-tools' "serialized" PCR file (tpm2_quote -o / tpm2_pcrread -o with -F serialized).
Result<PcrValues> parse_tpm2_tools_pcrs(ByteView bytes);

// H_alg(concatenation of the selected PCR values, banks in selection order, indices
// ascending). Fails if a selected PCR is missing from `values`.
Result<Bytes> pcr_digest(uint16_t hash_alg, const std::vector<PcrSelection>& selection,
                         const PcrValues& values);

Status verify_signature(const AkPublic& ak, const Quote& q, const Signature& sig);

struct VerifiedQuote {
  Quote quote;
  Signature signature;
  PcrValues pcrs;  // exactly the quoted PCRs
};
// signature_verified: the caller checked this exact (AK, attest, signature) before (AkCache's
// memo); everything else is checked again.
Result<VerifiedQuote> verify_quote(const AkPublic& ak, ByteView tpms_attest, const Signature& sig,
                                   const PcrValues& pcrs, bool signature_verified = false);

}  // namespace attestnet::evidence::tpm2
