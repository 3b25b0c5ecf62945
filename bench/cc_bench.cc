// SEV-SNP report and TDX quote verification beside the raw ECDSA rates of the same machine in
// the same run. Real reports and quotes from ../shared/vectors (skipped when absent); chains and
// the QE report are verified once and cached by certificate hash (crypto::ChainCache), as a node
// does for a platform it has seen.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "evidence/sevsnp/report.h"
#include "evidence/tdx/quote.h"

namespace attestnet {
namespace {

const std::filesystem::path kVectors = ATTESTNET_VECTORS_DIR;

Bytes read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

void raw_ecdsa(benchmark::State& st, const char* curve, const EVP_MD* md, size_t msg_len) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
  Bytes msg(msg_len, 0x5a), sig(128);
  size_t siglen = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, md, nullptr, key);
  EVP_DigestSign(ctx, sig.data(), &siglen, msg.data(), msg.size());
  for (auto _ : st) {
    EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key);
    if (EVP_DigestVerify(ctx, sig.data(), siglen, msg.data(), msg.size()) != 1)
      st.SkipWithError("raw verify failed");
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  st.SetItemsProcessed(st.iterations());
}

void BM_RawVerifyP384(benchmark::State& st) {
  raw_ecdsa(st, "P-384", EVP_sha384(), evidence::sevsnp::kSignedSize);
}
BENCHMARK(BM_RawVerifyP384);

void BM_RawVerifyP256Quote(benchmark::State& st) {
  raw_ecdsa(st, "P-256", EVP_sha256(), 632);
}
BENCHMARK(BM_RawVerifyP256Quote);

void BM_SevSnpVerify(benchmark::State& st) {
  auto dir = kVectors / "sev-snp";
  if (!std::filesystem::exists(dir)) return st.SkipWithError("../shared/vectors not found");
  Bytes report = read(dir / "milan-vcek-go-sev-guest" / "report.bin");
  auto leaf =
      crypto::Certificate::from_der(as_view(read(dir / "milan-vcek-go-sev-guest" / "vcek.der")));
  auto chain =
      crypto::Certificate::parse_any(as_view(read(dir / "amd-roots" / "ask_ark_milan.pem")));
  evidence::sevsnp::CertChain c{*leaf, *chain};
  std::vector<Hash32> pins{chain->back().fingerprint()};
  crypto::ChainCache cache;
  for (auto _ : st) {
    auto v = evidence::sevsnp::verify_report(as_view(report), c, pins, 1717200000, &cache);
    if (!v.ok()) st.SkipWithError(v.error().reason.c_str());
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_SevSnpVerify);

void BM_TdxVerify(benchmark::State& st) {
  auto dir = kVectors / "tdx";
  if (!std::filesystem::exists(dir)) return st.SkipWithError("../shared/vectors not found");
  Bytes quote = read(dir / "v4-spr-e4-go-tdx-guest" / "quote.dat");
  auto root = crypto::Certificate::from_der(
      as_view(read(dir / "intel-root" / "Intel_SGX_Provisioning_Certification_RootCA.cer")));
  std::vector<Hash32> pins{root->fingerprint()};
  crypto::ChainCache cache;
  for (auto _ : st) {
    auto v = evidence::tdx::verify_quote(as_view(quote), pins, 1772496000, &cache);
    if (!v.ok()) st.SkipWithError(v.error().reason.c_str());
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_TdxVerify);

}  // namespace
}  // namespace attestnet
