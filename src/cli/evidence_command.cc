// `attestnet evidence verify | bundle | inspect`: hardware evidence from files, as tpm2_quote
// writes them, appraised by the same code a node runs (policy::appraise).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/collect.h"
#include "cli/commands.h"
#include "core/hash.h"
#include "evidence/binding.h"
#include "evidence/sevsnp/bundle.h"
#include "evidence/sim/sim.h"
#include "evidence/tdx/bundle.h"
#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/eventlog.h"
#include "policy/policy.h"

namespace attestnet::cli {
namespace {

using nlohmann::json;
using namespace evidence::tpm2;

struct BootArgs {
  std::string firmware, boot_loader, kernel, initrd, cmdline, log_out, policy_out;
  std::string policy_id = "measured-boot";
};

struct EvidenceArgs {
  std::string platform = "tpm2";
  std::string quote, signature, pcrs, ak, eventlog, ima, bundle, policy, out;
  std::string nonce, anchor, vm_key;
  std::string hash_alg = "sha256";
  std::string file;
  // sev-snp, tdx, sgx
  std::string report, certs, vcek, chain, collateral, root, at;
  std::string tsm_root = agent::kTsmRoot, sev_guest;
  bool json = false;
};

int fail_usage(const std::string& msg) {
  std::fprintf(stderr, "attestnet evidence: %s\n", msg.c_str());
  return 2;
}

// The binding the evidence must carry: --nonce as given, or computed from --anchor/--vm-key.
Result<Bytes> expected_binding(const EvidenceArgs& a) {
  if (!a.nonce.empty()) {
    auto n = from_hex(a.nonce);
    if (!n) return make_error(Errc::kInvalidArgument, "--nonce is not hex");
    return *n;
  }
  if (!a.anchor.empty() && !a.vm_key.empty()) {
    auto an = from_hex(a.anchor);
    auto vk = from_hex(a.vm_key);
    if (!an || an->size() != 32 || !vk || vk->size() != 32)
      return make_error(Errc::kInvalidArgument, "--anchor and --vm-key are 32 bytes of hex each");
    Hash32 h;
    crypto::PublicKey k;
    std::copy(an->begin(), an->end(), h.begin());
    std::copy(vk->begin(), vk->end(), k.begin());
    Hash32 b = evidence::evidence_binding(h, k);
    return Bytes(b.begin(), b.end());
  }
  return make_error(Errc::kInvalidArgument,
                    "say what the evidence must be bound to: --nonce HEX, or --anchor HEX "
                    "--vm-key HEX");
}

Result<Bytes> build_tpm2_bundle(const EvidenceArgs& a) {
  if (!a.bundle.empty()) return read_file(a.bundle);
  if (a.quote.empty() || a.signature.empty() || a.pcrs.empty() || a.ak.empty())
    return make_error(Errc::kInvalidArgument,
                      "--platform tpm2 needs --quote, --signature, --pcrs and --ak (or --bundle)");
  Tpm2Evidence e;
  ATN_TRY(e.quote, read_file(a.quote));
  ATN_TRY(e.signature, read_file(a.signature));
  ATN_TRY(e.ak_public, read_file(a.ak));
  ATN_TRY(Bytes pcr_bytes, read_file(a.pcrs));
  auto pcrs = parse_tpm2_tools_pcrs(as_view(pcr_bytes));
  if (!pcrs.ok()) return make_error(pcrs.error().code, a.pcrs + ": " + pcrs.error().reason);
  e.pcrs = std::move(pcrs).value();
  auto h = alg_from_name(a.hash_alg);
  if (!h) return make_error(Errc::kInvalidArgument, "--hash-alg " + a.hash_alg);
  e.plain_hash = *h;
  if (!a.eventlog.empty()) {
    ATN_TRY(e.event_log, read_file(a.eventlog));
  }
  if (!a.ima.empty()) {
    ATN_TRY(e.ima_log, read_file(a.ima));
  }
  return e.encode();
}

Result<std::string> read_text(const std::string& path) {
  ATN_TRY(Bytes b, read_file(path));
  return std::string(b.begin(), b.end());
}

// DER or PEM certificates from a file, each as DER.
Result<std::vector<Bytes>> cert_ders(const std::string& path) {
  ATN_TRY(Bytes b, read_file(path));
  auto certs = crypto::Certificate::parse_any(as_view(b));
  if (!certs.ok()) return make_error(Errc::kInvalidArgument, path + ": " + certs.error().reason);
  std::vector<Bytes> out;
  for (const auto& c : *certs) out.push_back(c.der());
  return out;
}

bool is_cert_file(const std::filesystem::path& p) {
  auto e = p.extension().string();
  return e == ".pem" || e == ".der" || e == ".cer" || e == ".crt";
}

// --report with --vcek FILE [--chain FILE], or --certs DIR as `snpguest fetch` writes it (the
// VCEK/VLEK by its name, ASK/ASVK and ARK in any other certificate files).
Result<Bytes> build_sevsnp_bundle(const EvidenceArgs& a) {
  if (!a.bundle.empty()) return read_file(a.bundle);
  if (a.report.empty())
    return make_error(Errc::kInvalidArgument, "--platform sev-snp needs --report FILE");
  evidence::sevsnp::SevSnpEvidence e;
  ATN_TRY(e.report, read_file(a.report));
  std::vector<std::string> chain_files;
  std::string leaf = a.vcek;
  if (!a.certs.empty()) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(a.certs, ec))
      if (is_cert_file(f.path())) files.push_back(f.path());
    if (ec) return make_error(Errc::kIo, "cannot read --certs " + a.certs + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string name = f.filename().string();
      if (leaf.empty() &&
          (name.find("vcek") != std::string::npos || name.find("vlek") != std::string::npos))
        leaf = f.string();
      else
        chain_files.push_back(f.string());
    }
  }
  if (!a.chain.empty()) chain_files.push_back(a.chain);
  if (leaf.empty())
    return make_error(Errc::kInvalidArgument,
                      "no VCEK/VLEK certificate: give --vcek FILE or a --certs DIR holding one");
  ATN_TRY(auto leaf_ders, cert_ders(leaf));
  e.leaf = leaf_ders.front();
  for (const auto& f : chain_files) {
    ATN_TRY(auto ders, cert_ders(f));
    for (auto& d : ders) e.chain.push_back(std::move(d));
  }
  if (e.chain.empty())
    return make_error(Errc::kInvalidArgument,
                      "no ASK/ARK certificates: give --chain FILE (AMD KDS cert_chain) or put them "
                      "in --certs DIR");
  return e.encode();
}

