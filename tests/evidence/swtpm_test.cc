// TPM evidence against real software TPMs (swtpm + tpm2-tools, 127.0.0.1 only): a measured
// boot is extended into the TPM with a matching event log, quotes are taken with tpm2_quote, and
// each is appraised by policy::appraise and by the `attestnet evidence verify` command.
// Every tampering is rejected with its own reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "evidence/binding.h"
#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/enroll.h"
#include "evidence/tpm2/eventlog.h"
#include "policy/policy.h"
#include "swtpm.h"

namespace attestnet::evidence::tpm2 {
namespace {

using test::read_bytes;
using test::Swtpm;
using test::write_bytes;

std::string hexs(const Bytes& b) {
  return to_hex(b);
}

BootImage approved_image() {
  BootImage img;
  img.firmware = Bytes(4096, 0xF1);
  img.boot_loader = Bytes(8192, 0xB1);
  img.kernel_path = "/boot/vmlinuz-6.1.0-attestnet";
  img.kernel = Bytes(65536, 0x4B);
  img.initrd_path = "/boot/initrd.img-6.1.0-attestnet";
  img.initrd = Bytes(32768, 0x1D);
  img.cmdline = "root=/dev/vda1 ro console=ttyS0";
  return img;
}

constexpr const char* kSelection = "sha1:0,4,7,8,9,10+sha256:0,4,7,8,9,10";

// One TPM that has booted `img`, with an EK and an AK of the given kind.
struct BootedTpm {
  Swtpm tpm;
  MeasuredBoot boot;
  std::string hash = "sha256";
  std::string scheme;
  // ak: "rsa" (RSASSA), "rsa/rsapss", "ecc" (ECDSA P-256), "ecc384/ecdsa/sha384".
  explicit BootedTpm(const std::string& name, const BootImage& img, const std::string& ak)
      : tpm(name) {
    if (!tpm.ok()) return;
    boot = measure_boot(img);
    for (const auto& e : boot.extends) {
      std::string arg = std::to_string(e.pcr) + ":";
      for (size_t i = 0; i < e.digests.size(); ++i)
        arg += (i ? "," : "") + alg_name(e.digests[i].first) + "=" + hexs(e.digests[i].second);
      tpm.tool("tpm2_pcrextend " + arg);
    }
    write_bytes(tpm.file("eventlog.bin"), as_view(boot.log));
    tpm.tool("tpm2_createek -c ek.ctx -G rsa -u ek.pub");
    std::string alg = ak.substr(0, ak.find('/'));
    scheme = alg.rfind("ecc", 0) == 0 ? "ecdsa" : "rsassa";
    if (ak.find('/') != std::string::npos) {
      std::string rest = ak.substr(ak.find('/') + 1);
      scheme = rest.substr(0, rest.find('/'));
      if (rest.find('/') != std::string::npos) hash = rest.substr(rest.find('/') + 1);
    }
    tpm.tool("tpm2_createak -C ek.ctx -c ak.ctx -G " + alg + " -g " + hash + " -s " + scheme +
             " -u ak.pub -n ak.name");
  }
  // A quote over kSelection with `nonce`; files q-<tag>.{msg,sig,pcrs}.
  Tpm2Evidence quote(const Bytes& nonce, const std::string& tag,
                     const std::string& selection = kSelection, const char* sigfmt = "tss") {
    tpm.tool("tpm2_quote -c ak.ctx -l " + selection + " -q " + hexs(nonce) + " -m q-" + tag +
             ".msg -s q-" + tag + ".sig -o q-" + tag + ".pcrs -F serialized -g " + hash +
             " --scheme " + scheme + " -f " + sigfmt);
    Tpm2Evidence e;
    e.ak_public = read_bytes(tpm.file("ak.pub"));
    e.quote = read_bytes(tpm.file("q-" + tag + ".msg"));
    e.signature = read_bytes(tpm.file("q-" + tag + ".sig"));
    auto pcrs = parse_tpm2_tools_pcrs(as_view(read_bytes(tpm.file("q-" + tag + ".pcrs"))));
    EXPECT_TRUE(pcrs.ok()) << pcrs.error().to_string();
    if (pcrs.ok()) e.pcrs = *pcrs;
    e.event_log = boot.log;
    return e;
  }
};

Bytes binding_for(uint8_t request) {
  Hash32 anchor = sha256(as_view(std::string("block ") + std::to_string(request)));
  crypto::PublicKey vm_key = crypto::SecretKey::from_seed(crypto::test_seed("vm")).public_key();
  Hash32 b = evidence::evidence_binding(anchor, vm_key);
  return Bytes(b.begin(), b.end());
}

policy::Policy policy_for(const MeasuredBoot& boot) {
  nlohmann::json j;
  j["id"] = "swtpm-test";
  j["version"] = 1;
  j["tpm2"]["required_pcrs"]["sha256"] = {0, 4, 7, 8, 9};
  j["tpm2"]["event_log"] = "required";
  j["tpm2"]["secure_boot"] = "required";
  for (const auto& [kind, ds] : boot.component_digests)
    for (const auto& d : ds) j["tpm2"]["components"][kind].push_back(hexs(d));
  auto p = policy::parse_policy(j.dump());
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  return *p;
}

policy::AppraisalResult appraise(const policy::Policy& p, const Tpm2Evidence& e,
                                 const Bytes& binding, const policy::VmState* vm = nullptr) {
  Bytes bundle = e.encode();
  policy::AppraisalInput in;
  in.platform = "tpm2";
  in.evidence = as_view(bundle);
  in.expected_binding = binding;
  in.vm = vm;
  return policy::appraise(&p, in);
}

std::string reasons(const policy::AppraisalResult& r) {
  std::string s;
  for (const auto& x : r.reasons) s += x + "\n";
  return s;
}

void expect_rejected(const policy::AppraisalResult& r, const std::string& needle) {
  EXPECT_EQ(r.verdict, policy::Verdict::kContraindicated) << reasons(r);
  EXPECT_NE(reasons(r).find(needle), std::string::npos) << "want '" << needle << "' in\n"
                                                        << reasons(r);
}

class SwtpmQuote : public ::testing::TestWithParam<std::string> {};

TEST_P(SwtpmQuote, FreshQuoteIsAffirmingAndEachTamperingHasItsReason) {
  REQUIRE_SWTPM();
  std::string name = GetParam();
  std::replace(name.begin(), name.end(), '/', '-');
  BootedTpm vm("vm-" + name, approved_image(), GetParam());
  ASSERT_TRUE(vm.tpm.ok());
  policy::Policy pol = policy_for(vm.boot);
  Bytes n1 = binding_for(1);
  Tpm2Evidence good = vm.quote(n1, "good");

  auto r = appraise(pol, good, n1);
  ASSERT_EQ(r.verdict, policy::Verdict::kAffirming) << reasons(r);
  std::set<std::string> names;
  for (const auto& m : r.measurements) names.insert(m.name.substr(0, m.name.find(' ')));
  for (std::string k : {"firmware", "boot_loader", "kernel", "initrd", "kernel_cmdline"})
    EXPECT_TRUE(names.count(k)) << k;
  // Appraisal is deterministic: the same inputs give the same bytes.
  EXPECT_EQ(appraise(pol, good, n1).encode(), r.encode());

  {  // A flipped signature bit.
    Tpm2Evidence bad = good;
    bad.signature[bad.signature.size() - 5] ^= 0x01;
    expect_rejected(appraise(pol, bad, n1), "signature does not verify with the AK");
  }
  {  // A wrong nonce: the quote is for another request.
    expect_rejected(appraise(pol, good, binding_for(2)), "taken for another request");
  }
  {  // A changed PCR value.
    Tpm2Evidence bad = good;
    bad.pcrs[kAlgSha256][9][0] ^= 0xFF;
    expect_rejected(appraise(pol, bad, n1), "a PCR value was changed");
  }
  {  // An edited event-log entry: the kernel path's event data is changed... (data is not
     // hashed, so edit a digest instead, which replay must catch).
    Tpm2Evidence bad = good;
    auto log = parse_event_log(as_view(bad.event_log));
    ASSERT_TRUE(log.ok());
    const Bytes& kd = vm.boot.component_digests.at("kernel").front();
    auto at = std::search(bad.event_log.begin(), bad.event_log.end(), kd.begin(), kd.end());
    ASSERT_NE(at, bad.event_log.end());
    *at ^= 0x01;
    expect_rejected(appraise(pol, bad, n1), "the log was edited");
  }
  {  // A quote over the wrong PCR selection: PCR 9 (kernel, initrd) left out.
    Tpm2Evidence partial = vm.quote(n1, "partial", "sha256:0,4,7,8");
    expect_rejected(appraise(pol, partial, n1), "does not cover PCR 9 of bank sha256");
  }
  {  // An old quote replayed: its nonce is not this request's, and its clock is older than
     // one already accepted for this AK.
    Bytes n2 = binding_for(2);
    Tpm2Evidence newer = vm.quote(n2, "newer");
    auto q_new = parse_quote(as_view(newer.quote));
    ASSERT_TRUE(q_new.ok());
    policy::VmState state;
    state.last_clock = q_new->clock;
    state.last_reset_count = q_new->reset_count;
    expect_rejected(appraise(pol, good, n2, &state), "taken for another request");
    expect_rejected(appraise(pol, good, n1, &state), "an old quote replayed");
  }
}

INSTANTIATE_TEST_SUITE_P(Swtpm, SwtpmQuote,
                         ::testing::Values("rsa", "rsa/rsapss", "ecc", "ecc384/ecdsa/sha384"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '/') c = '_';
                           return n;
                         });

TEST(Swtpm, AnotherTpmsAkAndAnUnapprovedKernelAreRejected) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-a", approved_image(), "rsa");
  BootImage rogue = approved_image();
  rogue.kernel = Bytes(65536, 0x66);  // a kernel the policy does not list
  BootedTpm other("vm-b", rogue, "rsa");
  ASSERT_TRUE(vm.tpm.ok() && other.tpm.ok());
  policy::Policy pol = policy_for(vm.boot);
  Bytes n = binding_for(7);
  // The AK of another TPM presented with this TPM's quote.
  Tpm2Evidence e = vm.quote(n, "a");
  e.ak_public = read_bytes(other.tpm.file("ak.pub"));
  expect_rejected(appraise(pol, e, n), "signature does not verify with the AK");
  // A genuine quote from a machine that booted another kernel.
  auto r = appraise(pol, other.quote(n, "b"), n);
  expect_rejected(r, "kernel '/boot/vmlinuz-6.1.0-attestnet'");
  EXPECT_EQ(r.trust_vector.at("executables"), policy::Verdict::kContraindicated);
  EXPECT_EQ(r.trust_vector.at("hardware"), policy::Verdict::kAffirming);
}

