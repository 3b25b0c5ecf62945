// Errors are values: every parse or verify failure returns an Error with a code a program can
// branch on and a reason a person can act on. Exceptions never cross a module boundary.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace attestnet {

enum class Errc {
  kTruncated,          // input ended before a field was complete
  kTrailingBytes,      // input has bytes after the last field
  kOversize,           // a length exceeds the caller's limit
  kBadTag,             // the type tag is not the one expected
  kBadVersion,         // the version is not one this build understands
  kBadValue,           // a field has a value outside its domain
  kBadSignature,       // a signature does not verify
  kUnknownSigner,      // a signer is not a member of the committee
  kDuplicateSigner,    // a signer appears twice
  kBelowThreshold,     // fewer valid signatures than the threshold
  kProofMismatch,      // a Merkle proof does not lead to the expected root
  kWrongChain,         // an object of another chain (chain id differs)
  kCommitteeMismatch,  // signed by a committee the trust anchor does not lead to
  kRecordMismatch,     // a record does not hash to the value it is presented with
  kNotFound,
  kIo,
  kInvalidArgument,
  // Evidence appraisal (evidence/, policy/)
  kBadMagic,         // a structure does not start with the value its format requires
  kUnsupported,      // an algorithm or format this build does not handle
  kBindingMismatch,  // the evidence's nonce / user data is not the expected binding
  kPcrMismatch,      // PCR values do not match the quoted digest or a replayed log
  kCertificate,      // a certificate chain does not verify to a pinned root
  kStale,            // evidence older than something already seen (replay)
  // Running nodes (net/, node/, api/)
  kInternal,     // a library refused an operation that should not fail (OpenSSL, RocksDB)
  kUnavailable,  // a peer or service cannot be reached, or is overloaded
};

const char* errc_name(Errc c);

struct Error {
  Errc code;
  std::string reason;
  std::string to_string() const { return std::string(errc_name(code)) + ": " + reason; }
};

// Result<T>: either a value or an Error. Kept small on purpose (std::expected is C++23).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_{Errc::kBadValue, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(Errc c, std::string reason) {
  return Error{c, std::move(reason)};
}

}  // namespace attestnet
