#include "crypto/merkle_log.h"

#include <bit>

#include "crypto/merkle.h"

namespace attestnet::crypto {

void MerkleFrontier::append(const Hash32& leaf_hash) {
  Hash32 carry = leaf_hash;
  // Like binary increment: every trailing 1 bit of size_ is a peak of equal height to merge.
  for (uint64_t s = size_; s & 1; s >>= 1) {
    carry = merkle_node_hash(peaks_.back(), carry);
    peaks_.pop_back();
  }
  peaks_.push_back(carry);
  ++size_;
}

Hash32 MerkleFrontier::root() const {
  if (peaks_.empty()) return merkle_empty_root();
  Hash32 r = peaks_.back();
  for (size_t i = peaks_.size() - 1; i-- > 0;) r = merkle_node_hash(peaks_[i], r);
  return r;
}

void MerkleFrontier::encode(Writer& w) const {
  w.header(kTag, 1).u64(size_).u32(static_cast<uint32_t>(peaks_.size()));
  for (const auto& p : peaks_) w.hash(p);
}

Result<MerkleFrontier> MerkleFrontier::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "Merkle frontier"));
  MerkleFrontier f;
  ATN_TRY(f.size_, r.u64());
  ATN_TRY(uint32_t n, r.count(32));
  if (n != static_cast<uint32_t>(std::popcount(f.size_))) {
    return make_error(Errc::kBadValue, "a log of " + std::to_string(f.size_) + " leaves has " +
                                           std::to_string(std::popcount(f.size_)) +
                                           " frontier hashes, not " + std::to_string(n));
  }
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(Hash32 h, r.hash());
    f.peaks_.push_back(h);
  }
  return f;
}

}  // namespace attestnet::crypto
