#include "evidence/tpm2/eventlog.h"
#include "core/codec.h"

#include <algorithm>
#include <cstring>

namespace attestnet::evidence::tpm2 {

std::string event_type_name(uint32_t t) {
  switch (t) {
    case 0x0:
      return "EV_PREBOOT_CERT";
    case kEvPostCode:
      return "EV_POST_CODE";
    case 0x2:
      return "EV_UNUSED";
    case kEvNoAction:
      return "EV_NO_ACTION";
    case kEvSeparator:
      return "EV_SEPARATOR";
    case kEvAction:
      return "EV_ACTION";
    case kEvEventTag:
      return "EV_EVENT_TAG";
    case kEvSCrtmContents:
      return "EV_S_CRTM_CONTENTS";
    case kEvSCrtmVersion:
      return "EV_S_CRTM_VERSION";
    case 0x9:
      return "EV_CPU_MICROCODE";
    case 0xA:
      return "EV_PLATFORM_CONFIG_FLAGS";
    case 0xB:
      return "EV_TABLE_OF_DEVICES";
    case 0xC:
      return "EV_COMPACT_HASH";
    case kEvIpl:
      return "EV_IPL";
    case 0xE:
      return "EV_IPL_PARTITION_DATA";
    case 0xF:
      return "EV_NONHOST_CODE";
    case 0x10:
      return "EV_NONHOST_CONFIG";
    case 0x11:
      return "EV_NONHOST_INFO";
    case 0x12:
      return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case kEvEfiVariableDriverConfig:
      return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case kEvEfiVariableBoot:
      return "EV_EFI_VARIABLE_BOOT";
    case kEvEfiBootServicesApplication:
      return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case kEvEfiBootServicesDriver:
      return "EV_EFI_BOOT_SERVICES_DRIVER";
    case 0x80000005:
      return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case 0x80000006:
      return "EV_EFI_GPT_EVENT";
    case kEvEfiAction:
      return "EV_EFI_ACTION";
    case kEvEfiPlatformFirmwareBlob:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case kEvEfiHandoffTables:
      return "EV_EFI_HANDOFF_TABLES";
    case kEvEfiPlatformFirmwareBlob2:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case 0x8000000B:
      return "EV_EFI_HANDOFF_TABLES2";
    case 0x8000000C:
      return "EV_EFI_VARIABLE_BOOT2";
    case 0x80000010:
      return "EV_EFI_HCRTM_EVENT";
    case kEvEfiVariableAuthority:
      return "EV_EFI_VARIABLE_AUTHORITY";
    case 0x800000E1:
      return "EV_EFI_SPDM_FIRMWARE_BLOB";
    case 0x800000E2:
      return "EV_EFI_SPDM_FIRMWARE_CONFIG";
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", t);
  return buf;
}

namespace {

// The TCG log is little endian throughout, as the canonical codec's Reader reads: this adapter
// gives the parsers a bool-returning form (each caller words its own error) and the padding test.
class Le {
 public:
  explicit Le(ByteView in) : in_(in), r_(in) {}
  size_t remaining() const { return r_.remaining(); }
  size_t pos() const { return r_.position(); }
  bool u8(uint8_t& v) { return take(r_.u8(), v); }
  bool u16(uint16_t& v) { return take(r_.u16(), v); }
  bool u32(uint32_t& v) { return take(r_.u32(), v); }
  bool u64(uint64_t& v) { return take(r_.u64(), v); }
  bool bytes(size_t n, Bytes& out) { return take(r_.fixed(n), out); }
  bool rest_is_padding() const {
    ByteView rest = in_.subspan(r_.position());
    if (rest.empty()) return true;
    uint8_t first = rest[0];
    if (first != 0x00 && first != 0xFF) return false;
    return std::all_of(rest.begin(), rest.end(), [&](uint8_t c) { return c == first; });
  }

 private:
  template <typename T>
  static bool take(Result<T> r, T& out) {
    if (!r.ok()) return false;
    out = std::move(r).value();
    return true;
  }
  ByteView in_;
  Reader r_;
};

Error truncated_event(uint32_t index, size_t offset, const char* what) {
  return make_error(Errc::kTruncated, "event log truncated in event " + std::to_string(index) +
                                          " at byte " + std::to_string(offset) + ": " + what);
}

constexpr char kSpecId03[] = "Spec ID Event03";  // 16 bytes with the NUL
constexpr char kStartupLocality[] = "StartupLocality";

bool starts_with(const Bytes& data, const char* sig, size_t n) {
  return data.size() >= n && std::memcmp(data.data(), sig, n) == 0;
}

size_t digest_size_of(const std::vector<std::pair<uint16_t, uint16_t>>& sizes, uint16_t alg) {
  for (const auto& [a, s] : sizes)
    if (a == alg) return s;
  return 0;
}

}  // namespace

Result<EventLog> parse_event_log(ByteView in) {
  EventLog log;
  Le r(in);
  // The first event is always in the SHA-1 (TCG 1.2) format.
  auto read_legacy = [&](uint32_t index, Event& ev) -> Status {
    size_t at = r.pos();
    uint32_t size = 0;
    Bytes d;
    if (!r.u32(ev.pcr) || !r.u32(ev.type) || !r.bytes(20, d) || !r.u32(size))
      return truncated_event(index, at, "the SHA-1 event header is incomplete");
    if (size > r.remaining())
      return truncated_event(index, at,
                             ("event data of " + std::to_string(size) + " bytes").c_str());
    r.bytes(size, ev.data);
    ev.digests.push_back({kAlgSha1, std::move(d)});
    ev.index = index;
    return {};
  };
  if (in.empty()) return make_error(Errc::kTruncated, "the event log is empty");
  Event first;
  ATN_CHECK(read_legacy(0, first));
  std::vector<std::pair<uint16_t, uint16_t>> sizes;
  if (first.type == kEvNoAction && starts_with(first.data, kSpecId03, sizeof kSpecId03)) {
    log.crypto_agile = true;
    Le s(as_view(first.data));
    Bytes sig;
    uint32_t platform_class = 0, n = 0;
    uint8_t minor, major, errata, uintn;
    if (!s.bytes(16, sig) || !s.u32(platform_class) || !s.u8(minor) || !s.u8(major) ||
        !s.u8(errata) || !s.u8(uintn) || !s.u32(n))
      return make_error(Errc::kTruncated, "the Spec ID Event03 header is incomplete");
    if (n == 0 || n > 16)
      return make_error(Errc::kBadValue, "the Spec ID event lists " + std::to_string(n) +
                                             " algorithms (expected 1..16)");
    for (uint32_t i = 0; i < n; ++i) {
      uint16_t alg, size;
      if (!s.u16(alg) || !s.u16(size))
        return make_error(Errc::kTruncated, "the Spec ID event's algorithm list is incomplete");
      if (size == 0 || size > 64)
        return make_error(Errc::kBadValue, "the Spec ID event gives algorithm " + alg_name(alg) +
                                               " a digest of " + std::to_string(size) + " bytes");
      if (auto h = hash_of(alg); h && crypto::hash_size(*h) != size)
        return make_error(Errc::kBadValue, "the Spec ID event gives " + alg_name(alg) +
                                               " a digest of " + std::to_string(size) + " bytes");
      sizes.push_back({alg, size});
      log.algorithms.push_back(alg);
    }
  } else {
    log.algorithms.push_back(kAlgSha1);
  }
  auto note_locality = [&](const Event& ev) {
    if (ev.type == kEvNoAction && ev.pcr == 0 &&
        starts_with(ev.data, kStartupLocality, sizeof kStartupLocality) &&
        ev.data.size() >= sizeof kStartupLocality + 1)
      log.startup_locality = ev.data[sizeof kStartupLocality];
  };
  note_locality(first);
  log.events.push_back(std::move(first));
  for (uint32_t index = 1; r.remaining() > 0; ++index) {
    if (r.rest_is_padding()) break;
    if (log.events.size() >= kMaxEvents)
      return make_error(Errc::kOversize,
                        "event log has more than " + std::to_string(kMaxEvents) + " events");
    Event ev;
    if (!log.crypto_agile) {
      ATN_CHECK(read_legacy(index, ev));
    } else {
      size_t at = r.pos();
      uint32_t count = 0;
      if (!r.u32(ev.pcr) || !r.u32(ev.type) || !r.u32(count))
        return truncated_event(index, at, "the event header is incomplete");
      if (count > sizes.size())
        return make_error(Errc::kBadValue, "event " + std::to_string(index) + " carries " +
                                               std::to_string(count) + " digests but the log has " +
                                               std::to_string(sizes.size()) + " banks");
      for (uint32_t i = 0; i < count; ++i) {
        uint16_t alg = 0;
        if (!r.u16(alg)) return truncated_event(index, at, "a digest's algorithm is missing");
        size_t n = digest_size_of(sizes, alg);
        if (n == 0)
          return make_error(Errc::kBadValue, "event " + std::to_string(index) +
                                                 " has a digest of algorithm " + alg_name(alg) +
                                                 " that the Spec ID event does not list");
        Bytes d;
        if (!r.bytes(n, d)) return truncated_event(index, at, "a digest is incomplete");
        ev.digests.push_back({alg, std::move(d)});
      }
      uint32_t size = 0;
      if (!r.u32(size)) return truncated_event(index, at, "the event size is missing");
      if (size > r.remaining())
        return truncated_event(index, at,
                               ("event data of " + std::to_string(size) + " bytes").c_str());
      r.bytes(size, ev.data);
    }
    if (ev.pcr >= 24 && ev.type != kEvNoAction)
      return make_error(Errc::kBadValue, "event " + std::to_string(index) + " extends PCR " +
                                             std::to_string(ev.pcr) + " (PCRs are 0..23)");
    note_locality(ev);
    ev.index = index;
    log.events.push_back(std::move(ev));
  }
  return log;
}

PcrValues replay(const EventLog& log) {
  PcrValues out;
  for (const auto& ev : log.events) {
    if (ev.type == kEvNoAction) continue;
    for (const auto& [alg, d] : ev.digests) {
      auto h = hash_of(alg);
      if (!h) continue;  // a bank we cannot compute (SM3): not replayed
      PcrBank& bank = out[alg];
      auto it = bank.find(ev.pcr);
      if (it == bank.end()) {
        Bytes init(crypto::hash_size(*h), 0);
        if (ev.pcr == 0) init.back() = log.startup_locality;
        it = bank.emplace(ev.pcr, std::move(init)).first;
      }
      it->second = crypto::digest2(*h, as_view(it->second), as_view(d));
    }
  }
  return out;
}

Result<std::vector<std::string>> check_against(const EventLog& log, const PcrValues& quoted) {
  PcrValues replayed = replay(log);
  std::vector<std::string> compared;
  for (const auto& [alg, bank] : quoted) {
    if (std::find(log.algorithms.begin(), log.algorithms.end(), alg) == log.algorithms.end())
      continue;
    auto rb = replayed.find(alg);
    for (const auto& [pcr, value] : bank) {
      bool touched = rb != replayed.end() && rb->second.count(pcr);
      if (!touched) {
        // The log does not measure this PCR: it must still be at its reset value to match.
        bool zero = std::all_of(value.begin(), value.end(), [](uint8_t c) { return c == 0; });
        if (zero) continue;
        if (pcr >= 10) continue;  // PCR 10+ belong to the OS (IMA, systemd), not this log
        return make_error(Errc::kPcrMismatch, "quoted PCR " + std::to_string(pcr) + " of bank " +
                                                  alg_name(alg) + " is " + to_hex(value) +
                                                  " but the event log has no event for it");
      }
      const Bytes& mine = rb->second.at(pcr);
      if (mine != value)
        return make_error(Errc::kPcrMismatch,
                          "the event log replays PCR " + std::to_string(pcr) + " of bank " +
                              alg_name(alg) + " to " + to_hex(mine) + " but the quote says " +
                              to_hex(value) + ": the log was edited or is not this boot's");
      compared.push_back(alg_name(alg) + ":" + std::to_string(pcr));
    }
  }
  return compared;
}

namespace {

std::string utf16le_to_ascii(ByteView p) {
  std::string s;
  for (size_t i = 0; i + 1 < p.size(); i += 2) {
    uint16_t c = static_cast<uint16_t>(p[i] | p[i + 1] << 8);
    if (c == 0) break;
    s.push_back(c < 0x80 ? static_cast<char>(c) : '?');
  }
  return s;
}

std::string ascii_text(const Bytes& d) {
  std::string s;
  for (uint8_t c : d) {
    if (c == 0) break;
    s.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return s;
}

bool looks_utf16(const Bytes& d) {
  return d.size() >= 4 && d[1] == 0 && d[3] == 0 && d[0] != 0;
}

// UEFI_VARIABLE_DATA: GUID, name length (chars), data length, UTF-16 name, data.
bool parse_variable(const Bytes& d, std::string& name, Bytes& value) {
  Le r(as_view(d));
  Bytes guid;
  uint64_t nlen = 0, dlen = 0;
  if (!r.bytes(16, guid) || !r.u64(nlen) || !r.u64(dlen)) return false;
  if (nlen > 1024 || dlen > r.remaining()) return false;
  Bytes n;
  if (!r.bytes(nlen * 2, n)) return false;
  name = utf16le_to_ascii(as_view(n));
  return r.bytes(dlen, value);
}

// UEFI_IMAGE_LOAD_EVENT: the file path nodes of its device path, joined.
std::string image_path(const Bytes& d) {
  Le r(as_view(d));
  uint64_t addr, len, link, dp_len;
  if (!r.u64(addr) || !r.u64(len) || !r.u64(link) || !r.u64(dp_len)) return "";
  Bytes dp;
  if (!r.bytes(std::min<uint64_t>(dp_len, r.remaining()), dp)) return "";
  std::string path;
  size_t i = 0;
  while (i + 4 <= dp.size()) {
    uint8_t type = dp[i], sub = dp[i + 1];
    uint16_t nlen = static_cast<uint16_t>(dp[i + 2] | dp[i + 3] << 8);
    if (nlen < 4 || i + nlen > dp.size()) break;
    if (type == 0x04 && sub == 0x04)
      path += utf16le_to_ascii(ByteView(dp.data() + i + 4, nlen - 4u));
    if (type == 0x7f) break;
    i += nlen;
  }
  return path;
}

bool contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

BootState extract_components(const EventLog& log) {
  BootState st;
  bool seen_loader = false;
  for (const auto& ev : log.events) {
    if (ev.type == kEvNoAction || ev.digests.empty()) continue;
    Component c;
    c.pcr = ev.pcr;
    c.event = ev.index;
    c.digest_alg = ev.digests.front().first;
    c.sha256 = ev.digests.front().second;
    for (const auto& [alg, d] : ev.digests)
      if (alg == kAlgSha256) c.sha256 = d, c.digest_alg = alg;
    switch (ev.type) {
      case kEvSCrtmVersion:
      case kEvSCrtmContents:
      case kEvEfiPlatformFirmwareBlob:
      case kEvEfiPlatformFirmwareBlob2:
      case kEvPostCode:
        if (ev.pcr != 0 && ev.pcr != 2) continue;
        c.kind = "firmware";
        c.description = event_type_name(ev.type);
        if (ev.type == kEvSCrtmVersion) c.description += " " + utf16le_to_ascii(as_view(ev.data));
        break;
      case kEvEfiBootServicesApplication:
        c.kind = seen_loader ? "efi_application" : "boot_loader";
        seen_loader = true;
        c.description = image_path(ev.data);
        break;
      case kEvEfiBootServicesDriver:
        c.kind = "efi_driver";
        c.description = image_path(ev.data);
        break;
      case kEvEfiVariableDriverConfig:
      case kEvEfiVariableAuthority: {
        std::string name;
        Bytes value;
        if (!parse_variable(ev.data, name, value)) continue;
        c.kind = "secure_boot_variable";
        c.description = name;
        if (name == "SecureBoot" && ev.type == kEvEfiVariableDriverConfig)
          st.secure_boot = !value.empty() && value[0] == 1;
        break;
      }
      case kEvIpl: {
        std::string text =
            looks_utf16(ev.data) ? utf16le_to_ascii(as_view(ev.data)) : ascii_text(ev.data);
        if (text.rfind("kernel_cmdline: ", 0) == 0) {
          c.kind = "kernel_cmdline";
          c.description = text.substr(16);
        } else if (text.rfind("grub_cmd: ", 0) == 0) {
          c.kind = "grub_cmd";
          c.description = text.substr(10);
        } else if (ev.pcr == 12) {  // systemd-stub / systemd-boot: the kernel command line
          c.kind = "kernel_cmdline";
          c.description = text;
        } else if (ev.pcr == 9 || ev.pcr == 8) {
          c.description = text;
          if (contains(text, "vmlinuz") || contains(text, "bzImage") || contains(text, "/kernel"))
            c.kind = "kernel";
          else if (contains(text, "initrd") || contains(text, "initramfs"))
            c.kind = "initrd";
          else
            c.kind = "file";
        } else {
          continue;
        }
        break;
      }
      case kEvEventTag: {
        Le r(as_view(ev.data));
        uint32_t id = 0, size = 0;
        if (!r.u32(id) || !r.u32(size)) continue;
        if (id == 0x8F3B22ED) {
          c.kind = "initrd";
          c.description = "Linux initrd (EFI stub)";
        } else if (id == 0x8F3B22EC) {
          Bytes opts;
          r.bytes(std::min<size_t>(size, r.remaining()), opts);
          c.kind = "kernel_cmdline";
          c.description = utf16le_to_ascii(as_view(opts));
        } else {
          continue;
        }
        break;
      }
      default:
        continue;
    }
    st.components.push_back(std::move(c));
  }
  return st;
}

// --- writer ---

namespace {
void put32(Bytes& o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put16(Bytes& o, uint16_t v) {
  o.push_back(static_cast<uint8_t>(v));
  o.push_back(static_cast<uint8_t>(v >> 8));
}
}  // namespace

EventLogWriter::EventLogWriter(std::vector<uint16_t> banks) : banks_(std::move(banks)) {
  Bytes spec(kSpecId03, kSpecId03 + sizeof kSpecId03);
  put32(spec, 0);  // platform class: client
  spec.push_back(0);
  spec.push_back(2);  // spec version 2.0
  spec.push_back(0);
  spec.push_back(2);  // uintn size: 64-bit
  put32(spec, static_cast<uint32_t>(banks_.size()));
  for (uint16_t alg : banks_) {
    put16(spec, alg);
    put16(spec, static_cast<uint16_t>(crypto::hash_size(*hash_of(alg))));
  }
  spec.push_back(0);  // no vendor info
  put32(out_, 0);
  put32(out_, kEvNoAction);
  out_.insert(out_.end(), 20, 0);
  put32(out_, static_cast<uint32_t>(spec.size()));
  out_.insert(out_.end(), spec.begin(), spec.end());
}

std::vector<std::pair<uint16_t, Bytes>> EventLogWriter::add(uint32_t pcr, uint32_t type,
                                                            ByteView event_data,
                                                            ByteView measured) {
  std::vector<std::pair<uint16_t, Bytes>> digests;
  put32(out_, pcr);
  put32(out_, type);
  put32(out_, static_cast<uint32_t>(banks_.size()));
  for (uint16_t alg : banks_) {
    Bytes d = crypto::digest(*hash_of(alg), measured);
    put16(out_, alg);
    out_.insert(out_.end(), d.begin(), d.end());
    digests.push_back({alg, std::move(d)});
  }
  put32(out_, static_cast<uint32_t>(event_data.size()));
  out_.insert(out_.end(), event_data.begin(), event_data.end());
  return digests;
}

namespace {

Bytes utf16le(const std::string& s, bool nul) {
  Bytes out;
  for (char c : s) {
    out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
  }
  if (nul) out.insert(out.end(), {0, 0});
  return out;
}

void put64(Bytes& o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// UEFI_IMAGE_LOAD_EVENT with a device path of one file-path node.
Bytes image_load_event(const std::string& path, size_t image_size) {
  Bytes node_name = utf16le(path, true);
  Bytes dp = {0x04, 0x04};
  put16(dp, static_cast<uint16_t>(4 + node_name.size()));
  dp.insert(dp.end(), node_name.begin(), node_name.end());
  dp.insert(dp.end(), {0x7f, 0xff, 0x04, 0x00});  // end of device path
  Bytes ev;
  put64(ev, 0x7e000000);  // location in memory
  put64(ev, image_size);
  put64(ev, 0);
  put64(ev, dp.size());
  ev.insert(ev.end(), dp.begin(), dp.end());
  return ev;
}

// UEFI_VARIABLE_DATA for an EFI global variable.
Bytes variable_event(const std::string& name, const Bytes& value) {
  static const uint8_t kGlobalGuid[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                          0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
  Bytes ev(kGlobalGuid, kGlobalGuid + 16);
  put64(ev, name.size());
  put64(ev, value.size());
  Bytes n = utf16le(name, false);
  ev.insert(ev.end(), n.begin(), n.end());
  ev.insert(ev.end(), value.begin(), value.end());
  return ev;
}

Bytes text_event(const std::string& s) {
  Bytes b(s.begin(), s.end());
  b.push_back(0);
  return b;
}

}  // namespace

MeasuredBoot measure_boot(const BootImage& img, std::vector<uint16_t> banks) {
  MeasuredBoot mb;
  EventLogWriter w(banks);
  auto sha256_of = [&](const std::vector<std::pair<uint16_t, Bytes>>& d) {
    for (const auto& [alg, v] : d)
      if (alg == kAlgSha256) return v;
    return d.front().second;
  };
  auto add = [&](uint32_t pcr, uint32_t type, const Bytes& data, const Bytes& measured,
                 const char* kind) {
    auto d = w.add(pcr, type, as_view(data), as_view(measured));
    if (kind) mb.component_digests[kind].push_back(sha256_of(d));
    mb.extends.push_back({pcr, std::move(d)});
  };
  Bytes version = utf16le(img.firmware_version, true);
  add(0, kEvSCrtmVersion, version, version, "firmware");
  add(0, kEvEfiPlatformFirmwareBlob, Bytes(16, 0), img.firmware, "firmware");
  Bytes sb = {static_cast<uint8_t>(img.secure_boot ? 1 : 0)};
  Bytes sb_event = variable_event("SecureBoot", sb);
  add(7, kEvEfiVariableDriverConfig, sb_event, sb_event, nullptr);
  Bytes sep(4, 0);
  for (uint32_t pcr = 0; pcr <= 7; ++pcr) add(pcr, kEvSeparator, sep, sep, nullptr);
  add(4, kEvEfiBootServicesApplication,
      image_load_event(img.boot_loader_path, img.boot_loader.size()), img.boot_loader,
      "boot_loader");
  std::string cmd = "kernel_cmdline: " + img.cmdline;
  add(8, kEvIpl, text_event(cmd), Bytes(cmd.begin(), cmd.end()), "kernel_cmdline");
  add(9, kEvIpl, text_event(img.kernel_path), img.kernel, "kernel");
  add(9, kEvIpl, text_event(img.initrd_path), img.initrd, "initrd");
  mb.log = w.bytes();
  return mb;
}

// --- IMA ---

namespace {

constexpr size_t path_max_legacy = 256;  // IMA_EVENT_NAME_LEN_MAX + 1

void field(Bytes& out, ByteView data) {
  put32(out, static_cast<uint32_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
}

Bytes digest_ng(const std::string& alg, const Bytes& digest) {
  Bytes d(alg.begin(), alg.end());
  d.push_back(':');
  d.push_back(0);
  d.insert(d.end(), digest.begin(), digest.end());
  return d;
}

Bytes name_ng(const std::string& path) {
  Bytes n(path.begin(), path.end());
  n.push_back(0);
  return n;
}

void build_template_data(ImaEntry& e) {
  e.template_data.clear();
  if (e.template_name == "ima") {
    e.template_data = e.file_digest;
    Bytes name(path_max_legacy, 0);
    std::memcpy(name.data(), e.path.data(), std::min(e.path.size(), name.size() - 1));
    e.template_data.insert(e.template_data.end(), name.begin(), name.end());
    return;
  }
  field(e.template_data, as_view(digest_ng(e.file_digest_alg, e.file_digest)));
  field(e.template_data, as_view(name_ng(e.path)));
  if (e.template_name == "ima-sig") field(e.template_data, as_view(e.signature));
  if (e.template_name == "ima-buf") field(e.template_data, as_view(e.buffer));
}

std::vector<std::string> split(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Error ima_error(size_t line, const std::string& what) {
  return make_error(Errc::kBadValue, "IMA list line " + std::to_string(line) + ": " + what);
}

bool split_digest(const std::string& tok, std::string& alg, Bytes& digest) {
  size_t colon = tok.find(':');
  if (colon == std::string::npos) return false;
  alg = tok.substr(0, colon);
  auto d = from_hex(tok.substr(colon + 1));
  if (!d) return false;
  digest = std::move(*d);
  return true;
}

}  // namespace

Result<ImaLog> parse_ima_ascii(std::string_view text) {
  ImaLog log;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    auto tok = split(line);
    if (tok.size() < 5) return ima_error(line_no, "fewer than 5 fields");
    ImaEntry e;
    try {
      e.pcr = static_cast<uint32_t>(std::stoul(tok[0]));
    } catch (...) {
      return ima_error(line_no, "PCR '" + tok[0] + "' is not a number");
    }
    if (e.pcr >= 24) return ima_error(line_no, "PCR " + tok[0] + " is not 0..23");
    auto th = from_hex(tok[1]);
    if (!th || th->size() != 20) return ima_error(line_no, "template hash is not 20 bytes of hex");
    e.template_hash = *th;
    e.violation = std::all_of(th->begin(), th->end(), [](uint8_t c) { return c == 0; });
    e.template_name = tok[2];
    size_t last = tok.size();
    if (e.template_name == "ima") {
      auto d = from_hex(tok[3]);
      if (!d || d->size() != 20) return ima_error(line_no, "ima file digest is not SHA-1 hex");
      e.file_digest_alg = "sha1";
      e.file_digest = *d;
    } else if (e.template_name == "ima-ng" || e.template_name == "ima-sig" ||
               e.template_name == "ima-buf") {
      if (!split_digest(tok[3], e.file_digest_alg, e.file_digest))
        return ima_error(line_no, "file digest '" + tok[3] + "' is not alg:hex");
      if (e.template_name == "ima-buf") {
        if (tok.size() < 6) return ima_error(line_no, "ima-buf entry without its buffer");
        auto buf = from_hex(tok.back());
        if (!buf) return ima_error(line_no, "ima-buf buffer is not hex");
        e.buffer = *buf;
        last = tok.size() - 1;
      } else if (e.template_name == "ima-sig" && tok.size() >= 6) {
        auto sig = from_hex(tok.back());
        if (sig && !sig->empty() && (*sig)[0] == 0x03) {
          e.signature = *sig;
          last = tok.size() - 1;
        }
      }
    } else {
      return make_error(Errc::kUnsupported, "IMA list line " + std::to_string(line_no) +
                                                ": template '" + e.template_name +
                                                "' (supported: ima, ima-ng, ima-sig, ima-buf)");
    }
    for (size_t i = 4; i < last; ++i) e.path += (i > 4 ? " " : "") + tok[i];
    build_template_data(e);
    log.entries.push_back(std::move(e));
  }
  return log;
}

Result<ImaLog> parse_ima_binary(ByteView in) {
  ImaLog log;
  Le r(in);
  for (size_t i = 0; r.remaining() > 0; ++i) {
    ImaEntry e;
    uint32_t nlen = 0, dlen = 0;
    Bytes name, data;
    size_t at = r.pos();
    if (!r.u32(e.pcr) || !r.bytes(20, e.template_hash) || !r.u32(nlen) || nlen > 255 ||
        !r.bytes(nlen, name))
      return make_error(Errc::kTruncated, "IMA binary entry " + std::to_string(i) + " at byte " +
                                              std::to_string(at) + " is incomplete");
    e.template_name.assign(name.begin(), name.end());
    if (e.template_name == "ima")
      return make_error(Errc::kUnsupported,
                        "IMA binary list with the legacy 'ima' template: use the ascii list");
    if (!r.u32(dlen) || dlen > r.remaining() || !r.bytes(dlen, data))
      return make_error(Errc::kTruncated,
                        "IMA binary entry " + std::to_string(i) + " template data is incomplete");
    e.violation = std::all_of(e.template_hash.begin(), e.template_hash.end(),
                              [](uint8_t c) { return c == 0; });
    Le f(as_view(data));
    std::vector<Bytes> fields;
    while (f.remaining() > 0) {
      uint32_t fl = 0;
      Bytes fd;
      if (!f.u32(fl) || !f.bytes(fl, fd))
        return make_error(Errc::kTruncated,
                          "IMA binary entry " + std::to_string(i) + " has a truncated field");
      fields.push_back(std::move(fd));
    }
    if (fields.size() < 2)
      return make_error(Errc::kBadValue,
                        "IMA binary entry " + std::to_string(i) + " has fewer than two fields");
    const Bytes& dng = fields[0];
    auto nul = std::find(dng.begin(), dng.end(), 0);
    if (nul == dng.end() || nul == dng.begin() || *(nul - 1) != ':')
      return make_error(Errc::kBadValue,
                        "IMA binary entry " + std::to_string(i) + " digest field is not alg:");
    e.file_digest_alg.assign(dng.begin(), nul - 1);
    e.file_digest.assign(nul + 1, dng.end());
    e.path = ascii_text(fields[1]);
    if (e.template_name == "ima-sig" && fields.size() > 2) e.signature = fields[2];
    if (e.template_name == "ima-buf" && fields.size() > 2) e.buffer = fields[2];
    e.template_data = std::move(data);
    log.entries.push_back(std::move(e));
  }
  return log;
}

Result<ImaLog> parse_ima_any(ByteView bytes) {
  // The ascii list starts with a decimal PCR number and a space; the binary with a u32.
  if (bytes.size() >= 3 && bytes[0] >= '0' && bytes[0] <= '9' &&
      (bytes[1] == ' ' || (bytes[1] >= '0' && bytes[1] <= '9' && bytes[2] == ' ')))
    return parse_ima_ascii(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return parse_ima_binary(bytes);
}

Status verify_ima_template_hashes(const ImaLog& log) {
  for (size_t i = 0; i < log.entries.size(); ++i) {
    const ImaEntry& e = log.entries[i];
    if (e.violation) continue;
    Bytes h = crypto::digest(crypto::HashAlg::kSha1, as_view(e.template_data));
    if (h != e.template_hash)
      return make_error(Errc::kRecordMismatch,
                        "IMA entry " + std::to_string(i + 1) + " (" + e.path + "): template hash " +
                            to_hex(e.template_hash) + " does not match its fields (" + to_hex(h) +
                            "): the entry was edited");
  }
  return {};
}

namespace {
Bytes ima_extend_value(const ImaEntry& e, uint16_t bank, crypto::HashAlg h) {
  size_t n = crypto::hash_size(h);
  if (e.violation) return Bytes(n, 0xFF);
  if (bank == kAlgSha1) return e.template_hash;
  return crypto::digest(h, as_view(e.template_data));
}
}  // namespace

PcrBank replay_ima(const ImaLog& log, uint16_t bank) {
  PcrBank out;
  auto h = hash_of(bank);
  if (!h) return out;
  size_t n = crypto::hash_size(*h);
  for (const auto& e : log.entries) {
    auto it = out.find(e.pcr);
    if (it == out.end()) it = out.emplace(e.pcr, Bytes(n, 0)).first;
    Bytes value = ima_extend_value(e, bank, *h);
    it->second = crypto::digest2(*h, as_view(it->second), as_view(value));
  }
  return out;
}

std::optional<size_t> ima_attested_prefix(const ImaLog& log, uint16_t bank, const Bytes& quoted,
                                          uint32_t pcr) {
  auto h = hash_of(bank);
  if (!h) return std::nullopt;
  Bytes value(crypto::hash_size(*h), 0);
  if (value == quoted) return 0;
  for (size_t i = 0; i < log.entries.size(); ++i) {
    const ImaEntry& e = log.entries[i];
    if (e.pcr != pcr) continue;
    value = crypto::digest2(*h, as_view(value), as_view(ima_extend_value(e, bank, *h)));
    if (value == quoted) return i + 1;
  }
  return std::nullopt;
}

}  // namespace attestnet::evidence::tpm2
