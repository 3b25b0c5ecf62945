#include "ledger/store.h"

#include "crypto/merkle.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

namespace attestnet::ledger {
namespace {

// Records a stable checkpoint at or above their slot makes obsolete: slot messages, and prepare
// leases (a lease's seq is the last slot it covers; the window starts above the checkpoint).
bool slot_bound(consensus::PersistRecord::Kind kind, consensus::Seq seq) {
  return seq != 0 && (kind == consensus::PersistRecord::Kind::kMessage ||
                      kind == consensus::PersistRecord::Kind::kLease);
}

// 2: partial tiles stored as pieces (tile_piece_key); version 1 stores are upgraded at open.
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kConsensus = 1, kBlocks = 2, kMeta = 3, kHeaders = 4, kCerts = 5, kRecords = 6,
                 kByRequest = 7, kByVm = 8, kTiles = 9;
constexpr uint64_t kTileWidth = 256;

// A by_vm key is the VM id, a NUL byte and the record's leaf index (8 bytes). Its prefix is
// the key up to its first NUL: the VM id, unless the id holds a NUL itself, when it is the id's
// part before it (so "a" and "a\0b" share a prefix and stay together in a prefix scan, which
// the exact-size check below tells apart). A Bloom filter over the prefixes answers "no such
// VM" without searching the skip list or a table file: every new VM asks, and every VM's first
// attestation after a restart.
class VmIdPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "attestnet.VmIdPrefix.1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = std::memchr(key.data(), 0, key.size());
    return rocksdb::Slice(key.data(),
                          static_cast<size_t>(static_cast<const char*>(nul) - key.data()));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return std::memchr(key.data(), 0, key.size()) != nullptr;
  }
};

rocksdb::Slice slice(ByteView b) {
  return rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string be64(uint64_t v) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(v >> (56 - 8 * i));
  return k;
}

std::string tile_key(uint8_t level, uint64_t index) {
  return std::string(1, static_cast<char>(level)) + be64(index);
}

// A partial tile is stored as the hashes each block appended to it, under the tile's key and
// the position of the block's first hash (u16 BE): a block writes 32 bytes per new entry
// instead of rewriting the tile (8 KiB when nearly full). A full tile is one value under the
// tile's key, and its pieces are deleted. Format version 1 rewrote the partial tile under the
// tile's key; a piece continues such a value, so a version-1 store reads on (open upgrades it).
std::string tile_piece_key(uint8_t level, uint64_t index, uint64_t at) {
  std::string k = tile_key(level, index);
  k.push_back(static_cast<char>(at >> 8));
  k.push_back(static_cast<char>(at));
  return k;
}

std::vector<Hash32> tile_hashes(std::string_view tile) {
  std::vector<Hash32> out(tile.size() / 32);
  for (size_t i = 0; i < out.size(); ++i)
    std::copy(tile.begin() + 32 * i, tile.begin() + 32 * (i + 1), out[i].begin());
  return out;
}

uint64_t from_be64(const rocksdb::Slice& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = v << 8 | static_cast<uint8_t>(s[i]);
  return v;
}

Error io_error(const std::string& what, const rocksdb::Status& st) {
  return make_error(Errc::kIo, what + ": " + st.ToString());
}

std::string encode_record(const consensus::PersistRecord& rec, ByteView payload) {
  Writer w(payload.size() + 24);
  w.u8(static_cast<uint8_t>(rec.kind)).u64(rec.seq).u64(rec.view).bytes(payload);
  return std::string(w.data().begin(), w.data().end());
}

}  // namespace

