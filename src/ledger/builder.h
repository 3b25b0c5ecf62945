// Executes committed consensus blocks into the ledger: each block's requests become
// AttestationRecords appended to the one RFC 9162 log, and a BlockHeader chains to the previous
// header (the first to the genesis hash) and carries the log's size and root after the block.
// Deterministic: every correct replica builds the same header from the same block, so 2f+1 of
// them can certify it (HeaderVote, docs/consensus.md).
#pragma once

#include <functional>
#include <optional>
#include <unordered_set>

#include "consensus/messages.h"
#include "crypto/merkle_log.h"
#include "ledger/response.h"

namespace attestnet::ledger {

// The application's deterministic execution of one request into a record (state/ appraises
// evidence here); nullopt for requests that produce no record.
using RecordFn =
    std::function<std::optional<AttestationRecord>(const consensus::Request&, uint64_t block_time)>;

struct BuiltBlock {
  BlockHeader header;
  std::vector<AttestationRecord> records;
};

class LedgerBuilder {
 public:
  LedgerBuilder(const Genesis& genesis, RecordFn to_record);

  // REQUIRES: cb.block.height == next_height(). `next_committee`: the committee the block's
  // header hands over to (the last block of an epoch); the builder then moves to its epoch.
  BuiltBlock apply(const consensus::CommittedBlock& cb, const Hash32& state_root,
                   uint64_t block_time, const Committee* next_committee = nullptr);
  uint64_t epoch() const { return epoch_; }

  uint64_t next_height() const { return height_ + 1; }
  const Hash32& tip_hash() const { return tip_; }
  const crypto::MerkleFrontier& log() const { return log_; }
  // Resume after a restart from the last stored header and the log frontier after it.
  void resume(const BlockHeader& last, const crypto::MerkleFrontier& log);
  // Whether a request id is already on the ledger. Without it the builder remembers every id it
  // recorded (in memory); with it (the store's by-request index) only the current block's.
  void set_history(std::function<bool(const Hash32&)> recorded_before);
  // Requests that a block carried again after an earlier block recorded them (PBFT may commit
  // a request twice across a view change; it is executed, and recorded, once).
  uint64_t duplicates_skipped() const { return duplicates_skipped_; }
  // Request ids held in memory: the current block's with a history, every one without.
  size_t ids_in_memory() const { return recorded_.size(); }

 private:
  bool seen(const Hash32& id) const;
  std::string chain_id_;
  uint64_t epoch_ = 0;
  Hash32 committee_hash_;
  RecordFn to_record_;
  uint64_t height_ = 0;
  Hash32 tip_;
  crypto::MerkleFrontier log_;
  std::function<bool(const Hash32&)> history_;
  std::unordered_set<Hash32, Hash32Hasher> recorded_;
  uint64_t duplicates_skipped_ = 0;
};

class ReplicaStore;
// Writes a built block (header, the builder's frontier after it, records and indexes) to the
// store in one synced batch. REQUIRES: `built` is the builder's latest block. `encoded`, when
// given, receives the records' encodings as written (built.records' order), once the write
// succeeded.
Status persist_built_block(ReplicaStore& store, const LedgerBuilder& builder,
                           const BuiltBlock& built, std::vector<Bytes>* encoded = nullptr);
// Resumes the builder after the last header the store holds (no-op on an empty store), and
// makes it consult the store's by-request index for requests already recorded. The store must
// outlive the builder's use of it.
Status resume_from_store(const ReplicaStore& store, LedgerBuilder& builder);

}  // namespace attestnet::ledger
