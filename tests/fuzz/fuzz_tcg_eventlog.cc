// libFuzzer target: the TCG PC Client event log parser (crypto-agile and SHA-1), replay and
// component extraction.
#include <cstddef>
#include <cstdint>

#include "evidence/tpm2/eventlog.h"

using namespace attestnet;
using namespace attestnet::evidence::tpm2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto log = parse_event_log(ByteView(data, size));
  if (!log.ok()) return 0;
  PcrValues replayed = replay(*log);
  (void)check_against(*log, replayed);
  (void)extract_components(*log);
  return 0;
}
