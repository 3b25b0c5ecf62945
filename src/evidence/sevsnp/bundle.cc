#include "evidence/sevsnp/bundle.h"

namespace attestnet::evidence::sevsnp {

Bytes SevSnpEvidence::encode() const {
  Writer w(report.size() + leaf.size() + 4096);
  w.header(kTag, 1).bytes(as_view(report)).bytes(as_view(leaf));
  w.u32(static_cast<uint32_t>(chain.size()));
  for (const auto& c : chain) w.bytes(as_view(c));
  return std::move(w).take();
}

Result<SevSnpEvidence> SevSnpEvidence::decode(ByteView in) {
  Reader r(in, 1u << 20);
  ATN_CHECK(r.header(kTag, 1, 1, "SevSnpEvidence"));
  SevSnpEvidence e;
  ATN_TRY(e.report, r.bytes());
  ATN_TRY(e.leaf, r.bytes());
  ATN_TRY(uint32_t n, r.count(4));
  if (n > 8) return make_error(Errc::kOversize, "more than 8 certificates in an SEV-SNP bundle");
  for (uint32_t i = 0; i < n; ++i) {
    ATN_TRY(Bytes c, r.bytes());
    e.chain.push_back(std::move(c));
  }
  ATN_CHECK(r.finish());
  return e;
}

Result<CertChain> SevSnpEvidence::certificates() const {
  auto leaf_cert = crypto::Certificate::from_der(as_view(leaf));
  if (!leaf_cert.ok())
    return make_error(Errc::kCertificate, "VCEK/VLEK: " + leaf_cert.error().reason);
  CertChain c{*leaf_cert, {}};
  for (const auto& der : chain) {
    auto cert = crypto::Certificate::from_der(as_view(der));
    if (!cert.ok()) return make_error(Errc::kCertificate, "ASK/ARK: " + cert.error().reason);
    c.chain.push_back(*cert);
  }
  return c;
}

}  // namespace attestnet::evidence::sevsnp
