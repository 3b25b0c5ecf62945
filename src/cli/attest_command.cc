// `attestnet attest`: the VM agent. Fetches a freshness anchor from a node (--node URL) or takes
// one (--anchor), makes an ephemeral key, takes evidence from the local TPM (or a confidential
// VM's hardware) binding both, and either submits the signed AttestationRequest and waits for
// the certified response (--node) or writes the request (--request-out).
// `attestnet evidence appraise-request`: what a node does with such a request at execution.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/collect.h"
#include "agent/tpm.h"
#include "api/client.h"
#include "cli/commands.h"
#include "evidence/binding.h"
#include "state/attestation.h"

namespace attestnet::cli {
namespace {

struct AttestArgs {
  std::string vm_id, anchor, out;
  std::string node, request_out;
  double wait = 30;
  uint64_t from_epoch = 0;
  EvidenceSource ev;
  std::string request, policy, at;
};

int fail(const std::string& m) {
  std::fprintf(stderr, "attestnet attest: %s\n", m.c_str());
  return 1;
}

int attest(const AttestArgs& a) {
  // --node URL[,URL...]: the agent fails over to the next node when one does not answer.
  std::vector<std::pair<std::string, api::Url>> nodes;
  for (size_t at = 0; !a.node.empty() && at <= a.node.size();) {
    size_t comma = a.node.find(',', at);
    std::string one =
        a.node.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? a.node.size() + 1 : comma + 1;
    if (one.empty()) continue;
    auto u = api::parse_url(one);
    if (!u.ok()) return fail(one + ": " + u.error().reason);
    nodes.emplace_back(one, *u);
  }
  size_t cur = 0;  // the node in use
  std::string anchor_hex = a.anchor;
  if (!nodes.empty()) {
    std::string why;
    for (; cur < nodes.size(); ++cur) {
      auto r = api::http_call(nodes[cur].second, "GET", "/v1/freshness");
      if (!r.ok() || r->status != 200) {
        std::string w = nodes[cur].first + ": " + (r.ok() ? r->body : r.error().reason);
        std::printf("0/3 %s%s\n", w.c_str(), cur + 1 < nodes.size() ? "; trying the next" : "");
        why += "\n  " + w;
        continue;
      }
      try {
        auto j = nlohmann::json::parse(r->body);
        if (anchor_hex.empty()) anchor_hex = j.at("anchor").get<std::string>();
        std::printf("0/3 freshness anchor %s (block %llu of %s) from %s\n",
                    anchor_hex.substr(0, 16).c_str(),
                    static_cast<unsigned long long>(j.at("height").get<uint64_t>()),
                    j.at("chain_id").get<std::string>().c_str(), nodes[cur].first.c_str());
        break;
      } catch (const std::exception& e) {
        why += "\n  " + nodes[cur].first + ": /v1/freshness did not answer with an anchor";
      }
    }
    if (cur == nodes.size()) return fail("no node gave a freshness anchor:" + why);
  } else if (a.request_out.empty()) {
    return fail("give --node URL (submit and wait) or --request-out FILE with --anchor");
  }
  auto parsed_anchor = hash32_from_hex(anchor_hex);
  if (!parsed_anchor)
    return fail("--anchor must be 32 bytes of hex: a recent block hash (GET /v1/freshness)");
  Hash32 anchor = *parsed_anchor;
  crypto::init();
  crypto::SecretKey key = crypto::SecretKey::generate();  // ephemeral, never stored
  Hash32 binding = evidence::evidence_binding(anchor, key.public_key());
  std::printf("1/3 ephemeral VM key %s, binding %s\n",
              to_hex(ByteView(key.public_key().data(), 32)).substr(0, 16).c_str(),
              to_hex(binding).substr(0, 16).c_str());
  auto ev = collect_evidence(a.ev, binding);
  if (!ev.ok()) return fail(ev.error().reason);
  std::string platform = ev->first;
  Bytes bundle = std::move(ev->second);
  if (a.ev.bundle.empty())
    std::printf("2/3 %s evidence bound to the request (%zu bytes)\n", platform.c_str(),
                bundle.size());
  else
    std::printf(
        "2/3 %s evidence from %s (%zu bytes; the network checks that it carries this "
        "request's binding)\n",
        platform.c_str(), a.ev.bundle.c_str(), bundle.size());
  auto req = state::AttestationRequest::make(key, a.vm_id, platform, std::move(bundle), anchor);
  Bytes enc = req.encode();
  if (!a.request_out.empty()) {
    std::ofstream f(a.request_out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(enc.data()), static_cast<std::streamsize>(enc.size()));
    if (!f) return fail("cannot write " + a.request_out);
    std::printf("3/3 wrote signed request %s to %s\n",
                to_hex(req.request_id()).substr(0, 16).c_str(), a.request_out.c_str());
  }
  if (nodes.empty()) return 0;
  nlohmann::json body = {{"request", to_hex(as_view(enc))}};
  char target[96];
  std::snprintf(target, sizeof target, "/v1/attestations?wait=%g&from_epoch=%llu", a.wait,
                static_cast<unsigned long long>(a.from_epoch));
  // Submitting the same signed request again is harmless (it has one id; a node that already
  // ordered it answers with its response), so a node that fails is simply replaced.
  Result<api::HttpResult> r = make_error(Errc::kUnavailable, "no node");
  for (size_t tries = 0; tries < nodes.size(); ++tries, cur = (cur + 1) % nodes.size()) {
    std::printf("3/3 submitting to %s and waiting up to %g s for the certified response...\n",
                nodes[cur].first.c_str(), a.wait);
    std::fflush(stdout);
    r = api::http_call(nodes[cur].second, "POST", target, body.dump(), "application/json",
                       static_cast<uint64_t>(a.wait * 1000) + 5000);
    if (r.ok() && r->status < 500) break;
    std::printf(
        "    %s: %s\n", nodes[cur].first.c_str(),
        r.ok() ? ("answered " + std::to_string(r->status)).c_str() : r.error().reason.c_str());
  }
  if (!r.ok()) return fail(r.error().reason);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r->body);
  } catch (const std::exception&) {
    return fail("the node answered " + std::to_string(r->status) + " with a body that is not JSON");
  }
  if (r->status == 202)
    return fail("not committed within " + std::to_string(a.wait) + " s; ask again with GET " +
                "/v1/attestations/" + j.value("request_id", std::string("?")));
  if (r->status != 200 || !j.contains("response"))
    return fail("the node refused the request (" + std::to_string(r->status) + "): " + j.dump());
  std::ofstream f(a.out);
  f << j["response"].dump(2) << "\n";
  if (!f) return fail("cannot write " + a.out);
  std::printf("    committed: verdict %s in block %llu; response written to %s\n",
              j["record"]["verdict"].get<std::string>().c_str(),
              static_cast<unsigned long long>(j["response"]["height"].get<uint64_t>()),
              a.out.c_str());
  for (const auto& why : j["record"]["reasons"])
    std::printf("    reason: %s\n", why.get<std::string>().c_str());
  return 0;
}

