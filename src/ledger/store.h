// Durable storage for one replica on RocksDB (Debian's librocksdb-dev).
//
// Column families:
//   consensus  key u64 big-endian record index -> PersistRecord   (the replica's write-ahead log)
//   blocks     key u64 big-endian height       -> CommittedBlock  (the ledger of committed blocks)
//   meta       small values (format version)
//   headers    key u64 big-endian height       -> header:bytes frontier:bytes (log after it)
//   certs      key u64 big-endian height       -> view:u64 QuorumCertificate (header certificate)
//   records    key u64 big-endian leaf index   -> AttestationRecord
//   by_request key request_id[32]              -> u64 big-endian leaf index
//   by_vm      key vm_id 0x00 u64 BE leaf index -> (empty): a VM's history, latest last
//              (prefix Bloom filter over the key up to its first NUL: a new VM costs no search)
//   tiles      key level:u8 u64 BE tile index  -> 256 hashes (C2SP tlog-tiles layout: a
//              level-0 entry is a leaf hash, a level-L entry the root of 256^L leaves; a full
//              tile appends its root to the tile above)
//              key level:u8 u64 BE tile index u16 BE position -> the hashes one block appended
//              to a partial tile from that position (a piece; deleted when the tile fills).
//              Format version 1 rewrote a partial tile under the tile's key instead.
// A block's header, frontier, records, indexes and tiles are written in ONE synced batch.
//
// Every write is one WriteBatch with sync=true: a record the replica asked to persist is on disk
// before the host carries out the next action ("persist before send"). A committed block is
// written to `blocks` and referenced from `consensus` (8 bytes) in the same batch, so it is
// stored once. Truncation drops message records at or below a stable checkpoint.
//
// Record encoding in `consensus`: kind:u8 seq:u64 view:u64 bytes (for kCommitted: the height).
// Truncation also drops prepare leases (kLease) whose last slot is at or below the checkpoint.
//
// REQUIRES: one writer (the node's storage thread, or the simulator).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "consensus/replica.h"
#include "ledger/model.h"

namespace rocksdb {
class DB;
class WriteBatch;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace attestnet::ledger {

class ReplicaStore {
 public:
  // Opens (creating if missing) the store in `dir`. A store written by another format version, or
  // whose block records do not decode, is refused with the reason.
  static Result<std::unique_ptr<ReplicaStore>> open(const std::string& dir);
  // Read-only view, safe while a node has the store open for writing (auditing, the CLI).
  static Result<std::unique_ptr<ReplicaStore>> open_read_only(const std::string& dir);
  ~ReplicaStore();
  ReplicaStore(const ReplicaStore&) = delete;
  ReplicaStore& operator=(const ReplicaStore&) = delete;

  Status append(const consensus::PersistRecord& rec);
  // Several records in one batch (group commit), in order, synced unless `sync` is false. An
  // unsynced write is durable once a later synced write or sync() returns: RocksDB has one
  // write-ahead log for every column family, and a sync covers everything written before it.
  Status append_all(std::span<const consensus::PersistRecord* const> recs, bool sync = true);
  // Makes every write so far durable (syncs the write-ahead log) if one was not synced.
  Status sync();
  // Whether a write since the last sync was not synced.
  bool dirty() const { return dirty_; }
  // Hands the unsynced writes that RocksDB still buffers in this process (manual_wal_flush) to
  // the operating system, without a sync: a reader that opens the store (an auditor's
  // `ledger verify-chain`) then sees them, and a crash of the process no longer loses them (a
  // power loss still may). Covers the writes dirty() leaves out (header certificates). A node
  // calls it when idle: otherwise the last block's certificate, written after the last synced
  // write, stayed invisible to readers until the next block.
  Status flush_buffered();
  // Whether an unsynced write is still buffered in this process.
  bool buffered() const { return buffered_; }
  // What RocksDB holds in memory for this store, in bytes (all column families): the
  // memtables (bounded at 64 MiB in all), the table files' index and filter blocks held
  // outside any cache (these grow with the files), and the block caches. Thread-safe.
  struct MemoryUse {
    uint64_t memtables = 0, table_readers = 0, block_cache = 0;
  };
  MemoryUse memory_use() const;
  // Whether ledger blocks and header certificates are synced on their own (default: yes). A
  // node turns it off: both are derived from the synced committed blocks (a lost ledger block is
  // re-executed at open, Node::catch_up_ledger), and the next synced write makes them durable
  // too (RocksDB has one write-ahead log for every column family).
  void set_ledger_sync(bool on) { ledger_sync_ = on; }
  Status truncate(consensus::Seq stable_seq);
  // A clean stop: the host wrote every record of every message it sent, and synced them. The
  // marker (the log's next index, synced) lets the next open know that no record was lost, so
  // prepare leases need not hold (consensus/replica.h). take_clean_stop() says whether the
  // marker is there and still names the log's end, and removes it (synced) either way: a
  // later crash must find none.
  Status mark_clean_stop();
  Result<bool> take_clean_stop();
  // The records to hand to Replica::recover, in the order they were appended.
  Result<std::vector<consensus::PersistRecord>> load() const;
  // The same, one at a time (each committed block is read when its turn comes), so that they
  // are never all in memory: for Replica::replay. Committed blocks and stable checkpoints at
  // or below `skip_upto` (the checkpoint a replica resumed at) are neither read nor passed.
  Status for_each_record(const std::function<void(consensus::PersistRecord&&)>& fn,
                         consensus::Seq skip_upto = 0) const;
  // The newest stable checkpoint recorded at or below `at_most` (consensus::keep_newest_checkpoint)
  // without reading any block: where a restarted replica can resume.
  Result<std::optional<consensus::StableCheckpoint>> newest_checkpoint(
      consensus::Seq at_most) const;
  Result<consensus::CommittedBlock> block(consensus::Seq height) const;
  consensus::Seq highest_block() const { return highest_block_; }

