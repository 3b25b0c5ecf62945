#include "agent/collect.h"

#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/codec.h"
#include "evidence/sevsnp/bundle.h"
#include "evidence/tdx/bundle.h"

namespace attestnet::agent {

namespace fs = std::filesystem;

namespace {

Result<Bytes> read_attr(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return make_error(Errc::kIo, "cannot read " + p.string() + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

Status write_attr(const fs::path& p, ByteView data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  if (!f) return make_error(Errc::kIo, "cannot write " + p.string() + ": " + std::strerror(errno));
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  f.flush();
  if (!f)
    return make_error(Errc::kIo, "writing " + p.string() + " failed: " + std::strerror(errno) +
                                     " (the TSM provider refused the request)");
  return {};
}

std::string trimmed(const Bytes& b) {
  std::string s(b.begin(), b.end());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<uint64_t> generation(const fs::path& entry) {
  ATN_TRY(Bytes g, read_attr(entry / "generation"));
  try {
    return static_cast<uint64_t>(std::stoull(trimmed(g)));
  } catch (...) {
    return make_error(Errc::kBadValue, "configfs-tsm generation is not a number");
  }
}

std::string guid_string(ByteView g) {
  // EFI GUID: first three fields little endian.
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2],
                g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
                g[15]);
  return buf;
}

}  // namespace

Result<fs::path> tsm_create_entry(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    return make_error(Errc::kNotFound,
                      "configfs-tsm is not available at " + root.string() +
                          ": the kernel (6.7 or later, with the sev-guest or tdx-guest driver) "
                          "lacks it, configfs is not mounted (mount -t configfs none "
                          "/sys/kernel/config), or this is not a confidential VM");
  static std::atomic<int> counter{0};
  for (int i = 0; i < 100; ++i) {
    fs::path entry = root / ("attestnet-" + std::to_string(::getpid()) + "-" +
                             std::to_string(counter.fetch_add(1)));
    if (fs::create_directory(entry, ec)) return entry;
    if (ec && ec != std::errc::file_exists)
      return make_error(Errc::kIo, "cannot create " + entry.string() + ": " + ec.message());
  }
  return make_error(Errc::kIo, "cannot find a free report entry name under " + root.string());
}

void tsm_remove_entry(const fs::path& entry) {
  std::error_code ec;
  fs::remove(entry, ec);  // configfs: rmdir of the entry (its attributes go with it)
}

Result<TsmReport> tsm_collect(const fs::path& entry, ByteView inblob,
                              std::optional<uint32_t> privlevel) {
  if (inblob.size() > 64) return make_error(Errc::kInvalidArgument, "inblob is at most 64 bytes");
  if (privlevel) {
    std::string pl = std::to_string(*privlevel);
    ATN_CHECK(write_attr(entry / "privlevel", as_view(pl)));
  }
  ATN_CHECK(write_attr(entry / "inblob", inblob));
  TsmReport r;
  ATN_TRY(uint64_t g1, generation(entry));
  ATN_TRY(Bytes provider, read_attr(entry / "provider"));
  r.provider = trimmed(provider);
  ATN_TRY(r.outblob, read_attr(entry / "outblob"));
  std::error_code ec;
  if (fs::exists(entry / "auxblob", ec)) {
    ATN_TRY(r.auxblob, read_attr(entry / "auxblob"));
  }
  ATN_TRY(uint64_t g2, generation(entry));
  if (g1 != g2)
    return make_error(Errc::kStale,
                      "another process wrote this configfs-tsm entry while the report was read "
                      "(generation " +
                          std::to_string(g1) + " -> " + std::to_string(g2) +
                          "): its outblob may not be for our inblob; retry");
  if (r.outblob.empty())
    return make_error(Errc::kIo, "the TSM provider " + r.provider + " returned an empty report");
  r.generation = g2;
  return r;
}

Result<std::vector<SnpCert>> parse_snp_cert_table(ByteView t) {
  static const std::pair<const char*, const char*> kinds[] = {
      {"63da758d-e664-4564-adc5-f4b93be8accd", "vcek"},
      {"a8074bc2-a25a-483e-aae6-39c045a0b8a1", "vlek"},
      {"4ab7b379-bbac-4fe4-a02f-05aef327c782", "ask"},
      {"c0b406a4-a803-4952-9743-3fb6014cd0ae", "ark"}};
  std::vector<SnpCert> out;
  for (size_t off = 0;; off += 24) {
    if (off + 24 > t.size())
      return make_error(Errc::kTruncated, "SEV-SNP certificate table has no terminating entry");
    ByteView e = t.subspan(off, 24);
    if (std::all_of(e.begin(), e.end(), [](uint8_t c) { return c == 0; })) break;
    uint32_t o = static_cast<uint32_t>(e[16] | e[17] << 8 | e[18] << 16 | e[19] << 24);
    uint32_t n = static_cast<uint32_t>(e[20] | e[21] << 8 | e[22] << 16 | e[23] << 24);
    if (static_cast<uint64_t>(o) + n > t.size())
      return make_error(Errc::kTruncated, "SEV-SNP certificate table entry points past its end");
    SnpCert c;
    c.kind = guid_string(e.subspan(0, 16));
    for (const auto& [guid, kind] : kinds)
      if (c.kind == guid) c.kind = kind;
    c.der.assign(t.begin() + o, t.begin() + o + n);
    out.push_back(std::move(c));
    if (out.size() > 16) return make_error(Errc::kOversize, "more than 16 certificates");
  }
  return out;
}

Result<CollectedEvidence> evidence_from_tsm(const TsmReport& r) {
  CollectedEvidence c;
  if (r.provider == "sev_guest") {
    evidence::sevsnp::SevSnpEvidence e;
    e.report = r.outblob;
    if (r.auxblob.empty())
      return make_error(Errc::kNotFound,
                        "the host gave no certificates with the SEV-SNP report (empty auxblob): "
                        "fetch the VCEK, ASK and ARK from AMD KDS and pass them with --certs");
    ATN_TRY(auto certs, parse_snp_cert_table(as_view(r.auxblob)));
    for (auto& cert : certs) {
      if (cert.kind == "vcek" || cert.kind == "vlek") {
        e.leaf = std::move(cert.der);
      } else if (cert.kind == "ask" || cert.kind == "ark") {
        e.chain.push_back(std::move(cert.der));
      }
    }
    if (e.leaf.empty())
      return make_error(Errc::kNotFound, "the host's certificate table has no VCEK or VLEK");
    c.platform = "sev-snp";
    c.bundle = e.encode();
  } else if (r.provider == "tdx_guest") {
    evidence::tdx::DcapEvidence e;
    e.quote = r.outblob;
    c.platform = "tdx";
    c.bundle = e.encode();
  } else {
    return make_error(Errc::kUnsupported, "configfs-tsm provider '" + r.provider +
                                              "' (sev_guest and tdx_guest are supported)");
  }
  return c;
}

Result<CollectedEvidence> collect_tsm(ByteView report_data, const fs::path& root) {
  ATN_TRY(fs::path entry, tsm_create_entry(root));
  auto r = tsm_collect(entry, report_data);
  tsm_remove_entry(entry);
  if (!r.ok()) return r.error();
  return evidence_from_tsm(*r);
}

Result<CollectedEvidence> collect_sev_guest(ByteView report_data, uint32_t vmpl,
                                            const std::string& device) {
  if (report_data.size() > 64)
    return make_error(Errc::kInvalidArgument, "SEV-SNP report data is at most 64 bytes");
  int fd = ::open(device.c_str(), O_RDWR);
  if (fd < 0)
    return make_error(Errc::kNotFound, "cannot open " + device + ": " + std::strerror(errno) +
                                           " (not an SEV-SNP guest, or the sev-guest driver is "
                                           "not loaded)");
  snp_ext_report_req req;
  std::memset(&req, 0, sizeof req);
  std::memcpy(req.data.user_data, report_data.data(), report_data.size());
  req.data.vmpl = vmpl;
  Bytes certs(4 * 4096, 0);
  req.certs_address = reinterpret_cast<uint64_t>(certs.data());
  req.certs_len = static_cast<uint32_t>(certs.size());
  snp_report_resp resp;
  std::memset(&resp, 0, sizeof resp);
  snp_guest_request_ioctl io;
  std::memset(&io, 0, sizeof io);
  io.msg_version = 1;
  io.req_data = reinterpret_cast<uint64_t>(&req);
  io.resp_data = reinterpret_cast<uint64_t>(&resp);
  int rc = ::ioctl(fd, SNP_GET_EXT_REPORT, &io);
  int err = errno;
  ::close(fd);
  if (rc < 0)
    return make_error(Errc::kIo, "SNP_GET_EXT_REPORT on " + device +
                                     " failed: " + std::strerror(err) + " (firmware error " +
                                     std::to_string(io.exitinfo2) + ")");
  // MSG_REPORT_RSP: status u32, report_size u32, reserved[24], report.
  const uint8_t* d = resp.data;
  uint32_t status = static_cast<uint32_t>(d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24);
  uint32_t size = static_cast<uint32_t>(d[4] | d[5] << 8 | d[6] << 16 | d[7] << 24);
  if (status != 0)
    return make_error(Errc::kIo,
                      "the SEV-SNP firmware refused the report: status " + std::to_string(status));
  if (size != evidence::sevsnp::kReportSize || 32 + size > sizeof resp.data)
    return make_error(Errc::kBadValue, "the SEV-SNP firmware returned a report of " +
                                           std::to_string(size) + " bytes");
  TsmReport r;
  r.provider = "sev_guest";
  r.outblob.assign(d + 32, d + 32 + size);
  r.auxblob = std::move(certs);
  return evidence_from_tsm(r);
}

}  // namespace attestnet::agent
