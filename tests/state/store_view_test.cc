// What execution reads of the ledger after a restart (state/store_view.h): the VM states loaded
// from the store's VM index when first asked equal the fold of every record in ledger order, and
// the freshness anchors are the last headers, as if the view had been told of every block.
#include "state/store_view.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "ledger/builder.h"

namespace attestnet::state {
namespace {

// A request whose record the test spells out: "vm|verdict|clock|reset" (empty: no claim).
consensus::Request spelled(uint64_t seq, const std::string& vm, char verdict,
                           const std::string& clock, const std::string& reset) {
  consensus::Request q;
  q.client_id = 1;
  q.client_seq = seq;
  std::string s = vm + "|" + verdict + "|" + clock + "|" + reset;
  q.payload = Bytes(s.begin(), s.end());
  return q;
}

ledger::AttestationRecord record_of(const consensus::Request& q, uint64_t time) {
  std::string s(q.payload.begin(), q.payload.end());
  std::vector<std::string> f;
  for (size_t at = 0;;) {
    size_t bar = s.find('|', at);
    f.push_back(s.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
    if (bar == std::string::npos) break;
    at = bar + 1;
  }
  ledger::AttestationRecord r;
  r.request_id = q.id();
  r.vm_id = f[0];
  r.platform = "tpm2";
  r.verdict = f[1] == "a" ? ledger::Verdict::kAffirming : ledger::Verdict::kContraindicated;
  r.policy_id = "p";
  r.policy_version = 1;
  if (!f[2].empty()) r.claims.push_back({"tpm2.clock", f[2]});
  r.claims.push_back({"secure_boot", "enabled"});
  if (!f[3].empty()) r.claims.push_back({"tpm2.reset_count", f[3]});
  r.timestamp = time;
  return r;
}

class StoreView : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::init();
    dir = std::filesystem::temp_directory_path() /
          ("atn-store-view-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    auto s = ledger::ReplicaStore::open(dir.string());
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store = std::move(s).value();
    genesis.chain_id = "attestnet-test";
    genesis.members.push_back({"node0",
                               crypto::SecretKey::from_seed(crypto::test_seed("m0")).public_key(),
                               "127.0.0.1:7000"});
    builder = std::make_unique<ledger::LedgerBuilder>(
        genesis, [](const consensus::Request& q, uint64_t t) { return record_of(q, t); });
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  // Executes one block into the store and into `told` (a view told of everything).
  void block(const std::vector<consensus::Request>& reqs) {
    consensus::CommittedBlock cb;
    cb.block.height = builder->next_height();
    cb.block.block_time = 1700000000000 + cb.block.height;
    cb.block.proposer = 0;
    cb.block.requests = reqs;
    auto built = builder->apply(cb, Hash32{}, cb.block.block_time);
    for (const auto& r : built.records) told.note_record(r);
    told.note_header(built.header.hash());
    headers.push_back(built.header.hash());
    ASSERT_TRUE(ledger::persist_built_block(*store, *builder, built).ok());
  }

  std::filesystem::path dir;
  std::unique_ptr<ledger::ReplicaStore> store;
  ledger::Genesis genesis;
  std::unique_ptr<ledger::LedgerBuilder> builder;
  MemoryLedgerView told{Hash32{}, 8};
  std::vector<Hash32> headers;
};

void expect_same(const policy::VmState& a, const policy::VmState& b, const std::string& vm) {
  EXPECT_EQ(a.last_clock, b.last_clock) << vm;
  EXPECT_EQ(a.last_reset_count, b.last_reset_count) << vm;
}

TEST_F(StoreView, LoadedVmStatesEqualTheFoldOfEveryRecord) {
  // Fixed cases: the newest record with a field decides it; contraindicated records count for
  // nothing; a field the newest record lacks comes from an older one; an unparsable claim is
  // ignored; a VM whose id extends another's with a NUL byte is another VM.
  uint64_t seq = 0;
  block({spelled(++seq, "a", 'a', "100", "1"), spelled(++seq, "a", 'a', "200", ""),
         spelled(++seq, "a", 'c', "999", "9")});
  block({spelled(++seq, "b", 'c', "5", "5"), spelled(++seq, "c", 'a', "", ""),
         spelled(++seq, "d", 'a', "x", "3"), spelled(++seq, "d", 'a', "", "4")});
  std::string nul_id = std::string("a") + '\0' + "evil";
  block({spelled(++seq, nul_id, 'a', "7", "7")});
  // Random histories over a few VMs.
  std::mt19937 rng(7);
  for (int b = 0; b < 40; ++b) {
    std::vector<consensus::Request> reqs;
    for (int i = 0; i < 5; ++i) {
      std::string vm = "vm-" + std::to_string(rng() % 6);
      char verdict = rng() % 4 == 0 ? 'c' : 'a';
      std::string clock = rng() % 3 ? std::to_string(rng() % 100000) : "";
      std::string reset = rng() % 3 ? std::to_string(rng() % 10) : "";
      reqs.push_back(spelled(++seq, vm, verdict, clock, reset));
    }
    block(reqs);
  }
  std::vector<std::string> vms = {"a", "b", "c", "d", "never", "a\x01", nul_id};
  for (int i = 0; i < 6; ++i) vms.push_back("vm-" + std::to_string(i));
  auto all_loaded_as_told = [&] {
    for (const auto& vm : vms) {
      auto loaded = load_vm_state(*store, vm);
      ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
      expect_same(*loaded, told.vm_state(vm), vm);
    }
  };
  all_loaded_as_told();  // from the memtable
  // Reopened, the store recovers its write-ahead log into a table file: the same answers come
  // through the VM index's Bloom filter over VM-id prefixes.
  store.reset();
  auto reopened = ledger::ReplicaStore::open(dir.string());
  ASSERT_TRUE(reopened.ok()) << reopened.error().to_string();
  store = std::move(reopened).value();
  all_loaded_as_told();
  auto a = load_vm_state(*store, "a");
  EXPECT_EQ(a->last_clock, 200u);
  EXPECT_EQ(a->last_reset_count, 1u);
  EXPECT_FALSE(load_vm_state(*store, "b")->last_clock);
  EXPECT_EQ(load_vm_state(*store, "d")->last_reset_count, 4u);
  EXPECT_FALSE(load_vm_state(*store, "d")->last_clock);
}

TEST_F(StoreView, AReopenedViewAnswersAsOneToldOfEveryBlock) {
  uint64_t seq = 0;
  for (int b = 0; b < 20; ++b)
    block({spelled(++seq, "vm-" + std::to_string(b % 3), 'a', std::to_string(10 * b), "2")});
  MemoryLedgerView reopened(Hash32{}, 8);
  bool failed = false;
  ASSERT_TRUE(open_view(*store, builder->next_height() - 1, 8, reopened, [&failed](const Error&) {
                failed = true;
              }).ok());
  EXPECT_EQ(reopened.vms_in_memory(), 0u);  // nothing read yet
  for (size_t h = 0; h < headers.size(); ++h)
    EXPECT_EQ(reopened.is_recent_anchor(headers[h]), told.is_recent_anchor(headers[h])) << h;
  EXPECT_FALSE(reopened.is_recent_anchor(Hash32{}));  // genesis: more blocks than the window
  // A record noted after the reopen folds onto the stored state, as it would have before.
  for (const char* vm : {"vm-0", "vm-1", "vm-2"}) {
    auto r = record_of(spelled(++seq, vm, 'a', "", "3"), 1);
    reopened.note_record(r);
    told.note_record(r);
    expect_same(reopened.vm_state(vm), told.vm_state(vm), vm);
  }
  EXPECT_EQ(reopened.vm_state("vm-2").last_clock, 170u);
  EXPECT_EQ(reopened.vms_in_memory(), 3u);
  EXPECT_FALSE(failed);

  // A short chain: genesis is still an anchor.
  MemoryLedgerView early(Hash32{}, 64);
  ASSERT_TRUE(open_view(*store, 5, 64, early, [](const Error&) {}).ok());
  EXPECT_TRUE(early.is_recent_anchor(Hash32{}));
  EXPECT_TRUE(early.is_recent_anchor(headers[4]));
  EXPECT_FALSE(early.is_recent_anchor(headers[5]));
}

TEST_F(StoreView, AViewKeepsAtMostItsCapacityAndReadsTheRestBack) {
  // Blocks executed through a view over the store, as the node does: each record noted, the
  // block stored, then forget_unused. Its answers stay those of a view that keeps everything.
  MemoryLedgerView bounded(Hash32{}, 8);
  ASSERT_TRUE(
      open_view(*store, 0, 8, bounded, [](const Error& e) { FAIL() << e.to_string(); }).ok());
  constexpr size_t kKeep = 8;
  std::mt19937 rng(11);
  uint64_t seq = 0;
  size_t most = 0;
  for (int b = 0; b < 60; ++b) {
    std::vector<consensus::Request> reqs;
    for (int i = 0; i < 3; ++i) {
      // A few VMs that attest often, and many that come back rarely.
      std::string vm = "vm-" + std::to_string(rng() % 2 ? rng() % 3 : 3 + rng() % 40);
      expect_same(bounded.vm_state(vm), told.vm_state(vm), vm);
      reqs.push_back(spelled(++seq, vm, rng() % 5 ? 'a' : 'c', std::to_string(b * 10 + i),
                             std::to_string(rng() % 4)));
    }
    block(reqs);  // notes the records in `told` and stores the block
    for (const auto& q : reqs) bounded.note_record(record_of(q, 1700000000000 + b + 1));
    bounded.forget_unused(kKeep);
    most = std::max(most, bounded.vms_in_memory());
  }
  EXPECT_LE(most, kKeep);
  EXPECT_LT(bounded.vms_in_memory(), told.vms_in_memory());  // it did forget some
  for (int v = 0; v < 43; ++v) {
    std::string vm = "vm-" + std::to_string(v);
    expect_same(bounded.vm_state(vm), told.vm_state(vm), vm);
  }
  // Without a loader nothing is forgotten: it could not be read back.
  size_t all = told.vms_in_memory();
  told.forget_unused(1);
  EXPECT_EQ(told.vms_in_memory(), all);
}

}  // namespace
}  // namespace attestnet::state
