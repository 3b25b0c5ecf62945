// SHA-256 on OpenSSL: its assembly uses the CPU's SHA extensions where present, several times
// faster than a portable implementation, and hashing requests is on the protocol's hot path.
// The one-shot SHA256_* functions are deprecated in OpenSSL 3 in favour of EVP, whose per-call
// context setup costs more than hashing a 100-byte request; they remain supported in 3.x.
#include "core/hash.h"

#include <openssl/sha.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace attestnet {

static_assert(sizeof(SHA256_CTX) <= 128);

Hash32 sha256(ByteView data) {
  Hash32 h;
  SHA256(data.data(), data.size(), h.data());
  return h;
}

Sha256::Sha256() {
  SHA256_Init(reinterpret_cast<SHA256_CTX*>(state_));
}

Sha256& Sha256::update(ByteView data) {
  SHA256_Update(reinterpret_cast<SHA256_CTX*>(state_), data.data(), data.size());
  return *this;
}

Hash32 Sha256::finish() {
  Hash32 h;
  SHA256_Final(h.data(), reinterpret_cast<SHA256_CTX*>(state_));
  return h;
}

Hash32 hash_domain(std::string_view domain, ByteView data) {
  uint8_t len = static_cast<uint8_t>(domain.size());
  return Sha256().update(ByteView(&len, 1)).update(as_view(domain)).update(data).finish();
}

}  // namespace attestnet
