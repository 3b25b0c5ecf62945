// Evidence collection against a configfs-tsm tree the test builds (this machine is not a
// confidential VM): the test plays the kernel, filling outblob, auxblob, provider and
// generation as the sev-guest and tdx-guest drivers do; the agent's bundles then verify.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agent/collect.h"
#include "evidence/sevsnp/bundle.h"
#include "evidence/tdx/bundle.h"
#include "vectors.h"

namespace attestnet::agent {
namespace {

namespace fs = std::filesystem;
using test::vectors_dir;

Bytes read(const std::filesystem::path& p) {
  return test::read_bytes(p);
}

void write(const fs::path& p, ByteView b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write(const fs::path& p, const std::string& s) {
  write(p, as_view(s));
}

struct Tree {
  fs::path root;
  Tree() {
    char tmpl[] = "/tmp/attestnet-tsm-XXXXXX";
    root = fs::path(::mkdtemp(tmpl)) / "tsm" / "report";
    fs::create_directories(root);
  }
  ~Tree() { fs::remove_all(root.parent_path().parent_path()); }
};

// The SEV-SNP certificate table: {guid, offset, length}*, a zero entry, then the DER blobs.
Bytes cert_table(const std::vector<std::pair<std::array<uint8_t, 16>, Bytes>>& certs) {
  size_t header = 24 * (certs.size() + 1);
  Bytes t(header, 0);
  size_t off = header;
  for (size_t i = 0; i < certs.size(); ++i) {
    std::copy(certs[i].first.begin(), certs[i].first.end(), t.begin() + static_cast<long>(24 * i));
    for (int b = 0; b < 4; ++b) {
      t[24 * i + 16 + b] = static_cast<uint8_t>(off >> (8 * b));
      t[24 * i + 20 + b] = static_cast<uint8_t>(certs[i].second.size() >> (8 * b));
    }
    t.insert(t.end(), certs[i].second.begin(), certs[i].second.end());
    off += certs[i].second.size();
  }
  return t;
}

// EFI GUIDs (first three fields little endian) of the VCEK, ASK and ARK entries.
constexpr std::array<uint8_t, 16> kVcek = {0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45,
                                           0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
constexpr std::array<uint8_t, 16> kAsk = {0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f,
                                          0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
constexpr std::array<uint8_t, 16> kArk = {0xa4, 0x06, 0xb4, 0xc0, 0x03, 0xa8, 0x52, 0x49,
                                          0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

TEST(AgentTsm, SevSnpReportAndHostCertificatesBecomeAVerifyingBundle) {
  REQUIRE_VECTORS();
  Tree t;
  auto entry = tsm_create_entry(t.root);
  ASSERT_TRUE(entry.ok()) << entry.error().to_string();
  // The "kernel": what the sev-guest driver exposes after an inblob write.
  auto snp = vectors_dir() / "sev-snp";
  auto chain = crypto::Certificate::parse_any(as_view(read(snp / "amd-roots/ask_ark_milan.pem")));
  ASSERT_TRUE(chain.ok());
  write(*entry / "outblob", as_view(read(snp / "milan-vcek-go-sev-guest/report.bin")));
  write(*entry / "auxblob",
        as_view(cert_table({{kVcek, read(snp / "milan-vcek-go-sev-guest/vcek.der")},
                            {kAsk, (*chain)[0].der()},
                            {kArk, (*chain)[1].der()}})));
  write(*entry / "provider", std::string("sev_guest\n"));
  write(*entry / "generation", std::string("1\n"));
  Bytes binding(64, 0);
  auto r = tsm_collect(*entry, as_view(binding));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(read(*entry / "inblob"), binding);  // what the agent asked the kernel for
  auto ev = evidence_from_tsm(*r);
  ASSERT_TRUE(ev.ok()) << ev.error().to_string();
  EXPECT_EQ(ev->platform, "sev-snp");
  auto bundle = evidence::sevsnp::SevSnpEvidence::decode(as_view(ev->bundle));
  ASSERT_TRUE(bundle.ok());
  auto certs = bundle->certificates();
  ASSERT_TRUE(certs.ok());
  auto v = evidence::sevsnp::verify_report(as_view(bundle->report), *certs,
                                           {(*chain)[1].fingerprint()}, 1717200000);
  EXPECT_TRUE(v.ok()) << v.error().to_string();
  // configfs drops an entry's attributes with the rmdir; a plain directory keeps them, so the
  // test removes them as the kernel would before the agent's rmdir.
  for (const char* f : {"outblob", "auxblob", "provider", "generation", "inblob"})
    fs::remove(*entry / f);
  tsm_remove_entry(*entry);
  EXPECT_FALSE(fs::exists(*entry));
}

TEST(AgentTsm, TdxQuoteBecomesADcapBundle) {
  REQUIRE_VECTORS();
  Tree t;
  auto entry = tsm_create_entry(t.root);
  ASSERT_TRUE(entry.ok());
  Bytes quote = read(vectors_dir() / "tdx/v4-spr-e4-go-tdx-guest/quote.dat");
  write(*entry / "outblob", as_view(quote));
  write(*entry / "provider", std::string("tdx_guest\n"));
  write(*entry / "generation", std::string("7\n"));
  auto r = tsm_collect(*entry, as_view(Bytes(64, 1)));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->generation, 7u);
  auto ev = evidence_from_tsm(*r);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->platform, "tdx");
  auto d = evidence::tdx::DcapEvidence::decode(as_view(ev->bundle));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->quote, quote);
}

TEST(AgentTsm, ClearErrorsWhenThereIsNoTsmOrTheProviderIsUnknown) {
  auto missing = tsm_create_entry("/nonexistent/tsm/report");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().reason.find("configfs-tsm is not available"), std::string::npos);
  Tree t;
  auto entry = tsm_create_entry(t.root);
  ASSERT_TRUE(entry.ok());
  write(*entry / "outblob", std::string("x"));
  write(*entry / "provider", std::string("arm_cca_guest\n"));
  write(*entry / "generation", std::string("1\n"));
  auto r = tsm_collect(*entry, as_view(Bytes(64, 0)));
  ASSERT_TRUE(r.ok());
  auto ev = evidence_from_tsm(*r);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kUnsupported);
  // An SEV-SNP report without host certificates says what to do.
  TsmReport bare{"sev_guest", Bytes(1184, 0), {}, 1};
  auto no_certs = evidence_from_tsm(bare);
  ASSERT_FALSE(no_certs.ok());
  EXPECT_NE(no_certs.error().reason.find("AMD KDS"), std::string::npos);
  EXPECT_FALSE(tsm_collect(*entry, as_view(Bytes(65, 0))).ok());
  auto dev = collect_sev_guest(as_view(Bytes(64, 0)), 0, "/nonexistent/sev-guest");
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().reason.find("not an SEV-SNP guest"), std::string::npos);
}

TEST(AgentTsm, CertificateTableRejectsTruncation) {
  Bytes t = cert_table({{kVcek, Bytes(10, 1)}});
  EXPECT_TRUE(parse_snp_cert_table(as_view(t)).ok());
  EXPECT_FALSE(parse_snp_cert_table(ByteView(t.data(), 30)).ok());
  Bytes bad = t;
  bad[16] = 0xff;  // offset past the end
  EXPECT_FALSE(parse_snp_cert_table(as_view(bad)).ok());
}

}  // namespace
}  // namespace attestnet::agent
