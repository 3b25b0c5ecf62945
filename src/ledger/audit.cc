#include "ledger/audit.h"

#include <optional>

#include "crypto/merkle.h"

namespace attestnet::ledger {
namespace {

Error at(uint64_t height, Errc code, const std::string& why) {
  return make_error(code, "height " + std::to_string(height) + ": " + why);
}

// Checks header `h` against the expected previous hash; returns the header and whether its
// certificate is stored (and verified).
Result<std::pair<BlockHeader, bool>> check_header(const ReplicaStore& store, const Genesis& genesis,
                                                  const Committee& committee, uint64_t h,
                                                  const Hash32* expected_prev) {
  auto stored = store.header(h);
  if (!stored.ok()) return at(h, stored.error().code, stored.error().reason);
  auto hdr = BlockHeader::decode(as_view(stored->first));
  if (!hdr.ok()) return at(h, hdr.error().code, "header does not decode: " + hdr.error().reason);
  if (hdr->height != h) {
    return at(h, Errc::kBadValue,
              "the header stored here says height " + std::to_string(hdr->height));
  }
  if (hdr->chain_id != genesis.chain_id) {
    return at(h, Errc::kWrongChain, "header of chain \"" + hdr->chain_id + "\"");
  }
  if (expected_prev && hdr->prev_hash != *expected_prev) {
    return at(h, Errc::kProofMismatch,
              "prev_hash " + short_hex(hdr->prev_hash) + " does not match the previous header " +
                  short_hex(*expected_prev));
  }
  if (hdr->committee_hash != committee.hash()) {
    return at(h, Errc::kCommitteeMismatch, "names a committee the genesis does not lead to");
  }
  auto block = store.block(h);
  if (!block.ok()) return at(h, block.error().code, block.error().reason);
  if (block->block.digest() != hdr->payload_digest) {
    return at(h, Errc::kRecordMismatch,
              "the stored consensus block does not hash to the header's payload digest");
  }
  Bytes vote = consensus::commit_vote_message(genesis.chain_id, hdr->epoch, block->view, h,
                                              hdr->payload_digest);
  Status commit =
      crypto::verify_quorum(block->cert, committee.members, committee.threshold(), as_view(vote));
  if (!commit.ok())
    return at(h, commit.error().code, "commit certificate: " + commit.error().reason);
  auto cert = store.certificate(h);
  if (cert.ok()) {
    if (cert->first != hdr->view) {
      return at(h, Errc::kBadValue,
                "the header certificate is for view " + std::to_string(cert->first));
    }
    Status st = verify_header(*hdr, HeaderCertificate{cert->second}, committee);
    if (!st.ok()) return at(h, st.error().code, st.error().reason);
    return std::make_pair(std::move(hdr).value(), true);
  }
  if (cert.error().code != Errc::kNotFound) return at(h, cert.error().code, cert.error().reason);
  return std::make_pair(std::move(hdr).value(), false);
}

}  // namespace

Result<AuditSummary> audit_chain(const ReplicaStore& store, const Genesis& genesis,
                                 const std::function<void(uint64_t, uint64_t)>& progress) {
  AuditSummary s;
  Committee committee = genesis.committee();
  Hash32 prev = genesis.hash();
  uint64_t prev_log = 0;
  uint64_t total = store.highest_header();
  for (uint64_t h = 1; h <= total; ++h) {
    ATN_TRY(auto checked, check_header(store, genesis, committee, h, &prev));
    const BlockHeader& hdr = checked.first;
    if (hdr.log_size < prev_log) {
      return at(h, Errc::kBadValue,
                "the record log shrank from " + std::to_string(prev_log) + " to " +
                    std::to_string(hdr.log_size));
    }
    // The block's records hash to the leaves the tiles hold, and the tiles give the header's
    // log root: a flipped byte in a record or a tile is named by the height that covers it.
    for (uint64_t leaf = prev_log; leaf < hdr.log_size; ++leaf) {
      auto rec = store.record(leaf);
      if (!rec.ok()) return at(h, rec.error().code, rec.error().reason);
      auto lh = store.leaf_hash(leaf);
      if (!lh.ok()) return at(h, lh.error().code, lh.error().reason);
      if (crypto::merkle_leaf_hash(as_view(*rec)) != *lh) {
        return at(h, Errc::kRecordMismatch,
                  "record " + std::to_string(leaf) + " does not hash to its leaf in the log");
      }
    }
    auto root = store.log_root(hdr.log_size);
    if (!root.ok()) return at(h, root.error().code, root.error().reason);
    if (*root != hdr.log_root) {
      return at(h, Errc::kProofMismatch,
                "the stored log of " + std::to_string(hdr.log_size) + " records has root " +
                    short_hex(*root) + ", the header says " + short_hex(hdr.log_root));
    }
    if (checked.second) {
      ++s.certified;
    } else {
      s.uncertified.push_back(h);
    }
    if (hdr.next_committee_hash != hdr.committee_hash) {
      // A hand-over: the next committee must be the one this store holds, and (once the
      // header is certified, above) it was named by 2f+1 of the outgoing committee.
      auto next = store.committee(hdr.epoch + 1);
      if (!next.ok()) return at(h, next.error().code, "hand-over: " + next.error().reason);
      if (next->hash() != hdr.next_committee_hash || next->epoch != hdr.epoch + 1) {
        return at(h, Errc::kCommitteeMismatch,
                  "hand-over: the stored committee of epoch " + std::to_string(hdr.epoch + 1) +
                      " is not the one the header names");
      }
      committee = std::move(next).value();
      ++s.handovers;
    }
    prev = hdr.hash();
    prev_log = hdr.log_size;
    ++s.headers;
    if (progress && h % 10000 == 0) progress(h, total);
  }
  s.tip = prev;
  s.log_size = prev_log;
  return s;
}

Status verify_tip(const ReplicaStore& store, const Genesis& genesis, uint64_t depth) {
  Committee committee = genesis.committee();
  uint64_t top = store.highest_header();
  uint64_t from = top > depth ? top - depth + 1 : 1;
  if (from > 1) {
    ATN_TRY(auto hf, store.header(from));
    ATN_TRY(BlockHeader first, BlockHeader::decode(as_view(hf.first)));
    if (first.epoch > 0) {
      ATN_TRY(committee, store.committee(first.epoch));
    }
  }
  std::optional<Hash32> prev;
  if (from == 1) prev = genesis.hash();
  for (uint64_t h = from; h <= top; ++h) {
    ATN_TRY(auto checked, check_header(store, genesis, committee, h, prev ? &*prev : nullptr));
    prev = checked.first.hash();
    const BlockHeader& hdr = checked.first;
    if (hdr.next_committee_hash != hdr.committee_hash) {
      auto next = store.committee(hdr.epoch + 1);
      if (!next.ok()) return at(h, next.error().code, "hand-over: " + next.error().reason);
      committee = std::move(next).value();
    }
  }
  return {};
}

}  // namespace attestnet::ledger
