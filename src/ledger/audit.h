// Auditing a stored chain from genesis: every header's height, chain id, link to the previous
// header (the first links to the genesis hash), committee, log growth, the consensus block it
// executed (digest and commit certificate) and its own header certificate.
#pragma once

#include <functional>

#include "ledger/response.h"
#include "ledger/store.h"

namespace attestnet::ledger {

struct AuditSummary {
  uint64_t headers = 0;
  uint64_t certified = 0;             // headers whose certificate is stored and verifies
  std::vector<uint64_t> uncertified;  // heights whose certificate this store lacks
  uint64_t handovers = 0;             // epoch hand-overs checked
  uint64_t log_size = 0;
  Hash32 tip{};
};

// Fails at the first broken height with the height and the reason in the error.
// `progress(height, total)` is called every 10,000 headers.
Result<AuditSummary> audit_chain(const ReplicaStore& store, const Genesis& genesis,
                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

// On open: checks the newest `depth` headers the way audit_chain does (links, committee, block
// digest and commit certificate, header certificate when stored), so a node refuses a damaged
// store with the exact height and reason instead of serving it. Cheap: O(depth).
Status verify_tip(const ReplicaStore& store, const Genesis& genesis, uint64_t depth = 16);

}  // namespace attestnet::ledger