// --quote FILE [--collateral DIR]: tcbinfo*.json, qe_identity*.json and the TCB Signing chain
// (*chain*.pem or tcb_signing_cert*.pem), as Intel PCS serves them.
Result<Bytes> build_dcap_bundle(const EvidenceArgs& a) {
  if (!a.bundle.empty()) return read_file(a.bundle);
  if (a.quote.empty())
    return make_error(Errc::kInvalidArgument, "--platform tdx|sgx needs --quote");
  evidence::tdx::DcapEvidence e;
  ATN_TRY(e.quote, read_file(a.quote));
  if (!a.collateral.empty()) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(a.collateral, ec)) {
      std::string name = f.path().filename().string();
      if (name.rfind("tcbinfo", 0) == 0 && f.path().extension() == ".json") {
        ATN_TRY(e.collateral.tcb_info_json, read_text(f.path().string()));
      } else if (name.rfind("qe_identity", 0) == 0) {
        ATN_TRY(e.collateral.qe_identity_json, read_text(f.path().string()));
      } else if (name.rfind("pck_", 0) == 0 && name.find("crl") != std::string::npos) {
        ATN_TRY(e.collateral.pck_crl, read_file(f.path().string()));
      } else if (name.find("tcb_signing") != std::string::npos ||
                 name.find("tcb_info_issuer_chain") != std::string::npos) {
        ATN_TRY(e.collateral.signing_chain_pem, read_text(f.path().string()));
      }
    }
    if (ec) return make_error(Errc::kIo, "cannot read --collateral " + a.collateral);
    if (e.collateral.tcb_info_json.empty() || e.collateral.qe_identity_json.empty() ||
        e.collateral.signing_chain_pem.empty())
      return make_error(Errc::kInvalidArgument,
                        "--collateral DIR needs tcbinfo*.json, qe_identity*.json and the TCB "
                        "Signing chain (tcb_signing_cert*.pem or tcb_info_issuer_chain*.pem)");
  }
  return e.encode();
}

