#include "state/store_view.h"

namespace attestnet::state {

Result<policy::VmState> load_vm_state(const ledger::ReplicaStore& store, const std::string& vm_id) {
  policy::VmState st;
  Status failed;
  ATN_CHECK(store.vm_history_newest_first(vm_id, [&](uint64_t leaf) {
    auto rec = store.record(leaf);
    if (!rec.ok()) {
      failed = rec.error();
      return false;
    }
    auto decoded = ledger::AttestationRecord::decode(as_view(*rec));
    if (!decoded.ok()) {
      failed = make_error(decoded.error().code, "record " + std::to_string(leaf) + " of VM " +
                                                    vm_id + ": " + decoded.error().reason);
      return false;
    }
    if (decoded->vm_id != vm_id) return true;  // not this VM's (the index would be damaged)
    // The newest record that sets a field decides it, as the fold in ledger order would.
    policy::VmState one;
    MemoryLedgerView::fold_record(one, *decoded);
    if (!st.last_clock) st.last_clock = one.last_clock;
    if (!st.last_reset_count) st.last_reset_count = one.last_reset_count;
    return !(st.last_clock && st.last_reset_count);
  }));
  ATN_CHECK(failed);
  return st;
}

Status open_view(const ledger::ReplicaStore& store, uint64_t up_to_height, size_t window,
                 MemoryLedgerView& view, std::function<void(const Error&)> on_error) {
  uint64_t first = up_to_height > window ? up_to_height - window + 1 : 1;
  for (uint64_t h = first; h <= up_to_height; ++h) {
    ATN_TRY(auto hdr, store.header(h));
    ATN_TRY(auto header, ledger::BlockHeader::decode(as_view(hdr.first)));
    view.note_header(header.hash());
  }
  view.set_loader(
      [&store, on_error = std::move(on_error)](const std::string& vm_id) -> policy::VmState {
        auto st = load_vm_state(store, vm_id);
        if (st.ok()) return *st;
        on_error(st.error());
        return {};
      });
  return {};
}

}  // namespace attestnet::state
