// Evidence collection inside a confidential VM (the agent side; this layer does I/O).
//
// configfs-tsm (Linux >= 6.7, Documentation/ABI/testing/configfs-tsm): one directory per
// request under /sys/kernel/config/tsm/report/. Writing `inblob` (64 bytes of user data, our
// binding) makes the kernel produce `outblob` (the SEV-SNP report or the TDX quote) and, for
// SEV-SNP, `auxblob` (the host's certificate table: VCEK/VLEK, ASK, ARK); `provider` names the
// driver (sev_guest, tdx_guest); `generation` counts writes, so a concurrent writer is detected.
//
// /dev/sev-guest (SNP_GET_EXT_REPORT) is the older interface for SEV-SNP guests. /dev/tdx_guest
// yields only a TDREPORT, which needs the host's quoting service to become a quote; attestnet
// collects TDX quotes through configfs-tsm only.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"

namespace attestnet::agent {

constexpr const char* kTsmRoot = "/sys/kernel/config/tsm/report";

struct TsmReport {
  std::string provider;  // "sev_guest", "tdx_guest"
  Bytes outblob;
  Bytes auxblob;
  uint64_t generation = 0;
};

// mkdir ROOT/attestnet-<pid>-<n>: one report entry, owned by the caller (remove it after).
Result<std::filesystem::path> tsm_create_entry(const std::filesystem::path& root = kTsmRoot);
void tsm_remove_entry(const std::filesystem::path& entry);
// Writes inblob (and privlevel when given), reads the results, checks the generation.
Result<TsmReport> tsm_collect(const std::filesystem::path& entry, ByteView inblob,
                              std::optional<uint32_t> privlevel = std::nullopt);

// The SEV-SNP certificate table (auxblob, or the ext-report certificate buffer): GUID-tagged
// entries {guid[16], offset u32, length u32}, ended by an all-zero entry.
struct SnpCert {
  std::string kind;  // "vcek", "vlek", "ask", "ark", or the GUID
  Bytes der;
};
Result<std::vector<SnpCert>> parse_snp_cert_table(ByteView table);

// The evidence bundle a TsmReport gives: ("sev-snp", SevSnpEvidence) or ("tdx", DcapEvidence).
struct CollectedEvidence {
  std::string platform;
  Bytes bundle;
};
Result<CollectedEvidence> evidence_from_tsm(const TsmReport& r);

// All of it: create an entry, collect with `report_data` (64 bytes), remove the entry.
Result<CollectedEvidence> collect_tsm(ByteView report_data,
                                      const std::filesystem::path& root = kTsmRoot);

// /dev/sev-guest SNP_GET_EXT_REPORT: the report and the certificate table from the host.
Result<CollectedEvidence> collect_sev_guest(ByteView report_data, uint32_t vmpl = 0,
                                            const std::string& device = "/dev/sev-guest");

}  // namespace attestnet::agent
