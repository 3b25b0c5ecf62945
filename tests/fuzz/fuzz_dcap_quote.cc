// libFuzzer target: the DCAP quote parser (TDX v4/v5, SGX v3) and its verification path up to
// the certificate chain (no root is pinned, so nothing verifies to the end).
#include <cstddef>
#include <cstdint>

#include "evidence/tdx/quote.h"

using namespace attestnet;
using namespace attestnet::evidence::tdx;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto q = parse_quote(in);
  if (q.ok()) (void)verify_quote(in, {}, 1772496000);
  return 0;
}