ReplicaStore::~ReplicaStore() {
  // A clean close leaves every write durable: RocksDB 7.8's Close writes the buffered log out
  // (manual_wal_flush) but does not sync it.
  if (db_ && !read_only_) (void)db_->FlushWAL(true);
  for (auto* h : cfs_) {
    if (db_ && h) db_->DestroyColumnFamilyHandle(h);
  }
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::open(const std::string& dir) {
  return open_impl(dir, false);
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::open_read_only(const std::string& dir) {
  return open_impl(dir, true);
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::open_impl(const std::string& dir,
                                                              bool read_only) {
  rocksdb::Options opts;
  opts.create_if_missing = !read_only;
  opts.create_missing_column_families = !read_only;
  // All column families' memtables together stay under 64 MiB (the largest is flushed then):
  // by default each of the ten may grow to 64 MiB, so a node's memory grew with its ledger by
  // hundreds of MiB, and inserts into ever larger skip lists grew slower.
  opts.db_write_buffer_size = 64 << 20;
  // An unsynced write stays in RocksDB's write-ahead-log buffer until the next synced write,
  // sync() or close, instead of costing a write(2) of its own (a node makes three to five
  // unsynced writes per block). A process crash then loses the unsynced tail, as a power loss
  // does with or without this; nothing acknowledged is in it (docs/ledger.md, "Storage").
  opts.manual_wal_flush = true;
  // by_request answers "was this request executed?" once per request at execution, and nearly
  // always "no": a Bloom filter in the memtable and in each table file answers that without
  // searching the skip list or reading an index block (without one, each lookup searched every
  // table file, and grew slower as the ledger grew).
  // Its memtable is RocksDB's skip list. A hash table (session 21) made the writer's inserts
  // cheaper, but each flush then sorted the whole memtable into a skip list on a background
  // thread, as costly as the inserts it saved, and all four nodes of a devnet flushed at about
  // the same moment (docs/ledger.md, "Storage").
  rocksdb::ColumnFamilyOptions lookups;
  {
    rocksdb::BlockBasedTableOptions t;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    lookups.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    lookups.memtable_whole_key_filtering = true;
    lookups.memtable_prefix_bloom_size_ratio = 0.05;
  }
  rocksdb::ColumnFamilyOptions by_vm;
  {
    rocksdb::BlockBasedTableOptions t;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.whole_key_filtering = false;  // only prefixes are looked up
    by_vm.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    by_vm.prefix_extractor = std::make_shared<VmIdPrefix>();
    by_vm.memtable_prefix_bloom_size_ratio = 0.05;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                        {"consensus", {}},
                                                        {"blocks", {}},
                                                        {"meta", {}},
                                                        {"headers", {}},
                                                        {"certs", {}},
                                                        {"records", {}},
                                                        {"by_request", lookups},
                                                        {"by_vm", by_vm},
                                                        {"tiles", {}}};
  std::unique_ptr<ReplicaStore> s(new ReplicaStore());
  s->read_only_ = read_only;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = read_only ? rocksdb::DB::OpenForReadOnly(opts, dir, descs, &s->cfs_, &raw)
                                 : rocksdb::DB::Open(opts, dir, descs, &s->cfs_, &raw);
  if (!st.ok()) return io_error("cannot open the store at " + dir, st);
  s->db_.reset(raw);

  std::string version;
  st = s->db_->Get({}, s->cfs_[kMeta], "format", &version);
  if (st.IsNotFound() && read_only) {
    return make_error(Errc::kNotFound, "the store at " + dir + " has no format version");
  }
  if (!st.ok() && !st.IsNotFound()) return io_error("cannot read the store's format version", st);
  // A new store is written as this version; a version-1 store is upgraded (it differs only in
  // how a partial tile is written, and what it wrote reads on).
  bool write_version = st.IsNotFound();
  if (st.ok()) {
    uint64_t v = from_be64(version);
    if (v != kFormatVersion && v != 1) {
      return make_error(Errc::kBadVersion, "store at " + dir + " has format version " +
                                               std::to_string(v) + ", this build reads version " +
                                               std::to_string(kFormatVersion));
    }
    write_version = v == 1 && !read_only;
  }
  if (write_version) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    st = s->db_->Put(wo, s->cfs_[kMeta], "format", be64(kFormatVersion));
    if (!st.ok()) return io_error("cannot write the store's format version", st);
  }
  std::unique_ptr<rocksdb::Iterator> it(s->db_->NewIterator({}, s->cfs_[kConsensus]));
  it->SeekToLast();
  if (it->Valid()) s->next_index_ = from_be64(it->key()) + 1;
  std::unique_ptr<rocksdb::Iterator> bt(s->db_->NewIterator({}, s->cfs_[kBlocks]));
  bt->SeekToLast();
  if (bt->Valid()) s->highest_block_ = from_be64(bt->key());
  std::unique_ptr<rocksdb::Iterator> ht(s->db_->NewIterator({}, s->cfs_[kHeaders]));
  ht->SeekToLast();
  if (ht->Valid()) s->highest_header_ = from_be64(ht->key());
  return s;
}

Status ReplicaStore::put_header(consensus::Seq height, ByteView header, ByteView frontier) {
  Writer w(header.size() + frontier.size() + 8);
  w.bytes(header).bytes(frontier);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status st =
      db_->Put(wo, cfs_[kHeaders], be64(height),
               rocksdb::Slice(reinterpret_cast<const char*>(w.data().data()), w.size()));
  if (!st.ok()) return io_error("cannot persist header " + std::to_string(height), st);
  note_write(wo.sync);
  highest_header_ = std::max(highest_header_, height);
  return {};
}

Status ReplicaStore::put_ledger_block(consensus::Seq height, ByteView header, ByteView frontier,
                                      uint64_t first_leaf, const std::vector<NewRecord>& records) {
  rocksdb::WriteBatch batch;
  Writer hw(header.size() + frontier.size() + 8);
  hw.bytes(header).bytes(frontier);
  batch.Put(cfs_[kHeaders], be64(height), slice(as_view(hw.data())));
  // Tiles touched by this block, by (level, index): as read before it, then appended to.
  std::map<std::pair<uint8_t, uint64_t>, StoredTile> tiles;
  for (size_t i = 0; i < records.size(); ++i) {
    uint64_t leaf = first_leaf + i;
    const NewRecord& r = records[i];
    batch.Put(cfs_[kRecords], be64(leaf), slice(as_view(r.encoded)));
    batch.Put(cfs_[kByRequest], slice(as_view(r.request_id)), be64(leaf));
    batch.Put(cfs_[kByVm], r.vm_id + std::string(1, '\0') + be64(leaf), "");
    // Append the leaf hash at level 0; a tile that fills up appends its root one level higher.
    Hash32 h = r.leaf_hash;
    uint64_t pos = leaf;
    for (uint8_t level = 0;; ++level) {
      auto key = std::make_pair(level, pos / kTileWidth);
      if (!tiles.count(key)) {
        ATN_TRY(StoredTile t, read_tile(level, key.second));
        t.before = t.hashes.size();
        tiles[key] = std::move(t);
      }
      std::string& tile = tiles[key].hashes;
      if (tile.size() != (pos % kTileWidth) * 32) {
        return make_error(Errc::kBadValue,
                          "tile " + std::to_string(level) + "/" + std::to_string(key.second) +
                              " holds " + std::to_string(tile.size() / 32) + " hashes; entry " +
                              std::to_string(pos) + " does not extend it");
      }
      tile.append(reinterpret_cast<const char*>(h.data()), 32);
      if (tile.size() < kTileWidth * 32) break;
      h = crypto::merkle_root(tile_hashes(tile));
      pos = key.second;
    }
  }
  for (const auto& [key, t] : tiles) {
    if (t.hashes.size() == kTileWidth * 32) {
      batch.Put(cfs_[kTiles], tile_key(key.first, key.second), t.hashes);
      for (uint64_t at : t.pieces)
        batch.Delete(cfs_[kTiles], tile_piece_key(key.first, key.second, at));
    } else {
      batch.Put(cfs_[kTiles], tile_piece_key(key.first, key.second, t.before / 32),
                rocksdb::Slice(t.hashes.data() + t.before, t.hashes.size() - t.before));
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = ledger_sync_;
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) return io_error("cannot persist the ledger of block " + std::to_string(height), st);
  note_write(wo.sync);
  highest_header_ = std::max(highest_header_, height);
  {
    std::lock_guard lk(root_mu_);
    for (auto& [key, t] : tiles) {
      if (t.hashes.size() == kTileWidth * 32) {
        t.pieces.clear();
      } else {
        t.pieces.push_back(t.before / 32);
      }
      t.before = 0;
      tile_cache_[key] = std::move(t);
    }
    while (tile_cache_.size() > kTileCacheMax) tile_cache_.erase(tile_cache_.begin());
  }
  return {};
}

Result<std::pair<uint64_t, Bytes>> ReplicaStore::record_by_request(const Hash32& request_id) const {
  std::string idx;
  rocksdb::Status st = db_->Get({}, cfs_[kByRequest], slice(as_view(request_id)), &idx);
  if (st.IsNotFound()) {
    return make_error(Errc::kNotFound, "no record for request " + to_hex(request_id));
  }
  if (!st.ok()) return io_error("cannot read the request index", st);
  uint64_t leaf = from_be64(idx);
  std::string rec;
  st = db_->Get({}, cfs_[kRecords], be64(leaf), &rec);
  if (!st.ok()) {
    return make_error(Errc::kNotFound, "the request index names record " + std::to_string(leaf) +
                                           ", which is missing: " + st.ToString());
  }
  return std::make_pair(leaf, Bytes(rec.begin(), rec.end()));
}

Result<std::vector<uint64_t>> ReplicaStore::vm_history(const std::string& vm_id) const {
  std::vector<uint64_t> out;
  ATN_CHECK(vm_history_newest_first(vm_id, [&out](uint64_t leaf) {
    out.push_back(leaf);
    return true;
  }));
  std::reverse(out.begin(), out.end());
  return out;
}

Status ReplicaStore::vm_history_newest_first(const std::string& vm_id,
                                             const std::function<bool(uint64_t)>& fn) const {
  std::string prefix = vm_id + std::string(1, '\0');
  // From the last key this VM could have, back; the iterator stays within the id's prefix
  // (VmIdPrefix) and skips every table whose Bloom filter does not hold it.
  std::string last = prefix + std::string(8, '\xff');
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kByVm]));
  for (it->SeekForPrev(last); it->Valid() && it->key().starts_with(prefix); it->Prev()) {
    rocksdb::Slice k = it->key();
    // A longer key is another VM's whose id starts with this id and a NUL byte.
    if (k.size() != prefix.size() + 8) continue;
    k.remove_prefix(prefix.size());
    if (!fn(from_be64(k))) return {};
  }
  if (!it->status().ok()) return io_error("cannot read the VM index", it->status());
  return {};
}

