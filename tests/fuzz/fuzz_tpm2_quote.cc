// libFuzzer target: the TPM quote path (TPMS_ATTEST, TPMT_SIGNATURE, AK public areas,
// tpm2-tools PCR files and the evidence bundle). Any input must give a value or a typed Error.
#include <cstddef>
#include <cstdint>

#include "evidence/tpm2/bundle.h"
#include "evidence/tpm2/quote.h"

using namespace attestnet;
using namespace attestnet::evidence::tpm2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto q = parse_quote(in);
  if (q.ok()) (void)selection_string(q->selection);
  (void)parse_signature(in);
  auto ak = parse_ak(in);
  if (ak.ok()) (void)parse_signature_file(in, *ak);
  auto pcrs = parse_tpm2_tools_pcrs(in);
  if (pcrs.ok() && q.ok()) (void)pcr_digest(kAlgSha256, q->selection, *pcrs);
  auto b = Tpm2Evidence::decode(in);
  if (b.ok()) {
    auto bak = parse_ak(as_view(b->ak_public));
    if (bak.ok()) {
      auto sig = parse_signature_file(as_view(b->signature), *bak, b->plain_hash);
      if (sig.ok()) (void)verify_quote(*bak, as_view(b->quote), *sig, b->pcrs);
    }
  }
  return 0;
}
