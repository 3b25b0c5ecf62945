// Canonical binary codec. Every signed or hashed object has exactly one encoding:
//
//   object   := tag:u16 version:u8 field*
//   u8/u16/u32/u64 := fixed width, little endian
//   bytes    := len:u32 data[len]          (len bounded by the reader's limit)
//   fixed N  := data[N]                     (digests, keys, signatures)
//   bool     := u8 in {0,1}
//
// The Reader rejects truncation, trailing bytes, lengths over its limit, unknown tags and
// versions, and non-canonical booleans, each with a typed Error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"

namespace attestnet {

class Writer {
 public:
  Writer() = default;
  explicit Writer(size_t reserve) { buf_.reserve(reserve); }

  Writer& header(uint16_t tag, uint8_t version) {
    u16(tag);
    return u8(version);
  }
  Writer& u8(uint8_t v) {
    buf_.push_back(v);
    return *this;
  }
  Writer& u16(uint16_t v) { return le(v, 2); }
  Writer& u32(uint32_t v) { return le(v, 4); }
  Writer& u64(uint64_t v) { return le(v, 8); }
  Writer& boolean(bool v) { return u8(v ? 1 : 0); }
  Writer& fixed(ByteView b) {
    buf_.insert(buf_.end(), b.begin(), b.end());
    return *this;
  }
  Writer& hash(const Hash32& h) { return fixed(as_view(h)); }
  Writer& bytes(ByteView b) {
    u32(static_cast<uint32_t>(b.size()));
    return fixed(b);
  }
  Writer& str(std::string_view s) { return bytes(as_view(s)); }

  const Bytes& data() const& { return buf_; }
  Bytes take() && { return std::move(buf_); }
  size_t size() const { return buf_.size(); }

 private:
  Writer& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes buf_;
};

class Reader {
 public:
  static constexpr uint32_t kDefaultMaxLen = 64u << 20;  // 64 MiB: no field is ever larger

  explicit Reader(ByteView in, uint32_t max_len = kDefaultMaxLen) : in_(in), max_len_(max_len) {}

  // Checks the tag and that the version is in [min_version, max_version]; returns the version.
  Result<uint8_t> header(uint16_t tag, uint8_t min_version, uint8_t max_version, const char* what);
  Result<uint8_t> u8();
  Result<uint16_t> u16();
  Result<uint32_t> u32();
  Result<uint64_t> u64();
  Result<bool> boolean();
  Result<Bytes> fixed(size_t n);
  Result<Hash32> hash();
  Result<Bytes> bytes();
  Result<std::string> str();
  // Reads a length-prefixed field without copying; the view lives as long as the input.
  Result<ByteView> bytes_view();
  // A count of following elements, each at least min_elem_size bytes: rejects counts that
  // cannot fit in what is left (so a hostile count cannot make the caller allocate).
  Result<uint32_t> count(size_t min_elem_size);

  Status finish() const;  // no trailing bytes
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  // The bytes read since position `start` (a view into the input).
  ByteView read_since(size_t start) const { return in_.subspan(start, pos_ - start); }

 private:
  Result<uint64_t> le(int n);
  Error truncated(size_t need) const;
  ByteView in_;
  size_t pos_ = 0;
  uint32_t max_len_;
};

// Propagate an error from a Result-returning expression: ATN_TRY(auto x, r.u32());
#define ATN_CONCAT_INNER(a, b) a##b
#define ATN_CONCAT(a, b) ATN_CONCAT_INNER(a, b)
#define ATN_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                  \
  if (!tmp.ok()) return tmp.error();  \
  decl = std::move(tmp).value()
#define ATN_TRY(decl, expr) ATN_TRY_IMPL(ATN_CONCAT(atn_try_, __LINE__), decl, expr)
#define ATN_CHECK(expr)                        \
  do {                                         \
    auto atn_st_ = (expr);                     \
    if (!atn_st_.ok()) return atn_st_.error(); \
  } while (0)

}  // namespace attestnet