Result<Bytes> build_bundle(const EvidenceArgs& a) {
  if (a.platform == "tpm2") return build_tpm2_bundle(a);
  if (a.platform == "sev-snp") return build_sevsnp_bundle(a);
  if (a.platform == "tdx" || a.platform == "sgx") return build_dcap_bundle(a);
  if (a.platform == "sim") {
    if (a.bundle.empty())
      return make_error(Errc::kInvalidArgument, "--platform sim needs --bundle");
    return read_file(a.bundle);
  }
  return make_error(Errc::kInvalidArgument,
                    "--platform " + a.platform + " is not one of tpm2, sev-snp, tdx, sgx, sim");
}

// --at: unix seconds or an ISO 8601 UTC date; default: now.
Result<int64_t> appraisal_time(const std::string& at) {
  if (at.empty()) return static_cast<int64_t>(std::time(nullptr));
  if (std::all_of(at.begin(), at.end(), ::isdigit)) return static_cast<int64_t>(std::stoll(at));
  std::tm tm{};
  const char* end = strptime(at.c_str(), "%Y-%m-%d", &tm);
  if (!end) return make_error(Errc::kInvalidArgument, "--at " + at + " is not a date");
  if (*end == 'T') strptime(end + 1, "%H:%M:%S", &tm);
  return static_cast<int64_t>(timegm(&tm));
}

json result_json(const policy::AppraisalResult& r) {
  json j;
  j["verdict"] = policy::verdict_name(r.verdict);
  j["platform"] = r.platform;
  if (!r.policy_id.empty()) j["policy"] = {{"id", r.policy_id}, {"version", r.policy_version}};
  for (const auto& [k, v] : r.trust_vector) j["trust_vector"][k] = policy::verdict_name(v);
  j["claims"] = json::object();
  for (const auto& c : r.claims) j["claims"][c.name] = c.value;
  j["measurements"] = json::array();
  for (const auto& m : r.measurements)
    j["measurements"].push_back({{"name", m.name}, {"digest", to_hex(m.digest)}});
  j["reasons"] = r.reasons;
  return j;
}

void print_text(const policy::AppraisalResult& r) {
  std::printf("platform      %s\n", r.platform.c_str());
  for (const auto& c : r.claims) std::printf("%-24s %s\n", c.name.c_str(), c.value.c_str());
  if (!r.measurements.empty()) std::printf("measurements (attested):\n");
  for (const auto& m : r.measurements)
    std::printf("  %-40s %s\n", m.name.c_str(), to_hex(m.digest).c_str());
  if (!r.trust_vector.empty()) std::printf("trust vector (AR4SI):\n");
  for (const auto& [k, v] : r.trust_vector)
    std::printf("  %-20s %s\n", k.c_str(), policy::verdict_name(v));
  if (!r.policy_id.empty())
    std::printf("policy        %s version %u\n", r.policy_id.c_str(), r.policy_version);
  std::printf("verdict       %s\n", policy::verdict_name(r.verdict));
  for (const auto& reason : r.reasons) std::printf("  REJECTED  %s\n", reason.c_str());
}

int verify(const EvidenceArgs& a) {
  auto binding = expected_binding(a);
  if (!binding.ok()) return fail_usage(binding.error().reason);
  Result<Bytes> bundle = build_bundle(a);
  if (!bundle.ok()) return fail_usage(bundle.error().reason);
  std::optional<policy::Policy> pol;
  if (!a.policy.empty()) {
    auto text = read_file(a.policy);
    if (!text.ok()) return fail_usage(text.error().reason);
    auto p = policy::parse_policy(
        std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
    if (!p.ok()) return fail_usage(a.policy + ": " + p.error().reason);
    pol = std::move(p).value();
  }
  policy::AppraisalInput in;
  in.platform = a.platform;
  in.evidence = as_view(*bundle);
  in.expected_binding = *binding;
  auto at = appraisal_time(a.at);
  if (!at.ok()) return fail_usage(at.error().reason);
  in.at_unix = *at;
  if (!a.root.empty()) {
    auto roots = cert_ders(a.root);
    if (!roots.ok()) return fail_usage(roots.error().reason);
    for (const auto& d : *roots) in.extra_roots.push_back(sha256(as_view(d)));
  }
  policy::AppraisalResult r = policy::appraise(pol ? &*pol : nullptr, in);
  if (a.json) {
    std::printf("%s\n", result_json(r).dump(2).c_str());
  } else {
    print_text(r);
  }
  bool evidence_ok = r.verdict != policy::Verdict::kContraindicated && (pol || r.reasons.empty());
  if (!evidence_ok) return 1;
  if (pol && r.verdict != policy::Verdict::kAffirming) return 1;
  return 0;
}

int bundle(const EvidenceArgs& a) {
  if (a.out.empty()) return fail_usage("bundle needs --out FILE");
  auto b = build_bundle(a);
  if (!b.ok()) return fail_usage(b.error().reason);
  std::ofstream f(a.out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b->data()), static_cast<std::streamsize>(b->size()));
  if (!f) return fail_usage("cannot write " + a.out);
  std::printf("wrote %s (%zu bytes, %s evidence bundle)\n", a.out.c_str(), b->size(),
              a.platform.c_str());
  return 0;
}

