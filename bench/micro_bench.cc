// Micro-benchmarks (Google Benchmark): codec, Ed25519, Merkle trees, and the consensus
// message path. Figures are for comparison within one run, not absolute claims.
#include <benchmark/benchmark.h>

#include <vector>

#include "consensus/messages.h"
#include "crypto/ed25519.h"
#include "crypto/merkle.h"
#include "crypto/signature_memo.h"

namespace attestnet {
namespace {

consensus::Block make_block(size_t requests, size_t payload) {
  consensus::Block b{1, 0, 1700000000000, 0, {}, {}};
  for (size_t i = 0; i < requests; ++i) {
    b.requests.push_back(consensus::Request{i, i, Bytes(payload, static_cast<uint8_t>(i))});
  }
  return b;
}

void BM_CodecEncodeBlock(benchmark::State& st) {
  auto b = make_block(st.range(0), 256);
  size_t bytes = 0;
  for (auto _ : st) {
    Writer w;
    b.encode(w);
    bytes = w.size();
    benchmark::DoNotOptimize(w.data().data());
  }
  st.SetBytesProcessed(st.iterations() * bytes);
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_CodecEncodeBlock)->Arg(1)->Arg(100)->Arg(1000);

void BM_CodecDecodeBlock(benchmark::State& st) {
  auto b = make_block(st.range(0), 256);
  Writer w;
  b.encode(w);
  for (auto _ : st) {
    Reader r(as_view(w.data()));
    auto out = consensus::Block::decode(r);
    benchmark::DoNotOptimize(out.ok());
  }
  st.SetBytesProcessed(st.iterations() * w.size());
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_CodecDecodeBlock)->Arg(1)->Arg(100)->Arg(1000);

void BM_Ed25519Sign(benchmark::State& st) {
  auto k = crypto::SecretKey::from_seed(crypto::test_seed("bench"));
  Bytes msg(128, 7);
  for (auto _ : st) benchmark::DoNotOptimize(k.sign(as_view(msg)));
}
BENCHMARK(BM_Ed25519Sign);

void BM_Ed25519Verify(benchmark::State& st) {
  auto k = crypto::SecretKey::from_seed(crypto::test_seed("bench"));
  Bytes msg(128, 7);
  auto sig = k.sign(as_view(msg));
  for (auto _ : st) benchmark::DoNotOptimize(crypto::verify(k.public_key(), as_view(msg), sig));
}
BENCHMARK(BM_Ed25519Verify);

// The same with a different key, message and signature each time, as a node sees them (it
// never checks one signature twice: crypto::SignatureMemo). `attestnet bench` measures the
// machine's limit as BM_Ed25519Verify does, one signature over and over.
void BM_Ed25519VerifyDistinct(benchmark::State& st) {
  struct One {
    crypto::PublicKey pk;
    Bytes msg;
    crypto::Signature sig;
  };
  std::vector<One> all;
  for (int i = 0; i < 4096; ++i) {
    auto k = crypto::SecretKey::generate();
    Bytes msg(200, static_cast<uint8_t>(i));
    all.push_back({k.public_key(), msg, k.sign(as_view(msg))});
  }
  size_t i = 0;
  for (auto _ : st) {
    const One& o = all[i++ % all.size()];
    benchmark::DoNotOptimize(crypto::verify(o.pk, as_view(o.msg), o.sig));
  }
}
BENCHMARK(BM_Ed25519VerifyDistinct);

// The signature memo's own cost at a node's steady state (as sized by a node, its good results
// full: 65,536), per signature a node sees: its first sight (every lookup misses, then an
// insert), and a later check of it (a hit). The first sight's verification is left out: the
// signatures first seen here are not canonical, which libsodium refuses before any curve arithmetic
// (a real one costs ~46 us on this host: what the lookups are to be measured against); the good
// ones are entered as the node's own (note_own), as a node's header votes are.
void BM_SignatureMemo(benchmark::State& st) {
  crypto::SignatureMemo memo(65536, 8192);
  auto k = crypto::SecretKey::from_seed(crypto::test_seed("bench-memo"));
  crypto::Signature good{}, noncanonical{};
  noncanonical[63] = 0xff;  // S >= L
  Bytes msg(64, 0);
  auto set = [&](uint64_t i) {
    for (int b = 0; b < 8; ++b) msg[static_cast<size_t>(b)] = static_cast<uint8_t>(i >> (8 * b));
  };
  uint64_t n = 0;
  for (; n < 300000; ++n) {
    set(n);
    memo.note_own(k.public_key(), as_view(msg), good);
  }
  for (auto _ : st) {
    set(n++);
    memo.note_own(k.public_key(), as_view(msg), good);
    benchmark::DoNotOptimize(memo.verify(k.public_key(), as_view(msg), noncanonical));  // miss
    set(n - 1000);
    benchmark::DoNotOptimize(memo.verify(k.public_key(), as_view(msg), good));  // hit
  }
  if (memo.verifications() != static_cast<uint64_t>(st.iterations()))
    st.SkipWithError("a recent signature was not in the memo");
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_SignatureMemo);

void BM_MerkleRoot(benchmark::State& st) {
  std::vector<Hash32> leaves;
  for (int64_t i = 0; i < st.range(0); ++i) {
    uint64_t v = static_cast<uint64_t>(i);
    leaves.push_back(crypto::merkle_leaf_hash(ByteView(reinterpret_cast<uint8_t*>(&v), 8)));
  }
  for (auto _ : st) benchmark::DoNotOptimize(crypto::merkle_root(leaves));
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_MerkleRoot)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

void BM_BlockDigest(benchmark::State& st) {
  auto b = make_block(st.range(0), 256);
  for (auto _ : st) benchmark::DoNotOptimize(b.digest());
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_BlockDigest)->Arg(1000);

// A request's id (a domain-separated SHA-256 of its encoding), with a payload of N bytes: an
// ordering-only bench request is 512 bytes, a sim attestation ~1.5 KB.
void BM_RequestId(benchmark::State& st) {
  consensus::Request q{7, 9, Bytes(static_cast<size_t>(st.range(0)), 0x5a)};
  for (auto _ : st) benchmark::DoNotOptimize(q.id());
}
BENCHMARK(BM_RequestId)->Arg(512)->Arg(1500);

}  // namespace
}  // namespace attestnet

int main(int argc, char** argv) {
  attestnet::crypto::init();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