TEST(Swtpm, PlainSignatureFormatVerifies) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-plain", approved_image(), "rsa");
  ASSERT_TRUE(vm.tpm.ok());
  Bytes n = binding_for(3);
  auto r = appraise(policy_for(vm.boot), vm.quote(n, "plain", kSelection, "plain"), n);
  EXPECT_EQ(r.verdict, policy::Verdict::kAffirming) << reasons(r);
}

// IMA: a runtime measurement list extended into PCR 10 of a real TPM.
TEST(Swtpm, ImaListMatchesQuotedPcr10) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-ima", approved_image(), "ecc");
  ASSERT_TRUE(vm.tpm.ok());
  std::string list;
  ImaLog log;
  for (std::string path : {"boot_aggregate", "/usr/bin/attestnet-agent", "/usr/lib/libc.so.6"}) {
    Bytes digest = crypto::digest(crypto::HashAlg::kSha256, as_view(path));
    Bytes tdata;
    auto field = [&](const Bytes& f) {
      for (int i = 0; i < 4; ++i) tdata.push_back(static_cast<uint8_t>(f.size() >> (8 * i)));
      tdata.insert(tdata.end(), f.begin(), f.end());
    };
    Bytes dng = {'s', 'h', 'a', '2', '5', '6', ':', 0};
    dng.insert(dng.end(), digest.begin(), digest.end());
    Bytes nng(path.begin(), path.end());
    nng.push_back(0);
    field(dng);
    field(nng);
    Bytes th = crypto::digest(crypto::HashAlg::kSha1, as_view(tdata));
    Bytes th256 = crypto::digest(crypto::HashAlg::kSha256, as_view(tdata));
    vm.tpm.tool("tpm2_pcrextend 10:sha1=" + hexs(th) + ",sha256=" + hexs(th256));
    list += "10 " + hexs(th) + " ima-ng sha256:" + hexs(digest) + " " + path + "\n";
  }
  Bytes n = binding_for(4);
  Tpm2Evidence e = vm.quote(n, "ima");
  e.ima_log.assign(list.begin(), list.end());
  nlohmann::json j;
  j["id"] = "ima-test";
  j["version"] = 2;
  j["tpm2"]["ima"]["required"] = true;
  j["tpm2"]["ima"]["unknown_files"] = "contraindicated";
  j["tpm2"]["ima"]["files"]["/usr/bin/attestnet-agent"] = {
      "sha256:" + hexs(crypto::digest(crypto::HashAlg::kSha256,
                                      as_view(std::string("/usr/bin/attestnet-agent"))))};
  j["tpm2"]["ima"]["files"]["/usr/lib/libc.so.6"] = {
      "sha256:" +
      hexs(crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("/usr/lib/libc.so.6"))))};
  auto pol = policy::parse_policy(j.dump());
  ASSERT_TRUE(pol.ok()) << pol.error().to_string();
  auto r = appraise(*pol, e, n);
  EXPECT_EQ(r.verdict, policy::Verdict::kAffirming) << reasons(r);
  // A file that is not in the list.
  j["tpm2"]["ima"]["files"].erase("/usr/lib/libc.so.6");
  auto strict = policy::parse_policy(j.dump());
  expect_rejected(appraise(*strict, e, n), "/usr/lib/libc.so.6 is not in the policy's list");
  // A list with an entry removed no longer replays to the quoted PCR 10.
  Tpm2Evidence shortened = e;
  std::string s(list.begin(), list.begin() + static_cast<long>(list.rfind("10 ")));
  shortened.ima_log.assign(s.begin(), s.end());
  expect_rejected(appraise(*pol, shortened, n), "the list was edited or is stale");
  // A list read after the quote has more entries: only the quoted prefix is attested (and an
  // unlisted file measured after the quote is not judged).
  Tpm2Evidence longer = e;
  std::string extra = list + "10 " + std::string(40, '0') +
                      " ima-ng sha256:" + std::string(64, '0') + " /tmp/later\n";
  longer.ima_log.assign(extra.begin(), extra.end());
  auto lr = appraise(*pol, longer, n);
  EXPECT_EQ(lr.verdict, policy::Verdict::kAffirming) << reasons(lr);
  bool found = false;
  for (const auto& c : lr.claims) found |= c.name == "tpm2.ima" && c.value.rfind("3 of 4", 0) == 0;
  EXPECT_TRUE(found);
}

