// The DCAP evidence bundle: what an AttestationRequest carries for platforms "tdx" and "sgx".
//
//   DcapEvidence  tag 0x0404 v1
//     quote:bytes              the DCAP quote (v3 SGX, v4/v5 TDX), as the QE returned it
//     tcb_info:str             PCS TCB Info response body, empty when absent
//     qe_identity:str          PCS QE Identity response body, empty when absent
//     signing_chain:str        PEM TCB-Info-Issuer-Chain (TCB Signing cert, root), empty when
//     absent
#pragma once

#include "core/codec.h"
#include "evidence/tdx/collateral.h"

namespace attestnet::evidence::tdx {

struct DcapEvidence {
  static constexpr uint16_t kTag = 0x0404;
  Bytes quote;
  Collateral collateral;
  bool has_collateral() const { return !collateral.tcb_info_json.empty(); }

  Bytes encode() const {
    Writer w(quote.size() + collateral.tcb_info_json.size() + 8192);
    w.header(kTag, 1).bytes(as_view(quote)).str(collateral.tcb_info_json);
    w.str(collateral.qe_identity_json).str(collateral.signing_chain_pem);
    w.bytes(as_view(collateral.pck_crl));
    return std::move(w).take();
  }
  static Result<DcapEvidence> decode(ByteView in) {
    Reader r(in, 1u << 20);
    ATN_CHECK(r.header(kTag, 1, 1, "DcapEvidence"));
    DcapEvidence e;
    ATN_TRY(e.quote, r.bytes());
    ATN_TRY(e.collateral.tcb_info_json, r.str());
    ATN_TRY(e.collateral.qe_identity_json, r.str());
    ATN_TRY(e.collateral.signing_chain_pem, r.str());
    ATN_TRY(e.collateral.pck_crl, r.bytes());
    ATN_CHECK(r.finish());
    return e;
  }
};

}  // namespace attestnet::evidence::tdx
