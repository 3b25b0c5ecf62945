// Building responses from a store: a response built with a shared ResponseBasis (as a node
// answers the requests of a block together) is byte for byte the one built without, and the
// basis is found again when a newer header is certified or a record is beyond its log.
#include "ledger/prover.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "ledger/builder.h"

namespace attestnet::ledger {
namespace {

class Prover : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::init();
    dir = std::filesystem::temp_directory_path() /
          ("attestnet-prover-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    genesis.chain_id = "prover-test";
    for (int i = 0; i < 4; ++i) {
      keys.push_back(
          crypto::SecretKey::from_seed(crypto::test_seed("prover-" + std::to_string(i))));
      genesis.members.push_back({"n" + std::to_string(i), keys.back().public_key(), "local"});
    }
    auto s = ReplicaStore::open(dir.string());
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store = std::move(s).value();
    builder = std::make_unique<LedgerBuilder>(genesis, [](const consensus::Request& q, uint64_t t) {
      AttestationRecord r;
      r.request_id = q.id();
      r.vm_id = "vm-" + std::to_string(q.client_id % 3);
      r.platform = "sim";
      r.measurements = {{"payload", q.payload}};
      r.verdict = Verdict::kAffirming;
      r.timestamp = t;
      return std::optional<AttestationRecord>(r);
    });
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  // Block `h` with `n` requests, its ledger written; certified unless told otherwise.
  std::vector<Hash32> add_block(uint64_t n, bool certify = true) {
    uint64_t h = builder->next_height();
    consensus::CommittedBlock cb;
    cb.block = consensus::Block{h, 0, 1000 * h, 0, {}, {}};
    std::vector<Hash32> ids;
    for (uint64_t i = 0; i < n; ++i) {
      cb.block.requests.push_back(consensus::Request{h * 1000 + i, h, Bytes(40, uint8_t(i))});
      ids.push_back(cb.block.requests.back().id());
    }
    built = builder->apply(cb, Hash32{}, cb.block.block_time);
    EXPECT_TRUE(persist_built_block(*store, *builder, built).ok());
    if (certify) this->certify(h);
    return ids;
  }
  void certify(uint64_t h) {
    auto hf = store->header(h);
    ASSERT_TRUE(hf.ok());
    auto hdr = BlockHeader::decode(as_view(hf->first));
    ASSERT_TRUE(hdr.ok());
    HeaderCertificate hc;
    for (uint32_t k = 0; k < 3; ++k) sign_header(hc, *hdr, keys[k], k);
    ASSERT_TRUE(store->put_certificate(h, 0, hc.sigs).ok());
  }
  Bytes encoded(const Result<AttestationResponse>& r) {
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->encode(genesis.members.size()) : Bytes{};
  }

  std::filesystem::path dir;
  Genesis genesis;
  std::vector<crypto::SecretKey> keys;
  std::unique_ptr<ReplicaStore> store;
  std::unique_ptr<LedgerBuilder> builder;
  BuiltBlock built;
};

TEST_F(Prover, ABlocksResponsesWithASharedBasisAreTheResponsesWithout) {
  std::vector<Hash32> all;
  // 300 records over blocks of 7, 100, 1 and 192: level-0 tiles fill, the right edge moves.
  for (uint64_t n : {7, 100, 1, 192}) {
    auto ids = add_block(n);
    all.insert(all.end(), ids.begin(), ids.end());
    ResponseBasis basis;
    for (const Hash32& id : all) {
      auto with = build_response(*store, genesis, id, {}, 0, &basis);
      EXPECT_EQ(encoded(with), encoded(build_response(*store, genesis, id))) << to_hex(id);
      ASSERT_TRUE(with.ok());
      EXPECT_EQ(with->header.height, builder->next_height() - 1);
      EXPECT_TRUE(verify_response(*with, genesis).ok());
    }
    EXPECT_EQ(basis.newest, builder->next_height() - 1);
  }
  // And from a store opened again (its caches empty), the same bytes.
  store.reset();
  auto s = ReplicaStore::open(dir.string());
  ASSERT_TRUE(s.ok());
  ResponseBasis basis;
  for (const Hash32& id : all) {
    auto cold = build_response(**s, genesis, id, {}, 0, &basis);
    ASSERT_TRUE(cold.ok()) << cold.error().to_string();
    EXPECT_TRUE(verify_response(*cold, genesis).ok());
  }
}

TEST_F(Prover, ABasisIsFoundAgainForANewerHeaderAndNotUsedBeyondItsLog) {
  auto first = add_block(5);
  ResponseBasis basis;
  auto r = build_response(*store, genesis, first[0], {}, 0, &basis);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(basis.newest, 1u);
  // Block 2 written, its header not certified yet: its records have no response, with the
  // basis or without; block 1's still come from header 1.
  auto second = add_block(5, false);
  EXPECT_EQ(build_response(*store, genesis, second[0], {}, 0, &basis).error().code,
            Errc::kNotFound);
  EXPECT_EQ(build_response(*store, genesis, second[0]).error().code, Errc::kNotFound);
  r = build_response(*store, genesis, first[1], {}, 0, &basis);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.height, 1u);
  // Once header 2 is certified, the basis moves to it, for old records and new.
  certify(2);
  r = build_response(*store, genesis, first[2], {}, 0, &basis);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.height, 2u);
  EXPECT_EQ(basis.newest, 2u);
  r = build_response(*store, genesis, second[4], {}, 0, &basis);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(encoded(r), encoded(build_response(*store, genesis, second[4])));
}

// A node answers its waiting clients from the records it just executed (KnownRecord), not read
// back from the store: the same bytes; and a record that is not the request's is refused.
TEST_F(Prover, AResponseFromAKnownRecordIsTheOneFromTheStore) {
  add_block(3);
  auto ids = add_block(9);
  const uint64_t first_leaf = built.header.log_size - built.records.size();
  ResponseBasis basis;
  for (size_t i = 0; i < built.records.size(); ++i) {
    KnownRecord known{first_leaf + i, built.records[i].encode()};
    auto with = build_response(*store, genesis, ids[i], {}, 0, &basis, &known);
    EXPECT_EQ(encoded(with), encoded(build_response(*store, genesis, ids[i]))) << i;
  }
  KnownRecord other{first_leaf + 1, built.records[1].encode()};
  auto wrong = build_response(*store, genesis, ids[0], {}, 0, nullptr, &other);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().reason.find("another request's"), std::string::npos)
      << wrong.error().reason;
}

}  // namespace

}  // namespace attestnet::ledger
