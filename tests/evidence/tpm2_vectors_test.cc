// Real TPM evidence from ../shared/vectors/tpm (PROVENANCE.md says what each must give):
// quotes from swtpm, a GCE Shielded VM, a Windows GCE VM and trustee's tests; event logs from
// real machines replayed to the PCR values their sources state; an IMA list from a real
// OpenPOWER machine.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "evidence/tpm2/eventlog.h"
#include "evidence/tpm2/quote.h"
#include "vectors.h"

namespace attestnet::evidence::tpm2 {
namespace {

using test::load_json;
using test::vectors_dir;

Bytes read(const std::filesystem::path& p) {
  return test::read_bytes(p);
}

std::filesystem::path tpm_dir() {
  return vectors_dir() / "tpm";
}

Bytes hex(const std::string& s) {
  auto b = from_hex(s);
  EXPECT_TRUE(b.has_value()) << s;
  return b.value_or(Bytes{});
}

// --- swtpm-generated bundles: VALID with the stated nonce; INVALID with another nonce or any
// changed PCR value.
class SwtpmBundle : public ::testing::TestWithParam<std::string> {};

TEST_P(SwtpmBundle, VerifiesAndRejectsTampering) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "swtpm-generated" / GetParam();
  auto expected = load_json(dir / "expected.json");
  Bytes ak_bytes = read(dir / "ak.tpm2b_public");
  auto ak = parse_ak(as_view(ak_bytes));
  ASSERT_TRUE(ak.ok()) << ak.error().to_string();
  // The PEM form of the same key is accepted too.
  Bytes pem = read(dir / "ak.pem");
  auto ak_pem = parse_ak(as_view(pem));
  ASSERT_TRUE(ak_pem.ok()) << ak_pem.error().to_string();
  EXPECT_EQ(ak_pem->key.spki_der(), ak->key.spki_der());
  // The AK's name is the one tpm2_createak wrote.
  EXPECT_EQ(ak->name, read(dir / "ak.name"));

  Bytes msg = read(dir / "quote.msg");
  Bytes sig_bytes = read(dir / "quote.sig");
  auto sig = parse_signature_file(as_view(sig_bytes), *ak);
  ASSERT_TRUE(sig.ok()) << sig.error().to_string();
  auto pcrs = parse_tpm2_tools_pcrs(as_view(read(dir / "quote.pcrs")));
  ASSERT_TRUE(pcrs.ok()) << pcrs.error().to_string();
  for (const auto& [bank, values] : expected["expected_pcrs"].items())
    for (const auto& [idx, v] : values.items())
      EXPECT_EQ(to_hex((*pcrs)[*alg_from_name(bank)][std::stoul(idx)]), v.get<std::string>());

  auto v = verify_quote(*ak, as_view(msg), *sig, *pcrs);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(to_hex(v->quote.extra_data), expected["nonce_hex"].get<std::string>());
  EXPECT_EQ(to_hex(v->quote.pcr_digest), expected["tpms_attest"]["pcr_digest"].get<std::string>());
  EXPECT_EQ(v->quote.clock, expected["tpms_attest"]["clock"].get<uint64_t>());
  EXPECT_EQ(selection_string(v->quote.selection), expected["pcr_selection"].get<std::string>());

