#include "crypto/signature_memo.h"

namespace attestnet::crypto {

namespace {
Hash32 memo_key(const PublicKey& pk, ByteView msg, const Signature& sig) {
  return Sha256()
      .update(ByteView(pk.data(), pk.size()))
      .update(ByteView(sig.data(), sig.size()))
      .update(msg)
      .finish();
}
}  // namespace

bool SignatureMemo::verify(const PublicKey& pk, ByteView msg, const Signature& sig) {
  Hash32 key = memo_key(pk, msg, sig);
  {
    std::lock_guard lk(mu_);
    bool good = good_.contains(key);
    if (good || bad_.contains(key)) {
      ++hits_;
      return good;
    }
  }
  ++verifications_;
  bool ok = crypto::verify(pk, msg, sig);
  remember(key, ok);
  return ok;
}

void SignatureMemo::note_own(const PublicKey& pk, ByteView msg, const Signature& sig) {
  remember(memo_key(pk, msg, sig), true);
}

void SignatureMemo::remember(const Hash32& key, bool ok) {
  std::lock_guard lk(mu_);
  (ok ? good_ : bad_).insert(key);
}

void SignatureMemo::Generations::insert(const Hash32& key) {
  if (newer.size() >= newer.max_items()) {
    // The older generation's table is reused by the next newer one: no new table.
    older.clear();
    std::swap(newer, older);
  }
  newer.insert(key);
}

size_t SignatureMemo::size() const {
  std::lock_guard lk(mu_);
  return good_.newer.size() + good_.older.size() + bad_.newer.size() + bad_.older.size();
}

VerifyFn SignatureMemo::fn() {
  return [this](const PublicKey& pk, ByteView m, const Signature& s) { return verify(pk, m, s); };
}

}  // namespace attestnet::crypto
