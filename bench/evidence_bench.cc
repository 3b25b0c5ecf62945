// Evidence benchmarks: TPM quote verification (parse + signature + PCR digest, and the whole
// appraisal of a bundle) beside the raw OpenSSL verification of the same key in the same run,
// and event-log replay. The quotes are real TPMS_ATTEST structures marshalled by libtss2-mu and
// signed here with OpenSSL keys of the same kinds a TPM uses (RSA-2048 RSASSA, ECDSA P-256).
#include <benchmark/benchmark.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <cstring>

#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/eventlog.h"
#include "policy/policy.h"

namespace attestnet::evidence::tpm2 {
namespace {

struct SignedQuote {
  EVP_PKEY* key = nullptr;
  Bytes ak_public;  // TPM2B_PUBLIC
  Bytes quote;
  Bytes signature;  // TPMT_SIGNATURE
  PcrValues pcrs;
  Bytes raw_sig;  // the same signature as OpenSSL produced it
};

Bytes bn_bytes(const BIGNUM* b, size_t n) {
  Bytes out(n);
  BN_bn2binpad(b, out.data(), static_cast<int>(n));
  return out;
}

SignedQuote make_quote(bool ecc) {
  SignedQuote q;
  q.key = ecc ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
              : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  TPM2B_PUBLIC pub;
  std::memset(&pub, 0, sizeof pub);
  TPMT_PUBLIC& p = pub.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                       TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
  if (ecc) {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    BIGNUM *x = nullptr, *y = nullptr;
    EVP_PKEY_get_bn_param(q.key, "qx", &x);
    EVP_PKEY_get_bn_param(q.key, "qy", &y);
    Bytes xb = bn_bytes(x, 32), yb = bn_bytes(y, 32);
    p.unique.ecc.x.size = 32;
    std::memcpy(p.unique.ecc.x.buffer, xb.data(), 32);
    p.unique.ecc.y.size = 32;
    std::memcpy(p.unique.ecc.y.buffer, yb.data(), 32);
    BN_free(x);
    BN_free(y);
  } else {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    BIGNUM* n = nullptr;
    EVP_PKEY_get_bn_param(q.key, "n", &n);
    Bytes nb = bn_bytes(n, 256);
    p.unique.rsa.size = 256;
    std::memcpy(p.unique.rsa.buffer, nb.data(), 256);
    BN_free(n);
  }
  uint8_t buf[4096];
  size_t off = 0;
  Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof buf, &off);
  q.ak_public.assign(buf, buf + off);

  // PCRs 0..9 of the SHA-256 bank, like a measured boot.
  std::vector<PcrSelection> sel{{kAlgSha256, {}}};
  for (uint32_t i = 0; i < 10; ++i) {
    q.pcrs[kAlgSha256][i] = Bytes(32, static_cast<uint8_t>(i + 1));
    sel[0].pcrs.push_back(i);
  }
  TPMS_ATTEST a;
  std::memset(&a, 0, sizeof a);
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.extraData.size = 32;
  std::memset(a.extraData.buffer, 0xAB, 32);
  a.clockInfo.clock = 123456;
  a.clockInfo.safe = 1;
  a.attested.quote.pcrSelect.count = 1;
  a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
  a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
  a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0xFF;
  a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[1] = 0x03;
  Bytes digest = *pcr_digest(kAlgSha256, sel, q.pcrs);
  a.attested.quote.pcrDigest.size = 32;
  std::memcpy(a.attested.quote.pcrDigest.buffer, digest.data(), 32);
  off = 0;
  Tss2_MU_TPMS_ATTEST_Marshal(&a, buf, sizeof buf, &off);
  q.quote.assign(buf, buf + off);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t siglen = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, q.key);
  EVP_DigestSign(ctx, nullptr, &siglen, q.quote.data(), q.quote.size());
  q.raw_sig.resize(siglen);
  EVP_DigestSign(ctx, q.raw_sig.data(), &siglen, q.quote.data(), q.quote.size());
  q.raw_sig.resize(siglen);
  EVP_MD_CTX_free(ctx);

  TPMT_SIGNATURE s;
  std::memset(&s, 0, sizeof s);
  if (ecc) {
    s.sigAlg = TPM2_ALG_ECDSA;
    s.signature.ecdsa.hash = TPM2_ALG_SHA256;
    const unsigned char* pp = q.raw_sig.data();
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &pp, static_cast<long>(q.raw_sig.size()));
    Bytes r = bn_bytes(ECDSA_SIG_get0_r(es), 32), sv = bn_bytes(ECDSA_SIG_get0_s(es), 32);
    ECDSA_SIG_free(es);
    s.signature.ecdsa.signatureR.size = 32;
    std::memcpy(s.signature.ecdsa.signatureR.buffer, r.data(), 32);
    s.signature.ecdsa.signatureS.size = 32;
    std::memcpy(s.signature.ecdsa.signatureS.buffer, sv.data(), 32);
  } else {
    s.sigAlg = TPM2_ALG_RSASSA;
    s.signature.rsassa.hash = TPM2_ALG_SHA256;
    s.signature.rsassa.sig.size = static_cast<uint16_t>(q.raw_sig.size());
    std::memcpy(s.signature.rsassa.sig.buffer, q.raw_sig.data(), q.raw_sig.size());
  }
  off = 0;
  Tss2_MU_TPMT_SIGNATURE_Marshal(&s, buf, sizeof buf, &off);
  q.signature.assign(buf, buf + off);
  return q;
}

