#include "state/store_view.h"

namespace attestnet::state {

Status rebuild_view(const ledger::ReplicaStore& store, uint64_t up_to_height,
                    MemoryLedgerView& view) {
  uint64_t leaves = 0;
  for (uint64_t h = 1; h <= up_to_height; ++h) {
    ATN_TRY(auto hdr, store.header(h));
    ATN_TRY(auto header, ledger::BlockHeader::decode(as_view(hdr.first)));
    for (; leaves < header.log_size; ++leaves) {
      ATN_TRY(Bytes rec, store.record(leaves));
      ATN_TRY(auto decoded, ledger::AttestationRecord::decode(as_view(rec)));
      view.note_record(decoded);
    }
    view.note_header(header.hash());
  }
  return {};
}

}  // namespace attestnet::state
