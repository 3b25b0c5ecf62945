// Bad input never crashes a replica: every message a real run produced, mutated (bit flips,
// truncation, extension, random bytes), is fed to a fresh replica. Under the sanitizer build
// this also checks for memory errors and undefined behaviour on hostile input.
#include <gtest/gtest.h>

#include <random>

#include "harness.h"

namespace attestnet::consensus {
namespace {

using test::Cluster;

TEST(Robustness, MutatedMessagesAreDroppedNeverCrash) {
  Cluster c(4);
  std::vector<std::shared_ptr<const Bytes>> corpus;
  c.up[0] = false;  // force view changes too, so ViewChange/NewView are in the corpus
  for (uint64_t i = 1; i <= 12; ++i) c.request(Cluster::req(1, i));
  c.tick(600, [&](const test::Packet& p) {
    corpus.push_back(p.bytes);
    return false;
  });
  ASSERT_GT(corpus.size(), 50u);
  std::set<MsgType> types;
  for (const auto& b : corpus) types.insert(Envelope::decode(as_view(*b))->type);
  EXPECT_TRUE(types.count(MsgType::kViewChange) && types.count(MsgType::kNewView) &&
              types.count(MsgType::kCommit) && types.count(MsgType::kStatus));

  std::mt19937_64 rng(42);
  ReplicaConfig cfg = c.cfg;
  cfg.self = 3;
  Replica target(cfg, c.keys[3], {});
  size_t fed = 0;
  for (int round = 0; round < 20; ++round) {
    for (const auto& orig : corpus) {
      Bytes b = *orig;
      switch (rng() % 4) {
        case 0:  // flip bits
          for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
            b[rng() % b.size()] ^= 1 << (rng() % 8);
          break;
        case 1:  // truncate
          b.resize(rng() % b.size());
          break;
        case 2:  // extend
          b.push_back(static_cast<uint8_t>(rng()));
          break;
        case 3:  // random bytes after a valid header
          for (size_t k = 8; k < b.size(); ++k) b[k] = static_cast<uint8_t>(rng());
          break;
      }
      target.on_message(as_view(b), c.now);
      ++fed;
    }
  }
  const auto& k = target.counters();
  EXPECT_GT(k.dropped_malformed + k.dropped_bad_signature, fed / 2);
  EXPECT_EQ(target.last_executed(), 0u) << "nothing mutated may make a replica execute";
}

TEST(Robustness, EveryDecoderRejectsEveryTruncation) {
  Cluster c(4);
  for (uint64_t i = 1; i <= 4; ++i) c.request(Cluster::req(1, i));
  std::vector<Bytes> bodies;
  c.run([&](const test::Packet& p) {
    bodies.push_back(Envelope::decode(as_view(*p.bytes))->body);
    return false;
  });
  for (const Bytes& body : bodies) {
    for (size_t len = 0; len < body.size(); ++len) {
      ByteView v(body.data(), len);
      EXPECT_FALSE(PrePrepare::decode(v).ok() && Vote::decode(v).ok());
      (void)Checkpoint::decode(v);
      (void)ViewChange::decode(v);
      (void)NewView::decode(v);
      (void)StatusMsg::decode(v);
      (void)StateReply::decode(v);
    }
  }
}

// A decoded request remembers the id of the bytes it was read from; that id must be the one a
// request built field by field computes, and a changed request must not keep it.
TEST(Robustness, ADecodedRequestRemembersTheIdItsEncodingHas) {
  Request built{7, 9, Bytes(300, 0x5a)};
  Block b{3, 1, 1000, 0, {built, Request{8, 1, Bytes{}}}, {}};
  Writer w;
  b.encode(w);
  Reader r(as_view(w.data()));
  auto back = Block::decode(r);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->requests.size(), 2u);
  EXPECT_TRUE(back->requests[0].known_id_.has_value());
  EXPECT_EQ(back->requests[0].id(), built.id());
  EXPECT_EQ(back->requests[1].id(), (Request{8, 1, Bytes{}}.id()));
  EXPECT_EQ(back->requests[0], built);  // the remembered id is not part of equality

  Request changed = back->requests[0];
  changed.payload[0] ^= 1;
  changed.forget_id();
  Request rebuilt{7, 9, changed.payload};
  EXPECT_EQ(changed.id(), rebuilt.id());
  EXPECT_NE(changed.id(), built.id());

  Request sealed{7, 9, Bytes(300, 0x5a)};
  EXPECT_EQ(sealed.seal(), built.id());
  EXPECT_TRUE(sealed.known_id_.has_value());
}

}  // namespace
}  // namespace attestnet::consensus
