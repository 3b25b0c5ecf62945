// HeldRequests: what a node outside the committee (or between epochs) keeps for the replica it
// starts next.
#include "consensus/held_requests.h"

#include <gtest/gtest.h>

namespace attestnet::consensus {
namespace {

Request req(uint64_t seq) {
  Request q;
  q.client_id = 7;
  q.client_seq = seq;
  q.payload = Bytes{1, 2, 3};
  return q;
}

std::vector<uint64_t> seqs(const std::vector<Request>& qs) {
  std::vector<uint64_t> out;
  for (const auto& q : qs) out.push_back(q.client_seq);
  return out;
}

TEST(HeldRequests, TakesInArrivalOrderOnceAndIgnoresRepeats) {
  HeldRequests h(10);
  h.hold(req(3));
  h.hold(req(1));
  h.hold(req(3));  // a second copy of a broadcast
  h.hold(req(2));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(seqs(h.take()), (std::vector<uint64_t>{3, 1, 2}));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_TRUE(h.take().empty());
}

TEST(HeldRequests, KeepsTheNewestBeyondCapacity) {
  HeldRequests h(3);
  for (uint64_t i = 1; i <= 5; ++i) h.hold(req(i));
  EXPECT_EQ(seqs(h.take()), (std::vector<uint64_t>{3, 4, 5}));
}

// The bug this class fixes: a follower held every request the committee executed, and its next
// replica (whose at-most-once table starts empty each epoch) proposed them again.
TEST(HeldRequests, DropsWhatTheLedgerExecuted) {
  HeldRequests h(10);
  for (uint64_t i = 1; i <= 4; ++i) h.hold(req(i));
  h.executed(req(2).id());
  h.executed(req(4).id());
  EXPECT_EQ(h.dropped_executed(), 2u);
  EXPECT_EQ(seqs(h.take()), (std::vector<uint64_t>{1, 3}));
}

TEST(HeldRequests, ALateCopyOfAnExecutedRequestIsNotHeld) {
  HeldRequests h(10);
  h.executed(req(5).id());  // the block arrived before the broadcast
  h.hold(req(5));
  h.hold(req(6));
  EXPECT_EQ(seqs(h.take()), (std::vector<uint64_t>{6}));
}

TEST(HeldRequests, RemembersABoundedNumberOfExecutedIds) {
  HeldRequests h(2);  // remembers the last 8 executed ids
  for (uint64_t i = 1; i <= 9; ++i) h.executed(req(i).id());
  h.hold(req(1));  // forgotten: held again
  h.hold(req(9));  // remembered: not held
  EXPECT_EQ(seqs(h.take()), (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace attestnet::consensus
