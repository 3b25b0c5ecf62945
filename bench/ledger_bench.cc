// Ledger benchmarks: blocks persisted per second with synced writes, offline verify_response
// cost per committee size, and stored bytes per record against the record's own encoding.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "core/hash.h"
#include "crypto/merkle.h"
#include "crypto/merkle_log.h"
#include "ledger/response.h"
#include "ledger/store.h"

namespace attestnet::ledger {
namespace {

uint64_t dir_bytes(const std::filesystem::path& p) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

AttestationRecord record_of(uint64_t i, size_t bytes) {
  AttestationRecord r;
  r.request_id = sha256(ByteView(reinterpret_cast<uint8_t*>(&i), 8));
  r.vm_id = "vm-" + std::to_string(i % 1000);
  r.platform = "tpm2";
  r.measurements = {{"eventlog", Bytes(bytes > 200 ? bytes - 200 : 1, static_cast<uint8_t>(i))}};
  r.verdict = Verdict::kAffirming;
  r.policy_id = "default";
  r.timestamp = i;
  return r;
}

// Persist the ledger part of blocks of N records (~1 KiB each): header, records, indexes, tiles
// in one batch per block, synced (arg 1: 1) or not (0, as a node writes its ledger: the
// consensus log's sync makes the block durable). Counters: records/s, and stored bytes per
// record / encoding.
void BM_StoreLedgerBlocks(benchmark::State& st) {
  const size_t per_block = static_cast<size_t>(st.range(0));
  const bool synced = st.range(1) != 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("attestnet-bench-" + std::to_string(::getpid()) + "-" + std::to_string(per_block));
  std::filesystem::remove_all(dir);
  auto store = ReplicaStore::open(dir.string());
  if (!store.ok()) {
    st.SkipWithError(store.error().reason.c_str());
    return;
  }
  (*store)->set_ledger_sync(synced);
  crypto::MerkleFrontier log;
  uint64_t height = 0, leaf = 0, record_bytes = 0;
  for (auto _ : st) {
    st.PauseTiming();
    std::vector<ReplicaStore::NewRecord> recs;
    for (size_t i = 0; i < per_block; ++i) {
      AttestationRecord r = record_of(leaf + i, 1024);
      Bytes enc = r.encode();
      record_bytes += enc.size();
      Hash32 lh = crypto::merkle_leaf_hash(as_view(enc));
      log.append(lh);
      recs.push_back({std::move(enc), lh, r.request_id, r.vm_id});
    }
    BlockHeader h;
    h.chain_id = "bench";
    h.height = ++height;
    h.log_size = log.size();
    h.log_root = log.root();
    Writer fw;
    log.encode(fw);
    st.ResumeTiming();
    Status s =
        (*store)->put_ledger_block(height, as_view(h.encode()), as_view(fw.data()), leaf, recs);
    if (!s.ok()) st.SkipWithError(s.error().reason.c_str());
    leaf += per_block;
  }
  st.SetItemsProcessed(static_cast<int64_t>(leaf));
  st.counters["blocks_per_s"] =
      benchmark::Counter(static_cast<double>(height), benchmark::Counter::kIsRate);
  store->reset();
  st.counters["stored_bytes_per_record_bytes"] =
      static_cast<double>(dir_bytes(dir)) / static_cast<double>(record_bytes);
  std::filesystem::remove_all(dir);
}
// CPU is the whole process's (RocksDB's flush and compaction threads too, where a memtable's
// cost can hide: a hash memtable's inserts were cheap here, but each flush sorted it into a skip
// list on a background thread, and a node paid that in full; docs/ledger.md, "Storage"). Run
// with --benchmark_min_time=5 or more for the unsynced case to include several flushes.
BENCHMARK(BM_StoreLedgerBlocks)
    ->ArgsProduct({{1, 100, 1000}, {1}})
    ->Args({140, 0})
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// One VM's history, newest first (what execution reads the first time a VM attests after a
// restart, and every time a new VM attests), on a store of 100,000 VMs with one record each.
// Arg 0: a VM the store never saw; 1: one it holds. Arg 2: 0 from the memtable, 1 after a
// reopen (from table files).
void BM_VmHistoryLookup(benchmark::State& st) {
  const bool present = st.range(0) == 1, reopened = st.range(1) == 1;
  auto dir =
      std::filesystem::temp_directory_path() / ("attestnet-bench-vm-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = ReplicaStore::open(dir.string());
  if (!store.ok()) {
    st.SkipWithError(store.error().reason.c_str());
    return;
  }
  constexpr uint64_t kVms = 100000, kPerBlock = 100;
  crypto::MerkleFrontier log;
  for (uint64_t leaf = 0, height = 1; leaf < kVms; leaf += kPerBlock, ++height) {
    std::vector<ReplicaStore::NewRecord> recs;
    for (uint64_t i = leaf; i < leaf + kPerBlock; ++i) {
      AttestationRecord r = record_of(i, 300);
      r.vm_id = "bench-vm-" + std::to_string(i);
      Bytes enc = r.encode();
      Hash32 lh = crypto::merkle_leaf_hash(as_view(enc));
      log.append(lh);
      recs.push_back({std::move(enc), lh, r.request_id, r.vm_id});
    }
    BlockHeader h;
    h.height = height;
    Writer fw;
    log.encode(fw);
    Status s =
        (*store)->put_ledger_block(height, as_view(h.encode()), as_view(fw.data()), leaf, recs);
    if (!s.ok()) return st.SkipWithError(s.error().reason.c_str());
  }
  if (reopened) {
    store->reset();
    store = ReplicaStore::open(dir.string());
    if (!store.ok()) return st.SkipWithError(store.error().reason.c_str());
  }
  uint64_t i = 0, found = 0;
  for (auto _ : st) {
    std::string vm = (present ? "bench-vm-" : "other-vm-") + std::to_string(i++ * 7919 % kVms);
    Status s = (*store)->vm_history_newest_first(vm, [&found](uint64_t) {
      ++found;
      return false;
    });
    if (!s.ok()) return st.SkipWithError(s.error().reason.c_str());
  }
  if (found != (present ? i : 0)) st.SkipWithError("wrong history");
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_VmHistoryLookup)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);

void BM_VerifyResponse(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  Genesis g;
  g.chain_id = "bench";
  std::vector<crypto::SecretKey> keys;
  for (int i = 0; i < n; ++i) {
    keys.push_back(crypto::SecretKey::from_seed(crypto::test_seed("b" + std::to_string(i))));
    g.members.push_back({"n", keys.back().public_key(), ""});
  }
  // A response proving record 123,456 of a log of 1,000,000 (a 20-hash proof).
  AttestationResponse resp;
  resp.record = record_of(7, 1024);
  resp.record_hash = resp.record.leaf_hash();
  resp.leaf_index = 123456;
  resp.header.chain_id = g.chain_id;
  resp.header.log_size = 1000000;
  resp.header.committee_hash = g.committee().hash();
  // Build a consistent proof/root pair without the whole tree: fold the path ourselves.
  std::vector<Hash32> path;
  Hash32 r = resp.record_hash;
  uint64_t fn = resp.leaf_index, sn = resp.header.log_size - 1;
  for (int i = 0; sn > 0; ++i) {
    Hash32 sib = sha256(ByteView(reinterpret_cast<uint8_t*>(&i), 4));
    if ((fn & 1) || fn == sn) {
      r = crypto::merkle_node_hash(sib, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = crypto::merkle_node_hash(r, sib);
    }
    path.push_back(sib);
    fn >>= 1;
    sn >>= 1;
  }
  resp.inclusion_proof = path;
  resp.header.log_root = r;
  for (uint32_t i = 0; i < g.committee().threshold(); ++i)
    sign_header(resp.certificate, resp.header, keys[i], i);
  if (!verify_response(resp, g).ok()) {
    st.SkipWithError(verify_response(resp, g).error().reason.c_str());
    return;
  }
  for (auto _ : st) benchmark::DoNotOptimize(verify_response(resp, g).ok());
  st.counters["proof_hashes"] = static_cast<double>(path.size());
  st.counters["response_bytes"] = static_cast<double>(resp.encode(g.members.size()).size());
}
BENCHMARK(BM_VerifyResponse)->Arg(4)->Arg(7)->Arg(16)->Unit(benchmark::kMicrosecond);

// What a restart reads from the consensus log (ledger::replay_store): the newest stable
// checkpoint at or below the ledger's height, then every record above it. The log keeps a
// reference per committed block and a record per stable checkpoint, so on a store of N blocks
// (a checkpoint every 16, as a node's) both scans walk all of them: real time per restart.
void BM_RestartLogScan(benchmark::State& st) {
  const uint64_t blocks = static_cast<uint64_t>(st.range(0));
  auto dir = std::filesystem::temp_directory_path() /
             ("attestnet-bench-scan-" + std::to_string(::getpid()) + "-" + std::to_string(blocks));
  std::filesystem::remove_all(dir);
  {
    auto store = ReplicaStore::open(dir.string());
    if (!store.ok()) {
      st.SkipWithError(store.error().reason.c_str());
      return;
    }
    consensus::CommittedBlock cb;
    std::vector<consensus::PersistRecord> recs;
    for (uint64_t h = 1; h <= blocks; ++h) {
      cb.block.height = h;
      Writer w;
      cb.encode(w);
      recs.push_back({consensus::PersistRecord::Kind::kCommitted, h, 0, std::move(w).take()});
      if (h % 16 == 0) {
        consensus::Checkpoint c{h, sha256(ByteView(reinterpret_cast<uint8_t*>(&h), 8))};
        consensus::StateReply rep;
        rep.stable_seq = h;
        for (uint32_t i = 0; i < 3; ++i)
          rep.stable_proof.push_back({consensus::MsgType::kCheckpoint, i, 0, c.encode(), {}});
        recs.push_back({consensus::PersistRecord::Kind::kStable, h, 0, rep.encode()});
      }
      if (recs.size() >= 4096 || h == blocks) {
        std::vector<const consensus::PersistRecord*> ptrs;
        for (const auto& r : recs) ptrs.push_back(&r);
        if (Status s = (*store)->append_all(ptrs, false); !s.ok()) {
          st.SkipWithError(s.error().reason.c_str());
          return;
        }
        recs.clear();
      }
    }
  }
  uint64_t found = 0, replayed = 0;
  for (auto _ : st) {
    auto store = ReplicaStore::open(dir.string());
    if (!store.ok()) {
      st.SkipWithError(store.error().reason.c_str());
      break;
    }
    auto cp = (*store)->newest_checkpoint(blocks);
    found = cp.ok() && *cp ? (*cp)->seq : 0;
    replayed = 0;
    (void)(*store)->for_each_record([&](consensus::PersistRecord&&) { ++replayed; }, found);
  }
  st.counters["checkpoint"] = static_cast<double>(found);
  st.counters["records_replayed"] = static_cast<double>(replayed);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RestartLogScan)
    ->Arg(10000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace attestnet::ledger
