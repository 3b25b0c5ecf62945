// SHA-256, and domain-separated hashing: H(tag, data) = SHA-256(len(tag):u8 || tag || data).
// Every hash the protocol signs or chains names its domain, so a digest of one kind of object
// can never be presented as a digest of another.
#pragma once

#include <string_view>

#include "core/bytes.h"

namespace attestnet {

Hash32 sha256(ByteView data);
Hash32 hash_domain(std::string_view domain, ByteView data);

class Sha256 {
 public:
  Sha256();
  Sha256& update(ByteView data);
  Hash32 finish();

 private:
  alignas(64) unsigned char state_[128];
};

}  // namespace attestnet