  // The ledger: the header built from block `height` with the log frontier after it, and the
  // header's certificate once 2f+1 replicas signed it.
  Status put_header(consensus::Seq height, ByteView header, ByteView frontier);
  struct NewRecord {
    Bytes encoded;
    Hash32 leaf_hash{};
    Hash32 request_id{};
    std::string vm_id;
  };
  // The ledger entry of one executed block: header, the log frontier after it, and its records
  // (leaf indexes first_leaf, first_leaf+1, ...), atomically.
  Status put_ledger_block(consensus::Seq height, ByteView header, ByteView frontier,
                          uint64_t first_leaf, const std::vector<NewRecord>& records);
  // Leaf index and record for a request id.
  Result<std::pair<uint64_t, Bytes>> record_by_request(const Hash32& request_id) const;
  // Leaf indexes of a VM's records, oldest first.
  Result<std::vector<uint64_t>> vm_history(const std::string& vm_id) const;
  // The same, newest first, one at a time, until `fn` returns false.
  Status vm_history_newest_first(const std::string& vm_id,
                                 const std::function<bool(uint64_t leaf)>& fn) const;
  // RFC 9162 inclusion proof of leaf `index` in the log's first `size` leaves, and the root of
  // those leaves, computed from the tiles: O(log size) tile reads and at most 255 hashes each.
  Result<std::vector<Hash32>> inclusion_proof(uint64_t index, uint64_t size) const;
  Result<Hash32> log_root(uint64_t size) const;
  // RFC 9162 §2.1.4.1 PROOF(m, D[n]): the log of size m is a prefix of the log of size n.
  Result<std::vector<Hash32>> consistency_proof(uint64_t m, uint64_t n) const;
  // The stored record at a leaf index, and the leaf hash the tiles hold for it.
  Result<Bytes> record(uint64_t leaf) const;
  Result<Hash32> leaf_hash(uint64_t leaf) const;
  Status put_certificate(consensus::Seq height, consensus::View view,
                         const crypto::QuorumCertificate& cert);
  Result<std::pair<Bytes, Bytes>> header(consensus::Seq height) const;  // header, frontier
  // The committee of an epoch (derived from the blocks: written unsynced, rebuilt by a replay).
  Status put_committee(const Committee& c);
  Result<Committee> committee(uint64_t epoch) const;
  // The application's snapshot at an epoch's end (opaque bytes; derived, written unsynced, and
  // checked against the header's state root before use). Only the newest is kept.
  Status put_snapshot(ByteView snapshot);
  Result<Bytes> snapshot() const;
  Result<std::pair<consensus::View, crypto::QuorumCertificate>> certificate(
      consensus::Seq height) const;
  consensus::Seq highest_header() const { return highest_header_; }
  // Certificates this instance has written (put_certificate), for what caches the newest
  // certified header (ResponseBasis): a new header or a new certificate makes it stale.
  uint64_t certificates_written() const { return certificates_written_.load(); }

