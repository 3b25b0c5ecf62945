#include "crypto/merkle.h"

#include <gtest/gtest.h>

#include "vectors.h"

namespace attestnet::crypto {
namespace {

namespace fs = std::filesystem;

Bytes b64(const nlohmann::json& j) {
  auto v = from_base64(j.get<std::string>());
  return v ? *v : Bytes{};
}

std::vector<Hash32> reference_leaves() {
  std::vector<Hash32> out;
  auto j = test::load_json(test::vectors_dir() / "crypto/merkle-rfc9162/reference_tree.json");
  for (const auto& l : j["leaves"])
    out.push_back(merkle_leaf_hash(as_view(*from_hex(l.get<std::string>()))));
  return out;
}

TEST(Merkle, ReferenceTreeRootsForEverySize) {
  REQUIRE_VECTORS();
  auto j = test::load_json(test::vectors_dir() / "crypto/merkle-rfc9162/reference_tree.json");
  auto leaves = reference_leaves();
  for (size_t n = 0; n <= leaves.size(); ++n) {
    std::vector<Hash32> prefix(leaves.begin(), leaves.begin() + n);
    EXPECT_EQ(to_hex(merkle_root(prefix)), j["roots_by_size"][std::to_string(n)].get<std::string>())
        << "size " << n;
  }
}

TEST(Merkle, GeneratedProofsVerifyForAllSizes) {
  std::vector<Hash32> leaves;
  for (int i = 0; i < 40; ++i)
    leaves.push_back(merkle_leaf_hash(as_view(Bytes{static_cast<uint8_t>(i)})));
  for (size_t n = 1; n <= leaves.size(); ++n) {
    std::vector<Hash32> d(leaves.begin(), leaves.begin() + n);
    Hash32 root = merkle_root(d);
    for (size_t i = 0; i < n; ++i) {
      auto p = merkle_inclusion_proof(d, i);
      std::vector<Bytes> pb;
      for (auto& h : p) pb.emplace_back(h.begin(), h.end());
      EXPECT_TRUE(verify_inclusion(as_view(d[i]), i, n, pb, as_view(root)).ok()) << i << "/" << n;
      if (!pb.empty()) {
        pb[0][0] ^= 1;
        EXPECT_FALSE(verify_inclusion(as_view(d[i]), i, n, pb, as_view(root)).ok());
      }
    }
    for (size_t m = 1; m <= n; ++m) {
      std::vector<Hash32> dm(leaves.begin(), leaves.begin() + m);
      auto p = merkle_consistency_proof(d, m);
      std::vector<Bytes> pb;
      for (auto& h : p) pb.emplace_back(h.begin(), h.end());
      EXPECT_TRUE(verify_consistency(m, n, as_view(merkle_root(dm)), as_view(root), pb).ok())
          << m << "->" << n;
    }
  }
}

TEST(Merkle, InclusionVectors) {
  REQUIRE_VECTORS();
  size_t valid = 0, invalid = 0;
  for (const auto& e :
       fs::recursive_directory_iterator(test::vectors_dir() / "crypto/merkle-rfc9162/inclusion")) {
    if (e.path().extension() != ".json") continue;
    auto j = test::load_json(e.path());
    std::vector<Bytes> proof;
    for (const auto& p : j["proof"]) proof.push_back(b64(p));
    Status st = verify_inclusion(as_view(b64(j["leafHash"])), j["leafIdx"], j["treeSize"], proof,
                                 as_view(b64(j["root"])));
    bool want_err = j["wantErr"];
    EXPECT_EQ(!st.ok(), want_err) << e.path() << ": " << j["desc"]
                                  << (st.ok() ? "" : " -> " + st.error().to_string());
    (want_err ? invalid : valid)++;
  }
  EXPECT_GE(valid, 4u);
  EXPECT_GE(invalid, 50u);
}

TEST(Merkle, ConsistencyVectors) {
  REQUIRE_VECTORS();
  size_t valid = 0, invalid = 0;
  for (const auto& e : fs::recursive_directory_iterator(test::vectors_dir() /
                                                        "crypto/merkle-rfc9162/consistency")) {
    if (e.path().extension() != ".json") continue;
    auto j = test::load_json(e.path());
    std::vector<Bytes> proof;
    for (const auto& p : j["proof"]) proof.push_back(b64(p));
    Status st = verify_consistency(j["size1"], j["size2"], as_view(b64(j["root1"])),
                                   as_view(b64(j["root2"])), proof);
    bool want_err = j["wantErr"];
    EXPECT_EQ(!st.ok(), want_err) << e.path() << ": " << j["desc"]
                                  << (st.ok() ? "" : " -> " + st.error().to_string());
    (want_err ? invalid : valid)++;
  }
  EXPECT_GE(valid, 4u);
  EXPECT_GE(invalid, 40u);
}

TEST(Merkle, RejectsWrongLengthsWithReason) {
  Bytes short_root(12, 0);
  auto st = verify_inclusion(as_view(Hash32{}), 0, 1, {}, as_view(short_root));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().reason.find("12 bytes"), std::string::npos);
}

}  // namespace
}  // namespace attestnet::crypto

#include "crypto/merkle_log.h"

namespace attestnet::crypto {
namespace {

TEST(MerkleFrontier, RootMatchesTheFullTreeAtEverySize) {
  MerkleFrontier f;
  std::vector<Hash32> leaves;
  EXPECT_EQ(f.root(), merkle_empty_root());
  for (int i = 0; i < 300; ++i) {
    Hash32 h =
        merkle_leaf_hash(as_view(Bytes{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)}));
    leaves.push_back(h);
    f.append(h);
    ASSERT_EQ(f.size(), leaves.size());
    ASSERT_EQ(f.root(), merkle_root(leaves)) << "size " << leaves.size();
  }
}

TEST(MerkleFrontier, ReferenceTreeRoots) {
  REQUIRE_VECTORS();
  auto j = test::load_json(test::vectors_dir() / "crypto/merkle-rfc9162/reference_tree.json");
  MerkleFrontier f;
  size_t n = 0;
  for (const auto& l : j["leaves"]) {
    f.append(merkle_leaf_hash(as_view(*from_hex(l.get<std::string>()))));
    ++n;
    EXPECT_EQ(to_hex(f.root()), j["roots_by_size"][std::to_string(n)].get<std::string>());
  }
}

TEST(MerkleFrontier, EncodingRoundTripsAndRejectsInconsistentState) {
  MerkleFrontier f;
  for (int i = 0; i < 13; ++i) f.append(merkle_leaf_hash(as_view(Bytes{static_cast<uint8_t>(i)})));
  Writer w;
  f.encode(w);
  Reader r(as_view(w.data()));
  auto back = MerkleFrontier::decode(r);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, f);
  Bytes bad = w.data();
  bad[3] = 16;  // size 16 has 1 set bit, the encoding carries 3 peaks
  Reader r2(as_view(bad));
  EXPECT_EQ(MerkleFrontier::decode(r2).error().code, Errc::kBadValue);
}

}  // namespace
}  // namespace attestnet::crypto
