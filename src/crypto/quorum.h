// Quorum certificate: signatures of distinct committee members over ONE message.
//
// Encoding (tag 0x0101, version 1):
//   signer_count:u32 { signer_index:u32 signature[64] } *   (indices strictly increasing)
//
// A certificate is valid for (committee, threshold, message) when every signer is a member,
// no signer repeats, every signature verifies, and at least `threshold` signers remain. The
// verification reports the first failure with its own error code and the signer concerned.
#pragma once

#include <functional>
#include <vector>

#include "core/codec.h"
#include "crypto/ed25519.h"

namespace attestnet::crypto {

struct QuorumSignature {
  uint32_t signer = 0;
  Signature sig{};
  bool operator==(const QuorumSignature&) const = default;
};

struct QuorumCertificate {
  static constexpr uint16_t kTag = 0x0101;
  std::vector<QuorumSignature> sigs;  // sorted by signer

  void add(uint32_t signer, const Signature& sig);  // keeps order; ignores a repeated signer
  void encode(Writer& w) const;
  static Result<QuorumCertificate> decode(Reader& r);
  bool operator==(const QuorumCertificate&) const = default;
};

// verify_fn defaults to crypto::verify; the node and the simulator may pass a cached one.
using VerifyFn = std::function<bool(const PublicKey&, ByteView, const Signature&)>;

Status verify_quorum(const QuorumCertificate& qc, const std::vector<PublicKey>& committee,
                     size_t threshold, ByteView message, const VerifyFn& verify_fn = {});

}  // namespace attestnet::crypto
