#include "core/hash.h"

#include <sodium.h>

#include <cstring>

namespace attestnet {

static_assert(sizeof(crypto_hash_sha256_state) <= 128);

Hash32 sha256(ByteView data) {
  Hash32 h;
  crypto_hash_sha256(h.data(), data.data(), data.size());
  return h;
}

Sha256::Sha256() { crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_)); }

Sha256& Sha256::update(ByteView data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_), data.data(),
                            data.size());
  return *this;
}

Hash32 Sha256::finish() {
  Hash32 h;
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), h.data());
  return h;
}

Hash32 hash_domain(std::string_view domain, ByteView data) {
  uint8_t len = static_cast<uint8_t>(domain.size());
  return Sha256().update(ByteView(&len, 1)).update(as_view(domain)).update(data).finish();
}

}  // namespace attestnet
