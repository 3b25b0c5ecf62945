#include "crypto/merkle.h"

#include <algorithm>
#include <cassert>

#include "core/codec.h"
#include "core/hash.h"

namespace attestnet::crypto {
namespace {

uint64_t split_point(uint64_t n) {  // largest power of two < n, n >= 2
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash32 root_range(const std::vector<Hash32>& d, uint64_t lo, uint64_t hi) {
  std::vector<Hash32> level(d.begin() + lo, d.begin() + hi);
  return merkle_root(level);
}

void path(const std::vector<Hash32>& d, uint64_t m, uint64_t lo, uint64_t hi,
          std::vector<Hash32>& out) {
  uint64_t n = hi - lo;
  if (n == 1) return;
  uint64_t k = split_point(n);
  if (m < k) {
    path(d, m, lo, lo + k, out);
    out.push_back(root_range(d, lo + k, hi));
  } else {
    path(d, m - k, lo + k, hi, out);
    out.push_back(root_range(d, lo, lo + k));
  }
}

void subproof(const std::vector<Hash32>& d, uint64_t m, uint64_t lo, uint64_t hi, bool b,
              std::vector<Hash32>& out) {
  uint64_t n = hi - lo;
  if (m == n) {
    if (!b) out.push_back(root_range(d, lo, hi));
    return;
  }
  uint64_t k = split_point(n);
  if (m <= k) {
    subproof(d, m, lo, lo + k, b, out);
    out.push_back(root_range(d, lo + k, hi));
  } else {
    subproof(d, m - k, lo + k, hi, false, out);
    out.push_back(root_range(d, lo, lo + k));
  }
}

bool equal(ByteView a, ByteView b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

Hash32 node(ByteView l, ByteView r) {
  uint8_t prefix = 1;
  return Sha256().update(ByteView(&prefix, 1)).update(l).update(r).finish();
}

Status need32(ByteView b, const char* what) {
  if (b.size() != 32) {
    return make_error(Errc::kBadValue, std::string(what) + " is " + std::to_string(b.size()) +
                                           " bytes, a SHA-256 hash is 32");
  }
  return {};
}

}  // namespace

Hash32 merkle_leaf_hash(ByteView leaf) {
  uint8_t prefix = 0;
  return Sha256().update(ByteView(&prefix, 1)).update(leaf).finish();
}

Hash32 merkle_node_hash(const Hash32& left, const Hash32& right) {
  return node(as_view(left), as_view(right));
}

Hash32 merkle_empty_root() {
  return sha256(ByteView());
}

Hash32 merkle_root(const std::vector<Hash32>& leaf_hashes) {
  if (leaf_hashes.empty()) return merkle_empty_root();
  // Bottom-up pairing, carrying an odd last node up unchanged, builds exactly the RFC 9162
  // left-balanced tree.
  std::vector<Hash32> level = leaf_hashes;
  while (level.size() > 1) {
    size_t out = 0;
    for (size_t i = 0; i + 1 < level.size(); i += 2)
      level[out++] = merkle_node_hash(level[i], level[i + 1]);
    if (level.size() % 2 == 1) level[out++] = level.back();
    level.resize(out);
  }
  return level[0];
}

std::vector<Hash32> merkle_inclusion_proof(const std::vector<Hash32>& leaf_hashes, uint64_t index) {
  assert(index < leaf_hashes.size());
  std::vector<Hash32> out;
  path(leaf_hashes, index, 0, leaf_hashes.size(), out);
  return out;
}

std::vector<Hash32> merkle_consistency_proof(const std::vector<Hash32>& leaf_hashes, uint64_t m) {
  assert(m > 0 && m <= leaf_hashes.size());
  std::vector<Hash32> out;
  subproof(leaf_hashes, m, 0, leaf_hashes.size(), true, out);
  return out;
}

Status verify_inclusion(ByteView leaf_hash, uint64_t index, uint64_t tree_size,
                        const std::vector<Bytes>& proof, ByteView root) {
  ATN_CHECK(need32(leaf_hash, "leaf hash"));
  ATN_CHECK(need32(root, "root"));
  if (index >= tree_size) {
    return make_error(Errc::kBadValue, "leaf index " + std::to_string(index) +
                                           " is not inside a tree of size " +
                                           std::to_string(tree_size));
  }
  uint64_t fn = index, sn = tree_size - 1;
  Hash32 r;
  std::copy(leaf_hash.begin(), leaf_hash.end(), r.begin());
  for (const Bytes& p : proof) {
    ATN_CHECK(need32(as_view(p), "inclusion proof element"));
    if (sn == 0) {
      return make_error(Errc::kProofMismatch, "inclusion proof has more elements than the path");
    }
    if ((fn & 1) || fn == sn) {
      r = node(as_view(p), as_view(r));
      if (!(fn & 1)) {
        while (fn != 0 && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = node(as_view(r), as_view(p));
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return make_error(Errc::kProofMismatch, "inclusion proof is shorter than the path to the root");
  }
  if (!equal(as_view(r), root)) {
    return make_error(Errc::kProofMismatch,
                      "inclusion proof leads to root " + to_hex(r) + ", expected " + to_hex(root));
  }
  return {};
}

Status verify_consistency(uint64_t size1, uint64_t size2, ByteView root1, ByteView root2,
                          const std::vector<Bytes>& proof) {
  if (size1 > size2) {
    return make_error(Errc::kBadValue, "first size " + std::to_string(size1) +
                                           " is larger than second size " + std::to_string(size2));
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return make_error(Errc::kProofMismatch, "equal sizes need an empty consistency proof");
    }
    if (!equal(root1, root2)) {
      return make_error(Errc::kProofMismatch, "equal sizes but the two roots differ");
    }
    if (size1 == 0 && !equal(root1, as_view(merkle_empty_root()))) {
      return make_error(Errc::kProofMismatch, "the root of an empty tree must be SHA-256(\"\")");
    }
    return {};
  }
  if (size1 == 0) {
    return make_error(Errc::kBadValue,
                      "a consistency proof from the empty tree proves nothing; refused");
  }
  if (proof.empty()) return make_error(Errc::kProofMismatch, "consistency proof is empty");
  ATN_CHECK(need32(root1, "first root"));
  ATN_CHECK(need32(root2, "second root"));
  for (const Bytes& p : proof) ATN_CHECK(need32(as_view(p), "consistency proof element"));

  std::vector<ByteView> path;
  bool pow2 = (size1 & (size1 - 1)) == 0;
  if (pow2) path.push_back(root1);
  for (const Bytes& p : proof) path.push_back(as_view(p));

  uint64_t fn = size1 - 1, sn = size2 - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash32 fr, sr;
  std::copy(path[0].begin(), path[0].end(), fr.begin());
  sr = fr;
  for (size_t i = 1; i < path.size(); ++i) {
    ByteView c = path[i];
    if (sn == 0) {
      return make_error(Errc::kProofMismatch, "consistency proof has more elements than needed");
    }
    if ((fn & 1) || fn == sn) {
      fr = node(c, as_view(fr));
      sr = node(c, as_view(sr));
      if (!(fn & 1)) {
        while (fn != 0 && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = node(as_view(sr), c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return make_error(Errc::kProofMismatch, "consistency proof is too short");
  if (!equal(as_view(fr), root1)) {
    return make_error(Errc::kProofMismatch, "consistency proof does not reproduce the first root");
  }
  if (!equal(as_view(sr), root2)) {
    return make_error(Errc::kProofMismatch, "consistency proof does not reproduce the second root");
  }
  return {};
}

}  // namespace attestnet::crypto
