// Policies and appraisal. A policy is a JSON document with an id and a version that says, per
// platform, which reference values are allowed and which rules must hold (docs/evidence.md has
// the format and a worked example). Appraisal is a pure, deterministic function of
// (policy, evidence bytes, expected binding, enrolment state): the same inputs give the same
// AppraisalResult bytes on every node. No clock is read; no network is used.
//
// The result follows the AR4SI tiers (draft-ietf-rats-ar4si): each trustworthiness claim the
// policy evaluates is affirming, warning or contraindicated (or none: not evaluated); the
// verdict is the worst of them. Every failed rule leaves a reason a person can act on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/ed25519.h"
#include "crypto/quorum.h"
#include "evidence/tpm2/quote.h"

namespace attestnet::policy {

enum class Verdict : uint8_t { kNone = 0, kAffirming = 1, kWarning = 2, kContraindicated = 3 };
const char* verdict_name(Verdict v);
Verdict worse(Verdict a, Verdict b);

struct Tpm2Policy {
  std::map<uint16_t, std::set<uint32_t>> required_pcrs;                   // bank -> PCRs
  std::map<uint16_t, std::map<uint32_t, std::vector<Bytes>>> pcr_values;  // allowed values
  bool require_event_log = false;
  std::map<std::string, std::vector<Bytes>> components;  // kind -> allowed SHA-256 digests
  bool require_secure_boot = false;
  bool require_enrolled_ak = false;
  // IMA: path -> allowed "alg:hex" digests; what to do with files not listed.
  bool require_ima = false;
  std::map<std::string, std::set<std::string>> ima_files;
  Verdict ima_unknown = Verdict::kNone;  // kNone: ignore unlisted files
};

struct SimPolicy {
  std::vector<crypto::PublicKey> platform_keys;
  std::map<std::string, std::vector<Bytes>> measurements;  // name -> allowed digests
};

struct SevSnpPolicy {
  std::vector<Hash32> ark_fingerprints;  // SHA-256 of the DER of each trusted ARK
  std::vector<Bytes> measurements, host_data, id_key_digests, author_key_digests;
  bool allow_debug = false;
  std::optional<int> min_bootloader, min_tee, min_snp, min_microcode, min_fmc;
  uint32_t min_guest_svn = 0;
  std::set<uint32_t> vmpls;            // empty: any
  std::set<std::string> signing_keys;  // "vcek", "vlek"; empty: both
  uint64_t forbidden_policy_bits = 0;
};

// For platforms "tdx" and "sgx" (Intel DCAP).
struct DcapPolicy {
  std::vector<Hash32> root_fingerprints;             // SHA-256 of the DER of the Intel SGX Root CA
  std::map<std::string, std::vector<Bytes>> values;  // mrtd, rtmr0..3, mrseam, mrconfigid,
                                                     // mrowner, mrenclave, mrsigner
  bool allow_debug = false;
  Bytes min_tee_tcb_svn;  // 16 bytes, componentwise (TDX)
  std::optional<uint16_t> isv_prod_id;
  uint16_t min_isv_svn = 0;            // SGX
  std::set<std::string> tcb_statuses;  // allowed; non-empty requires collateral
};

struct Policy {
  std::string id;
  uint32_t version = 0;
  std::optional<Tpm2Policy> tpm2;
  std::optional<SimPolicy> sim;
  std::optional<SevSnpPolicy> sevsnp;
  std::optional<DcapPolicy> tdx, sgx;
  std::set<std::string> warn_only;  // rule names whose failure is a warning, not a veto
  Hash32 digest{};                  // H("attestnet/policy", canonical JSON)
};

Result<Policy> parse_policy(std::string_view json_text);

struct Claim {
  std::string name;
  std::string value;
  bool operator==(const Claim&) const = default;
};
struct Measurement {
  std::string name;
  Bytes digest;
  bool operator==(const Measurement&) const = default;
};

struct AppraisalResult {
  static constexpr uint16_t kTag = 0x0501;
  Verdict verdict = Verdict::kNone;
  std::string policy_id;
  uint32_t policy_version = 0;
  std::string platform;
  std::map<std::string, Verdict> trust_vector;  // AR4SI claim -> tier
  std::vector<Measurement> measurements;        // what was booted, by component
  std::vector<Claim> claims;                    // everything else the evidence established
  std::vector<std::string> reasons;             // one per failed rule

  Bytes encode() const;  // canonical: what every node must agree on
  static Result<AppraisalResult> decode(ByteView in);
  bool operator==(const AppraisalResult&) const = default;
};

// What the ledger knows about the VM (state/): the AKs enrolled for it, and the last quote
// clock seen for that AK (to refuse a quote older than one already accepted).
struct VmState {
  std::set<Bytes> enrolled_ak_names;
  std::optional<uint64_t> last_clock;
  std::optional<uint32_t> last_reset_count;
};

struct AppraisalInput {
  std::string platform;    // "tpm2" | "sim"
  ByteView evidence;       // the platform's bundle (evidence/*/)
  Bytes expected_binding;  // what the evidence's user data must be
  const VmState* vm = nullptr;
  evidence::tpm2::AkCache* ak_cache = nullptr;  // optional memo of parsed AKs
  crypto::ChainCache* chain_cache = nullptr;    // optional memo of verified chains
  const crypto::VerifyFn* ed25519 = nullptr;    // optional memo of Ed25519 verifications
  // When certificate validity and collateral dates are judged: the block time (seconds).
  int64_t at_unix = 0;
  // Roots the caller pins in addition to the policy's (`attestnet evidence verify --root`).
  std::vector<Hash32> extra_roots;
};

// With no policy, the evidence is verified (signature, binding, PCRs, logs) and its claims
// reported, and the verdict is kNone: nothing was compared with reference values.
AppraisalResult appraise(const Policy* policy, const AppraisalInput& in);

// What appraisal would verify that depends on nothing but the evidence (a TPM quote's
// signature; sim evidence's Ed25519 signature), done now so that appraise() finds it in
// in.ak_cache / in.ed25519's memo: a node calls it when a request arrives, off the execution
// path. Judges nothing and changes no result. Thread-safe with thread-safe caches.
void prewarm(const AppraisalInput& in);

}  // namespace attestnet::policy
