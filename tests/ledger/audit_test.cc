// A simulator run leaves a data directory per replica; the audit verifies it from genesis and
// names the exact height of any corruption.
#include "ledger/audit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <rocksdb/db.h>

#include "sim/simulator.h"

namespace attestnet::ledger {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("attestnet-audit-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    sim::SimOptions o;
    o.seed = 3;
    o.store_dir = dir.string();
    sim::SimResult r = sim::run_simulation(o);
    ASSERT_TRUE(r.ok) << r.invariant << ": " << r.detail;
    std::ifstream in(dir / "genesis.json");
    auto g = Genesis::from_json(nlohmann::json::parse(in));
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    genesis = *g;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string replica(int i) const { return (dir / ("replica-" + std::to_string(i))).string(); }

  std::filesystem::path dir;
  Genesis genesis;
};

TEST_F(AuditTest, EveryReplicasChainVerifiesFromGenesisWithEveryCertificate) {
  Hash32 tip{};
  for (int i = 0; i < 4; ++i) {
    auto store = ReplicaStore::open_read_only(replica(i));
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    auto s = audit_chain(**store, genesis);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_GT(s->headers, 5u);
    EXPECT_EQ(s->certified, s->headers);
    EXPECT_EQ(s->log_size, 40u) << "one record per client request";
    if (i == 0) tip = s->tip;
    EXPECT_EQ(s->tip, tip) << "all replicas built the same chain";
  }
}

TEST_F(AuditTest, AFlippedByteInAHeaderIsNamedByHeight) {
  {
    auto store = ReplicaStore::open(replica(1));
    ASSERT_TRUE(store.ok());
    auto hf = (*store)->header(4);
    ASSERT_TRUE(hf.ok());
    Bytes h = hf->first;
    h[h.size() - 40] ^= 0x01;  // inside block_time / proposer / payload digest
    ASSERT_TRUE((*store)->put_header(4, as_view(h), as_view(hf->second)).ok());
  }
  auto store = ReplicaStore::open_read_only(replica(1));
  auto s = audit_chain(**store, genesis);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason.rfind("height 4:", 0), 0u) << s.error().reason;
}

TEST_F(AuditTest, VerifyTipOnOpenRefusesADamagedTip) {
  auto ro = ReplicaStore::open_read_only(replica(0));
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(verify_tip(**ro, genesis).ok());
  uint64_t tip = (*ro)->highest_header();
  ro->reset();
  {
    auto store = ReplicaStore::open(replica(0));
    auto hf = (*store)->header(tip - 1);
    Bytes h = hf->first;
    h[h.size() - 1] ^= 0x01;  // the payload digest of the block before the tip
    ASSERT_TRUE((*store)->put_header(tip - 1, as_view(h), as_view(hf->second)).ok());
  }
  auto store = ReplicaStore::open_read_only(replica(0));
  Status st = verify_tip(**store, genesis);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().reason.rfind("height " + std::to_string(tip - 1) + ":", 0), 0u)
      << st.error().reason;
}

TEST_F(AuditTest, ARewrittenBlockIsNamedByHeight) {
  {
    auto store = ReplicaStore::open(replica(2));
    ASSERT_TRUE(store.ok());
    auto cb = (*store)->block(6);
    ASSERT_TRUE(cb.ok());
    cb->block.requests.at(0).payload[0] ^= 0x80;  // a record changed after the fact
    Writer w;
    cb->encode(w);
    consensus::PersistRecord rec{consensus::PersistRecord::Kind::kCommitted, 6, cb->view,
                                 std::move(w).take()};
    ASSERT_TRUE((*store)->append(rec).ok());
  }
  auto store = ReplicaStore::open_read_only(replica(2));
  auto s = audit_chain(**store, genesis);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kRecordMismatch);
  EXPECT_EQ(s.error().reason.rfind("height 6:", 0), 0u) << s.error().reason;
}

// Disk corruption of one stored record, written with RocksDB directly (below the store's API).
void corrupt_record(const std::string& dir, uint64_t leaf) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const char* name : {"default", "consensus", "blocks", "meta", "headers", "certs", "records",
                           "by_request", "by_vm", "tiles"}) {
    descs.push_back({name, {}});
  }
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open({}, dir, descs, &cfs, &db).ok());
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(leaf >> (56 - 8 * i));
  std::string value;
  ASSERT_TRUE(db->Get({}, cfs[6], key, &value).ok());
  value[value.size() - 3] ^= 0x10;  // inside the record's timestamp
  ASSERT_TRUE(db->Put({}, cfs[6], key, value).ok());
  for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
  delete db;
}

TEST_F(AuditTest, AFlippedByteInARecordIsNamedByTheHeightThatHoldsIt) {
  uint64_t leaf = 0, height = 5;
  {
    auto store = ReplicaStore::open_read_only(replica(3));
    ASSERT_TRUE(store.ok());
    leaf = BlockHeader::decode(as_view((*store)->header(4)->first))->log_size;
    while (BlockHeader::decode(as_view((*store)->header(height)->first))->log_size <= leaf) {
      ++height;
    }
  }
  corrupt_record(replica(3), leaf);
  auto store = ReplicaStore::open_read_only(replica(3));
  auto s = audit_chain(**store, genesis);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kRecordMismatch);
  EXPECT_EQ(s.error().reason.rfind("height " + std::to_string(height) + ":", 0), 0u)
      << s.error().reason;
}

TEST_F(AuditTest, AnotherGenesisIsRefused) {
  Genesis other = genesis;
  other.chain_id = "someone-else";
  auto store = ReplicaStore::open_read_only(replica(0));
  auto s = audit_chain(**store, other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason.rfind("height 1:", 0), 0u);
}

}  // namespace
}  // namespace attestnet::ledger
