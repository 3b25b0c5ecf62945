// A memo of Ed25519 verifications: (key, message, signature) -> result. Verification is a pure
// function, so the memo changes cost, never results. It remembers the recent past: a node asks
// about a signature again within seconds (a request's at arrival and at execution, a vote when
// the certificate that carries it comes back), rarely later. Two generations per result: when
// the newer one is full it becomes the older, and the older one's entries are forgotten, so at
// most `max_good` good and `max_bad` bad results are held and the recent half always survives.
// (Each set was once cleared all at once when full, losing the recent answers with the old.)
// Thread-safe (the node's workers fill it, its protocol and effects threads read it; the
// simulator shares one between its replicas).
#pragma once

#include <algorithm>
#include <atomic>
#include <mutex>

#include "core/digest_set.h"
#include "core/hash.h"
#include "crypto/quorum.h"

namespace attestnet::crypto {

class SignatureMemo {
 public:
  explicit SignatureMemo(size_t max_good = 131072, size_t max_bad = 16384)
      : good_(max_good), bad_(max_bad) {}
  bool verify(const PublicKey& pk, ByteView msg, const Signature& sig);
  // Records a signature this process made itself (valid by construction), so that a certificate
  // that carries it back costs no verification.
  void note_own(const PublicKey& pk, ByteView msg, const Signature& sig);
  // Ed25519 verifications carried out, and answers the memo gave without one.
  uint64_t verifications() const { return verifications_; }
  uint64_t hits() const { return hits_; }
  // Results held now (good and bad): at most max_good + max_bad.
  size_t size() const;
  // A VerifyFn over this memo; the memo must outlive it.
  VerifyFn fn();

 private:
  // Newer and older generation of one result, each up to half the bound.
  // Each a flat table (DigestSet): a signature first seen costs a probe of each of the four,
  // one or two cache lines each, and an insert allocates nothing (with std::unordered_set,
  // a bucket and a node each, and a node per insert: the largest of attestnet's own symbols
  // at the sim peak, session 25).
  struct Generations {
    explicit Generations(size_t max)
        : newer(std::max<size_t>(1, max / 2)), older(std::max<size_t>(1, max / 2)) {}
    bool contains(const Hash32& key) const { return newer.contains(key) || older.contains(key); }
    void insert(const Hash32& key);
    DigestSet newer, older;
  };
  mutable std::mutex mu_;
  Generations good_, bad_;
  std::atomic<uint64_t> verifications_{0}, hits_{0};
  void remember(const Hash32& key, bool ok);
};

}  // namespace attestnet::crypto
