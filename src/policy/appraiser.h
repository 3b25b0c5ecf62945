// The appraiser every platform's rules share (internal to policy/): accumulates the trust
// vector, claims, measurements and reasons, and computes the verdict.
#pragma once

#include <algorithm>
#include <string>

#include "policy/policy.h"

namespace attestnet::policy {

// AR4SI trustworthiness claims used here.
inline constexpr const char* kHardware = "hardware";
inline constexpr const char* kInstance = "instance-identity";
inline constexpr const char* kExecutables = "executables";
inline constexpr const char* kConfiguration = "configuration";
inline constexpr const char* kFileSystem = "file-system";

class Appraiser {
 public:
  Appraiser(const Policy* p, std::string platform) : policy_(p) {
    r_.platform = std::move(platform);
    if (p) r_.policy_id = p->id, r_.policy_version = p->version;
  }

  void affirm(const char* claim) {
    auto it = r_.trust_vector.find(claim);
    if (it == r_.trust_vector.end()) r_.trust_vector[claim] = Verdict::kAffirming;
  }
  // A rule failed. Evidence failures are always contraindicated; policy rules may be
  // downgraded to warnings with warn_only.
  void fail(const char* claim, const std::string& rule, const std::string& reason,
            bool evidence_failure = false, Verdict tier = Verdict::kContraindicated) {
    if (evidence_failure) evidence_failed_ = true;
    if (!evidence_failure && policy_ && policy_->warn_only.count(rule)) tier = Verdict::kWarning;
    Verdict& t = r_.trust_vector[claim];
    t = worse(t, tier);
    r_.reasons.push_back(rule + ": " + reason);
  }
  void claim(std::string name, std::string value) {
    r_.claims.push_back({std::move(name), std::move(value)});
  }
  void measure(std::string name, Bytes digest) {
    r_.measurements.push_back({std::move(name), std::move(digest)});
  }
  bool failed_evidence() const { return evidence_failed_; }
  void evidence_failed(const char* claim, const std::string& rule, const Error& e) {
    fail(claim, rule, e.reason.empty() ? errc_name(e.code) : e.reason, true);
  }

  AppraisalResult finish() {
    Verdict v = Verdict::kNone;
    if (policy_ || evidence_failed_) {
      v = r_.trust_vector.empty() ? Verdict::kNone : Verdict::kAffirming;
      for (const auto& [k, t] : r_.trust_vector) v = worse(v, t);
    }
    if (!policy_) {
      // Without a policy nothing was compared with reference values: only an evidence failure
      // gives a verdict (contraindicated).
      if (!evidence_failed_) v = Verdict::kNone;
    }
    r_.verdict = v;
    std::sort(r_.claims.begin(), r_.claims.end(),
              [](const Claim& a, const Claim& b) { return a.name < b.name; });
    return std::move(r_);
  }

  const Policy* policy() const { return policy_; }

 private:
  const Policy* policy_;
  AppraisalResult r_;
  bool evidence_failed_ = false;
};

inline bool contains_digest(const std::vector<Bytes>& list, const Bytes& d) {
  return std::find(list.begin(), list.end(), d) != list.end();
}

// The 64-byte user data (SEV-SNP REPORT_DATA, TDX/SGX REPORTDATA) a binding must fill: the
// 32-byte binding followed by zeros (or a 64-byte expected value as given).
inline Bytes expected_user_data(const Bytes& binding) {
  Bytes b = binding;
  if (b.size() < 64) b.resize(64, 0);
  return b;
}

void appraise_sevsnp(Appraiser& a, const AppraisalInput& in);
void appraise_dcap(Appraiser& a, const AppraisalInput& in);

}  // namespace attestnet::policy
