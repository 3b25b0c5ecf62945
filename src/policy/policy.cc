#include "policy/policy.h"

#include <nlohmann/json.hpp>

#include "core/codec.h"
#include "core/hash.h"

namespace attestnet::policy {

using nlohmann::json;

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kNone:
      return "none";
    case Verdict::kAffirming:
      return "affirming";
    case Verdict::kWarning:
      return "warning";
    case Verdict::kContraindicated:
      return "contraindicated";
  }
  return "?";
}

Verdict worse(Verdict a, Verdict b) {
  return static_cast<uint8_t>(a) >= static_cast<uint8_t>(b) ? a : b;
}

namespace {

Error policy_error(const std::string& where, const std::string& what) {
  return make_error(Errc::kBadValue, "policy: " + where + ": " + what);
}

Result<Bytes> hex_digest(const json& j, const std::string& where) {
  if (!j.is_string()) return policy_error(where, "expected a hex digest string");
  auto b = from_hex(j.get<std::string>());
  if (!b || b->empty()) return policy_error(where, "'" + j.get<std::string>() + "' is not hex");
  return *b;
}

Result<std::vector<Bytes>> digest_list(const json& j, const std::string& where) {
  if (!j.is_array()) return policy_error(where, "expected an array of hex digests");
  std::vector<Bytes> out;
  for (const auto& d : j) {
    ATN_TRY(Bytes b, hex_digest(d, where));
    out.push_back(std::move(b));
  }
  return out;
}

Result<uint16_t> bank_of(const std::string& name, const std::string& where) {
  auto a = evidence::tpm2::alg_from_name(name);
  if (!a) return policy_error(where, "unknown PCR bank '" + name + "' (sha1, sha256, sha384)");
  return *a;
}

Result<uint32_t> pcr_of(const json& j, const std::string& where) {
  uint32_t p = 0;
  if (j.is_number_unsigned()) {
    p = j.get<uint32_t>();
  } else if (j.is_string()) {
    try {
      p = static_cast<uint32_t>(std::stoul(j.get<std::string>()));
    } catch (...) {
      return policy_error(where, "PCR '" + j.get<std::string>() + "' is not a number");
    }
  } else {
    return policy_error(where, "PCR index must be a number");
  }
  if (p >= 24) return policy_error(where, "PCR " + std::to_string(p) + " is not 0..23");
  return p;
}

Result<Verdict> tier_of(const std::string& s, const std::string& where) {
  if (s == "ignore") return Verdict::kNone;
  if (s == "warning") return Verdict::kWarning;
  if (s == "contraindicated") return Verdict::kContraindicated;
  return policy_error(where, "'" + s + "' is not ignore, warning or contraindicated");
}

const std::set<std::string> kTpm2Keys = {
    "required_pcrs", "pcrs", "event_log", "components", "secure_boot", "ak_enrollment", "ima"};
const std::set<std::string> kComponentKinds = {
    "firmware", "boot_loader",    "efi_application", "efi_driver", "kernel",
    "initrd",   "kernel_cmdline", "grub_cmd",        "file",       "secure_boot_variable"};

Result<Tpm2Policy> parse_tpm2(const json& j) {
  Tpm2Policy p;
  if (!j.is_object()) return policy_error("tpm2", "must be an object");
  for (const auto& [k, v] : j.items())
    if (!kTpm2Keys.count(k)) return policy_error("tpm2", "unknown key '" + k + "'");
  if (j.contains("required_pcrs")) {
    for (const auto& [bank, list] : j["required_pcrs"].items()) {
      ATN_TRY(uint16_t alg, bank_of(bank, "tpm2.required_pcrs"));
      if (!list.is_array()) return policy_error("tpm2.required_pcrs." + bank, "expected array");
      for (const auto& x : list) {
        ATN_TRY(uint32_t pcr, pcr_of(x, "tpm2.required_pcrs." + bank));
        p.required_pcrs[alg].insert(pcr);
      }
    }
  }
  if (j.contains("pcrs")) {
    for (const auto& [bank, m] : j["pcrs"].items()) {
      ATN_TRY(uint16_t alg, bank_of(bank, "tpm2.pcrs"));
      for (const auto& [idx, list] : m.items()) {
        std::string where = "tpm2.pcrs." + bank + "." + idx;
        ATN_TRY(uint32_t pcr, pcr_of(json(idx), where));
        ATN_TRY(auto digests, digest_list(list, where));
        for (const auto& d : digests)
          if (d.size() != crypto::hash_size(*evidence::tpm2::hash_of(alg)))
            return policy_error(where, "value of the wrong size for bank " + bank);
        p.pcr_values[alg][pcr] = std::move(digests);
      }
    }
  }
  if (j.contains("event_log")) {
    std::string v = j["event_log"].get<std::string>();
    if (v != "required" && v != "optional")
      return policy_error("tpm2.event_log", "must be \"required\" or \"optional\"");
    p.require_event_log = v == "required";
  }
  if (j.contains("components")) {
    for (const auto& [kind, list] : j["components"].items()) {
      if (!kComponentKinds.count(kind))
        return policy_error("tpm2.components", "unknown component kind '" + kind + "'");
      ATN_TRY(p.components[kind], digest_list(list, "tpm2.components." + kind));
    }
  }
  if (j.contains("secure_boot")) {
    std::string v = j["secure_boot"].get<std::string>();
    if (v != "required" && v != "any")
      return policy_error("tpm2.secure_boot", "must be \"required\" or \"any\"");
    p.require_secure_boot = v == "required";
  }
  if (j.contains("ak_enrollment")) {
    std::string v = j["ak_enrollment"].get<std::string>();
    if (v != "required" && v != "optional")
      return policy_error("tpm2.ak_enrollment", "must be \"required\" or \"optional\"");
    p.require_enrolled_ak = v == "required";
  }
  if (j.contains("ima")) {
    const json& ima = j["ima"];
    if (ima.contains("required")) p.require_ima = ima["required"].get<bool>();
    if (ima.contains("unknown_files")) {
      ATN_TRY(p.ima_unknown, tier_of(ima["unknown_files"].get<std::string>(), "tpm2.ima"));
    }
    if (ima.contains("files")) {
      for (const auto& [path, list] : ima["files"].items()) {
        if (!list.is_array()) return policy_error("tpm2.ima.files." + path, "expected array");
        for (const auto& d : list) {
          std::string s = d.get<std::string>();
          size_t colon = s.find(':');
          if (colon == std::string::npos || !from_hex(s.substr(colon + 1)))
            return policy_error("tpm2.ima.files." + path, "'" + s + "' is not alg:hex");
          p.ima_files[path].insert(s);
        }
      }
    }
  }
  return p;
}

Result<SimPolicy> parse_sim(const json& j) {
  SimPolicy p;
  if (!j.contains("platform_keys") || !j["platform_keys"].is_array() || j["platform_keys"].empty())
    return policy_error("sim", "must name the platform_keys it accepts (hex Ed25519 keys)");
  for (const auto& k : j["platform_keys"]) {
    ATN_TRY(Bytes b, hex_digest(k, "sim.platform_keys"));
    if (b.size() != 32) return policy_error("sim.platform_keys", "an Ed25519 key is 32 bytes");
    crypto::PublicKey pk;
    std::copy(b.begin(), b.end(), pk.begin());
    p.platform_keys.push_back(pk);
  }
  if (j.contains("measurements"))
    for (const auto& [name, list] : j["measurements"].items()) {
      ATN_TRY(p.measurements[name], digest_list(list, "sim.measurements." + name));
    }
  return p;
}

Result<std::vector<Hash32>> fingerprints(const json& j, const std::string& where) {
  if (!j.is_array() || j.empty())
    return policy_error(where, "must list the SHA-256 fingerprints (hex) of the roots it trusts");
  std::vector<Hash32> out;
  for (const auto& f : j) {
    ATN_TRY(Bytes b, hex_digest(f, where));
    if (b.size() != 32) return policy_error(where, "a SHA-256 fingerprint is 32 bytes");
    Hash32 h;
    std::copy(b.begin(), b.end(), h.begin());
    out.push_back(h);
  }
  return out;
}

Status check_keys(const json& j, const std::string& where, const std::set<std::string>& known) {
  if (!j.is_object()) return policy_error(where, "must be an object");
  for (const auto& [k, v] : j.items())
    if (!known.count(k)) return policy_error(where, "unknown key '" + k + "'");
  return {};
}

Result<SevSnpPolicy> parse_sevsnp(const json& j) {
  ATN_CHECK(check_keys(j, "sev-snp",
                       {"ark_fingerprints", "measurements", "host_data", "id_key_digests",
                        "author_key_digests", "allow_debug", "min_tcb", "min_guest_svn", "vmpl",
                        "signing_keys", "forbidden_policy_bits"}));
  SevSnpPolicy p;
  ATN_TRY(p.ark_fingerprints,
          fingerprints(j.value("ark_fingerprints", json()), "sev-snp.ark_fingerprints"));
  for (auto [key, dst] :
       {std::pair{"measurements", &p.measurements}, std::pair{"host_data", &p.host_data},
        std::pair{"id_key_digests", &p.id_key_digests},
        std::pair{"author_key_digests", &p.author_key_digests}})
    if (j.contains(key)) {
      ATN_TRY(*dst, digest_list(j[key], std::string("sev-snp.") + key));
    }
  p.allow_debug = j.value("allow_debug", false);
  if (j.contains("min_tcb")) {
    const json& t = j["min_tcb"];
    ATN_CHECK(check_keys(t, "sev-snp.min_tcb", {"bootloader", "tee", "snp", "microcode", "fmc"}));
    for (auto [key, dst] : {std::pair{"bootloader", &p.min_bootloader},
                            std::pair{"tee", &p.min_tee}, std::pair{"snp", &p.min_snp},
                            std::pair{"microcode", &p.min_microcode}, std::pair{"fmc", &p.min_fmc}})
      if (t.contains(key)) *dst = t[key].get<int>();
  }
  p.min_guest_svn = j.value("min_guest_svn", 0u);
  if (j.contains("vmpl"))
    for (const auto& v : j["vmpl"]) p.vmpls.insert(v.get<uint32_t>());
  if (j.contains("signing_keys"))
    for (const auto& v : j["signing_keys"]) {
      std::string k = v.get<std::string>();
      if (k != "vcek" && k != "vlek")
        return policy_error("sev-snp.signing_keys", "'" + k + "' is not vcek or vlek");
      p.signing_keys.insert(k);
    }
  if (j.contains("forbidden_policy_bits"))
    p.forbidden_policy_bits =
        std::stoull(j["forbidden_policy_bits"].get<std::string>(), nullptr, 0);
  return p;
}

Result<DcapPolicy> parse_dcap(const json& j, bool tdx) {
  std::string where = tdx ? "tdx" : "sgx";
  std::set<std::string> value_keys =
      tdx ? std::set<std::string>{"mrtd",  "rtmr0",  "rtmr1",      "rtmr2",
                                  "rtmr3", "mrseam", "mrconfigid", "mrowner"}
          : std::set<std::string>{"mrenclave", "mrsigner"};
  std::set<std::string> known = value_keys;
  known.insert({"root_fingerprints", "allow_debug", "tcb_statuses"});
  if (tdx) known.insert("min_tee_tcb_svn");
  if (!tdx) known.insert({"isv_prod_id", "min_isv_svn"});
  ATN_CHECK(check_keys(j, where, known));
  DcapPolicy p;
  ATN_TRY(p.root_fingerprints,
          fingerprints(j.value("root_fingerprints", json()), where + ".root_fingerprints"));
  for (const auto& k : value_keys)
    if (j.contains(k)) {
      ATN_TRY(p.values[k], digest_list(j[k], where + "." + k));
    }
  p.allow_debug = j.value("allow_debug", false);
  if (j.contains("min_tee_tcb_svn")) {
    ATN_TRY(p.min_tee_tcb_svn, hex_digest(j["min_tee_tcb_svn"], where + ".min_tee_tcb_svn"));
    if (p.min_tee_tcb_svn.size() != 16)
      return policy_error(where + ".min_tee_tcb_svn", "TEE_TCB_SVN is 16 bytes");
  }
  if (j.contains("isv_prod_id")) p.isv_prod_id = j["isv_prod_id"].get<uint16_t>();
  p.min_isv_svn = j.value("min_isv_svn", static_cast<uint16_t>(0));
  if (j.contains("tcb_statuses"))
    for (const auto& v : j["tcb_statuses"]) {
      std::string s = v.get<std::string>();
      static const std::set<std::string> ok = {"UpToDate",
                                               "SWHardeningNeeded",
                                               "ConfigurationNeeded",
                                               "ConfigurationAndSWHardeningNeeded",
                                               "OutOfDate",
                                               "OutOfDateConfigurationNeeded"};
      if (!ok.count(s))
        return policy_error(where + ".tcb_statuses", "'" + s + "' is not a TCB status");
      p.tcb_statuses.insert(s);
    }
  return p;
}

}  // namespace

