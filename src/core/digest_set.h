// A bounded set of digests (uniformly distributed Hash32 values: SHA-256 outputs), stored flat:
// open addressing with linear probing in one array that is never more than half full. A lookup
// reads one or two cache lines, where std::unordered_set reads its bucket array and then a node
// it allocated at the insert (in a set of tens of thousands, each a cache miss). Boost 1.74
// (Debian 12) predates boost::unordered_flat_set, and Debian's Abseil is built for C++17.
// The all-zero digest marks an empty slot, so it is never held: insert refuses it and contains
// says no (a memo then asks again, which costs time, never a wrong answer).
#pragma once

#include <algorithm>
#include <bit>
#include <vector>

#include "core/bytes.h"

namespace attestnet {

class DigestSet {
 public:
  explicit DigestSet(size_t max_items)
      : max_(std::max<size_t>(1, max_items)), slots_(std::bit_ceil(2 * max_)) {}

  bool contains(const Hash32& d) const {
    if (d == Hash32{}) return false;
    for (size_t i = index(d);; i = (i + 1) & mask()) {
      if (slots_[i] == d) return true;
      if (slots_[i] == Hash32{}) return false;
    }
  }
  // Adds d; false when it was there already, is all zero, or the set is full (max_items).
  bool insert(const Hash32& d) {
    if (d == Hash32{} || size_ >= max_) return false;
    for (size_t i = index(d);; i = (i + 1) & mask()) {
      if (slots_[i] == d) return false;
      if (slots_[i] == Hash32{}) {
        slots_[i] = d;
        ++size_;
        return true;
      }
    }
  }
  size_t size() const { return size_; }
  size_t max_items() const { return max_; }
  void clear() {
    if (size_ == 0) return;
    std::fill(slots_.begin(), slots_.end(), Hash32{});
    size_ = 0;
  }

 private:
  size_t mask() const { return slots_.size() - 1; }
  size_t index(const Hash32& d) const { return Hash32Hasher{}(d)&mask(); }
  size_t max_;
  size_t size_ = 0;
  std::vector<Hash32> slots_;
};

}  // namespace attestnet
