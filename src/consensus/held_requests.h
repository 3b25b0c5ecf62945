// Requests a node holds while it has no replica to hand them to: between the end of one epoch
// and the start of its next replica, or while it follows the ledger outside the committee.
// Should it sit next, its new replica starts with what the committee still has pending.
//
// What the ledger has executed meanwhile is dropped, and a late copy of it is not taken again:
// a new epoch's replica starts with an empty at-most-once table, so a held request that was
// already executed would be proposed again (behind it, real requests wait) or, at a backup,
// keep its request timer running for a request no primary has. Before this class, a follower
// kept every broadcast request (the newest 2,000) whatever the ledger did with them.
//
// Pure logic (no clock, no I/O). REQUIRES: external synchronization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "consensus/messages.h"

namespace attestnet::consensus {

class HeldRequests {
 public:
  // Keeps the newest `capacity` requests, and remembers the last 4 x capacity executed ids.
  explicit HeldRequests(size_t capacity);

  // Holds `q` unless it is held already or was executed; beyond capacity the oldest goes.
  void hold(Request q);
  // The ledger executed the request with this id: no longer held, and not held again.
  void executed(const Hash32& id);
  // Everything held, in arrival order; nothing is held afterwards.
  std::vector<Request> take();

  size_t size() const { return order_.size(); }
  size_t dropped_executed() const { return dropped_executed_; }

 private:
  size_t capacity_;
  uint64_t next_ = 0;
  std::map<uint64_t, std::pair<Hash32, Request>> order_;  // arrival number -> request
  std::unordered_map<Hash32, uint64_t, Hash32Hasher> index_;
  std::deque<Hash32> executed_order_;
  std::unordered_set<Hash32, Hash32Hasher> executed_;
  size_t dropped_executed_ = 0;
};

}  // namespace attestnet::consensus