  // Any changed PCR value: the digest no longer matches.
  for (auto& [alg, bank] : *pcrs)
    for (auto& [idx, value] : bank) {
      PcrValues changed = *pcrs;
      changed[alg][idx][0] ^= 1;
      auto bad = verify_quote(*ak, as_view(msg), *sig, changed);
      ASSERT_FALSE(bad.ok());
      EXPECT_EQ(bad.error().code, Errc::kPcrMismatch);
    }
  // A flipped bit anywhere in the signed structure: the signature fails.
  Bytes flipped = msg;
  flipped[flipped.size() / 2] ^= 0x10;
  auto bad = verify_quote(*ak, as_view(flipped), *sig, *pcrs);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().reason.find("does not verify"), std::string::npos) << bad.error().reason;
  // Another bundle's AK: the signature fails.
  std::string other = GetParam() == "rsa2048-rsassa-sha256" ? "rsa2048-rsassa-multibank-plain"
                                                            : "rsa2048-rsassa-sha256";
  auto other_ak = parse_ak(as_view(read(tpm_dir() / "swtpm-generated" / other / "ak.pem")));
  ASSERT_TRUE(other_ak.ok());
  if (other_ak->key.type() == ak->key.type()) {
    auto foreign = verify_quote(*other_ak, as_view(msg), *sig, *pcrs);
    ASSERT_FALSE(foreign.ok());
    EXPECT_EQ(foreign.error().code, Errc::kBadSignature);
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, SwtpmBundle,
                         ::testing::Values("rsa2048-rsassa-sha256", "ecc-p256-ecdsa-sha256",
                                           "rsa2048-rsassa-multibank-plain"));

// --- GCE Shielded VM (COS 85): one quote per bank, all 24 PCRs, nonce 0x9009.
TEST(TpmVectors, GceQuotesVerifyForEveryBank) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "gce-cos85-nonce9009";
  auto expected = load_json(dir / "expected.json");
  auto ak = parse_ak(as_view(read(dir / "ak.tpmt_public")));
  ASSERT_TRUE(ak.ok()) << ak.error().to_string();
  EXPECT_EQ(ak->key.describe(), "RSA-2048");
  for (std::string bank : {"sha1", "sha256", "sha384"}) {
    SCOPED_TRACE(bank);
    const auto& q = expected["quotes"][bank];
    Bytes msg = read(dir / ("quote_" + bank + ".tpms_attest"));
    auto sig = parse_signature(as_view(read(dir / ("quote_" + bank + ".tpmt_signature"))));
    ASSERT_TRUE(sig.ok()) << sig.error().to_string();
    PcrValues pcrs;
    for (const auto& [idx, v] : q["pcrs"].items())
      pcrs[*alg_from_name(bank)][std::stoul(idx)] = hex(v.get<std::string>());
    auto v = verify_quote(*ak, as_view(msg), *sig, pcrs);
    ASSERT_TRUE(v.ok()) << v.error().to_string();
    EXPECT_EQ(to_hex(v->quote.extra_data), "9009");
    EXPECT_EQ(v->quote.clock, q["clock"].get<uint64_t>());
    EXPECT_EQ(v->quote.reset_count, q["reset_count"].get<uint32_t>());
    EXPECT_EQ(to_hex(v->quote.qualified_signer), q["qualified_signer"].get<std::string>());
  }
}

TEST(TpmVectors, GceEventLogReplaysToQuotedPcrs0To9) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "gce-cos85-nonce9009";
  auto expected = load_json(dir / "expected.json");
  auto log = parse_event_log(as_view(read(dir / "event_log.bin")));
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  EXPECT_TRUE(log->crypto_agile);
  PcrValues replayed = replay(*log);
  for (std::string bank : {"sha1", "sha256", "sha384"}) {
    uint16_t alg = *alg_from_name(bank);
    for (uint32_t pcr = 0; pcr <= 9; ++pcr) {
      auto want = expected["quotes"][bank]["pcrs"][std::to_string(pcr)].get<std::string>();
      ASSERT_TRUE(replayed[alg].count(pcr)) << bank << ":" << pcr;
      EXPECT_EQ(to_hex(replayed[alg][pcr]), want) << bank << ":" << pcr;
    }
  }
  // And the same through check_against with the quoted values.
  PcrValues quoted;
  for (const auto& [idx, v] : expected["quotes"]["sha256"]["pcrs"].items())
    quoted[kAlgSha256][std::stoul(idx)] = hex(v.get<std::string>());
  auto compared = check_against(*log, quoted);
  ASSERT_TRUE(compared.ok()) << compared.error().to_string();
  EXPECT_GE(compared->size(), 10u);
}