json quote_json(const Quote& q) {
  return {{"type", "TPMS_ATTEST (quote)"},
          {"qualified_signer", to_hex(q.qualified_signer)},
          {"extra_data", to_hex(q.extra_data)},
          {"clock", q.clock},
          {"reset_count", q.reset_count},
          {"restart_count", q.restart_count},
          {"safe", q.safe},
          {"firmware_version", q.firmware_version},
          {"pcr_selection", selection_string(q.selection)},
          {"pcr_digest", to_hex(q.pcr_digest)}};
}

json pcrs_json(const PcrValues& v) {
  json j = json::object();
  for (const auto& [alg, bank] : v)
    for (const auto& [pcr, value] : bank) j[alg_name(alg)][std::to_string(pcr)] = to_hex(value);
  return j;
}

json event_log_json(const EventLog& log) {
  json j;
  j["type"] = log.crypto_agile ? "TCG PC Client event log (crypto-agile)"
                               : "TCG PC Client event log (SHA-1)";
  j["banks"] = json::array();
  for (uint16_t alg : log.algorithms) j["banks"].push_back(alg_name(alg));
  j["events"] = log.events.size();
  j["replayed_pcrs"] = pcrs_json(replay(log));
  BootState boot = extract_components(log);
  j["components"] = json::array();
  for (const auto& c : boot.components)
    j["components"].push_back({{"kind", c.kind},
                               {"description", c.description},
                               {"pcr", c.pcr},
                               {"event", c.event},
                               {"digest", to_hex(c.sha256)}});
  if (boot.secure_boot) j["secure_boot"] = *boot.secure_boot;
  return j;
}

json snp_json(const evidence::sevsnp::Report& r) {
  auto tcb = [](uint64_t v) { return evidence::sevsnp::decode_tcb(v, false).to_string(); };
  return {{"type", "SEV-SNP attestation report v" + std::to_string(r.version)},
          {"guest_svn", r.guest_svn},
          {"policy", r.policy},
          {"debug_allowed", r.debug_allowed()},
          {"vmpl", r.vmpl},
          {"signing_key", r.signing_key == evidence::sevsnp::SigningKey::kVlek ? "vlek" : "vcek"},
          {"measurement", to_hex(r.measurement)},
          {"report_data", to_hex(r.report_data)},
          {"host_data", to_hex(r.host_data)},
          {"id_key_digest", to_hex(r.id_key_digest)},
          {"report_id", to_hex(r.report_id)},
          {"chip_id", to_hex(r.chip_id)},
          {"reported_tcb (Milan/Genoa layout)", tcb(r.reported_tcb)},
          {"current_tcb", tcb(r.current_tcb)},
          {"launch_tcb", tcb(r.launch_tcb)},
          {"platform_info", r.platform_info}};
}

