// Test helper: writes ledger blocks to a store as fast as it can, printing "durable H" after
// block H's consensus block, header (with records) and certificate are synced. Resumes from
// what the store holds. The crash test kills it with SIGKILL at random moments.
#include <cstdio>
#include <random>

#include "crypto/merkle.h"
#include "ledger/builder.h"
#include "ledger/store.h"

using namespace attestnet;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  crypto::init();
  ledger::Genesis g;
  g.chain_id = "crash-test";
  std::vector<crypto::SecretKey> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(crypto::SecretKey::from_seed(crypto::test_seed("crash-" + std::to_string(i))));
    g.members.push_back({"n" + std::to_string(i), keys.back().public_key(), "local"});
  }
  auto opened = ledger::ReplicaStore::open(argv[1]);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.error().to_string().c_str());
    return 1;
  }
  auto& store = **opened;
  ledger::LedgerBuilder builder(g, [](const consensus::Request& q, uint64_t t) {
    ledger::AttestationRecord r;
    r.request_id = q.id();
    r.vm_id = "vm-" + std::to_string(q.client_id % 7);
    r.platform = "sim";
    r.measurements = {{"payload", q.payload}};
    r.verdict = ledger::Verdict::kAffirming;
    r.timestamp = t;
    return std::optional<ledger::AttestationRecord>(r);
  });
  if (!ledger::resume_from_store(store, builder).ok()) return 1;
  if (uint64_t last = store.highest_header(); last > 0) {
    auto hf = store.header(last);
    auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
    if (!hdr.ok()) return 1;
    if (!store.certificate(last).ok()) {  // killed between header and certificate: finish it
      ledger::HeaderCertificate hc;
      for (uint32_t k = 0; k < 3; ++k) ledger::sign_header(hc, *hdr, keys[k], k);
      if (!store.put_certificate(last, 0, hc.sigs).ok()) return 1;
    }
  }
  std::mt19937_64 rng(builder.next_height());
  for (;;) {
    uint64_t h = builder.next_height();
    consensus::CommittedBlock cb;
    cb.block = consensus::Block{h, 0, 1000 * h, 0, {}, {}};
    for (int i = 0; i < 10; ++i) {
      Bytes payload(1024);
      for (auto& b : payload) b = static_cast<uint8_t>(rng());
      cb.block.requests.push_back(consensus::Request{h * 100 + i, h, std::move(payload)});
    }
    Bytes vote = consensus::commit_vote_message(g.chain_id, 0, 0, h, cb.block.digest());
    for (uint32_t k = 0; k < 3; ++k) cb.cert.add(k, keys[k].sign(as_view(vote)));
    Writer bw;
    cb.encode(bw);
    if (!store.append({consensus::PersistRecord::Kind::kCommitted, h, 0, std::move(bw).take()})
             .ok())
      return 1;
    ledger::BuiltBlock built = builder.apply(cb, Hash32{}, cb.block.block_time);
    if (!ledger::persist_built_block(store, builder, built).ok()) return 1;
    ledger::HeaderCertificate hc;
    for (uint32_t k = 0; k < 3; ++k) ledger::sign_header(hc, built.header, keys[k], k);
    if (!store.put_certificate(h, 0, hc.sigs).ok()) return 1;
    std::printf("durable %llu\n", static_cast<unsigned long long>(h));
    std::fflush(stdout);
  }
}