Result<ReplicaStore::StoredTile> ReplicaStore::read_tile(uint8_t level, uint64_t index) const {
  {
    std::lock_guard lk(root_mu_);
    if (auto c = tile_cache_.find({level, index}); c != tile_cache_.end()) return c->second;
  }
  StoredTile t;
  const std::string key = tile_key(level, index);
  // A full tile never changes again: one Get (most tiles a proof reads are full).
  rocksdb::Status st = db_->Get({}, cfs_[kTiles], key, &t.hashes);
  if (!st.ok() && !st.IsNotFound()) return io_error("cannot read a tile", st);
  if (t.hashes.size() == kTileWidth * 32) return t;
  // Otherwise one iterator reads the tile's own key and its pieces from one view of the store:
  // with the Get's answer and then a scan, a block that fills the tile in between would leave
  // neither (the Get saw no full tile, the scan finds the pieces deleted).
  t.hashes.clear();
  rocksdb::ReadOptions ro;
  std::string end = tile_key(level, index + 1);
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kTiles]));
  it->Seek(key);
  if (it->Valid() && it->key() == key) {  // a full tile, or a version-1 partial one
    t.hashes = it->value().ToString();
    if (t.hashes.size() == kTileWidth * 32) return t;
    it->Next();
  }
  for (; it->Valid(); it->Next()) {  // the pieces, in position order
    rocksdb::Slice k = it->key();
    if (k.size() != key.size() + 2 || !k.starts_with(key)) continue;
    uint64_t at = (uint64_t(uint8_t(k[key.size()])) << 8) | uint8_t(k[key.size() + 1]);
    if (at * 32 != t.hashes.size()) {
      return make_error(Errc::kBadValue,
                        "tile " + std::to_string(level) + "/" + std::to_string(index) + " holds " +
                            std::to_string(t.hashes.size() / 32) +
                            " hashes and a piece from entry " + std::to_string(at));
    }
    t.hashes.append(it->value().data(), it->value().size());
    t.pieces.push_back(at);
  }
  if (!it->status().ok()) return io_error("cannot read a tile", it->status());
  return t;
}

