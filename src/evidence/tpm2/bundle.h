// The TPM evidence bundle: what an AttestationRequest carries for platform "tpm2", in the
// canonical codec (core/codec.h), so every node appraises the same bytes.
//
//   Tpm2Evidence  tag 0x0401 v1
//     ak_public:bytes        TPM2B_PUBLIC (preferred: name and attributes known) or SPKI DER
//     quote:bytes            TPMS_ATTEST, as signed
//     signature:bytes        TPMT_SIGNATURE, or a plain signature (then plain_hash applies)
//     plain_hash:u16         TPM hash algorithm of a plain signature (0x000B = sha256)
//     n:u32 { alg:u16 pcr:u32 value:bytes }*n      PCR values, sorted by (alg, pcr)
//     event_log:bytes        TCG binary log, empty when absent
//     ima_log:bytes          IMA measurement list (ascii or binary), empty when absent
#pragma once

#include "core/codec.h"
#include "evidence/tpm2/quote.h"

namespace attestnet::evidence::tpm2 {

struct Tpm2Evidence {
  static constexpr uint16_t kTag = 0x0401;
  Bytes ak_public;
  Bytes quote;
  Bytes signature;
  uint16_t plain_hash = kAlgSha256;
  PcrValues pcrs;
  Bytes event_log;
  Bytes ima_log;

  Bytes encode() const;
  static Result<Tpm2Evidence> decode(ByteView in);
};

}  // namespace attestnet::evidence::tpm2
