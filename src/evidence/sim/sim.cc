#include "evidence/sim/sim.h"

#include "core/hash.h"

namespace attestnet::evidence::sim {

namespace {
void body(Writer& w, const SimEvidence& e) {
  w.header(SimEvidence::kTag, 1).fixed(as_view(e.platform_key)).bytes(as_view(e.report_data));
  w.u32(static_cast<uint32_t>(e.measurements.size()));
  for (const auto& m : e.measurements) w.str(m.name).bytes(as_view(m.digest));
}
}  // namespace

Bytes SimEvidence::signed_bytes() const {
  Writer w;
  body(w, *this);
  Hash32 h = hash_domain("attestnet/sim-evidence", as_view(w.data()));
  return Bytes(h.begin(), h.end());
}

Bytes SimEvidence::encode() const {
  Writer w;
  body(w, *this);
  w.fixed(ByteView(signature.data(), signature.size()));
  return std::move(w).take();
}

Result<SimEvidence> SimEvidence::decode(ByteView in) {
  Reader r(in, 1u << 20);
  ATN_CHECK(r.header(kTag, 1, 1, "SimEvidence"));
  SimEvidence e;
  ATN_TRY(Bytes pk, r.fixed(32));
  std::copy(pk.begin(), pk.end(), e.platform_key.begin());
  ATN_TRY(e.report_data, r.bytes());
  ATN_TRY(uint32_t n, r.count(8));
  for (uint32_t i = 0; i < n; ++i) {
    SimMeasurement m;
    ATN_TRY(m.name, r.str());
    ATN_TRY(m.digest, r.bytes());
    e.measurements.push_back(std::move(m));
  }
  ATN_TRY(Bytes sig, r.fixed(64));
  std::copy(sig.begin(), sig.end(), e.signature.begin());
  ATN_CHECK(r.finish());
  return e;
}

SimEvidence make_sim_evidence(const crypto::SecretKey& platform, ByteView report_data,
                              std::vector<SimMeasurement> measurements) {
  SimEvidence e;
  e.platform_key = platform.public_key();
  e.report_data.assign(report_data.begin(), report_data.end());
  e.measurements = std::move(measurements);
  e.signature = platform.sign(as_view(e.signed_bytes()));
  return e;
}

Result<SimEvidence> verify_sim_evidence(ByteView in, const crypto::VerifyFn* verify) {
  ATN_TRY(SimEvidence e, SimEvidence::decode(in));
  Bytes msg = e.signed_bytes();
  bool ok = verify ? (*verify)(e.platform_key, as_view(msg), e.signature)
                   : crypto::verify(e.platform_key, as_view(msg), e.signature);
  if (!ok)
    return make_error(Errc::kBadSignature,
                      "sim evidence signature does not verify with its platform key " +
                          to_hex(ByteView(e.platform_key.data(), e.platform_key.size())));
  return e;
}

}  // namespace attestnet::evidence::sim