Result<Hash32> ReplicaStore::subtree_root(uint64_t offset, uint64_t size) const {
  // size = 2^k with offset % size == 0: read 2^(k - 8L) entries of a level-L tile, L = k / 8.
  int k = std::countr_zero(size);
  uint8_t level = static_cast<uint8_t>(k / 8);
  uint64_t span = uint64_t{1} << (8 * level);  // leaves per level-L entry
  uint64_t first = offset / span, count = size / span;
  uint64_t at = first % kTileWidth;
  auto root_of = [&](const std::string& tile) -> Result<Hash32> {
    if (tile.size() < (at + count) * 32) {
      return make_error(Errc::kNotFound, "the log does not hold leaves " + std::to_string(offset) +
                                             ".." + std::to_string(offset + size - 1) + " yet");
    }
    return crypto::merkle_root(tile_hashes(std::string_view(tile).substr(at * 32, count * 32)));
  };
  {
    // The newest tiles are in the cache: only the sibling's hashes are copied out, not the
    // whole tile (copying it per sibling was ~1% of a node's CPU answering 3,500 clients/s).
    std::lock_guard lk(root_mu_);
    if (auto c = tile_cache_.find({level, first / kTileWidth}); c != tile_cache_.end())
      return root_of(c->second.hashes);
  }
  ATN_TRY(StoredTile t, read_tile(level, first / kTileWidth));
  return root_of(t.hashes);
}

