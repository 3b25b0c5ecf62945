// What execution reads of the ledger (state::LedgerView), rebuilt from a replica's store when a
// node (or a simulated replica) restarts: the recent header hashes (freshness anchors) and the
// VM states folded from every record, in ledger order.
#pragma once

#include "ledger/store.h"
#include "state/attestation.h"

namespace attestnet::state {

// Folds headers 1..up_to_height and their records into `view`. Stops at the first header or
// record the store cannot read or decode, and returns that error (the store is damaged: the
// caller refuses to serve it).
Status rebuild_view(const ledger::ReplicaStore& store, uint64_t up_to_height,
                    MemoryLedgerView& view);

}  // namespace attestnet::state
