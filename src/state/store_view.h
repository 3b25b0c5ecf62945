// What execution reads of the ledger (state::LedgerView), over a replica's store when a node (or
// a simulated replica) starts or restarts: the recent header hashes (freshness anchors) read at
// open, and each VM's state read from the store's VM index when execution first needs it.
// Neither reads the whole ledger, so a restart costs the same at any ledger size.
#pragma once

#include <functional>

#include "ledger/store.h"
#include "state/attestation.h"

namespace attestnet::state {

// A VM's state as its stored records fold it (MemoryLedgerView::fold_record in ledger order),
// read newest first through the VM index until every field is known.
Result<policy::VmState> load_vm_state(const ledger::ReplicaStore& store, const std::string& vm_id);

// Tells `view` the hashes of the last `window` headers up to `up_to_height` (as if it had been
// told of every header 1..up_to_height) and gives it a loader over `store` for VM states. A
// header the store cannot read or decode is returned as the error (the store is damaged: the
// caller refuses to serve it). A VM state the loader cannot read later is passed to `on_error`
// (the store went bad under a running node), and the VM counts as new.
// REQUIRES: `store` outlives `view`.
Status open_view(const ledger::ReplicaStore& store, uint64_t up_to_height, size_t window,
                 MemoryLedgerView& view, std::function<void(const Error&)> on_error);

}  // namespace attestnet::state
