// Appraisal of confidential-computing evidence: AMD SEV-SNP reports and Intel DCAP quotes
// (TDX, SGX), through the same Appraiser and verdict rules as TPM evidence.
#include <cstdio>

#include "evidence/sevsnp/bundle.h"
#include "evidence/tdx/bundle.h"
#include "policy/appraiser.h"

namespace attestnet::policy {

namespace {

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<Hash32> pins(const std::vector<Hash32>& policy, const std::vector<Hash32>& extra) {
  std::vector<Hash32> out = policy;
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

void check_values(Appraiser& a, const char* claim, const std::string& rule, const std::string& name,
                  const std::vector<Bytes>& allowed, const Bytes& v) {
  if (allowed.empty()) return;
  if (!contains_digest(allowed, v))
    a.fail(claim, rule, name + " " + to_hex(v) + " is not among the policy's reference values");
}

}  // namespace

void appraise_sevsnp(Appraiser& a, const AppraisalInput& in) {
  const SevSnpPolicy* sp = a.policy() && a.policy()->sevsnp ? &*a.policy()->sevsnp : nullptr;
  if (a.policy() && !sp)
    a.fail(
        kHardware, "platform",
        "policy " + a.policy()->id + " has no rules for platform sev-snp: it does not accept it");
  auto ev = evidence::sevsnp::SevSnpEvidence::decode(in.evidence);
  if (!ev.ok()) return a.evidence_failed(kHardware, "evidence", ev.error());
  auto certs = ev->certificates();
  if (!certs.ok()) return a.evidence_failed(kHardware, "certificates", certs.error());
  std::vector<Hash32> roots =
      pins(sp ? sp->ark_fingerprints : std::vector<Hash32>{}, in.extra_roots);
  auto v = evidence::sevsnp::verify_report(as_view(ev->report), *certs, roots, in.at_unix,
                                           in.chain_cache);
  if (!v.ok()) return a.evidence_failed(kHardware, "report", v.error());
  const auto& r = v->report;
  bool vlek = r.signing_key == evidence::sevsnp::SigningKey::kVlek;
  a.affirm(kHardware);
  a.claim("sevsnp.version", std::to_string(r.version));
  a.claim("sevsnp.product", v->leaf.product);
  a.claim("sevsnp.signing_key", vlek ? "vlek" : "vcek");
  a.claim("sevsnp.guest_svn", std::to_string(r.guest_svn));
  a.claim("sevsnp.policy", hex64(r.policy));
  a.claim("sevsnp.debug", r.debug_allowed() ? "allowed" : "disallowed");
  a.claim("sevsnp.vmpl", std::to_string(r.vmpl));
  a.claim("sevsnp.platform_info", hex64(r.platform_info));
  a.claim("sevsnp.reported_tcb", v->reported_tcb.to_string());
  a.claim("sevsnp.current_tcb", v->current_tcb.to_string());
  a.claim("sevsnp.committed_tcb", v->committed_tcb.to_string());
  a.claim("sevsnp.launch_tcb", v->launch_tcb.to_string());
  a.claim("sevsnp.firmware", std::to_string(r.current_major) + "." +
                                 std::to_string(r.current_minor) + " build " +
                                 std::to_string(r.current_build));
  a.claim("sevsnp.ark_sha256", to_hex(v->ark_fingerprint));
  if (!vlek) a.claim("sevsnp.chip_id", to_hex(r.chip_id));
  a.measure("measurement", r.measurement);
  a.measure("host_data", r.host_data);
  a.measure("id_key_digest", r.id_key_digest);
  a.measure("author_key_digest", r.author_key_digest);
  a.affirm(kInstance);
  if (r.report_data != expected_user_data(in.expected_binding))
    a.fail(kInstance, "binding",
           "the report's REPORT_DATA is " + to_hex(r.report_data) +
               " but this request's binding "
               "is " +
               to_hex(in.expected_binding) + ": the report was made for another request",
           true);
  if (!sp) return;
  a.affirm(kExecutables);
  a.affirm(kConfiguration);
  check_values(a, kExecutables, "measurement", "MEASUREMENT", sp->measurements, r.measurement);
  check_values(a, kConfiguration, "host_data", "HOST_DATA", sp->host_data, r.host_data);
  check_values(a, kExecutables, "id_key", "ID_KEY_DIGEST", sp->id_key_digests, r.id_key_digest);
  check_values(a, kExecutables, "author_key", "AUTHOR_KEY_DIGEST", sp->author_key_digests,
               r.author_key_digest);
  if (r.debug_allowed() && !sp->allow_debug)
    a.fail(kConfiguration, "debug",
           "the guest policy allows debugging (bit 19): the hypervisor can read its memory");
  if (r.policy & sp->forbidden_policy_bits)
    a.fail(kConfiguration, "policy_bits",
           "the guest policy " + hex64(r.policy) + " sets forbidden bits " +
               hex64(r.policy & sp->forbidden_policy_bits));
  if (r.guest_svn < sp->min_guest_svn)
    a.fail(kExecutables, "guest_svn",
           "GUEST_SVN " + std::to_string(r.guest_svn) + " is below the policy's minimum " +
               std::to_string(sp->min_guest_svn));
  if (!sp->vmpls.empty() && !sp->vmpls.count(r.vmpl))
    a.fail(kConfiguration, "vmpl",
           "the report was requested at VMPL " + std::to_string(r.vmpl) +
               ", which the policy does not allow");
  if (!sp->signing_keys.empty() && !sp->signing_keys.count(vlek ? "vlek" : "vcek"))
    a.fail(kHardware, "signing_key",
           std::string("reports signed by a ") + (vlek ? "VLEK" : "VCEK") + " are not allowed");
  const auto& t = v->reported_tcb;
  struct Min {
    const char* name;
    std::optional<int> min;
    int have;
  };
  for (Min m : {Min{"bootloader", sp->min_bootloader, t.bootloader}, Min{"tee", sp->min_tee, t.tee},
                Min{"snp", sp->min_snp, t.snp}, Min{"microcode", sp->min_microcode, t.microcode},
                Min{"fmc", sp->min_fmc, t.fmc}})
    if (m.min && m.have < *m.min)
      a.fail(kHardware, "min_tcb",
             std::string("REPORTED_TCB ") + m.name + " SPL " + std::to_string(m.have) +
                 " is below the policy's minimum " + std::to_string(*m.min) +
                 ": the platform firmware is out of date");
}

void appraise_dcap(Appraiser& a, const AppraisalInput& in) {
  bool want_tdx = in.platform == "tdx";
  const DcapPolicy* dp = nullptr;
  if (a.policy()) {
    const auto& sec = want_tdx ? a.policy()->tdx : a.policy()->sgx;
    if (sec)
      dp = &*sec;
    else
      a.fail(kHardware, "platform",
             "policy " + a.policy()->id + " has no rules for platform " + in.platform +
                 ": it does not accept it");
  }
  auto ev = evidence::tdx::DcapEvidence::decode(in.evidence);
  if (!ev.ok()) return a.evidence_failed(kHardware, "evidence", ev.error());
  std::vector<Hash32> roots =
      pins(dp ? dp->root_fingerprints : std::vector<Hash32>{}, in.extra_roots);
  auto v = evidence::tdx::verify_quote(as_view(ev->quote), roots, in.at_unix, in.chain_cache);
  if (!v.ok()) return a.evidence_failed(kHardware, "quote", v.error());
  const auto& q = v->quote;
  if (q.is_tdx() != want_tdx)
    return a.evidence_failed(
        kHardware, "quote",
        Error{Errc::kBadValue, std::string("the quote is ") + (q.is_tdx() ? "TDX" : "SGX") +
                                   " but the request says " + in.platform});
  a.affirm(kHardware);
  a.claim("dcap.quote_version", std::to_string(q.version));
  a.claim("dcap.fmspc", to_hex(v->pck.fmspc));
  a.claim("dcap.pce_svn", std::to_string(v->pck.pce_svn));
  a.claim("dcap.root_sha256", to_hex(v->root_fingerprint));
  a.claim("dcap.qe_isv_svn", std::to_string(q.qe_report.isv_svn));
  bool debug = false;
  if (q.is_tdx()) {
    const auto& t = q.td;
    debug = t.debug();
    a.claim("tdx.tee_tcb_svn", to_hex(t.tee_tcb_svn));
    a.claim("tdx.td_attributes", to_hex(t.td_attributes));
    a.claim("tdx.xfam", to_hex(t.xfam));
    a.claim("tdx.debug", debug ? "yes" : "no");
    a.measure("mrtd", t.mr_td);
    for (int i = 0; i < 4; ++i) a.measure("rtmr" + std::to_string(i), t.rtmr[i]);
    a.measure("mrseam", t.mr_seam);
    a.measure("mrconfigid", t.mr_config_id);
    a.measure("mrowner", t.mr_owner);
  } else {
    const auto& e = q.enclave;
    debug = e.debug();
    a.claim("sgx.isv_prod_id", std::to_string(e.isv_prod_id));
    a.claim("sgx.isv_svn", std::to_string(e.isv_svn));
    a.claim("sgx.attributes", to_hex(e.attributes));
    a.claim("sgx.debug", debug ? "yes" : "no");
    a.measure("mrenclave", e.mr_enclave);
    a.measure("mrsigner", e.mr_signer);
  }
  a.affirm(kInstance);
  if (q.report_data() != expected_user_data(in.expected_binding))
    a.fail(kInstance, "binding",
           "the quote's REPORTDATA is " + to_hex(q.report_data()) +
               " but this request's binding "
               "is " +
               to_hex(in.expected_binding) + ": the quote was made for another request",
           true);
  std::optional<evidence::tdx::TcbResult> tcb;
  if (ev->has_collateral()) {
    auto t = evidence::tdx::evaluate_collateral(*v, ev->collateral, roots, in.at_unix);
    if (!t.ok()) return a.evidence_failed(kHardware, "collateral", t.error());
    tcb = *t;
    a.claim("dcap.tcb_status", evidence::tdx::tcb_status_name(t->status));
    a.claim("dcap.tcb_date", t->tcb_date);
    std::string adv;
    for (const auto& x : t->advisories) adv += (adv.empty() ? "" : ",") + x;
    if (!adv.empty()) a.claim("dcap.advisories", adv);
  }
  if (!dp) return;
  a.affirm(kExecutables);
  a.affirm(kConfiguration);
  auto value = [&](const std::string& k) -> Bytes {
    if (k == "mrtd") return q.td.mr_td;
    if (k.rfind("rtmr", 0) == 0) return q.td.rtmr[k[4] - '0'];
    if (k == "mrseam") return q.td.mr_seam;
    if (k == "mrconfigid") return q.td.mr_config_id;
    if (k == "mrowner") return q.td.mr_owner;
    if (k == "mrenclave") return q.enclave.mr_enclave;
    return q.enclave.mr_signer;
  };
  for (const auto& [k, allowed] : dp->values)
    check_values(a, k == "mrconfigid" || k == "mrowner" ? kConfiguration : kExecutables, k, k,
                 allowed, value(k));
  if (debug && !dp->allow_debug)
    a.fail(kConfiguration, "debug",
           std::string("the ") + (q.is_tdx() ? "TD" : "enclave") +
               " is debuggable (DEBUG attribute set): its memory is not confidential");
  if (q.is_tdx() && !dp->min_tee_tcb_svn.empty())
    for (size_t i = 0; i < 16; ++i)
      if (q.td.tee_tcb_svn[i] < dp->min_tee_tcb_svn[i]) {
        a.fail(kHardware, "tee_tcb_svn",
               "TEE_TCB_SVN " + to_hex(q.td.tee_tcb_svn) + " is below the policy's minimum " +
                   to_hex(dp->min_tee_tcb_svn) + " (component " + std::to_string(i) + ")");
        break;
      }
  if (!q.is_tdx()) {
    if (dp->isv_prod_id && q.enclave.isv_prod_id != *dp->isv_prod_id)
      a.fail(kExecutables, "isv_prod_id",
             "ISVPRODID " + std::to_string(q.enclave.isv_prod_id) + " is not the policy's");
    if (q.enclave.isv_svn < dp->min_isv_svn)
      a.fail(kExecutables, "isv_svn",
             "ISVSVN " + std::to_string(q.enclave.isv_svn) + " is below the policy's minimum");
  }
  if (!dp->tcb_statuses.empty()) {
    if (!tcb)
      a.fail(kHardware, "tcb_status",
             "the policy limits the TCB status but the evidence carries no collateral (TCB Info, "
             "QE Identity) to derive it");
    else if (!dp->tcb_statuses.count(evidence::tdx::tcb_status_name(tcb->status)))
      a.fail(kHardware, "tcb_status",
             std::string("the platform's TCB status is ") +
                 evidence::tdx::tcb_status_name(tcb->status) + ", which the policy does not allow");
  }
}

}  // namespace attestnet::policy