// AK enrollment: EK certificate from the TPM's NV, chained to swtpm's local CA; credential
// activation proves the AK lives in the TPM that holds the EK.
TEST(Swtpm, AkEnrollmentWithEkCertificateAndCredentialActivation) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-enroll", approved_image(), "rsa");
  BootedTpm other("vm-other", approved_image(), "rsa");
  ASSERT_TRUE(vm.tpm.ok() && other.tpm.ok());
  vm.tpm.tool("tpm2_nvread 0x01c00002 -o ek.crt");
  auto ek = parse_ek_public(as_view(read_bytes(vm.tpm.file("ek.pub"))));
  ASSERT_TRUE(ek.ok()) << ek.error().to_string();
  auto roots = crypto::Certificate::parse_any(as_view(read_bytes(vm.tpm.ca_root())));
  auto issuer = crypto::Certificate::parse_any(as_view(read_bytes(vm.tpm.ca_issuer())));
  ASSERT_TRUE(roots.ok() && issuer.ok());
  int64_t now = 1798761600;  // 2027-01-01: inside the certificate's validity
  Bytes ek_cert = read_bytes(vm.tpm.file("ek.crt"));
  Status st = verify_ek(*ek, as_view(ek_cert), *issuer, *roots, now);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  // Another manufacturer's CA (the other TPM's local CA) does not vouch for this EK.
  auto other_root = crypto::Certificate::parse_any(as_view(read_bytes(other.tpm.ca_root())));
  auto other_issuer = crypto::Certificate::parse_any(as_view(read_bytes(other.tpm.ca_issuer())));
  Status foreign = verify_ek(*ek, as_view(ek_cert), *other_issuer, *other_root, now);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, Errc::kCertificate);
  // The EK certificate does not match another TPM's EK public.
  auto other_ek = parse_ek_public(as_view(read_bytes(other.tpm.file("ek.pub"))));
  ASSERT_TRUE(other_ek.ok());
  EXPECT_FALSE(verify_ek(*other_ek, as_view(ek_cert), *issuer, *roots, now).ok());

  auto ak = parse_ak(as_view(read_bytes(vm.tpm.file("ak.pub"))));
  ASSERT_TRUE(ak.ok());
  ASSERT_TRUE(check_ak_attributes(*ak).ok());
  Bytes secret = crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("challenge")));
  Bytes seed = crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("seed")));
  auto cred = make_credential(*ek, as_view(ak->name), as_view(secret), as_view(seed));
  ASSERT_TRUE(cred.ok()) << cred.error().to_string();
  write_bytes(vm.tpm.file("cred.blob"), as_view(cred->tpm2_tools_file()));
  auto activate = [](const Swtpm& t) {
    return t.try_tool(
        "tpm2_startauthsession --policy-session -S s.ctx && tpm2_policysecret -S s.ctx -c e "
        ">/dev/null && tpm2_activatecredential -c ak.ctx -C ek.ctx -i cred.blob -o out.secret "
        "-P session:s.ctx; rc=$?; tpm2_flushcontext s.ctx; exit $rc");
  };
  auto ok = activate(vm.tpm);
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(read_bytes(vm.tpm.file("out.secret")), secret);
  // The same challenge cannot be activated by another TPM (its EK cannot decrypt the seed).
  write_bytes(other.tpm.file("cred.blob"), as_view(cred->tpm2_tools_file()));
  EXPECT_NE(activate(other.tpm).status, 0);
  // Nor for another AK name in this TPM (the credential is bound to the AK's name).
  auto wrong = make_credential(*ek, as_view(read_bytes(other.tpm.file("ak.name"))), as_view(secret),
                               as_view(seed));
  ASSERT_TRUE(wrong.ok());
  write_bytes(vm.tpm.file("cred.blob"), as_view(wrong->tpm2_tools_file()));
  EXPECT_NE(activate(vm.tpm).status, 0);

  // Once enrolled for the VM, a policy that requires enrollment accepts this AK only.
  policy::Policy base = policy_for(vm.boot);
  nlohmann::json j = {
      {"id", "enrolled"},
      {"version", 1},
      {"tpm2", {{"ak_enrollment", "required"}, {"required_pcrs", {{"sha256", {0}}}}}}};
  auto pol = policy::parse_policy(j.dump());
  ASSERT_TRUE(pol.ok());
  Bytes n = binding_for(9);
  Tpm2Evidence e = vm.quote(n, "enrolled");
  policy::VmState state;
  expect_rejected(appraise(*pol, e, n, &state), "is not enrolled for this VM");
  state.enrolled_ak_names.insert(ak->name);
  auto r = appraise(*pol, e, n, &state);
  EXPECT_EQ(r.verdict, policy::Verdict::kAffirming) << reasons(r);
}