 private:
  ReplicaStore() = default;
  static Result<std::unique_ptr<ReplicaStore>> open_impl(const std::string& dir, bool read_only);
  void add_record(rocksdb::WriteBatch& batch, const consensus::PersistRecord& rec, uint64_t index);
  // A tile as stored: its hashes (a full tile's value, or a partial tile's pieces joined), the
  // positions of its pieces, and (put_ledger_block) how many bytes it held before the block.
  struct StoredTile {
    std::string hashes;
    std::vector<uint64_t> pieces;
    size_t before = 0;
  };
  Result<StoredTile> read_tile(uint8_t level, uint64_t index) const;
  Result<Hash32> subtree_root(uint64_t offset, uint64_t size) const;  // aligned, size = 2^k
  Result<Hash32> range_root(uint64_t lo, uint64_t hi) const;          // MTH of leaves [lo, hi)
  // Every record of the consensus log in order, with its index, kind and seq read; `fn` reads
  // the rest (view, bytes) if it needs them. A record too short for both is skipped.
  Status scan_log(const std::function<Status(uint64_t index, uint8_t kind, consensus::Seq seq,
                                             Reader& rest)>& fn) const;

  std::unique_ptr<rocksdb::DB> db_;
  // default, consensus, blocks, meta, headers, certs, records, by_request, by_vm, tiles
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  uint64_t next_index_ = 0;
  consensus::Seq highest_block_ = 0;
  consensus::Seq highest_header_ = 0;
  std::atomic<uint64_t> certificates_written_{0};
  bool read_only_ = false;
  bool ledger_sync_ = true;
  bool dirty_ = false;
  bool buffered_ = false;
  void note_write(bool synced) { dirty_ = buffered_ = !synced; }
  bool messages_indexed_ = false;
  std::map<uint64_t, uint64_t> live_messages_;  // log index -> slot, for truncate
  // Roots of leaf ranges [lo, hi) already computed. Leaves and tiles are append-only, so a
  // range's root never changes once all its leaves are here; the responses of one block share
  // nearly all inclusion-proof siblings, and without this each one re-hashed up to 255 tile
  // entries per sibling. Bounded: cleared when full. Guarded by root_mu_ (the API's threads
  // build responses too).
  static constexpr size_t kRootCacheMax = 1u << 16;
  mutable std::mutex root_mu_;
  struct RangeKey {
    uint64_t lo, hi;
    bool operator==(const RangeKey&) const = default;
  };
  struct RangeKeyHash {
    size_t operator()(const RangeKey& k) const {
      return std::hash<uint64_t>()(k.lo * 0x9e3779b97f4a7c15ull ^ k.hi);
    }
  };
  // A hash table: the ordered map's comparisons were ~1% of a node's CPU.
  mutable std::unordered_map<RangeKey, Hash32, RangeKeyHash> root_cache_;
  // The tiles the newest blocks wrote (the log's right edge at each level, and the tiles just
  // filled), as put_ledger_block wrote them. Every response's inclusion proof reads them, and
  // from RocksDB a partial tile costs a Get, an iterator and a scan of its pieces: that was
  // ~4% of a node's CPU at 3,000 answers/s. Only put_ledger_block fills it, after its write
  // succeeded, so an entry is never behind the store. Bounded (the oldest level-0 tiles go
  // first). Guarded by root_mu_.
  static constexpr size_t kTileCacheMax = 32;
  mutable std::map<std::pair<uint8_t, uint64_t>, StoredTile> tile_cache_;
};

// A restart's replay of `store` into `r` (between Replica::start_recovery and finish_recovery):
// `r` resumes at the newest stable checkpoint at or below `ledger_height` (the height the ledger
// reached) above where `r` starts, with the block time of that height's header
// (Replica::resume_at), and the records above it are replayed; `keep`, if given, leaves records
// out. When resume_at refuses the checkpoint, why is in `not_resumed` and every record is
// replayed.
struct StoreReplay {
  consensus::Seq resumed = 0;  // 0: not resumed
  std::optional<Error> not_resumed;
  uint64_t records = 0;  // replayed
};
Result<StoreReplay> replay_store(
    const ReplicaStore& store, consensus::Replica& r, consensus::Seq ledger_height,
    const std::function<bool(const consensus::PersistRecord&)>& keep = {});

}  // namespace attestnet::ledger