json dcap_json(const evidence::tdx::Quote& q) {
  json j{{"type",
          std::string(q.is_tdx() ? "TDX" : "SGX") + " DCAP quote v" + std::to_string(q.version)},
         {"qe_isv_svn", q.qe_report.isv_svn},
         {"trailing_bytes", q.trailing}};
  if (q.is_tdx()) {
    j["tee_tcb_svn"] = to_hex(q.td.tee_tcb_svn);
    j["mrseam"] = to_hex(q.td.mr_seam);
    j["td_attributes"] = to_hex(q.td.td_attributes);
    j["xfam"] = to_hex(q.td.xfam);
    j["mrtd"] = to_hex(q.td.mr_td);
    j["mrconfigid"] = to_hex(q.td.mr_config_id);
    j["mrowner"] = to_hex(q.td.mr_owner);
    for (int i = 0; i < 4; ++i) j["rtmr" + std::to_string(i)] = to_hex(q.td.rtmr[i]);
  } else {
    j["mrenclave"] = to_hex(q.enclave.mr_enclave);
    j["mrsigner"] = to_hex(q.enclave.mr_signer);
    j["isv_prod_id"] = q.enclave.isv_prod_id;
    j["isv_svn"] = q.enclave.isv_svn;
    j["attributes"] = to_hex(q.enclave.attributes);
  }
  j["report_data"] = to_hex(q.report_data());
  return j;
}

// Tries each format this build knows; the first that parses completely wins.
json inspect_bytes(ByteView b) {
  if (auto q = parse_quote(b); q.ok()) return quote_json(*q);
  if (auto r = evidence::sevsnp::parse_report(b); r.ok()) return snp_json(*r);
  if (auto d = evidence::tdx::parse_quote(b); d.ok()) return dcap_json(*d);
  if (b.size() >= 2 && b[0] == 0x04 && b[1] == 0x01) {
    if (auto e = Tpm2Evidence::decode(b); e.ok()) {
      json j{{"type", "Tpm2Evidence bundle v1"},
             {"pcrs", pcrs_json(e->pcrs)},
             {"event_log_bytes", e->event_log.size()},
             {"ima_log_bytes", e->ima_log.size()}};
      if (auto q = parse_quote(as_view(e->quote)); q.ok()) j["quote"] = quote_json(*q);
      if (auto ak = parse_ak(as_view(e->ak_public)); ak.ok()) j["ak"] = ak->describe();
      return j;
    }
  }
  if (b.size() >= 2 && b[0] == 0x02 && b[1] == 0x04) {
    if (auto s = evidence::sim::SimEvidence::decode(b); s.ok()) {
      json j{{"type", "SimEvidence v1"},
             {"platform_key", to_hex(ByteView(s->platform_key.data(), 32))},
             {"report_data", to_hex(s->report_data)}};
      for (const auto& m : s->measurements) j["measurements"][m.name] = to_hex(m.digest);
      return j;
    }
  }
  if (auto s = parse_signature(b); s.ok())
    return {{"type", "TPMT_SIGNATURE"},
            {"algorithm", sig_alg_name(s->sig_alg)},
            {"hash", alg_name(s->hash_alg)}};
  if (auto p = parse_tpm2_tools_pcrs(b); p.ok())
    return {{"type", "tpm2-tools serialized PCR values"}, {"pcrs", pcrs_json(*p)}};
  if (auto ak = parse_ak(b); ak.ok()) {
    json j{{"type", "public key"}, {"key", ak->describe()}};
    if (!ak->name.empty()) j["name"] = to_hex(ak->name);
    return j;
  }
  if (auto log = parse_event_log(b); log.ok() && log->events.size() > 1)
    return event_log_json(*log);
  if (auto ima = parse_ima_any(b); ima.ok() && !ima->entries.empty()) {
    json j{{"type", "IMA measurement list"}, {"entries", ima->entries.size()}};
    j["template_hashes"] = verify_ima_template_hashes(*ima).ok() ? "all verify" : "MISMATCH";
    j["pcr10_sha1"] = to_hex(replay_ima(*ima, kAlgSha1)[10]);
    return j;
  }
  return {{"type", "unknown"}, {"size", b.size()}};
}

int inspect(const EvidenceArgs& a) {
  auto b = read_file(a.file);
  if (!b.ok()) return fail_usage(b.error().reason);
  json j = inspect_bytes(as_view(*b));
  std::printf("%s\n", j.dump(2).c_str());
  return j["type"] == "unknown" ? 1 : 0;
}

