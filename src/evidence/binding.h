// The binding of evidence to one request (DESIGN.md §3): the hardware's user-data field (TPM
// qualifyingData, SEV-SNP REPORT_DATA, TDX REPORTDATA) carries
//
//   binding = H("attestnet/evidence-binding", freshness_anchor[32] || vm_public_key[32])
//
// where the freshness anchor is a recent committed block hash and the key is the VM's
// ephemeral Ed25519 key that signs the request. A quote taken for another request, another
// VM key or before the anchor existed carries another value, so a replayed or foreign quote
// fails. 64-byte fields (SEV-SNP, TDX) hold the binding followed by 32 zero bytes.
#pragma once

#include "core/hash.h"
#include "crypto/ed25519.h"

namespace attestnet::evidence {

inline Hash32 evidence_binding(const Hash32& freshness_anchor, const crypto::PublicKey& vm_key) {
  Bytes m(freshness_anchor.begin(), freshness_anchor.end());
  m.insert(m.end(), vm_key.begin(), vm_key.end());
  return hash_domain("attestnet/evidence-binding", as_view(m));
}

}  // namespace attestnet::evidence
