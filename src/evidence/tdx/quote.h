// Intel DCAP ECDSA quotes: TDX quote v4 and v5 (TD report 1.0 / 1.5 bodies) and SGX quote v3,
// verified as Intel's Quote Verification Library does:
//   1. the quote parses (header, body, signature data, QE report certification data, PCK chain);
//   2. the quote signature (ECDSA P-256 over header + body) verifies with the attestation key;
//   3. the QE report's signature verifies with the PCK leaf certificate;
//   4. QE report data[0:32] = SHA-256(attestation key || QE authentication data), the rest 0;
//   5. the PCK chain (leaf -> PCK Platform/Processor CA -> root) ends in a root whose SHA-256
//      fingerprint the policy pins (the Intel SGX Root CA), at the time given.
// With collateral (TCB info, QE identity, signed by the TCB Signing key that chains to the same
// root), the TCB status is derived (collateral.h). Pure functions over bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/pkey.h"

namespace attestnet::evidence::tdx {

constexpr uint32_t kTeeSgx = 0x00000000;
constexpr uint32_t kTeeTdx = 0x00000081;

// SGX REPORT body (384 bytes): the enclave's (SGX quotes) or the QE's.
struct EnclaveReport {
  Bytes raw;
  Bytes cpu_svn;  // 16
  uint32_t misc_select = 0;
  Bytes attributes;             // 16
  Bytes mr_enclave, mr_signer;  // 32 each
  uint16_t isv_prod_id = 0, isv_svn = 0;
  Bytes report_data;  // 64
  bool debug() const { return !attributes.empty() && (attributes[0] & 0x02); }
};

// TD report body (TDX 1.0: 584 bytes; TDX 1.5 adds tee_tcb_svn2 and mrservicetd: 648).
struct TdReport {
  Bytes tee_tcb_svn;                                     // 16
  Bytes mr_seam, mr_signer_seam;                         // 48 each
  Bytes seam_attributes, td_attributes, xfam;            // 8 each
  Bytes mr_td, mr_config_id, mr_owner, mr_owner_config;  // 48 each
  Bytes rtmr[4];                                         // 48 each
  Bytes report_data;                                     // 64
  Bytes tee_tcb_svn2, mr_service_td;                     // TDX 1.5 only
  bool debug() const { return !td_attributes.empty() && (td_attributes[0] & 0x01); }
};

struct Quote {
  Bytes raw;
  uint16_t version = 0;
  uint16_t att_key_type = 0;
  uint32_t tee_type = 0;
  uint16_t qe_svn = 0, pce_svn = 0;  // v3 header
  Bytes qe_vendor_id;                // 16
  Bytes user_data;                   // 20
  uint16_t body_type = 0;            // v5: 1 SGX, 2 TD 1.0, 3 TD 1.5
  EnclaveReport enclave;             // SGX quotes
  TdReport td;                       // TDX quotes
  size_t signed_size = 0;            // header + body
  Bytes signature;                   // r || s, 64
  Bytes attestation_key;             // x || y, 64
  EnclaveReport qe_report;
  Bytes qe_report_signature;  // 64
  Bytes qe_auth_data;
  uint16_t cert_type = 0;  // 5: PCK chain (PEM)
  Bytes cert_data;         // the PEM chain
  size_t trailing = 0;     // bytes after the signature data (buffer padding, unauthenticated)
  bool is_tdx() const { return tee_type == kTeeTdx; }
  const Bytes& report_data() const { return is_tdx() ? td.report_data : enclave.report_data; }
};
Result<Quote> parse_quote(ByteView bytes);

// The Intel SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1).
struct PckInfo {
  std::vector<uint8_t> tcb_components;  // 16 SGX TCB component SVNs
  uint16_t pce_svn = 0;
  Bytes cpu_svn;  // 16
  Bytes fmspc;    // 6
  Bytes pce_id;   // 2
  Bytes ppid;
};
Result<PckInfo> pck_info(const crypto::Certificate& pck);

struct VerifiedQuote {
  Quote quote;
  std::vector<crypto::Certificate> pck_chain;  // leaf first
  PckInfo pck;
  Hash32 root_fingerprint{};
};
// With `cache`, a PCK chain verified before is not verified again (crypto::ChainCache).
Result<VerifiedQuote> verify_quote(ByteView bytes, const std::vector<Hash32>& pinned_roots,
                                   int64_t at_unix, crypto::ChainCache* cache = nullptr);

}  // namespace attestnet::evidence::tdx