Result<Hash32> ReplicaStore::range_root(uint64_t lo, uint64_t hi) const {
  {
    std::lock_guard lk(root_mu_);
    if (auto it = root_cache_.find(RangeKey{lo, hi}); it != root_cache_.end()) return it->second;
  }
  uint64_t n = hi - lo;
  Hash32 root;
  if (std::has_single_bit(n) && lo % n == 0) {
    ATN_TRY(root, subtree_root(lo, n));
  } else {
    uint64_t k = std::bit_floor(n - 1);  // largest power of two < n (RFC 9162 §2.1.1)
    ATN_TRY(Hash32 left, range_root(lo, lo + k));
    ATN_TRY(Hash32 right, range_root(lo + k, hi));
    root = crypto::merkle_node_hash(left, right);
  }
  std::lock_guard lk(root_mu_);
  if (root_cache_.size() >= kRootCacheMax) root_cache_.clear();
  root_cache_.emplace(RangeKey{lo, hi}, root);
  return root;
}

Result<std::vector<Hash32>> ReplicaStore::inclusion_proof(uint64_t index, uint64_t size) const {
  if (index >= size) {
    return make_error(Errc::kBadValue, "leaf " + std::to_string(index) + " is not in a log of " +
                                           std::to_string(size));
  }
  // RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]), siblings from the tiles.
  uint64_t lo = 0, hi = size;
  std::vector<Hash32> rev;  // siblings, innermost last
  while (hi - lo > 1) {
    uint64_t k = std::bit_floor(hi - lo - 1);
    if (index < lo + k) {
      ATN_TRY(Hash32 sib, range_root(lo + k, hi));
      rev.push_back(sib);
      hi = lo + k;
    } else {
      ATN_TRY(Hash32 sib, range_root(lo, lo + k));
      rev.push_back(sib);
      lo = lo + k;
    }
  }
  return std::vector<Hash32>(rev.rbegin(), rev.rend());
}

Result<std::vector<Hash32>> ReplicaStore::consistency_proof(uint64_t m, uint64_t n) const {
  if (m == 0 || m > n) {
    return make_error(Errc::kBadValue, "no consistency proof from size " + std::to_string(m) +
                                           " to " + std::to_string(n));
  }
  // SUBPROOF(m, D[lo:hi], b), iteratively; siblings are collected innermost last, so reverse.
  std::vector<Hash32> rev;
  uint64_t lo = 0, hi = n;
  bool b = true;
  while (true) {
    uint64_t size = hi - lo;
    if (m == size) {
      if (!b) {
        ATN_TRY(Hash32 r, range_root(lo, hi));
        rev.push_back(r);
      }
      break;
    }
    uint64_t k = std::bit_floor(size - 1);
    if (m <= k) {
      ATN_TRY(Hash32 r, range_root(lo + k, hi));
      rev.push_back(r);
      hi = lo + k;
    } else {
      ATN_TRY(Hash32 r, range_root(lo, lo + k));
      rev.push_back(r);
      m -= k;
      lo += k;
      b = false;
    }
  }
  return std::vector<Hash32>(rev.rbegin(), rev.rend());
}

Result<Bytes> ReplicaStore::record(uint64_t leaf) const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kRecords], be64(leaf), &v);
  if (st.IsNotFound()) return make_error(Errc::kNotFound, "no record " + std::to_string(leaf));
  if (!st.ok()) return io_error("cannot read record " + std::to_string(leaf), st);
  return Bytes(v.begin(), v.end());
}

Result<Hash32> ReplicaStore::leaf_hash(uint64_t leaf) const {
  return subtree_root(leaf, 1);
}

Result<Hash32> ReplicaStore::log_root(uint64_t size) const {
  if (size == 0) return crypto::merkle_empty_root();
  return range_root(0, size);
}

Status ReplicaStore::put_certificate(consensus::Seq height, consensus::View view,
                                     const crypto::QuorumCertificate& cert) {
  Writer w;
  w.u64(view);
  cert.encode(w);
  rocksdb::WriteOptions wo;
  wo.sync = ledger_sync_;
  rocksdb::Status st =
      db_->Put(wo, cfs_[kCerts], be64(height),
               rocksdb::Slice(reinterpret_cast<const char*>(w.data().data()), w.size()));
  if (!st.ok())
    return io_error("cannot persist the certificate of header " + std::to_string(height), st);
  // Not a reason to sync: a certificate is 2f+1 signatures over a header this store already
  // holds, checked before use and fetched again from peers when missing (the node asks for
  // missing certificates every second), so a crash can lose it but never a record. Leaving
  // dirty() alone lets a response be answered without a sync of its own once the block's
  // records were synced (before this node's header vote went out).
  if (wo.sync)
    note_write(true);
  else
    buffered_ = true;
  ++certificates_written_;
  return {};
}

