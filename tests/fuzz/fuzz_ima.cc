// libFuzzer target: the IMA measurement list parsers (ascii and binary), template hash checks
// and PCR 10 replay.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "evidence/tpm2/eventlog.h"

using namespace attestnet;
using namespace attestnet::evidence::tpm2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (auto log : {parse_ima_ascii(std::string_view(reinterpret_cast<const char*>(data), size)),
                   parse_ima_binary(ByteView(data, size))}) {
    if (!log.ok()) continue;
    (void)verify_ima_template_hashes(*log);
    (void)replay_ima(*log, kAlgSha1);
    (void)replay_ima(*log, kAlgSha256);
  }
  return 0;
}