// The command a user runs, on tpm2_quote's own files.
TEST(Swtpm, EvidenceVerifyCommandAcceptsFreshAndRejectsTampered) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-cli", approved_image(), "rsa");
  ASSERT_TRUE(vm.tpm.ok());
  Bytes n = binding_for(5);
  Tpm2Evidence e = vm.quote(n, "cli");
  policy::Policy pol = policy_for(vm.boot);
  nlohmann::json pj;
  pj["id"] = "cli";
  pj["version"] = 1;
  pj["tpm2"]["event_log"] = "required";
  for (const auto& [kind, ds] : vm.boot.component_digests)
    for (const auto& d : ds) pj["tpm2"]["components"][kind].push_back(hexs(d));
  std::ofstream(vm.tpm.file("policy.json")) << pj.dump(2);
  auto d = vm.tpm.dir().string();
  std::string base = std::string(ATTESTNET_CLI) + " evidence verify --platform tpm2 --quote " + d +
                     "/q-cli.msg --signature " + d + "/q-cli.sig --pcrs " + d +
                     "/q-cli.pcrs --ak " + d + "/ak.pub --eventlog " + d + "/eventlog.bin";
  auto ok = test::run(base + " --nonce " + hexs(n) + " --policy " + d + "/policy.json");
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("verdict       affirming"), std::string::npos) << ok.output;
  auto json = test::run(base + " --nonce " + hexs(n) + " --json");
  EXPECT_EQ(json.status, 0) << json.output;
  EXPECT_NE(json.output.find("\"tpm2.pcr_selection\""), std::string::npos);

  auto wrong_nonce = test::run(base + " --nonce " + hexs(binding_for(6)));
  EXPECT_EQ(wrong_nonce.status, 1);
  EXPECT_NE(wrong_nonce.output.find("taken for another request"), std::string::npos)
      << wrong_nonce.output;

  Bytes sig = read_bytes(vm.tpm.file("q-cli.sig"));
  sig[sig.size() - 1] ^= 1;
  write_bytes(vm.tpm.file("q-cli.sig"), as_view(sig));
  auto bad_sig = test::run(base + " --nonce " + hexs(n));
  EXPECT_EQ(bad_sig.status, 1);
  EXPECT_NE(bad_sig.output.find("does not verify with the AK"), std::string::npos)
      << bad_sig.output;
}

}  // namespace
}  // namespace attestnet::evidence::tpm2