// --- Windows GCE VM: SHA-1 quote with an empty nonce, SHA-1 log.
TEST(TpmVectors, WindowsQuoteAndSha1LogVerify) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "go-attestation-windows-gcp";
  auto expected = load_json(dir / "expected.json");
  auto ak = parse_ak(as_view(read(dir / "ak.tpmt_public")));
  ASSERT_TRUE(ak.ok()) << ak.error().to_string();
  auto sig = parse_signature(as_view(read(dir / "quote.tpmt_signature")));
  ASSERT_TRUE(sig.ok()) << sig.error().to_string();
  EXPECT_EQ(sig->hash_alg, kAlgSha1);
  PcrValues pcrs;
  for (const auto& [idx, v] : expected["pcrs"].items())
    pcrs[kAlgSha1][std::stoul(idx)] = hex(v.get<std::string>());
  auto v = verify_quote(*ak, as_view(read(dir / "quote.tpms_attest")), *sig, pcrs);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_TRUE(v->quote.extra_data.empty());
  auto log = parse_event_log(as_view(read(dir / "event_log.bin")));
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  EXPECT_FALSE(log->crypto_agile);
  auto compared = check_against(*log, pcrs);
  ASSERT_TRUE(compared.ok()) << compared.error().to_string();
  EXPECT_FALSE(compared->empty());
}

// --- trustee: swtpm-style quote over 24 SHA-256 PCRs with 64-byte report data.
TEST(TpmVectors, TrusteeQuoteVerifies) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "trustee-tpm-evidence";
  auto j = load_json(dir / "tpm_evidence.json");
  auto ak = parse_ak(as_view(read(dir / "ak.pem")));
  ASSERT_TRUE(ak.ok()) << ak.error().to_string();
  auto sig = parse_signature(as_view(read(dir / "quote.tpmt_signature")));
  ASSERT_TRUE(sig.ok());
  PcrValues pcrs;
  std::string list = j["tpm_quote"]["pcrs"].is_string() ? j["tpm_quote"]["pcrs"].get<std::string>()
                                                        : j["tpm_quote"]["pcrs"].dump();
  uint32_t idx = 0;
  for (size_t i = 0; (i = list.find_first_of("0123456789abcdef", i)) != std::string::npos;) {
    pcrs[kAlgSha256][idx++] = hex(list.substr(i, 64));
    i += 64;
  }
  ASSERT_EQ(idx, 24u);
  auto v = verify_quote(*ak, as_view(read(dir / "quote.tpms_attest")), *sig, pcrs);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(to_hex(v->quote.extra_data),
            "a04182b506878d4f29b91ee606a71a0d3361ccf1b22db20c98adcaa537bea393ef0e41a18b3569ab678f"
            "1497fbc5c12000000000000000000000000000000000");
}

// --- go-tpm-tools event logs from real machines: replay gives exactly the stated PCRs.
TEST(TpmVectors, GoTpmToolsLogsReplayToExpectedPcrs) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "eventlogs" / "go-tpm-tools";
  auto expected = load_json(dir / "expected_pcrs.json");
  int logs = 0;
  for (const auto& [file, e] : expected.items()) {
    SCOPED_TRACE(file);
    auto log = parse_event_log(as_view(read(dir / file)));
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    PcrValues replayed = replay(*log);
    for (const auto& [bank, pcrs] : e["banks"].items()) {
      uint16_t alg = *alg_from_name(bank);
      for (const auto& [idx, want] : pcrs.items())
        EXPECT_EQ(to_hex(replayed[alg][std::stoul(idx)]), want.get<std::string>())
            << bank << ":" << idx;
    }
    ++logs;
  }
  EXPECT_GE(logs, 10);
}

// --- tpm2-tools fixtures: replay equals the "pcrs:" section of tpm2_eventlog's YAML.
PcrValues yaml_pcrs(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::string line;
  PcrValues out;
  bool in = false;
  uint16_t alg = 0;
  while (std::getline(f, line)) {
    if (line == "pcrs:") {
      in = true;
      continue;
    }
    if (!in) continue;
    if (line.size() > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ') {
      alg = alg_from_name(line.substr(2, line.find(':') - 2)).value_or(0);
    } else if (line.find(": 0x") != std::string::npos && alg) {
      uint32_t idx = static_cast<uint32_t>(std::stoul(line));
      out[alg][idx] = *from_hex(line.substr(line.find("0x") + 2));
    } else if (!line.empty() && line[0] != ' ') {
      break;
    }
  }
  return out;
}

