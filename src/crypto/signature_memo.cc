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
    bool good = good_.count(key) != 0;
    if (good || bad_.count(key)) {
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
  auto& set = ok ? good_ : bad_;
  if (set.size() >= (ok ? max_good_ : max_bad_)) set.clear();
  set.insert(key);
}

VerifyFn SignatureMemo::fn() {
  return [this](const PublicKey& pk, ByteView m, const Signature& s) { return verify(pk, m, s); };
}

}  // namespace attestnet::crypto