// A measured boot done in software: the event log a firmware + GRUB boot of these files would
// write, the extends to apply to a TPM (one `tpm2_pcrextend` argument a line on stdout), and a
// policy that names exactly these components.
int simulate_boot(const BootArgs& a) {
  BootImage img;
  auto load = [](const std::string& path, Bytes& out) -> Status {
    if (path.empty()) return {};
    ATN_TRY(out, read_file(path));
    return {};
  };
  for (auto [path, out] : {std::pair{&a.firmware, &img.firmware},
                           {&a.boot_loader, &img.boot_loader},
                           {&a.kernel, &img.kernel},
                           {&a.initrd, &img.initrd}}) {
    Status st = load(*path, *out);
    if (!st.ok()) return fail_usage(st.error().reason);
  }
  if (!a.kernel.empty())
    img.kernel_path = "/boot/" + std::filesystem::path(a.kernel).filename().string();
  if (!a.initrd.empty())
    img.initrd_path = "/boot/" + std::filesystem::path(a.initrd).filename().string();
  img.cmdline = a.cmdline;
  MeasuredBoot mb = measure_boot(img);
  std::ofstream log(a.log_out, std::ios::binary);
  log.write(reinterpret_cast<const char*>(mb.log.data()),
            static_cast<std::streamsize>(mb.log.size()));
  if (!log) return fail_usage("cannot write " + a.log_out);
  for (const auto& e : mb.extends) {
    std::string arg = std::to_string(e.pcr) + ":";
    for (size_t i = 0; i < e.digests.size(); ++i)
      arg += (i ? "," : "") + alg_name(e.digests[i].first) + "=" + to_hex(e.digests[i].second);
    std::printf("%s\n", arg.c_str());
  }
  if (!a.policy_out.empty()) {
    json p;
    p["id"] = a.policy_id;
    p["version"] = 1;
    p["description"] = "reference values of one measured boot (attestnet evidence simulate-boot)";
    p["tpm2"]["required_pcrs"]["sha256"] = {0, 4, 7, 8, 9};
    p["tpm2"]["event_log"] = "required";
    p["tpm2"]["secure_boot"] = "required";
    for (const auto& [kind, ds] : mb.component_digests)
      for (const auto& d : ds) p["tpm2"]["components"][kind].push_back(to_hex(d));
    std::ofstream(a.policy_out) << p.dump(2) << "\n";
  }
  return 0;
}

// Inside a confidential VM: ask the hardware for a report bound to the binding and write the
// evidence bundle (`attestnet evidence verify --platform P --bundle FILE` checks it).
int collect(const EvidenceArgs& a) {
  auto binding = expected_binding(a);
  if (!binding.ok()) return fail_usage(binding.error().reason);
  if (binding->size() > 64) return fail_usage("the report data is at most 64 bytes");
  Bytes report_data = *binding;
  report_data.resize(64, 0);
  auto ev = a.sev_guest.empty() ? agent::collect_tsm(as_view(report_data), a.tsm_root)
                                : agent::collect_sev_guest(as_view(report_data), 0, a.sev_guest);
  if (!ev.ok()) {
    std::fprintf(stderr, "attestnet evidence collect: %s\n", ev.error().reason.c_str());
    return 1;
  }
  std::ofstream f(a.out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(ev->bundle.data()),
          static_cast<std::streamsize>(ev->bundle.size()));
  if (!f) return fail_usage("cannot write " + a.out);
  std::printf("platform %s: wrote %s (%zu bytes)\n", ev->platform.c_str(), a.out.c_str(),
              ev->bundle.size());
  return 0;
}

}  // namespace

