// Ed25519 identity keys and signatures (RFC 8032) on libsodium.
#pragma once

#include <array>
#include <optional>

#include "core/bytes.h"
#include "core/result.h"

namespace attestnet::crypto {

using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;
using Seed = std::array<uint8_t, 32>;

// Must be called once before any other function here (idempotent, thread-safe).
void init();

class SecretKey {
 public:
  static SecretKey from_seed(const Seed& seed);
  static SecretKey generate();
  const PublicKey& public_key() const { return pk_; }
  Signature sign(ByteView msg) const;
  const Seed& seed() const { return seed_; }

 private:
  Seed seed_{};
  std::array<uint8_t, 64> sk_{};
  PublicKey pk_{};
};

// Strict RFC 8032 verification (libsodium rejects non-canonical S, small-order points).
bool verify(const PublicKey& pk, ByteView msg, const Signature& sig);

// Deterministic seed for tests and the simulator: SHA-256("attestnet/test-key" || label).
Seed test_seed(std::string_view label);

}  // namespace attestnet::crypto