// The agent's own TPM code (tpm2-tss ESAPI, no tpm2-tools): an AK derived in the endorsement
// hierarchy, a quote bound to a request, and the request appraised by the attestation
// application as a node would.
#include "agent/tpm.h"
#include "state/attestation.h"

namespace attestnet::evidence::tpm2 {
namespace {

TEST(SwtpmAgent, EsapiQuoteInAnAttestationRequestIsAffirming) {
  REQUIRE_SWTPM();
  BootedTpm vm("vm-agent", approved_image(), "rsa");
  ASSERT_TRUE(vm.tpm.ok());
  auto tpm = agent::Tpm::open(vm.tpm.tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.error().to_string();
  // The same template gives the same key every time (no key files on the VM).
  auto ak1 = (*tpm)->ak_public();
  ASSERT_TRUE(ak1.ok()) << ak1.error().to_string();
  {
    auto again = agent::Tpm::open(vm.tpm.tcti());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*(*again)->ak_public(), *ak1);
  }
  Hash32 anchor = sha256(as_view(std::string("genesis of the devnet")));
  crypto::SecretKey vm_key = crypto::SecretKey::generate();  // the VM's ephemeral key
  Hash32 binding = evidence::evidence_binding(anchor, vm_key.public_key());
  for (auto kind : {agent::Tpm::AkKind::kRsa2048, agent::Tpm::AkKind::kEccP256}) {
    auto ev = (*tpm)->quote(as_view(binding), "sha256:0,4,7,8,9", kind);
    ASSERT_TRUE(ev.ok()) << ev.error().to_string();
    ev->event_log = vm.boot.log;
    state::AttestationRequest req =
        state::AttestationRequest::make(vm_key, "vm-agent", "tpm2", ev->encode(), anchor);
    consensus::Request q;
    q.client_id = 1;
    q.client_seq = 1;
    q.payload = req.encode();
    state::AttestationApp app(std::make_shared<const policy::Policy>(policy_for(vm.boot)));
    state::MemoryLedgerView view(anchor, 16);
    ASSERT_TRUE(app.validate(q).ok());
    auto rec = app.execute(q, 1700000000000, view);
    std::string why;
    for (const auto& r : rec.reasons) why += r + "\n";
    EXPECT_EQ(rec.verdict, policy::Verdict::kAffirming) << why;
    // The same quote in a request with another VM key: bound to someone else.
    crypto::SecretKey thief = crypto::SecretKey::generate();
    consensus::Request stolen = q;
    stolen.payload =
        state::AttestationRequest::make(thief, "vm-agent", "tpm2", ev->encode(), anchor).encode();
    auto bad = app.execute(stolen, 1700000000000, view);
    EXPECT_EQ(bad.verdict, policy::Verdict::kContraindicated);
  }
  auto missing = agent::Tpm::open("swtpm:host=127.0.0.1,port=1");
  EXPECT_FALSE(missing.ok() && (*missing)->ak_public().ok());
}

}  // namespace
}  // namespace attestnet::evidence::tpm2
