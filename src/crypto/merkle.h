// Merkle trees with RFC 9162 §2.1 hashing (Certificate Transparency v2):
//   leaf hash  = SHA-256(0x00 || leaf)
//   node hash  = SHA-256(0x01 || left || right)
//   empty tree = SHA-256("")
// A tree of n leaves splits at k, the largest power of two smaller than n (§2.1.1).
// Inclusion proofs (§2.1.3) and consistency proofs (§2.1.4), and their verification algorithms
// exactly as §2.1.3.2 and §2.1.4.2 state them.
#pragma once

#include <vector>

#include "core/bytes.h"
#include "core/result.h"

namespace attestnet::crypto {

Hash32 merkle_leaf_hash(ByteView leaf);
Hash32 merkle_node_hash(const Hash32& left, const Hash32& right);
Hash32 merkle_empty_root();

// Root of the tree whose leaf hashes are given (MTH over the leaves they hash).
Hash32 merkle_root(const std::vector<Hash32>& leaf_hashes);

// PATH(index, D[n]) over leaf hashes. REQUIRES: index < leaf_hashes.size().
std::vector<Hash32> merkle_inclusion_proof(const std::vector<Hash32>& leaf_hashes, uint64_t index);
// PROOF(m, D[n]). REQUIRES: 0 < m <= leaf_hashes.size().
std::vector<Hash32> merkle_consistency_proof(const std::vector<Hash32>& leaf_hashes, uint64_t m);

// Verification takes byte strings, not Hash32, so that malformed input (a root of the wrong
// length) is rejected with a reason instead of being impossible to express.
Status verify_inclusion(ByteView leaf_hash, uint64_t index, uint64_t tree_size,
                        const std::vector<Bytes>& proof, ByteView root);
Status verify_consistency(uint64_t size1, uint64_t size2, ByteView root1, ByteView root2,
                          const std::vector<Bytes>& proof);

}  // namespace attestnet::crypto