TEST(TpmVectors, Tpm2ToolsLogsReplayToTheirYaml) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "eventlogs" / "tpm2-tools";
  for (std::string name : {"event-uefi-sha1-log.bin", "event-gce-ubuntu-2104-log.bin",
                           "event-sd-boot-fedora37.bin", "event-postcode.bin"}) {
    SCOPED_TRACE(name);
    auto log = parse_event_log(as_view(read(dir / name)));
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    PcrValues want = yaml_pcrs(dir / (name + ".yaml"));
    ASSERT_FALSE(want.empty());
    PcrValues got = replay(*log);
    for (const auto& [alg, bank] : want)
      for (const auto& [idx, v] : bank)
        EXPECT_EQ(to_hex(got[alg][idx]), to_hex(v)) << alg_name(alg) << ":" << idx;
  }
}

TEST(TpmVectors, GoAttestationLogsParse) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "eventlogs" / "go-attestation";
  for (std::string name :
       {"crypto_agile_eventlog", "short_no_action_eventlog", "ebs_event_missing_eventlog",
        "sb_cert_eventlog", "option_rom_eventlog"}) {
    auto log = parse_event_log(as_view(read(dir / name)));
    EXPECT_TRUE(log.ok()) << name << ": " << log.error().to_string();
  }
  // The short StartupLocality event sets PCR 0's initial value.
  auto log = parse_event_log(as_view(read(dir / "short_no_action_eventlog")));
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->startup_locality, 3);
  // Secure Boot state is read from the sb_cert log.
  auto sb = parse_event_log(as_view(read(dir / "sb_cert_eventlog")));
  ASSERT_TRUE(sb.ok());
  BootState st = extract_components(*sb);
  EXPECT_TRUE(st.secure_boot.has_value());
}

TEST(TpmVectors, RealLogsYieldBootComponents) {
  REQUIRE_VECTORS();
  auto log = parse_event_log(
      as_view(read(tpm_dir() / "eventlogs" / "go-tpm-tools" / "ubuntu-2104-no-dbx.bin")));
  ASSERT_TRUE(log.ok());
  BootState st = extract_components(*log);
  std::set<std::string> kinds;
  for (const auto& c : st.components) kinds.insert(c.kind);
  // This GCE image boots "initrdless" (its grub_cmd events say so): no initrd is measured.
  for (std::string k : {"firmware", "boot_loader", "efi_application", "kernel", "kernel_cmdline",
                        "grub_cmd", "secure_boot_variable"})
    EXPECT_TRUE(kinds.count(k)) << "no " << k << " in a real Ubuntu GRUB boot";
  EXPECT_FALSE(kinds.count("initrd"));
  ASSERT_TRUE(st.secure_boot.has_value());
}

// --- IMA: keylime's OpenPOWER list.
TEST(TpmVectors, KeylimeImaListTemplateHashesAndPcr10) {
  REQUIRE_VECTORS();
  auto dir = tpm_dir() / "ima";
  Bytes text = read(dir / "keylime-openpower-ima-sig.ascii");
  auto log = parse_ima_any(as_view(text));
  ASSERT_TRUE(log.ok()) << log.error().to_string();
  auto expected = load_json(dir / "keylime-openpower-ima-sig.expected.json");
  ASSERT_EQ(log->entries.size(), expected["entries"].size());
  EXPECT_TRUE(verify_ima_template_hashes(*log).ok());
  // Running PCR 10 after each entry.
  ImaLog prefix;
  for (size_t i = 0; i < log->entries.size(); ++i) {
    prefix.entries.push_back(log->entries[i]);
    EXPECT_EQ(to_hex(replay_ima(prefix, kAlgSha1)[10]),
              expected["entries"][i]["pcr10_after"].get<std::string>());
    EXPECT_EQ(log->entries[i].path, expected["entries"][i]["name"].get<std::string>());
  }
  EXPECT_EQ(to_hex(replay_ima(*log, kAlgSha1)[10]), "3071bc1579d80e38ff478dbccdd82e95b3f669a2");
  // An edited digest breaks that entry's template hash.
  std::string edited(text.begin(), text.end());
  size_t at = edited.find("sha256:", edited.find("/usr/bin/dd") - 80);
  edited[at + 8] = edited[at + 8] == '0' ? '1' : '0';
  auto bad = parse_ima_ascii(edited);
  ASSERT_TRUE(bad.ok());
  auto st = verify_ima_template_hashes(*bad);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kRecordMismatch);
}

}  // namespace
}  // namespace attestnet::evidence::tpm2
