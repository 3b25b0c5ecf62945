#include "core/codec.h"

namespace attestnet {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::kTruncated:
      return "truncated";
    case Errc::kTrailingBytes:
      return "trailing-bytes";
    case Errc::kOversize:
      return "oversize";
    case Errc::kBadTag:
      return "bad-tag";
    case Errc::kBadVersion:
      return "bad-version";
    case Errc::kBadValue:
      return "bad-value";
    case Errc::kBadSignature:
      return "bad-signature";
    case Errc::kUnknownSigner:
      return "unknown-signer";
    case Errc::kDuplicateSigner:
      return "duplicate-signer";
    case Errc::kBelowThreshold:
      return "below-threshold";
    case Errc::kProofMismatch:
      return "proof-mismatch";
    case Errc::kWrongChain:
      return "wrong-chain";
    case Errc::kCommitteeMismatch:
      return "committee-mismatch";
    case Errc::kRecordMismatch:
      return "record-mismatch";
    case Errc::kNotFound:
      return "not-found";
    case Errc::kIo:
      return "io";
    case Errc::kInvalidArgument:
      return "invalid-argument";
    case Errc::kBadMagic:
      return "bad-magic";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kBindingMismatch:
      return "binding-mismatch";
    case Errc::kPcrMismatch:
      return "pcr-mismatch";
    case Errc::kCertificate:
      return "certificate";
    case Errc::kStale:
      return "stale";
    case Errc::kInternal:
      return "internal";
    case Errc::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

Error Reader::truncated(size_t need) const {
  return make_error(Errc::kTruncated, "input truncated at byte " + std::to_string(pos_) +
                                          ": need " + std::to_string(need) +
                                          " more byte(s), have " + std::to_string(remaining()));
}

Result<uint64_t> Reader::le(int n) {
  if (remaining() < static_cast<size_t>(n)) return truncated(n);
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
  pos_ += n;
  return v;
}

Result<uint8_t> Reader::u8() {
  ATN_TRY(uint64_t v, le(1));
  return static_cast<uint8_t>(v);
}
Result<uint16_t> Reader::u16() {
  ATN_TRY(uint64_t v, le(2));
  return static_cast<uint16_t>(v);
}
Result<uint32_t> Reader::u32() {
  ATN_TRY(uint64_t v, le(4));
  return static_cast<uint32_t>(v);
}
Result<uint64_t> Reader::u64() {
  return le(8);
}

Result<bool> Reader::boolean() {
  ATN_TRY(uint8_t v, u8());
  if (v > 1) {
    return make_error(Errc::kBadValue, "boolean at byte " + std::to_string(pos_ - 1) + " is " +
                                           std::to_string(v) + ", must be 0 or 1");
  }
  return v == 1;
}

Result<uint8_t> Reader::header(uint16_t tag, uint8_t min_version, uint8_t max_version,
                               const char* what) {
  ATN_TRY(uint16_t t, u16());
  if (t != tag) {
    return make_error(Errc::kBadTag, std::string("expected a ") + what + " (tag " +
                                         std::to_string(tag) + "), found tag " + std::to_string(t));
  }
  ATN_TRY(uint8_t v, u8());
  if (v < min_version || v > max_version) {
    return make_error(Errc::kBadVersion, std::string(what) + " version " + std::to_string(v) +
                                             " is not supported (this build reads " +
                                             std::to_string(min_version) + ".." +
                                             std::to_string(max_version) + ")");
  }
  return v;
}

Result<Bytes> Reader::fixed(size_t n) {
  if (remaining() < n) return truncated(n);
  Bytes out(in_.begin() + pos_, in_.begin() + pos_ + n);
  pos_ += n;
  return out;
}

Result<Hash32> Reader::hash() {
  if (remaining() < 32) return truncated(32);
  Hash32 h;
  std::copy(in_.begin() + pos_, in_.begin() + pos_ + 32, h.begin());
  pos_ += 32;
  return h;
}

Result<ByteView> Reader::bytes_view() {
  ATN_TRY(uint32_t len, u32());
  if (len > max_len_) {
    return make_error(Errc::kOversize, "length " + std::to_string(len) + " at byte " +
                                           std::to_string(pos_ - 4) + " exceeds the limit of " +
                                           std::to_string(max_len_));
  }
  if (remaining() < len) return truncated(len);
  ByteView v = in_.subspan(pos_, len);
  pos_ += len;
  return v;
}

Result<Bytes> Reader::bytes() {
  ATN_TRY(ByteView v, bytes_view());
  return Bytes(v.begin(), v.end());
}

Result<std::string> Reader::str() {
  ATN_TRY(ByteView v, bytes_view());
  return std::string(v.begin(), v.end());
}

Result<uint32_t> Reader::count(size_t min_elem_size) {
  ATN_TRY(uint32_t n, u32());
  if (min_elem_size > 0 && n > remaining() / min_elem_size) {
    return make_error(Errc::kOversize, "element count " + std::to_string(n) + " at byte " +
                                           std::to_string(pos_ - 4) + " cannot fit in the " +
                                           std::to_string(remaining()) + " bytes left");
  }
  return n;
}

Status Reader::finish() const {
  if (remaining() != 0) {
    return make_error(Errc::kTrailingBytes, std::to_string(remaining()) +
                                                " trailing byte(s) after the last field at byte " +
                                                std::to_string(pos_));
  }
  return {};
}

}  // namespace attestnet