void add_evidence_command(CLI::App& app) {
  auto args = std::make_shared<EvidenceArgs>();
  auto* ev = app.add_subcommand("evidence", "verify and inspect hardware evidence (TPM 2.0, sim)");
  ev->require_subcommand(1);

  auto add_inputs = [args](CLI::App* c) {
    c->add_option("--quote", args->quote, "TPMS_ATTEST as written by tpm2_quote -m");
    c->add_option("--signature", args->signature, "tpm2_quote -s output (tss or plain format)");
    c->add_option("--pcrs", args->pcrs, "tpm2_quote -o output (-F serialized)");
    c->add_option("--ak", args->ak, "AK public: TPM2B_PUBLIC (tpm2_createak -u) or PEM");
    c->add_option("--eventlog", args->eventlog, "TCG binary event log (binary_bios_measurements)");
    c->add_option("--ima", args->ima, "IMA measurement list (ascii or binary)");
    c->add_option("--hash-alg", args->hash_alg, "hash of a plain signature (default sha256)");
    c->add_option("--bundle", args->bundle, "an evidence bundle instead of the files above");
    c->add_option("--report", args->report, "SEV-SNP attestation report (1184 bytes)");
    c->add_option("--certs", args->certs, "SEV-SNP: a directory with the VCEK/VLEK, ASK and ARK");
    c->add_option("--vcek", args->vcek, "SEV-SNP: the VCEK or VLEK certificate (DER or PEM)");
    c->add_option("--chain", args->chain, "SEV-SNP: ASK/ASVK + ARK (PEM, AMD KDS cert_chain)");
    c->add_option("--collateral", args->collateral,
                  "TDX/SGX: a directory with tcbinfo.json, qe_identity.json, TCB Signing chain");
  };
  auto* v = ev->add_subcommand("verify", "verify evidence and, with --policy, appraise it");
  v->add_option("--platform", args->platform, "tpm2 | sev-snp | tdx | sgx | sim")
      ->default_val("tpm2");
  v->add_option("--root", args->root,
                "pin this root certificate (ARK, Intel SGX Root CA) besides the policy's");
  v->add_option("--at", args->at,
                "judge certificate and collateral validity at this time (ISO date or unix "
                "seconds; default now)");
  add_inputs(v);
  v->add_option("--nonce", args->nonce, "the qualifying data the quote must carry (hex)");
  v->add_option("--anchor", args->anchor, "freshness anchor (hex): binding = H(anchor, vm key)");
  v->add_option("--vm-key", args->vm_key, "the VM's ephemeral Ed25519 public key (hex)");
  v->add_option("--policy", args->policy, "policy JSON (docs/evidence.md)");
  v->add_flag("--json", args->json, "print the result as JSON");
  v->callback([args] { set_exit_code(verify(*args)); });

  auto* b = ev->add_subcommand("bundle", "pack evidence files into one evidence bundle");
  b->add_option("--platform", args->platform, "tpm2 | sev-snp | tdx | sgx")->default_val("tpm2");
  add_inputs(b);
  b->add_option("--out", args->out, "where to write the bundle")->required();
  b->callback([args] { set_exit_code(bundle(*args)); });

  auto* col = ev->add_subcommand(
      "collect", "inside a confidential VM: get an SEV-SNP report or TDX quote (configfs-tsm)");
  col->add_option("--nonce", args->nonce, "the report data to bind (hex, up to 64 bytes)");
  col->add_option("--anchor", args->anchor, "freshness anchor (hex): binding = H(anchor, vm key)");
  col->add_option("--vm-key", args->vm_key, "the VM's ephemeral Ed25519 public key (hex)");
  col->add_option("--tsm-root", args->tsm_root, "configfs-tsm report directory")
      ->default_val(agent::kTsmRoot);
  col->add_option("--sev-guest", args->sev_guest, "use this /dev/sev-guest device instead");
  col->add_option("--out", args->out, "where to write the evidence bundle")->required();
  col->callback([args] { set_exit_code(collect(*args)); });

  auto boot = std::make_shared<BootArgs>();
  auto* sb = ev->add_subcommand(
      "simulate-boot",
      "write the event log of a measured boot of these files and print the PCR extends");
  sb->add_option("--firmware", boot->firmware, "firmware image");
  sb->add_option("--boot-loader", boot->boot_loader, "boot loader (EFI application)");
  sb->add_option("--kernel", boot->kernel, "kernel image");
  sb->add_option("--initrd", boot->initrd, "initial ramdisk");
  sb->add_option("--cmdline", boot->cmdline, "kernel command line");
  sb->add_option("--log", boot->log_out, "where to write the TCG event log")->required();
  sb->add_option("--policy-out", boot->policy_out, "also write a policy naming these components");
  sb->add_option("--policy-id", boot->policy_id, "id of that policy");
  sb->callback([boot] { set_exit_code(simulate_boot(*boot)); });

  auto* i = ev->add_subcommand("inspect", "print the structure of any evidence file");
  i->add_option("file", args->file, "the file")->required();
  i->callback([args] { set_exit_code(inspect(*args)); });
}

Result<Bytes> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(Errc::kIo, "cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

}  // namespace attestnet::cli
