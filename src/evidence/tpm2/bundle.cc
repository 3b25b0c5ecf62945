#include "evidence/tpm2/bundle.h"

namespace attestnet::evidence::tpm2 {

Bytes Tpm2Evidence::encode() const {
  Writer w(quote.size() + signature.size() + event_log.size() + ima_log.size() + 512);
  w.header(kTag, 1).bytes(as_view(ak_public)).bytes(as_view(quote)).bytes(as_view(signature));
  w.u16(plain_hash);
  uint32_t n = 0;
  for (const auto& [alg, bank] : pcrs) n += static_cast<uint32_t>(bank.size());
  w.u32(n);
  for (const auto& [alg, bank] : pcrs)
    for (const auto& [pcr, value] : bank) w.u16(alg).u32(pcr).bytes(as_view(value));
  w.bytes(as_view(event_log)).bytes(as_view(ima_log));
  return std::move(w).take();
}

Result<Tpm2Evidence> Tpm2Evidence::decode(ByteView in) {
  Reader r(in, 16u << 20);
  ATN_CHECK(r.header(kTag, 1, 1, "Tpm2Evidence"));
  Tpm2Evidence e;
  ATN_TRY(e.ak_public, r.bytes());
  ATN_TRY(e.quote, r.bytes());
  ATN_TRY(e.signature, r.bytes());
  ATN_TRY(e.plain_hash, r.u16());
  ATN_TRY(uint32_t n, r.count(10));
  if (n > 4 * 24) return make_error(Errc::kOversize, "more than 96 PCR values in a bundle");
  int64_t prev = -1;
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(uint16_t alg, r.u16());
    ATN_TRY(uint32_t pcr, r.u32());
    ATN_TRY(Bytes v, r.bytes());
    int64_t key = static_cast<int64_t>(alg) << 32 | pcr;
    if (key <= prev)
      return make_error(Errc::kBadValue, "PCR values in the bundle are not sorted by (alg, pcr)");
    prev = key;
    auto h = hash_of(alg);
    if (!h || pcr >= 24 || v.size() != crypto::hash_size(*h))
      return make_error(Errc::kBadValue, "PCR " + std::to_string(pcr) + " of bank " +
                                             alg_name(alg) + " is not a valid PCR value");
    e.pcrs[alg][pcr] = std::move(v);
  }
  ATN_TRY(e.event_log, r.bytes());
  ATN_TRY(e.ima_log, r.bytes());
  ATN_CHECK(r.finish());
  return e;
}

}  // namespace attestnet::evidence::tpm2
