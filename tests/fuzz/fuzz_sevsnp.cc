// libFuzzer target: the SEV-SNP report parser and evidence bundle.
#include <cstddef>
#include <cstdint>

#include "evidence/sevsnp/bundle.h"

using namespace attestnet;
using namespace attestnet::evidence::sevsnp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto r = parse_report(in);
  if (r.ok()) {
    (void)decode_tcb(r->reported_tcb, false);
    (void)decode_tcb(r->reported_tcb, true);
  }
  auto b = SevSnpEvidence::decode(in);
  if (b.ok()) {
    auto certs = b->certificates();
    if (certs.ok()) (void)leaf_info(certs->leaf);
  }
  return 0;
}
