// The SEV-SNP evidence bundle: what an AttestationRequest carries for platform "sev-snp".
//
//   SevSnpEvidence  tag 0x0403 v1
//     report:bytes            ATTESTATION_REPORT, 1184 bytes
//     leaf:bytes              VCEK or VLEK certificate, DER
//     n:u32 { cert:bytes }*n  ASK/ASVK and ARK, DER, as AMD KDS serves them (the ARK must be one
//                             the policy pins; certificates are never fetched at appraisal)
#pragma once

#include "core/codec.h"
#include "evidence/sevsnp/report.h"

namespace attestnet::evidence::sevsnp {

struct SevSnpEvidence {
  static constexpr uint16_t kTag = 0x0403;
  Bytes report;
  Bytes leaf;
  std::vector<Bytes> chain;

  Bytes encode() const;
  static Result<SevSnpEvidence> decode(ByteView in);
  Result<CertChain> certificates() const;
};

}  // namespace attestnet::evidence::sevsnp