Status ReplicaStore::put_committee(const Committee& c) {
  Writer w;
  c.encode(w);
  rocksdb::WriteOptions wo;
  wo.sync = ledger_sync_;
  rocksdb::Status st =
      db_->Put(wo, cfs_[kMeta], "committee/" + be64(c.epoch),
               rocksdb::Slice(reinterpret_cast<const char*>(w.data().data()), w.size()));
  if (!st.ok())
    return io_error("cannot persist the committee of epoch " + std::to_string(c.epoch), st);
  note_write(wo.sync);
  return {};
}

Result<Committee> ReplicaStore::committee(uint64_t epoch) const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kMeta], "committee/" + be64(epoch), &v);
  if (st.IsNotFound())
    return make_error(Errc::kNotFound, "no committee stored for epoch " + std::to_string(epoch));
  if (!st.ok()) return io_error("cannot read the committee of epoch " + std::to_string(epoch), st);
  Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
  ATN_TRY(Committee c, Committee::decode(r));
  ATN_CHECK(r.finish());
  return c;
}

Status ReplicaStore::put_snapshot(ByteView snapshot) {
  rocksdb::WriteOptions wo;
  wo.sync = ledger_sync_;
  rocksdb::Status st =
      db_->Put(wo, cfs_[kMeta], "snapshot",
               rocksdb::Slice(reinterpret_cast<const char*>(snapshot.data()), snapshot.size()));
  if (!st.ok()) return io_error("cannot persist the snapshot", st);
  note_write(wo.sync);
  return {};
}

Result<Bytes> ReplicaStore::snapshot() const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kMeta], "snapshot", &v);
  if (st.IsNotFound()) return make_error(Errc::kNotFound, "no snapshot stored");
  if (!st.ok()) return io_error("cannot read the snapshot", st);
  return Bytes(v.begin(), v.end());
}

Result<std::pair<Bytes, Bytes>> ReplicaStore::header(consensus::Seq height) const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kHeaders], be64(height), &v);
  if (st.IsNotFound())
    return make_error(Errc::kNotFound, "no header at height " + std::to_string(height));
  if (!st.ok()) return io_error("cannot read header " + std::to_string(height), st);
  Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
  ATN_TRY(Bytes h, r.bytes());
  ATN_TRY(Bytes f, r.bytes());
  ATN_CHECK(r.finish());
  return std::make_pair(std::move(h), std::move(f));
}

Result<std::pair<consensus::View, crypto::QuorumCertificate>> ReplicaStore::certificate(
    consensus::Seq height) const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kCerts], be64(height), &v);
  if (st.IsNotFound()) {
    return make_error(Errc::kNotFound, "no certificate for header " + std::to_string(height));
  }
  if (!st.ok())
    return io_error("cannot read the certificate of header " + std::to_string(height), st);
  Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
  ATN_TRY(consensus::View view, r.u64());
  ATN_TRY(crypto::QuorumCertificate qc, crypto::QuorumCertificate::decode(r));
  ATN_CHECK(r.finish());
  return std::make_pair(view, std::move(qc));
}

void ReplicaStore::add_record(rocksdb::WriteBatch& batch, const consensus::PersistRecord& rec,
                              uint64_t index) {
  if (rec.kind == consensus::PersistRecord::Kind::kCommitted) {
    // The block is stored once, in `blocks`; the log refers to it by height.
    Writer ref(8);
    ref.u64(rec.seq);
    batch.Put(cfs_[kBlocks], be64(rec.seq),
              rocksdb::Slice(reinterpret_cast<const char*>(rec.bytes.data()), rec.bytes.size()));
    batch.Put(cfs_[kConsensus], be64(index), encode_record(rec, as_view(ref.data())));
  } else {
    batch.Put(cfs_[kConsensus], be64(index), encode_record(rec, as_view(rec.bytes)));
  }
}

Status ReplicaStore::append(const consensus::PersistRecord& rec) {
  const consensus::PersistRecord* one = &rec;
  return append_all(std::span<const consensus::PersistRecord* const>(&one, 1));
}

