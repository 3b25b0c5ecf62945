// A memo of Ed25519 verifications: (key, message, signature) -> result. Verification is a pure
// function, so the memo changes cost, never results. Bounded: each set is cleared when full.
// Thread-safe (the node's workers fill it, its protocol and effects threads read it; the
// simulator shares one between its replicas).
#pragma once

#include <atomic>
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
  // Records a signature this process made itself (valid by construction), so that a certificate
  // that carries it back costs no verification.
  void note_own(const PublicKey& pk, ByteView msg, const Signature& sig);
  // Ed25519 verifications carried out, and answers the memo gave without one.
  uint64_t verifications() const { return verifications_; }
  uint64_t hits() const { return hits_; }
  // A VerifyFn over this memo; the memo must outlive it.
  VerifyFn fn();

 private:
  std::mutex mu_;
  size_t max_good_, max_bad_;
  std::unordered_set<Hash32, Hash32Hasher> good_, bad_;
  std::atomic<uint64_t> verifications_{0}, hits_{0};
  void remember(const Hash32& key, bool ok);
};

}  // namespace attestnet::crypto
