#include "crypto/quorum.h"

#include <algorithm>

namespace attestnet::crypto {

void QuorumCertificate::add(uint32_t signer, const Signature& sig) {
  auto it = std::lower_bound(sigs.begin(), sigs.end(), signer,
                             [](const QuorumSignature& s, uint32_t i) { return s.signer < i; });
  if (it != sigs.end() && it->signer == signer) return;
  sigs.insert(it, QuorumSignature{signer, sig});
}

void QuorumCertificate::encode(Writer& w) const {
  w.header(kTag, 1).u32(static_cast<uint32_t>(sigs.size()));
  for (const auto& s : sigs) w.u32(s.signer).fixed(ByteView(s.sig.data(), s.sig.size()));
}

Result<QuorumCertificate> QuorumCertificate::decode(Reader& r) {
  ATN_CHECK(r.header(kTag, 1, 1, "quorum certificate"));
  ATN_TRY(uint32_t n, r.count(4 + 64));
  QuorumCertificate qc;
  qc.sigs.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    QuorumSignature s;
    ATN_TRY(s.signer, r.u32());
    ATN_TRY(Bytes sig, r.fixed(64));
    std::copy(sig.begin(), sig.end(), s.sig.begin());
    qc.sigs.push_back(s);
  }
  return qc;
}

Status verify_quorum(const QuorumCertificate& qc, const std::vector<PublicKey>& committee,
                     size_t threshold, ByteView message, const VerifyFn& verify_fn) {
  std::vector<bool> seen(committee.size(), false);
  size_t valid = 0;
  for (const auto& s : qc.sigs) {
    if (s.signer >= committee.size()) {
      return make_error(Errc::kUnknownSigner, "signer index " + std::to_string(s.signer) +
                                                  " is not in the committee of " +
                                                  std::to_string(committee.size()));
    }
    if (seen[s.signer]) {
      return make_error(Errc::kDuplicateSigner,
                        "signer " + std::to_string(s.signer) + " appears more than once");
    }
    seen[s.signer] = true;
    bool ok = verify_fn ? verify_fn(committee[s.signer], message, s.sig)
                        : verify(committee[s.signer], message, s.sig);
    if (!ok) {
      return make_error(Errc::kBadSignature, "signature of signer " + std::to_string(s.signer) +
                                                 " does not verify over the certified message");
    }
    ++valid;
  }
  if (valid < threshold) {
    return make_error(Errc::kBelowThreshold, std::to_string(valid) + " valid signature(s), " +
                                                 std::to_string(threshold) + " required");
  }
  return {};
}

}  // namespace attestnet::crypto
