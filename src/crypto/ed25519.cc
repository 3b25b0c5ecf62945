#include "crypto/ed25519.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "core/hash.h"

namespace attestnet::crypto {

void init() {
  if (sodium_init() < 0) std::abort();  // libsodium cannot run: nothing here can be trusted
}

SecretKey SecretKey::from_seed(const Seed& seed) {
  init();
  SecretKey k;
  k.seed_ = seed;
  crypto_sign_seed_keypair(k.pk_.data(), k.sk_.data(), seed.data());
  return k;
}

SecretKey SecretKey::generate() {
  init();
  Seed s;
  randombytes_buf(s.data(), s.size());
  return from_seed(s);
}

Signature SecretKey::sign(ByteView msg) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), sk_.data());
  return sig;
}

bool verify(const PublicKey& pk, ByteView msg, const Signature& sig) {
  return crypto_sign_verify_detached(sig.data(), msg.data(), msg.size(), pk.data()) == 0;
}

Seed test_seed(std::string_view label) {
  return hash_domain("attestnet/test-key", as_view(label));
}

}  // namespace attestnet::crypto
