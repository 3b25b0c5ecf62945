#include "core/digest_set.h"

#include <gtest/gtest.h>

#include <set>

#include "core/hash.h"

namespace attestnet {
namespace {

Hash32 digest(uint64_t i) {
  return Sha256().update(ByteView(reinterpret_cast<const uint8_t*>(&i), sizeof i)).finish();
}

// Answers as a std::set does, for keys that share their table index too (the probe chain).
TEST(DigestSet, AnswersAsAnOrderedSetDoesUpToItsBound) {
  DigestSet set(1000);
  std::set<Hash32> model;
  for (uint64_t i = 0; i < 1000; ++i) {
    Hash32 d = digest(i % 700);  // some inserted twice
    EXPECT_EQ(set.insert(d), model.insert(d).second) << i;
  }
  // Keys that collide on the table's index: equal first 8 bytes, different otherwise.
  Hash32 a = digest(5000), b = a;
  b[31] ^= 1;
  EXPECT_TRUE(set.insert(a));
  EXPECT_TRUE(set.insert(b));
  model.insert(a);
  model.insert(b);
  EXPECT_EQ(set.size(), model.size());
  for (uint64_t i = 0; i < 2000; ++i)
    EXPECT_EQ(set.contains(digest(i)), model.count(digest(i)) > 0);
  EXPECT_TRUE(set.contains(a));
  EXPECT_TRUE(set.contains(b));
  Hash32 c = a;
  c[20] ^= 1;
  EXPECT_FALSE(set.contains(c)) << "same index, different digest";
}

TEST(DigestSet, RefusesTheZeroDigestAndInsertsBeyondItsBound) {
  DigestSet set(3);
  EXPECT_FALSE(set.insert(Hash32{}));
  EXPECT_FALSE(set.contains(Hash32{}));
  EXPECT_TRUE(set.insert(digest(1)));
  EXPECT_TRUE(set.insert(digest(2)));
  EXPECT_TRUE(set.insert(digest(3)));
  EXPECT_FALSE(set.insert(digest(4))) << "full";
  EXPECT_FALSE(set.contains(digest(4)));
  EXPECT_EQ(set.size(), 3u);
  set.clear();
  EXPECT_EQ(set.size(), 0u);
  EXPECT_FALSE(set.contains(digest(1)));
  EXPECT_TRUE(set.insert(digest(4)));
  EXPECT_TRUE(set.contains(digest(4)));
}

}  // namespace
}  // namespace attestnet