Status ReplicaStore::append_all(std::span<const consensus::PersistRecord* const> recs, bool sync) {
  if (recs.empty()) return sync ? this->sync() : Status{};
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < recs.size(); ++i) add_record(batch, *recs[i], next_index_ + i);
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) return io_error("cannot persist a consensus record", st);
  note_write(wo.sync);
  if (messages_indexed_)
    for (size_t i = 0; i < recs.size(); ++i)
      if (slot_bound(recs[i]->kind, recs[i]->seq)) live_messages_[next_index_ + i] = recs[i]->seq;
  next_index_ += recs.size();
  for (const auto* r : recs)
    if (r->kind == consensus::PersistRecord::Kind::kCommitted)
      highest_block_ = std::max(highest_block_, r->seq);
  return {};
}

Status ReplicaStore::sync() {
  if (!dirty_) return {};
  rocksdb::Status st = db_->FlushWAL(true);
  if (!st.ok()) return io_error("cannot sync the write-ahead log", st);
  dirty_ = buffered_ = false;
  return {};
}

ReplicaStore::MemoryUse ReplicaStore::memory_use() const {
  MemoryUse m;
  (void)db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &m.memtables);
  (void)db_->GetAggregatedIntProperty("rocksdb.estimate-table-readers-mem", &m.table_readers);
  // Each column family's table factory has a block cache of its own (none is given one).
  (void)db_->GetAggregatedIntProperty("rocksdb.block-cache-usage", &m.block_cache);
  return m;
}

Status ReplicaStore::flush_buffered() {
  if (!buffered_) return {};
  rocksdb::Status st = db_->FlushWAL(false);
  if (!st.ok()) return io_error("cannot write out the write-ahead log", st);
  buffered_ = false;
  return {};
}

Status ReplicaStore::mark_clean_stop() {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status st = db_->Put(wo, cfs_[kMeta], "clean_stop", be64(next_index_));
  if (!st.ok()) return io_error("cannot mark the store's clean stop", st);
  dirty_ = buffered_ = false;
  return {};
}

Result<bool> ReplicaStore::take_clean_stop() {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kMeta], "clean_stop", &v);
  if (st.IsNotFound()) return false;
  if (!st.ok()) return io_error("cannot read the store's clean-stop marker", st);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  st = db_->Delete(wo, cfs_[kMeta], "clean_stop");
  if (!st.ok()) return io_error("cannot remove the store's clean-stop marker", st);
  return v.size() == 8 && from_be64(v) == next_index_;
}

Status ReplicaStore::truncate(consensus::Seq stable_seq) {
  // The slot-bound message records still in the log, by index: scanned once, then kept up to
  // date by append_all, so a checkpoint costs O(records dropped), not a scan of the whole log
  // (which also holds a reference per committed block, forever).
  if (!messages_indexed_) {
    ATN_CHECK(scan_log([this](uint64_t index, uint8_t kind, consensus::Seq seq, Reader&) {
      if (slot_bound(static_cast<consensus::PersistRecord::Kind>(kind), seq))
        live_messages_[index] = seq;
      return Status{};
    }));
    messages_indexed_ = true;
  }
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> dropped;
  for (const auto& [index, seq] : live_messages_) {
    if (seq <= stable_seq) {
      batch.Delete(cfs_[kConsensus], be64(index));
      dropped.push_back(index);
    }
  }
  if (dropped.empty()) return {};
  // Not synced: a truncation lost in a crash leaves records below the stable checkpoint, which
  // recovery skips, and the next checkpoint drops them again.
  rocksdb::WriteOptions wo;
  wo.sync = false;
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) return io_error("cannot truncate the consensus log", st);
  note_write(wo.sync);
  for (uint64_t i : dropped) live_messages_.erase(i);
  return {};
}

Result<std::vector<consensus::PersistRecord>> ReplicaStore::load() const {
  std::vector<consensus::PersistRecord> out;
  ATN_CHECK(for_each_record([&out](consensus::PersistRecord&& r) { out.push_back(std::move(r)); }));
  return out;
}

