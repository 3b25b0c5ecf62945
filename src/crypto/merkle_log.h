// An append-only RFC 9162 log kept as its compact frontier: for a log of n leaves, the roots of
// the perfect subtrees that the binary digits of n describe, largest first (the "compact
// range" of transparency-dev/merkle). Appending costs O(log n) hashes and the state is
// O(log n) hashes, so a ledger can carry the log's size and root in every block header
// without holding the tree in memory.
#pragma once

#include <vector>

#include "core/codec.h"

namespace attestnet::crypto {

class MerkleFrontier {
 public:
  static constexpr uint16_t kTag = 0x0110;

  void append(const Hash32& leaf_hash);
  uint64_t size() const { return size_; }
  Hash32 root() const;  // MTH of all leaves appended so far (SHA-256("") when empty)

  void encode(Writer& w) const;
  // Rejects a frontier whose number of peaks does not match the bits of its size.
  static Result<MerkleFrontier> decode(Reader& r);
  bool operator==(const MerkleFrontier&) const = default;

 private:
  uint64_t size_ = 0;
  std::vector<Hash32> peaks_;  // largest subtree first
};

}  // namespace attestnet::crypto
