// AMD SEV-SNP attestation reports (SEV-SNP Firmware ABI, ATTESTATION_REPORT, 1184 bytes,
// versions 2 and 3), verified as AMD's and Google's go-sev-guest verifiers do:
//   1. the report parses field by field (exact size, known version, signature algorithm 1);
//   2. its ECDSA P-384/SHA-384 signature over bytes 0x000..0x29F verifies with the VCEK (or
//      VLEK) certificate in the bundle;
//   3. the VCEK chains to the ASK (VLEK: ASVK), and that to an ARK whose SHA-256 fingerprint
//      the policy pins (RSASSA-PSS certificates, checked by OpenSSL at the given time);
//   4. the VCEK's TCB extensions equal the report's REPORTED_TCB, and its hwID the CHIP_ID
//      (VLEKs carry no hwID and are not bound to a chip).
// Pure functions over bytes; the time is an argument.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/pkey.h"

namespace attestnet::evidence::sevsnp {

constexpr size_t kReportSize = 0x4A0;
constexpr size_t kSignedSize = 0x2A0;

// TCB_VERSION, decoded for the product line (Milan/Genoa layout, or Turin's with an FMC SPL).
struct Tcb {
  uint64_t raw = 0;
  uint8_t fmc = 0;  // Turin and later only
  uint8_t bootloader = 0, tee = 0, snp = 0, microcode = 0;
  std::string to_string() const;
};
Tcb decode_tcb(uint64_t raw, bool turin_layout);

enum class SigningKey : uint8_t { kVcek = 0, kVlek = 1, kNone = 7 };

struct Report {
  Bytes raw;
  uint32_t version = 0;
  uint32_t guest_svn = 0;
  uint64_t policy = 0;
  Bytes family_id, image_id;  // 16 each
  uint32_t vmpl = 0;
  uint32_t signature_algo = 0;
  uint64_t current_tcb = 0;
  uint64_t platform_info = 0;
  bool author_key_en = false, mask_chip_id = false;
  SigningKey signing_key = SigningKey::kVcek;
  Bytes report_data;              // 64
  Bytes measurement;              // 48
  Bytes host_data;                // 32
  Bytes id_key_digest;            // 48
  Bytes author_key_digest;        // 48
  Bytes report_id, report_id_ma;  // 32 each
  uint64_t reported_tcb = 0;
  uint8_t cpuid_fam = 0, cpuid_mod = 0, cpuid_step = 0;  // v3+
  Bytes chip_id;                                         // 64
  uint64_t committed_tcb = 0;
  uint8_t current_build = 0, current_minor = 0, current_major = 0;
  uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;
  uint64_t launch_tcb = 0;
  Bytes signature_r, signature_s;  // big endian, 72 bytes each as stored (LE) reversed

  bool debug_allowed() const { return (policy >> 19) & 1; }
};
Result<Report> parse_report(ByteView bytes);

// The certificates that come with a report (from the host's extended report or AMD KDS).
struct CertChain {
  crypto::Certificate leaf;                // VCEK or VLEK
  std::vector<crypto::Certificate> chain;  // ASK / ASVK, then ARK
};

// What the VCEK/VLEK certificate says about itself (AMD VCEK spec, OIDs 1.3.6.1.4.1.3704.1.*).
struct LeafInfo {
  std::string product;  // "Milan-B0", "Genoa", ... (1.3.6.1.4.1.3704.1.2)
  bool has_hwid = false;
  Bytes hwid;  // 64 bytes (1.3.6.1.4.1.3704.1.4), VCEK only
  int bl = -1, tee = -1, snp = -1, ucode = -1, fmc = -1;  // SPLs, -1 when absent
};
Result<LeafInfo> leaf_info(const crypto::Certificate& leaf);

struct VerifiedReport {
  Report report;
  LeafInfo leaf;
  Tcb reported_tcb, current_tcb, committed_tcb, launch_tcb;
  Hash32 ark_fingerprint{};
};

// Steps 2-4. `pinned_arks` are SHA-256 fingerprints of the DER of the ARKs the policy trusts.
// With `cache`, a chain verified before is not verified again (crypto::ChainCache).
Result<VerifiedReport> verify_report(ByteView report, const CertChain& certs,
                                     const std::vector<Hash32>& pinned_arks, int64_t at_unix,
                                     crypto::ChainCache* cache = nullptr);

}  // namespace attestnet::evidence::sevsnp
