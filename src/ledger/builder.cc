#include "ledger/builder.h"

#include "crypto/merkle.h"
#include "ledger/store.h"

namespace attestnet::ledger {

LedgerBuilder::LedgerBuilder(const Genesis& genesis, RecordFn to_record)
    : chain_id_(genesis.chain_id),
      committee_hash_(genesis.committee().hash()),
      to_record_(std::move(to_record)),
      tip_(genesis.hash()) {}

BuiltBlock LedgerBuilder::apply(const consensus::CommittedBlock& cb, const Hash32& state_root,
                                uint64_t block_time, const Committee* next_committee) {
  BuiltBlock out;
  if (history_) recorded_.clear();  // the store answers for earlier blocks
  for (const consensus::Request& q : cb.block.requests) {
    Hash32 id = q.id();
    if (seen(id)) {
      ++duplicates_skipped_;
      continue;
    }
    recorded_.insert(id);
    if (auto rec = to_record_(q, block_time)) {
      log_.append(rec->leaf_hash());
      out.records.push_back(std::move(*rec));
    }
  }
  BlockHeader& h = out.header;
  h.chain_id = chain_id_;
  h.height = cb.block.height;
  h.epoch = epoch_;
  // Not the commit view: a block prepared in view v may commit in v at some replicas and, after
  // a view change re-proposes it, in v+1 at others. The header must be the same everywhere.
  h.view = 0;
  h.prev_hash = tip_;
  h.log_size = log_.size();
  h.log_root = log_.root();
  h.state_root = state_root;
  h.committee_hash = committee_hash_;
  h.next_committee_hash = next_committee ? next_committee->hash() : committee_hash_;
  h.block_time = block_time;
  h.proposer = cb.block.proposer;
  h.payload_digest = cb.block.digest();
  height_ = h.height;
  tip_ = h.hash();
  if (next_committee) {
    epoch_ = next_committee->epoch;
    committee_hash_ = next_committee->hash();
  }
  return out;
}

Status persist_built_block(ReplicaStore& store, const LedgerBuilder& builder,
                           const BuiltBlock& built, std::vector<Bytes>* encoded) {
  Writer frontier;
  builder.log().encode(frontier);
  std::vector<ReplicaStore::NewRecord> recs;
  recs.reserve(built.records.size());
  for (const auto& rec : built.records) {
    Bytes enc = rec.encode();
    Hash32 leaf = crypto::merkle_leaf_hash(as_view(enc));
    recs.push_back({std::move(enc), leaf, rec.request_id, rec.vm_id});
  }
  ATN_CHECK(store.put_ledger_block(built.header.height, as_view(built.header.encode()),
                                   as_view(frontier.data()), built.header.log_size - recs.size(),
                                   recs));
  if (encoded) {
    encoded->clear();
    for (auto& r : recs) encoded->push_back(std::move(r.encoded));
  }
  return {};
}

Status resume_from_store(const ReplicaStore& store, LedgerBuilder& builder) {
  // The store's by-request index answers for earlier blocks, on an empty store too: until
  // session 25 a node that started on one kept every request id it recorded in memory until
  // its first restart (a hash set that grew with the ledger, and whose lookups, cache misses
  // in a set of millions, were 1.2% of the machine at the ordering-only peak).
  builder.set_history([&store](const Hash32& id) { return store.record_by_request(id).ok(); });
  uint64_t last = store.highest_header();
  if (last == 0) return {};
  ATN_TRY(auto stored, store.header(last));
  ATN_TRY(BlockHeader header, BlockHeader::decode(as_view(stored.first)));
  Reader r(as_view(stored.second));
  ATN_TRY(crypto::MerkleFrontier frontier, crypto::MerkleFrontier::decode(r));
  if (frontier.size() != header.log_size || frontier.root() != header.log_root) {
    return make_error(Errc::kProofMismatch, "the log frontier stored with header " +
                                                std::to_string(last) +
                                                " does not match the header's log");
  }
  builder.resume(header, frontier);
  return {};
}

bool LedgerBuilder::seen(const Hash32& id) const {
  return recorded_.count(id) > 0 || (history_ && history_(id));
}

void LedgerBuilder::set_history(std::function<bool(const Hash32&)> recorded_before) {
  history_ = std::move(recorded_before);
  recorded_.clear();
}

void LedgerBuilder::resume(const BlockHeader& last, const crypto::MerkleFrontier& log) {
  height_ = last.height;
  tip_ = last.hash();
  log_ = log;
  // After a hand-over header the next block is of the next epoch, under the committee it named.
  bool handover = last.next_committee_hash != last.committee_hash;
  epoch_ = handover ? last.epoch + 1 : last.epoch;
  committee_hash_ = last.next_committee_hash;
}

}  // namespace attestnet::ledger
