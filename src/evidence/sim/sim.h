// Software evidence for tests and benchmarks: measurements signed by an Ed25519 "platform key".
// It proves nothing about hardware; a policy accepts it only when it names platform `sim` and
// the platform key explicitly (policy/), and every other policy rejects it.
//
//   SimEvidence  tag 0x0402 v1
//     platform_key[32] report_data:bytes n:u32 { name:str digest:bytes }*n signature[64]
//   signature = Ed25519 over H("attestnet/sim-evidence", encoding without the signature)
#pragma once

#include <string>
#include <vector>

#include "core/codec.h"
#include "crypto/ed25519.h"
#include "crypto/quorum.h"

namespace attestnet::evidence::sim {

struct SimMeasurement {
  std::string name;
  Bytes digest;
};

struct SimEvidence {
  static constexpr uint16_t kTag = 0x0402;
  crypto::PublicKey platform_key{};
  Bytes report_data;  // carries the binding (evidence/binding.h)
  std::vector<SimMeasurement> measurements;
  crypto::Signature signature{};

  Bytes signed_bytes() const;
  Bytes encode() const;
  static Result<SimEvidence> decode(ByteView in);
};

SimEvidence make_sim_evidence(const crypto::SecretKey& platform, ByteView report_data,
                              std::vector<SimMeasurement> measurements);
// Decodes and checks the signature.
// `verify` (optional) replaces crypto::verify: a node passes its memo of verified signatures.
Result<SimEvidence> verify_sim_evidence(ByteView in, const crypto::VerifyFn* verify = nullptr);

}  // namespace attestnet::evidence::sim
