// A memo of Ed25519 verifications: (key, message, signature) -> result. Verification is a pure
// function, so the memo changes cost, never results. Bounded: each set is cleared when full.
// Thread-safe (the node's workers fill it, its protocol and effects threads read it; the
// simulator shares one between its replicas).
#pragma once

#include <mutex>
#include <unordered_set>

#include "core/hash.h"
#include "crypto/quorum.h"

namespace attestnet::crypto {

class SignatureMemo {
 public:
  explicit SignatureMemo(size_t max_good = 2000000, size_t max_bad = 200000)
      : max_good_(max_good), max_bad_(max_bad) {}
  bool verify(const PublicKey& pk, ByteView msg, const Signature& sig);
  // A VerifyFn over this memo; the memo must outlive it.
  VerifyFn fn();

 private:
  std::mutex mu_;
  size_t max_good_, max_bad_;
  std::unordered_set<Hash32, Hash32Hasher> good_, bad_;
};

}  // namespace attestnet::crypto