Result<Policy> parse_policy(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(Errc::kBadValue, "policy: not valid JSON");
  if (!j.is_object()) return make_error(Errc::kBadValue, "policy: must be a JSON object");
  Policy p;
  try {
    if (!j.contains("id") || !j["id"].is_string() || j["id"].get<std::string>().empty())
      return policy_error("id", "a policy needs a non-empty string id");
    if (!j.contains("version") || !j["version"].is_number_unsigned())
      return policy_error("version", "a policy needs a version (unsigned integer)");
    p.id = j["id"].get<std::string>();
    p.version = j["version"].get<uint32_t>();
    for (const auto& [k, v] : j.items())
      if (k != "id" && k != "version" && k != "tpm2" && k != "sim" && k != "warn_only" &&
          k != "description" && k != "sev-snp" && k != "tdx" && k != "sgx")
        return policy_error("", "unknown key '" + k + "'");
    if (j.contains("tpm2")) {
      ATN_TRY(auto t, parse_tpm2(j["tpm2"]));
      p.tpm2 = std::move(t);
    }
    if (j.contains("sim")) {
      ATN_TRY(auto s, parse_sim(j["sim"]));
      p.sim = std::move(s);
    }
    if (j.contains("sev-snp")) {
      ATN_TRY(auto s, parse_sevsnp(j["sev-snp"]));
      p.sevsnp = std::move(s);
    }
    if (j.contains("tdx")) {
      ATN_TRY(auto t, parse_dcap(j["tdx"], true));
      p.tdx = std::move(t);
    }
    if (j.contains("sgx")) {
      ATN_TRY(auto t, parse_dcap(j["sgx"], false));
      p.sgx = std::move(t);
    }
    if (j.contains("warn_only"))
      for (const auto& r : j["warn_only"]) p.warn_only.insert(r.get<std::string>());
  } catch (const json::exception& e) {
    return make_error(Errc::kBadValue,
                      std::string("policy: a value has the wrong type: ") + e.what());
  }
  p.digest = hash_domain("attestnet/policy", as_view(j.dump()));
  return p;
}

