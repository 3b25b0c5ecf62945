// Byte strings, fixed-size digests and hex helpers.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attestnet {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;
using Hash32 = std::array<uint8_t, 32>;

std::string to_hex(ByteView b);
inline std::string to_hex(const Hash32& h) {
  return to_hex(ByteView(h.data(), h.size()));
}
std::optional<Bytes> from_hex(std::string_view hex);
// Exactly 64 hex digits (a hash, a request id, an anchor), else nullopt.
std::optional<Hash32> hash32_from_hex(std::string_view hex);
std::optional<Bytes> from_base64(std::string_view b64);

inline ByteView as_view(const Bytes& b) {
  return ByteView(b.data(), b.size());
}
inline ByteView as_view(const Hash32& h) {
  return ByteView(h.data(), h.size());
}
inline ByteView as_view(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Hash32 values are uniformly distributed digests: their first 8 bytes are a good hash-table
// key. (Ordered maps on Hash32 pay a memcmp per comparison; prefer unordered ones on hot paths.)
struct Hash32Hasher {
  size_t operator()(const Hash32& h) const {
    size_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<size_t>(h[i]) << (8 * i);
    return v;
  }
};

// Short hex prefix for logs: first 4 bytes.
std::string short_hex(const Hash32& h);

}  // namespace attestnet
