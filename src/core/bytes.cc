#include "core/bytes.h"

#include <sodium.h>

namespace attestnet {

std::string to_hex(ByteView b) {
  static const char* kDigits = "0123456789abcdef";
  // Sized once and written by index: a response's kilobytes of hex were a push_back per digit.
  std::string out(b.size() * 2, '\0');
  for (size_t i = 0; i < b.size(); ++i) {
    out[2 * i] = kDigits[b[i] >> 4];
    out[2 * i + 1] = kDigits[b[i] & 15];
  }
  return out;
}

std::optional<Hash32> hash32_from_hex(std::string_view hex) {
  auto b = from_hex(hex);
  if (!b || b->size() != 32) return std::nullopt;
  Hash32 h;
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

std::optional<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::optional<Bytes> from_base64(std::string_view b64) {
  Bytes out(b64.size() * 3 / 4 + 3);
  size_t len = 0;
  if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string short_hex(const Hash32& h) {
  return to_hex(ByteView(h.data(), 4));
}

}  // namespace attestnet
