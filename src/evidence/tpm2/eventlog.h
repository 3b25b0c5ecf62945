// Measured-boot event logs: the TCG PC Client Platform Firmware Profile binary log, in the
// crypto-agile format (first event "Spec ID Event03", TCG_PCR_EVENT2 after it) and the legacy
// SHA-1 format (TCG_PCClientPCREvent throughout), replayed into PCR values; and the Linux
// IMA measurement list (ascii and binary runtime_measurements) replayed into PCR 10.
// Pure functions over bytes; every malformed input is a typed Error naming the event.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "evidence/tpm2/quote.h"

namespace attestnet::evidence::tpm2 {

// Event types (TCG PC Client PFP, section 10.4.1).
constexpr uint32_t kEvPostCode = 0x00000001;
constexpr uint32_t kEvNoAction = 0x00000003;
constexpr uint32_t kEvSeparator = 0x00000004;
constexpr uint32_t kEvAction = 0x00000005;
constexpr uint32_t kEvEventTag = 0x00000006;
constexpr uint32_t kEvSCrtmContents = 0x00000007;
constexpr uint32_t kEvSCrtmVersion = 0x00000008;
constexpr uint32_t kEvIpl = 0x0000000D;
constexpr uint32_t kEvEfiVariableDriverConfig = 0x80000001;
constexpr uint32_t kEvEfiVariableBoot = 0x80000002;
constexpr uint32_t kEvEfiBootServicesApplication = 0x80000003;
constexpr uint32_t kEvEfiBootServicesDriver = 0x80000004;
constexpr uint32_t kEvEfiAction = 0x80000007;
constexpr uint32_t kEvEfiPlatformFirmwareBlob = 0x80000008;
constexpr uint32_t kEvEfiHandoffTables = 0x80000009;
constexpr uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;
constexpr uint32_t kEvEfiVariableAuthority = 0x800000E0;
std::string event_type_name(uint32_t type);

struct Event {
  uint32_t index = 0;  // position in the log, from 0
  uint32_t pcr = 0;
  uint32_t type = 0;
  std::vector<std::pair<uint16_t, Bytes>> digests;  // (TPM hash alg, digest)
  Bytes data;
};

struct EventLog {
  bool crypto_agile = false;
  std::vector<uint16_t> algorithms;  // banks the log measures (from the Spec ID event)
  uint8_t startup_locality = 0;
  std::vector<Event> events;
};

constexpr size_t kMaxEvents = 200000;
Result<EventLog> parse_event_log(ByteView log);

// Replays every event except EV_NO_ACTION: PCR[bank][i] = H(PCR || digest), from zeros (PCR 0
// from the StartupLocality value). Only PCRs the log touches appear in the result.
PcrValues replay(const EventLog& log);

// Compares the replayed log with quoted PCR values: every PCR that is both quoted and in the
// log's banks must match. Returns the PCRs compared; fails naming the first difference.
Result<std::vector<std::string>> check_against(const EventLog& log, const PcrValues& quoted);

// What the log says was booted, as claims a policy can name.
struct Component {
  std::string kind;         // firmware | boot_loader | efi_application | efi_driver | kernel |
                            // initrd | kernel_cmdline | grub_cmd | secure_boot_variable
  std::string description;  // path, command line or variable name
  uint32_t pcr = 0;
  uint32_t event = 0;
  Bytes sha256;  // the event's digest in the SHA-256 bank (or the first bank it has)
  uint16_t digest_alg = 0;
};
struct BootState {
  std::vector<Component> components;
  std::optional<bool> secure_boot;  // the SecureBoot variable, when measured
};
BootState extract_components(const EventLog& log);

// Builds crypto-agile logs (a measured boot done by a test or the demo, or a firmware
// emulation): each add() returns the digests to extend into the TPM.
class EventLogWriter {
 public:
  explicit EventLogWriter(std::vector<uint16_t> banks = {kAlgSha1, kAlgSha256});
  // The measured bytes are hashed with each bank: the digest is H(measured).
  std::vector<std::pair<uint16_t, Bytes>> add(uint32_t pcr, uint32_t type, ByteView event_data,
                                              ByteView measured);
  Bytes bytes() const { return out_; }

 private:
  std::vector<uint16_t> banks_;
  Bytes out_;
};

// A measured boot as UEFI firmware, shim/GRUB and the kernel's stub would record it, for tests,
// the demo and platforms without a firmware log: the log and, in order, the extends to apply
// to the TPM (tpm2_pcrextend / TPM2_PCR_Extend) so that its PCRs match the log.
struct BootImage {
  std::string firmware_version = "attestnet virtual firmware 1.0";
  Bytes firmware;
  std::string boot_loader_path = "\\EFI\\attestnet\\grubx64.efi";
  Bytes boot_loader;
  std::string kernel_path = "/boot/vmlinuz";
  Bytes kernel;
  std::string initrd_path = "/boot/initrd.img";
  Bytes initrd;
  std::string cmdline;
  bool secure_boot = true;
};
struct Extend {
  uint32_t pcr;
  std::vector<std::pair<uint16_t, Bytes>> digests;
};
struct MeasuredBoot {
  Bytes log;
  std::vector<Extend> extends;
  // The SHA-256 event digests a policy names for each component kind.
  std::map<std::string, std::vector<Bytes>> component_digests;
};
MeasuredBoot measure_boot(const BootImage& image,
                          std::vector<uint16_t> banks = {kAlgSha1, kAlgSha256});

// --- IMA ---

struct ImaEntry {
  uint32_t pcr = 10;
  Bytes template_hash;  // SHA-1, as listed
  std::string template_name;
  std::string file_digest_alg;  // "sha256"; "sha1" for the legacy ima template
  Bytes file_digest;
  std::string path;
  Bytes signature;      // ima-sig
  Bytes buffer;         // ima-buf
  Bytes template_data;  // reconstructed, what the template hash covers
  bool violation = false;
};
struct ImaLog {
  std::vector<ImaEntry> entries;
};
// ascii_runtime_measurements: one entry a line. binary_runtime_measurements: see docs.
Result<ImaLog> parse_ima_ascii(std::string_view text);
Result<ImaLog> parse_ima_binary(ByteView bytes);
Result<ImaLog> parse_ima_any(ByteView bytes);
// Checks every template hash against its reconstructed template data.
Status verify_ima_template_hashes(const ImaLog& log);
// PCR 10 (or whichever PCRs the entries name) for one bank.
PcrBank replay_ima(const ImaLog& log, uint16_t bank);
// The number of leading entries whose replay gives `quoted` as PCR `pcr` of `bank`: a list read
// after the quote may be longer than what the quote covers (the kernel keeps measuring), and
// only that prefix is attested. nullopt when no prefix matches.
std::optional<size_t> ima_attested_prefix(const ImaLog& log, uint16_t bank, const Bytes& quoted,
                                          uint32_t pcr = 10);

}  // namespace attestnet::evidence::tpm2
