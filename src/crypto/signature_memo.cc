#include "crypto/signature_memo.h"

namespace attestnet::crypto {

bool SignatureMemo::verify(const PublicKey& pk, ByteView msg, const Signature& sig) {
  Hash32 key = Sha256()
                   .update(ByteView(pk.data(), pk.size()))
                   .update(ByteView(sig.data(), sig.size()))
                   .update(msg)
                   .finish();
  {
    std::lock_guard lk(mu_);
    if (good_.count(key)) return true;
    if (bad_.count(key)) return false;
  }
  bool ok = crypto::verify(pk, msg, sig);
  std::lock_guard lk(mu_);
  auto& set = ok ? good_ : bad_;
  if (set.size() >= (ok ? max_good_ : max_bad_)) set.clear();
  set.insert(key);
  return ok;
}

VerifyFn SignatureMemo::fn() {
  return [this](const PublicKey& pk, ByteView m, const Signature& s) { return verify(pk, m, s); };
}

}  // namespace attestnet::crypto