int appraise_request(const AttestArgs& a) {
  auto bytes = read_file(a.request);
  if (!bytes.ok()) return fail(bytes.error().reason);
  auto req = state::AttestationRequest::decode(as_view(*bytes));
  if (!req.ok()) return fail(a.request + ": " + req.error().reason);
  std::shared_ptr<const policy::Policy> pol;
  if (!a.policy.empty()) {
    auto text = read_file(a.policy);
    if (!text.ok()) return fail(text.error().reason);
    auto p = policy::parse_policy(
        std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
    if (!p.ok()) return fail(a.policy + ": " + p.error().reason);
    pol = std::make_shared<const policy::Policy>(std::move(p).value());
  }
  state::AttestationApp app(pol);
  // Offline, the request's own anchor stands for "recent": a node checks it against its chain.
  state::MemoryLedgerView view(req->freshness_anchor, 1);
  consensus::Request q;
  q.client_id = 1;
  q.payload = *bytes;
  uint64_t at_ms =
      a.at.empty() ? static_cast<uint64_t>(std::time(nullptr)) * 1000 : std::stoull(a.at) * 1000;
  auto rec = app.execute(q, at_ms, view);
  std::printf("vm %s platform %s: verdict %s", rec.vm_id.c_str(), rec.platform.c_str(),
              ledger::verdict_name(rec.verdict));
  if (pol) std::printf(" (policy %s v%u)", rec.policy_id.c_str(), rec.policy_version);
  std::printf("\n");
  for (const auto& m : rec.measurements)
    std::printf("  measurement %-40s %s\n", m.name.c_str(), to_hex(m.digest).c_str());
  for (const auto& why : rec.reasons) std::printf("  reason: %s\n", why.c_str());
  if (rec.verdict == policy::Verdict::kContraindicated) return 1;
  return pol && rec.verdict != policy::Verdict::kAffirming ? 1 : 0;
}

}  // namespace

