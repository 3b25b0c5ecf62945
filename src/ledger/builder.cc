#include "ledger/builder.h"

namespace attestnet::ledger {

LedgerBuilder::LedgerBuilder(const Genesis& genesis, RecordFn to_record)
    : chain_id_(genesis.chain_id),
      committee_hash_(genesis.committee().hash()),
      to_record_(std::move(to_record)),
      tip_(genesis.hash()) {}

BuiltBlock LedgerBuilder::apply(const consensus::CommittedBlock& cb, const Hash32& state_root,
                                uint64_t block_time) {
  BuiltBlock out;
  for (const consensus::Request& q : cb.block.requests) {
    if (auto rec = to_record_(q, block_time)) {
      log_.append(rec->leaf_hash());
      out.records.push_back(std::move(*rec));
    }
  }
  BlockHeader& h = out.header;
  h.chain_id = chain_id_;
  h.height = cb.block.height;
  h.epoch = 0;
  h.view = cb.view;
  h.prev_hash = tip_;
  h.log_size = log_.size();
  h.log_root = log_.root();
  h.state_root = state_root;
  h.committee_hash = committee_hash_;
  h.next_committee_hash = committee_hash_;  // no reconfiguration before issue 5
  h.block_time = block_time;
  h.proposer = cb.block.proposer;
  h.payload_digest = cb.block.digest();
  height_ = h.height;
  tip_ = h.hash();
  return out;
}

void LedgerBuilder::resume(const BlockHeader& last, const crypto::MerkleFrontier& log) {
  height_ = last.height;
  tip_ = last.hash();
  log_ = log;
}

}  // namespace attestnet::ledger
