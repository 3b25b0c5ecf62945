// DCAP collateral and TCB status, as Intel's Quote Verification Library derives them:
//   - TCB Info (v2 for SGX, v3 for TDX) and QE Identity (v2) are JSON documents signed (ECDSA
//     P-256, hex r||s) over the exact bytes of their "tcbInfo" / "enclaveIdentity" value by the
//     Intel SGX TCB Signing certificate, which chains to the pinned root;
//   - the platform's TCB level is the first level (in Intel's order) whose SGX components and
//     PCESVN the PCK certificate meets, and for TDX whose TDX components TEE_TCB_SVN meets;
//   - for TDX 1.5 modules (TEE_TCB_SVN[1] > 0) the TDX module identity TDX_<xx> gives the
//     module's status; the QE identity gives the QE's;
//   - the result is the worst of these: UpToDate < SWHardeningNeeded < ConfigurationNeeded <
//     ConfigurationAndSWHardeningNeeded < OutOfDate < OutOfDateConfigurationNeeded < Revoked.
// The collateral travels in the evidence bundle (it is never fetched at appraisal); dates are
// judged at the time given.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/pkey.h"
#include "evidence/tdx/quote.h"

namespace attestnet::evidence::tdx {

enum class TcbStatus : uint8_t {
  kUpToDate = 0,
  kSwHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSwHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
};
const char* tcb_status_name(TcbStatus s);
Result<TcbStatus> tcb_status_from(std::string_view name);

struct Collateral {
  std::string tcb_info_json;      // PCS response body
  std::string qe_identity_json;   // PCS response body
  std::string signing_chain_pem;  // TCB-Info-Issuer-Chain: TCB Signing cert, root
  Bytes pck_crl;                  // DER CRL of the PCK's issuing CA (Platform or Processor)
};

// The PCK leaf is not revoked: the CRL is signed by the CA that issued the leaf (found in the
// quote's PCK chain), is current at `at_unix`, and does not list the leaf's serial number.
Status check_pck_crl(const VerifiedQuote& q, ByteView crl_der, int64_t at_unix);

// The raw bytes of a top-level member's value in a JSON text (what Intel signs).
Result<std::string> raw_json_member(std::string_view text, std::string_view key);

// Verifies a PCS document's signature with `key`; returns the signed body's text.
Result<std::string> verify_signed_document(std::string_view text, std::string_view member,
                                           const crypto::VerifyKey& key);

struct TcbResult {
  TcbStatus status = TcbStatus::kUpToDate;
  TcbStatus platform = TcbStatus::kUpToDate;
  std::optional<TcbStatus> tdx_module;
  TcbStatus qe = TcbStatus::kUpToDate;
  std::string tcb_date;
  std::vector<std::string> advisories;
  uint32_t tcb_evaluation_data_number = 0;
};

// The status of a verified quote against already verified TCB Info and QE Identity bodies.
// Fails when no TCB level matches ("TCB level not supported"), the FMSPC or PCE ID differ, or
// the QE does not match its identity.
Result<TcbResult> derive_tcb_status(const VerifiedQuote& q, std::string_view tcb_info_body,
                                    std::string_view qe_identity_body);

// All of it: the signing chain to a pinned root at `at_unix`, both signatures, neither document
// past its nextUpdate at `at_unix`, the PCK CRL when given (a revoked PCK gives Revoked), and the
// status.
Result<TcbResult> evaluate_collateral(const VerifiedQuote& q, const Collateral& c,
                                      const std::vector<Hash32>& pinned_roots, int64_t at_unix);

}  // namespace attestnet::evidence::tdx