Status ReplicaStore::for_each_record(const std::function<void(consensus::PersistRecord&&)>& fn,
                                     consensus::Seq skip_upto) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cfs_[kConsensus]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice v = it->value();
    Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
    consensus::PersistRecord rec;
    ATN_TRY(uint8_t kind, r.u8());
    if (kind < 1 || kind > 4) {
      return make_error(Errc::kBadValue, "consensus record " +
                                             std::to_string(from_be64(it->key())) +
                                             " has unknown kind " + std::to_string(kind));
    }
    rec.kind = static_cast<consensus::PersistRecord::Kind>(kind);
    ATN_TRY(rec.seq, r.u64());
    // At or below the checkpoint the replica resumed at: blocks it need not execute, and
    // checkpoints it has passed (not read).
    if ((rec.kind == consensus::PersistRecord::Kind::kCommitted ||
         rec.kind == consensus::PersistRecord::Kind::kStable) &&
        rec.seq <= skip_upto)
      continue;
    ATN_TRY(rec.view, r.u64());
    ATN_TRY(rec.bytes, r.bytes());
    ATN_CHECK(r.finish());
    if (rec.kind == consensus::PersistRecord::Kind::kCommitted) {
      std::string block;
      rocksdb::Status st = db_->Get({}, cfs_[kBlocks], be64(rec.seq), &block);
      if (!st.ok()) {
        return make_error(Errc::kNotFound,
                          "the consensus log references block " + std::to_string(rec.seq) +
                              ", which the blocks column family lacks: " + st.ToString());
      }
      rec.bytes.assign(block.begin(), block.end());
    }
    fn(std::move(rec));
  }
  if (!it->status().ok()) return io_error("cannot read the consensus log", it->status());
  return {};
}

Status ReplicaStore::scan_log(
    const std::function<Status(uint64_t, uint8_t, consensus::Seq, Reader&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cfs_[kConsensus]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice v = it->value();
    Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
    auto kind = r.u8();
    auto seq = r.u64();
    if (!kind.ok() || !seq.ok()) continue;
    ATN_CHECK(fn(from_be64(it->key()), *kind, *seq, r));
  }
  if (!it->status().ok()) return io_error("cannot scan the consensus log", it->status());
  return {};
}

Result<std::optional<consensus::StableCheckpoint>> ReplicaStore::newest_checkpoint(
    consensus::Seq at_most) const {
  std::optional<consensus::StableCheckpoint> newest;
  ATN_CHECK(scan_log([&](uint64_t, uint8_t kind, consensus::Seq seq, Reader& r) -> Status {
    // Only stable-checkpoint records are decoded whole (the log holds one per block as well).
    if (kind != uint8_t(consensus::PersistRecord::Kind::kStable) || seq > at_most ||
        (newest && seq <= newest->seq))
      return {};
    consensus::PersistRecord rec;
    rec.kind = consensus::PersistRecord::Kind::kStable;
    rec.seq = seq;
    ATN_TRY(rec.view, r.u64());
    ATN_TRY(rec.bytes, r.bytes());
    consensus::keep_newest_checkpoint(newest, rec, at_most);
    return {};
  }));
  return newest;
}

Result<StoreReplay> replay_store(const ReplicaStore& store, consensus::Replica& r,
                                 consensus::Seq ledger_height,
                                 const std::function<bool(const consensus::PersistRecord&)>& keep) {
  StoreReplay out;
  ATN_TRY(auto cp, store.newest_checkpoint(ledger_height));
  if (cp && cp->seq > r.last_executed()) {
    ATN_TRY(auto hf, store.header(cp->seq));
    ATN_TRY(auto hdr, BlockHeader::decode(as_view(hf.first)));
    if (Status st = r.resume_at(*cp, hdr.block_time); st.ok())
      out.resumed = cp->seq;
    else
      out.not_resumed = st.error();
  }
  ATN_CHECK(store.for_each_record(
      [&](consensus::PersistRecord&& rec) {
        if (keep && !keep(rec)) return;
        r.replay(rec);
        ++out.records;
      },
      out.resumed));
  return out;
}

Result<consensus::CommittedBlock> ReplicaStore::block(consensus::Seq height) const {
  std::string v;
  rocksdb::Status st = db_->Get({}, cfs_[kBlocks], be64(height), &v);
  if (st.IsNotFound()) {
    return make_error(Errc::kNotFound, "no committed block at height " + std::to_string(height));
  }
  if (!st.ok()) return io_error("cannot read block " + std::to_string(height), st);
  Reader r(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()),
           consensus::kMaxMessageBytes);
  ATN_TRY(consensus::CommittedBlock cb, consensus::CommittedBlock::decode(r));
  ATN_CHECK(r.finish());
  if (cb.block.height != height) {
    return make_error(Errc::kBadValue, "the block stored at height " + std::to_string(height) +
                                           " says it is height " + std::to_string(cb.block.height));
  }
  return cb;
}

}  // namespace attestnet::ledger