// --- result encoding ---

Bytes AppraisalResult::encode() const {
  Writer w;
  w.header(kTag, 1).u8(static_cast<uint8_t>(verdict)).str(policy_id).u32(policy_version);
  w.str(platform);
  w.u32(static_cast<uint32_t>(trust_vector.size()));
  for (const auto& [k, v] : trust_vector) w.str(k).u8(static_cast<uint8_t>(v));
  w.u32(static_cast<uint32_t>(measurements.size()));
  for (const auto& m : measurements) w.str(m.name).bytes(as_view(m.digest));
  w.u32(static_cast<uint32_t>(claims.size()));
  for (const auto& c : claims) w.str(c.name).str(c.value);
  w.u32(static_cast<uint32_t>(reasons.size()));
  for (const auto& r : reasons) w.str(r);
  return std::move(w).take();
}

Result<AppraisalResult> AppraisalResult::decode(ByteView in) {
  Reader r(in);
  ATN_CHECK(r.header(kTag, 1, 1, "AppraisalResult"));
  AppraisalResult a;
  ATN_TRY(uint8_t v, r.u8());
  if (v > 3) return make_error(Errc::kBadValue, "verdict " + std::to_string(v) + " is not 0..3");
  a.verdict = static_cast<Verdict>(v);
  ATN_TRY(a.policy_id, r.str());
  ATN_TRY(a.policy_version, r.u32());
  ATN_TRY(a.platform, r.str());
  ATN_TRY(uint32_t nt, r.count(5));
  for (uint32_t i = 0; i < nt; ++i) {
    ATN_TRY(std::string k, r.str());
    ATN_TRY(uint8_t t, r.u8());
    if (t > 3) return make_error(Errc::kBadValue, "tier " + std::to_string(t) + " is not 0..3");
    a.trust_vector[k] = static_cast<Verdict>(t);
  }
  ATN_TRY(uint32_t nm, r.count(8));
  for (uint32_t i = 0; i < nm; ++i) {
    Measurement m;
    ATN_TRY(m.name, r.str());
    ATN_TRY(m.digest, r.bytes());
    a.measurements.push_back(std::move(m));
  }
  ATN_TRY(uint32_t nc, r.count(8));
  for (uint32_t i = 0; i < nc; ++i) {
    Claim c;
    ATN_TRY(c.name, r.str());
    ATN_TRY(c.value, r.str());
    a.claims.push_back(std::move(c));
  }
  ATN_TRY(uint32_t nr, r.count(4));
  for (uint32_t i = 0; i < nr; ++i) {
    ATN_TRY(std::string s, r.str());
    a.reasons.push_back(std::move(s));
  }
  ATN_CHECK(r.finish());
  return a;
}

}  // namespace attestnet::policy