// The machine's raw rate: OpenSSL verifying the same signature over the same bytes.
void raw_verify(benchmark::State& st, bool ecc) {
  SignedQuote q = make_quote(ecc);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  for (auto _ : st) {
    EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, q.key);
    int ok =
        EVP_DigestVerify(ctx, q.raw_sig.data(), q.raw_sig.size(), q.quote.data(), q.quote.size());
    if (ok != 1) st.SkipWithError("raw verify failed");
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(q.key);
  st.SetItemsProcessed(st.iterations());
}

// The whole quote check as appraisal does it: the AK (parsed, or from the node's AK cache,
// as for every attestation of an already-seen VM), unmarshal signature and TPMS_ATTEST,
// verify, recompute the PCR digest.
void quote_verify(benchmark::State& st, bool ecc, bool cached) {
  SignedQuote q = make_quote(ecc);
  AkCache cache;
  for (auto _ : st) {
    std::shared_ptr<const AkPublic> ak;
    if (cached) {
      ak = *cache.get(as_view(q.ak_public));
    } else {
      ak = std::make_shared<const AkPublic>(*parse_ak(as_view(q.ak_public)));
    }
    auto sig = parse_signature(as_view(q.signature));
    auto v = verify_quote(*ak, as_view(q.quote), *sig, q.pcrs);
    if (!v.ok()) st.SkipWithError(v.error().reason.c_str());
    benchmark::DoNotOptimize(v);
  }
  EVP_PKEY_free(q.key);
  st.SetItemsProcessed(st.iterations());
}

// And the full appraisal: bundle decode + quote + binding + policy rules + result encoding.
void quote_appraise(benchmark::State& st, bool ecc) {
  SignedQuote q = make_quote(ecc);
  Tpm2Evidence e;
  e.ak_public = q.ak_public;
  e.quote = q.quote;
  e.signature = q.signature;
  e.pcrs = q.pcrs;
  Bytes bundle = e.encode();
  auto pol = policy::parse_policy(
      R"({"id":"bench","version":1,"tpm2":{"required_pcrs":{"sha256":[0,1,2,3,4,5,6,7,8,9]}}})");
  policy::AppraisalInput in;
  in.platform = "tpm2";
  in.evidence = as_view(bundle);
  in.expected_binding = Bytes(32, 0xAB);
  AkCache cache;
  in.ak_cache = &cache;
  for (auto _ : st) {
    auto r = policy::appraise(&*pol, in);
    if (r.verdict != policy::Verdict::kAffirming) st.SkipWithError("not affirming");
    benchmark::DoNotOptimize(r.encode());
  }
  EVP_PKEY_free(q.key);
  st.SetItemsProcessed(st.iterations());
}

void BM_RawVerifyRsa2048(benchmark::State& st) {
  raw_verify(st, false);
}
void BM_QuoteVerifyRsa2048(benchmark::State& st) {
  quote_verify(st, false, true);
}
void BM_QuoteVerifyRsa2048ColdAk(benchmark::State& st) {
  quote_verify(st, false, false);
}
void BM_QuoteAppraiseRsa2048(benchmark::State& st) {
  quote_appraise(st, false);
}
void BM_RawVerifyP256(benchmark::State& st) {
  raw_verify(st, true);
}
void BM_QuoteVerifyP256(benchmark::State& st) {
  quote_verify(st, true, true);
}
void BM_QuoteVerifyP256ColdAk(benchmark::State& st) {
  quote_verify(st, true, false);
}
void BM_QuoteAppraiseP256(benchmark::State& st) {
  quote_appraise(st, true);
}
BENCHMARK(BM_RawVerifyRsa2048);
BENCHMARK(BM_QuoteVerifyRsa2048);
BENCHMARK(BM_QuoteVerifyRsa2048ColdAk);
BENCHMARK(BM_QuoteAppraiseRsa2048);
BENCHMARK(BM_RawVerifyP256);
BENCHMARK(BM_QuoteVerifyP256);
BENCHMARK(BM_QuoteVerifyP256ColdAk);
BENCHMARK(BM_QuoteAppraiseP256);

// Event-log replay: parse + replay (SHA-1 and SHA-256 banks) of a log of N entries.
void BM_EventLogReplay(benchmark::State& st) {
  EventLogWriter w;
  Bytes data(64, 0x11);
  for (int64_t i = 0; i < st.range(0); ++i) {
    std::string path = "/boot/file-" + std::to_string(i);
    w.add(static_cast<uint32_t>(8 + i % 2), kEvIpl, as_view(path), as_view(data));
  }
  Bytes log = w.bytes();
  for (auto _ : st) {
    auto parsed = parse_event_log(as_view(log));
    PcrValues v = replay(*parsed);
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(st.iterations() * st.range(0));
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(log.size()));
}
BENCHMARK(BM_EventLogReplay)->Arg(1000);

}  // namespace
}  // namespace attestnet::evidence::tpm2
