// Appraisal: evidence bytes + policy -> AppraisalResult. Deterministic (docs/evidence.md).
#include <algorithm>

#include "evidence/sim/sim.h"
#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/eventlog.h"
#include "policy/appraiser.h"
#include "policy/policy.h"

namespace attestnet::policy {

namespace {

using namespace evidence::tpm2;

std::string u64s(uint64_t v) {
  return std::to_string(v);
}

std::string component_name(const Component& c) {
  std::string name = c.kind;
  if (!c.description.empty()) name += " " + c.description.substr(0, 200);
  return name;
}

void appraise_event_log(Appraiser& a, const Tpm2Policy* tp, const Tpm2Evidence& ev,
                        const VerifiedQuote& vq) {
  if (ev.event_log.empty()) {
    if (tp && tp->require_event_log)
      a.fail(kExecutables, "event_log", "the policy requires a measured-boot event log; none sent");
    if (tp && !tp->components.empty())
      a.fail(kExecutables, "components",
             "the policy names boot components but no event log was sent to show them");
    return;
  }
  auto log = parse_event_log(as_view(ev.event_log));
  if (!log.ok()) return a.evidence_failed(kExecutables, "event_log", log.error());
  auto compared = check_against(*log, vq.pcrs);
  if (!compared.ok()) return a.evidence_failed(kExecutables, "event_log", compared.error());
  if (compared->empty()) {
    a.fail(kExecutables, "event_log",
           "no quoted PCR is measured by the event log: its contents are not attested", true);
    return;
  }
  std::set<uint32_t> verified;
  for (const auto& s : *compared) verified.insert(std::stoul(s.substr(s.find(':') + 1)));
  a.claim("tpm2.event_log", std::to_string(log->events.size()) + " events, " +
                                (log->crypto_agile ? "crypto-agile" : "SHA-1") +
                                ", replay matches " + std::to_string(compared->size()) +
                                " quoted PCRs");
  BootState boot = extract_components(*log);
  std::map<std::string, std::vector<const Component*>> by_kind;
  for (const auto& c : boot.components) {
    if (!verified.count(c.pcr)) continue;  // its PCR was not quoted: not attested
    a.measure(component_name(c), c.sha256);
    by_kind[c.kind].push_back(&c);
  }
  if (boot.secure_boot && verified.count(7))
    a.claim("tpm2.secure_boot", *boot.secure_boot ? "enabled" : "disabled");
  if (!tp) return;
  a.affirm(kExecutables);
  for (const auto& [kind, allowed] : tp->components) {
    auto it = by_kind.find(kind);
    if (it == by_kind.end()) {
      a.fail(kExecutables, "components",
             "the policy names allowed " + kind +
                 " digests but the attested event log "
                 "measures no " +
                 kind);
      continue;
    }
    for (const Component* c : it->second)
      if (!contains_digest(allowed, c->sha256))
        a.fail(kind == "kernel_cmdline" || kind == "grub_cmd" ? kConfiguration : kExecutables,
               "components",
               kind + " '" + c->description + "' (event " + std::to_string(c->event) + ", PCR " +
                   std::to_string(c->pcr) + ", digest " + to_hex(c->sha256) +
                   ") is not among the policy's reference values");
  }
  if (tp->require_secure_boot) {
    a.affirm(kConfiguration);
    if (!boot.secure_boot || !verified.count(7))
      a.fail(kConfiguration, "secure_boot",
             "the policy requires Secure Boot but the attested log does not measure the "
             "SecureBoot variable in PCR 7");
    else if (!*boot.secure_boot)
      a.fail(kConfiguration, "secure_boot", "Secure Boot is disabled");
  }
}

void appraise_ima(Appraiser& a, const Tpm2Policy* tp, const Tpm2Evidence& ev,
                  const VerifiedQuote& vq) {
  if (ev.ima_log.empty()) {
    if (tp && tp->require_ima)
      a.fail(kFileSystem, "ima", "the policy requires an IMA measurement list; none sent");
    return;
  }
  auto log = parse_ima_any(as_view(ev.ima_log));
  if (!log.ok()) return a.evidence_failed(kFileSystem, "ima", log.error());
  if (auto st = verify_ima_template_hashes(*log); !st.ok())
    return a.evidence_failed(kFileSystem, "ima", st.error());
  // A leading part of the list must replay to the quoted PCR 10 in every quoted bank; entries
  // after it were measured after the quote and are not attested.
  std::optional<size_t> attested;
  for (const auto& [alg, bank] : vq.pcrs) {
    auto q = bank.find(10);
    if (q == bank.end()) continue;
    auto k = ima_attested_prefix(*log, alg, q->second);
    if (!k || (attested && *attested != *k))
      return a.evidence_failed(
          kFileSystem, "ima",
          Error{Errc::kPcrMismatch,
                "no prefix of the IMA list replays to the quoted PCR 10 of bank " + alg_name(alg) +
                    " (" + to_hex(q->second) + "): the list was edited or is stale"});
    attested = k;
  }
  if (!attested) {
    a.fail(kFileSystem, "ima", "an IMA list was sent but the quote does not cover PCR 10", true);
    return;
  }
  a.claim("tpm2.ima", std::to_string(*attested) + " of " + std::to_string(log->entries.size()) +
                          " entries attested by PCR 10");
  if (!tp) return;
  a.affirm(kFileSystem);
  for (size_t i = 0; i < *attested; ++i) {
    const ImaEntry& e = log->entries[i];
    if (e.violation || e.path == "boot_aggregate") continue;
    std::string d = e.file_digest_alg + ":" + to_hex(e.file_digest);
    auto it = tp->ima_files.find(e.path);
    if (it == tp->ima_files.end()) {
      if (tp->ima_unknown != Verdict::kNone)
        a.fail(kFileSystem, "ima_unknown", "file " + e.path + " is not in the policy's list", false,
               tp->ima_unknown);
      continue;
    }
    if (!it->second.count(d))
      a.fail(kFileSystem, "ima",
             "file " + e.path + " has digest " + d + ", not one the policy allows");
  }
}

void appraise_tpm2(Appraiser& a, const AppraisalInput& in) {
  const Tpm2Policy* tp = a.policy() && a.policy()->tpm2 ? &*a.policy()->tpm2 : nullptr;
  if (a.policy() && !tp)
    a.fail(kHardware, "platform",
           "policy " + a.policy()->id + " has no rules for platform tpm2: it does not accept it");
  auto ev = Tpm2Evidence::decode(in.evidence);
  if (!ev.ok()) return a.evidence_failed(kHardware, "evidence", ev.error());
  Result<std::shared_ptr<const AkPublic>> ak =
      in.ak_cache ? in.ak_cache->get(as_view(ev->ak_public))
                  : [&]() -> Result<std::shared_ptr<const AkPublic>> {
    ATN_TRY(AkPublic parsed, parse_ak(as_view(ev->ak_public)));
    return std::make_shared<const AkPublic>(std::move(parsed));
  }();
  if (!ak.ok()) return a.evidence_failed(kHardware, "ak", ak.error());
  const AkPublic& akp = **ak;
  auto sig = parse_signature_file(as_view(ev->signature), akp, ev->plain_hash);
  if (!sig.ok()) return a.evidence_failed(kHardware, "signature", sig.error());
  Hash32 sig_key{};
  bool sig_known = false;
  if (in.ak_cache) {
    sig_key = AkCache::signature_key(as_view(ev->ak_public), as_view(ev->quote),
                                     as_view(ev->signature), ev->plain_hash);
    sig_known = in.ak_cache->signature_known(sig_key);
  }
  auto vq = verify_quote(akp, as_view(ev->quote), *sig, ev->pcrs, sig_known);
  if (vq.ok() && in.ak_cache && !sig_known) in.ak_cache->remember_signature(sig_key);
  if (!vq.ok()) {
    const char* claim = vq.error().code == Errc::kPcrMismatch ? kExecutables : kHardware;
    return a.evidence_failed(claim, "quote", vq.error());
  }
  const Quote& q = vq->quote;
  a.affirm(kHardware);
  a.claim("tpm2.ak", akp.describe());
  if (!akp.name.empty()) a.claim("tpm2.ak_name", to_hex(akp.name));
  a.claim("tpm2.clock", u64s(q.clock));
  a.claim("tpm2.reset_count", u64s(q.reset_count));
  a.claim("tpm2.restart_count", u64s(q.restart_count));
  a.claim("tpm2.clock_safe", q.safe ? "yes" : "no");
  char fw[24];
  std::snprintf(fw, sizeof fw, "0x%016llx", static_cast<unsigned long long>(q.firmware_version));
  a.claim("tpm2.firmware_version", fw);
  a.claim("tpm2.pcr_selection", selection_string(q.selection));
  a.claim("tpm2.signature", sig_alg_name(sig->sig_alg) + "/" + alg_name(sig->hash_alg));
  for (const auto& [alg, bank] : vq->pcrs)
    for (const auto& [pcr, value] : bank)
      a.measure("pcr " + alg_name(alg) + ":" + std::to_string(pcr), value);

  // Freshness and binding.
  a.affirm(kInstance);
  if (q.extra_data != in.expected_binding)
    a.fail(kInstance, "binding",
           "the quote's qualifying data is " + to_hex(q.extra_data) +
               " but this request's "
               "binding is " +
               to_hex(in.expected_binding) +
               ": the quote was taken for another request (replayed or foreign)",
           true);
  if (in.vm && in.vm->last_reset_count) {
    if (q.reset_count < *in.vm->last_reset_count)
      a.fail(kInstance, "freshness",
             "the quote's TPM reset count " + u64s(q.reset_count) +
                 " is below one already accepted (" + u64s(*in.vm->last_reset_count) +
                 "): an old quote replayed",
             true);
    else if (q.reset_count == *in.vm->last_reset_count && in.vm->last_clock &&
             q.clock <= *in.vm->last_clock)
      a.fail(kInstance, "freshness",
             "the quote's TPM clock " + u64s(q.clock) + " is not after one already accepted (" +
                 u64s(*in.vm->last_clock) + "): an old quote replayed",
             true);
  }
  if (tp && tp->require_enrolled_ak) {
    if (akp.name.empty())
      a.fail(kHardware, "ak_enrollment",
             "the policy requires an enrolled AK but the AK was sent as a bare key, not a TPM "
             "public area");
    else if (!in.vm || !in.vm->enrolled_ak_names.count(akp.name))
      a.fail(kHardware, "ak_enrollment",
             "AK " + to_hex(akp.name) +
                 " is not enrolled for this VM (EK certificate + "
                 "credential activation)");
  }

  if (tp) {
    a.affirm(kExecutables);
    for (const auto& [alg, pcrs] : tp->required_pcrs) {
      auto bank = vq->pcrs.find(alg);
      for (uint32_t pcr : pcrs)
        if (bank == vq->pcrs.end() || !bank->second.count(pcr))
          a.fail(kExecutables, "required_pcrs",
                 "the quote (" + selection_string(q.selection) + ") does not cover PCR " +
                     std::to_string(pcr) + " of bank " + alg_name(alg) +
                     ", which the policy requires");
    }
    for (const auto& [alg, m] : tp->pcr_values)
      for (const auto& [pcr, allowed] : m) {
        auto bank = vq->pcrs.find(alg);
        if (bank == vq->pcrs.end() || !bank->second.count(pcr)) {
          a.fail(kExecutables, "pcr_values",
                 "the policy gives reference values for PCR " + std::to_string(pcr) + " of " +
                     alg_name(alg) + " but the quote does not cover it");
        } else if (!contains_digest(allowed, bank->second.at(pcr))) {
          a.fail(kExecutables, "pcr_values",
                 "PCR " + std::to_string(pcr) + " of " + alg_name(alg) + " is " +
                     to_hex(bank->second.at(pcr)) + ", not a reference value of the policy");
        }
      }
  }
  appraise_event_log(a, tp, *ev, *vq);
  appraise_ima(a, tp, *ev, *vq);
}

void appraise_sim(Appraiser& a, const AppraisalInput& in) {
  const SimPolicy* sp = a.policy() && a.policy()->sim ? &*a.policy()->sim : nullptr;
  if (a.policy() && !sp)
    a.fail(kHardware, "platform",
           "policy " + a.policy()->id +
               " does not name platform sim: software evidence proves no hardware and is "
               "rejected");
  auto ev = evidence::sim::verify_sim_evidence(in.evidence, in.ed25519);
  if (!ev.ok()) return a.evidence_failed(kHardware, "evidence", ev.error());
  a.claim("sim.platform_key", to_hex(ByteView(ev->platform_key.data(), 32)));
  for (const auto& m : ev->measurements) a.measure(m.name, m.digest);
  a.affirm(kInstance);
  if (ev->report_data != in.expected_binding)
    a.fail(kInstance, "binding",
           "the evidence's report data is " + to_hex(ev->report_data) +
               " but this request's binding is " + to_hex(in.expected_binding),
           true);
  if (!sp) return;
  a.affirm(kHardware);
  if (std::find(sp->platform_keys.begin(), sp->platform_keys.end(), ev->platform_key) ==
      sp->platform_keys.end())
    a.fail(kHardware, "platform_key", "sim platform key is not one the policy names");
  a.affirm(kExecutables);
  for (const auto& [name, allowed] : sp->measurements) {
    bool found = false;
    for (const auto& m : ev->measurements) {
      if (m.name != name) continue;
      found = true;
      if (!contains_digest(allowed, m.digest))
        a.fail(kExecutables, "measurements",
               name + " digest " + to_hex(m.digest) + " is not a reference value of the policy");
    }
    if (!found) a.fail(kExecutables, "measurements", "the evidence does not measure " + name);
  }
}

}  // namespace

void prewarm(const AppraisalInput& in) {
  if (in.platform == "sim") {
    if (in.ed25519) (void)evidence::sim::verify_sim_evidence(in.evidence, in.ed25519);
    return;
  }
  if (in.platform != "tpm2" || !in.ak_cache) return;
  auto ev = Tpm2Evidence::decode(in.evidence);
  if (!ev.ok()) return;
  Hash32 key = AkCache::signature_key(as_view(ev->ak_public), as_view(ev->quote),
                                      as_view(ev->signature), ev->plain_hash);
  if (in.ak_cache->signature_known(key)) return;
  auto ak = in.ak_cache->get(as_view(ev->ak_public));
  if (!ak.ok()) return;
  auto sig = parse_signature_file(as_view(ev->signature), **ak, ev->plain_hash);
  if (!sig.ok()) return;
  if (verify_quote(**ak, as_view(ev->quote), *sig, ev->pcrs).ok())
    in.ak_cache->remember_signature(key);
}

AppraisalResult appraise(const Policy* policy, const AppraisalInput& in) {
  Appraiser a(policy, in.platform);
  if (in.platform == "tpm2") {
    appraise_tpm2(a, in);
  } else if (in.platform == "sim") {
    appraise_sim(a, in);
  } else if (in.platform == "sev-snp") {
    appraise_sevsnp(a, in);
  } else if (in.platform == "tdx" || in.platform == "sgx") {
    appraise_dcap(a, in);
  } else {
    a.evidence_failed(
        kHardware, "platform",
        Error{Errc::kUnsupported, "platform '" + in.platform + "' is not supported (tpm2, sim)"});
  }
  return a.finish();
}

}  // namespace attestnet::policy
