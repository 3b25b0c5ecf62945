// The replicated attestation application (DESIGN.md §3): what a committed request means.
//
//   AttestationRequest  tag 0x0601 v1
//     vm_id:str platform:str evidence:bytes freshness_anchor[32] vm_public_key[32]
//     vm_signature[64]
//   request_id = H("attestnet/attestation-request", encoding without the signature)
//   vm_signature = Ed25519 by vm_public_key over request_id
//
// The evidence's user data must carry evidence_binding(freshness_anchor, vm_public_key)
// (evidence/binding.h); the anchor must be the hash of one of the last `anchor_window` block
// headers (or genesis while the chain is younger).
//
// Execution is a pure function of (policy, request, block time, LedgerView): every replica
// computes the same AttestationRecord. Validation (on arrival) checks what needs no ledger
// state: the encoding and the VM's signature.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "consensus/messages.h"
#include "ledger/model.h"
#include "policy/policy.h"

namespace attestnet::state {

struct AttestationRequest {
  static constexpr uint16_t kTag = 0x0601;
  std::string vm_id;
  std::string platform;
  Bytes evidence;
  Hash32 freshness_anchor{};
  crypto::PublicKey vm_public_key{};
  crypto::Signature vm_signature{};

  Hash32 request_id() const;
  Hash32 binding() const;
  Bytes encode() const;
  static Result<AttestationRequest> decode(ByteView in);
  Status verify_signature(const crypto::VerifyFn* verify = nullptr) const;
  static AttestationRequest make(const crypto::SecretKey& vm_key, std::string vm_id,
                                 std::string platform, Bytes evidence, const Hash32& anchor);

 private:
  void body(Writer& w) const;
};

// What execution may read of the ledger: recent header hashes (freshness anchors) and each
// VM's state (enrolled AKs, last accepted quote clock). Implemented over the store by the node
// and in memory by the simulator and tests.
class LedgerView {
 public:
  virtual ~LedgerView() = default;
  virtual bool is_recent_anchor(const Hash32& anchor) const = 0;
  virtual policy::VmState vm_state(const std::string& vm_id) const = 0;
};

// In-memory LedgerView: anchors are genesis and the last `window` header hashes it was told
// of; VM states are folded from the records it was told of. With a loader (a node's store,
// state/store_view.h), a VM it was not told of is asked of the loader once, when execution
// first reads it or a record of it is noted, and then kept: a restart reads only the VMs that
// attest again, not every record of the ledger.
class MemoryLedgerView : public LedgerView {
 public:
  using VmLoader = std::function<policy::VmState(const std::string& vm_id)>;
  MemoryLedgerView(const Hash32& genesis_hash, size_t window);
  bool is_recent_anchor(const Hash32& anchor) const override;
  policy::VmState vm_state(const std::string& vm_id) const override;
  void note_header(const Hash32& header_hash);
  void note_record(const ledger::AttestationRecord& r);
  // REQUIRES: set before any record is noted; the loader reads records already on the ledger.
  void set_loader(VmLoader load) { load_ = std::move(load); }
  // What one record changes of its VM's state (none if it is contraindicated): the fold that
  // note_record applies, and that a loader applies to the stored records.
  static void fold_record(policy::VmState& st, const ledger::AttestationRecord& r);
  size_t vms_in_memory() const { return vms_.size() + older_vms_.size(); }
  // With a loader, about `keep` VM states stay in memory (at most `keep` and the VMs noted
  // since the last call), in two generations: when the
  // current one holds keep / 2, it becomes the older one, and what the older one held and
  // nobody read or noted since is dropped (the loader reads it back if the VM attests again).
  // REQUIRES: every record noted so far is in the store the loader reads (the node calls this
  // after a block is stored). Without a loader nothing is dropped (it would be lost).
  void forget_unused(size_t keep);

 private:
  policy::VmState& entry(const std::string& vm_id) const;
  Hash32 genesis_;
  size_t window_;
  std::deque<Hash32> recent_;
  std::unordered_multiset<Hash32, Hash32Hasher> recent_set_;
  VmLoader load_;
  // Loaded or folded: read or noted since the last forget_unused that turned a generation (in
  // vms_), or only before it (older_vms_, moved to vms_ when read again).
  mutable std::unordered_map<std::string, policy::VmState> vms_, older_vms_;
};

class AttestationApp {
 public:
  explicit AttestationApp(std::shared_ptr<const policy::Policy> policy);

  // Ed25519 verifications (the VM's signature, sim evidence) go through `verify`: a node passes
  // its memo, so what validate() checked on arrival costs nothing again at execution. Results
  // do not depend on it (a memo of a deterministic function).
  void set_verifier(crypto::VerifyFn verify) { verify_ = std::move(verify); }
  // On arrival (consensus ReplicaHooks::validate): decodes and checks the VM's signature, and
  // (without judging anything) verifies the evidence's own signature (policy::prewarm) so that
  // execution finds it memoised. Thread-safe.
  Status validate(const consensus::Request& q) const;
  // At execution: the record every replica computes for this request at this block time.
  ledger::AttestationRecord execute(const consensus::Request& q, uint64_t block_time_ms,
                                    const LedgerView& view) const;

 private:
  std::shared_ptr<const policy::Policy> policy_;
  // Memoisation only (results do not depend on them).
  mutable evidence::tpm2::AkCache ak_cache_;
  mutable crypto::ChainCache chain_cache_;
  crypto::VerifyFn verify_;
};

}  // namespace attestnet::state