void add_evidence_options(CLI::App* c, EvidenceSource& ev) {
  c->add_option("--tpm", ev.tpm, "TPM TCTI: swtpm:host=127.0.0.1,port=P or device:/dev/tpmrm0");
  c->add_flag("--tsm", ev.tsm, "use configfs-tsm (SEV-SNP or TDX guest) instead of a TPM");
  c->add_option("--bundle", ev.bundle,
                "submit this evidence bundle (from `evidence bundle|collect`) instead");
  c->add_option("--platform", ev.platform,
                "the bundle's platform: tpm2 | sev-snp | tdx | sgx | sim");
  c->add_option("--eventlog", ev.eventlog,
                "TCG event log (default none; /sys/kernel/security/tpm0/binary_bios_measurements)");
  c->add_option("--ima", ev.ima, "IMA measurement list");
  c->add_option("--pcrs", ev.pcrs, "PCR selection to quote")->default_val("sha256:0,4,7,8,9");
  c->add_option("--ak", ev.ak, "rsa | ecc")->default_val("rsa");
}

Result<std::pair<std::string, Bytes>> collect_evidence(const EvidenceSource& a,
                                                       const Hash32& binding) {
  if (!a.bundle.empty()) {
    // Evidence collected elsewhere (a bundle from `evidence bundle` or `evidence collect`): it
    // must already carry this binding, or the network will say so.
    if (a.platform.empty())
      return make_error(Errc::kInvalidArgument,
                        "--bundle needs --platform (tpm2, sev-snp, tdx, sgx, sim)");
    ATN_TRY(Bytes b, read_file(a.bundle));
    return std::make_pair(a.platform, std::move(b));
  }
  if (a.tsm) {
    Bytes rd(binding.begin(), binding.end());
    rd.resize(64, 0);
    ATN_TRY(auto ev, agent::collect_tsm(as_view(rd)));
    return std::make_pair(ev.platform, std::move(ev.bundle));
  }
  if (a.tpm.empty())
    return make_error(Errc::kInvalidArgument,
                      "give --tpm TCTI (swtpm:host=127.0.0.1,port=P or device:/dev/tpmrm0), "
                      "--tsm, or --bundle FILE --platform P");
  std::string tcti = a.tpm.rfind("device:", 0) == 0 || a.tpm.rfind("swtpm:", 0) == 0 ||
                             a.tpm.rfind("mssim:", 0) == 0
                         ? a.tpm
                         : "device:" + a.tpm;
  ATN_TRY(auto tpm, agent::Tpm::open(tcti));
  auto kind = a.ak == "ecc" ? agent::Tpm::AkKind::kEccP256 : agent::Tpm::AkKind::kRsa2048;
  ATN_TRY(auto ev, tpm->quote(ByteView(binding.data(), binding.size()), a.pcrs, kind));
  if (!a.eventlog.empty()) {
    ATN_TRY(ev.event_log, read_file(a.eventlog));
  }
  if (!a.ima.empty()) {
    ATN_TRY(ev.ima_log, read_file(a.ima));
  }
  return std::make_pair(std::string("tpm2"), ev.encode());
}

void add_attest_command(CLI::App& app) {
  auto args = std::make_shared<AttestArgs>();
  auto* c = app.add_subcommand(
      "attest",
      "VM agent: fetch a freshness anchor, make an ephemeral key, take evidence binding both, "
      "submit the signed request to a node, wait, and write the certified response");
  c->add_option("--node", args->node,
                "a node's API, http://127.0.0.1:8100; several, comma-separated, to fail over");
  c->add_option("--wait", args->wait, "seconds to wait for the response")->default_val(30);
  c->add_option("--request-out", args->request_out,
                "also (or, without --node: only) write the "
                "signed request here");
  add_evidence_options(c, args->ev);
  c->add_option("--vm-id", args->vm_id, "this VM's id")->required();
  c->add_option("--anchor", args->anchor,
                "freshness anchor: a recent block hash (hex; default: GET --node/v1/freshness)");
  c->add_option("--out", args->out, "where to write the response (with --node)");
  c->add_option("--from-epoch", args->from_epoch,
                "hand-overs from this epoch on (for a relying party that pinned its checkpoint)");
  c->callback([args] { set_exit_code(attest(*args)); });

  auto* r = app.add_subcommand("appraise-request",
                               "execute a request file as a node would and print the record");
  r->add_option("request", args->request, "the request file")->required();
  r->add_option("--policy", args->policy, "policy JSON");
  r->add_option("--at", args->at, "block time (unix seconds; default now)");
  r->callback([args] { set_exit_code(appraise_request(*args)); });
}

}  // namespace attestnet::cli
