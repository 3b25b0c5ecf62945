// The agent's TPM side, on tpm2-tss's ESAPI: an attestation key and a quote bound to a request.
//
// The AK is a primary restricted signing key in the endorsement hierarchy, created from a fixed
// template (RSA-2048 RSASSA/SHA-256, or ECC P-256 ECDSA/SHA-256): the TPM derives the same key
// from its endorsement seed every time, so the agent keeps no key files and the AK cannot leave
// the TPM (fixedTPM, fixedParent, sensitiveDataOrigin). The quote's qualifying data is the
// request's binding (evidence/binding.h).
#pragma once

#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/result.h"
#include "evidence/tpm2/bundle.h"

namespace attestnet::agent {

class Tpm {
 public:
  // `tcti`: "swtpm:host=127.0.0.1,port=2321", "device:/dev/tpmrm0", "mssim:..." (tpm2-tss
  // TCTI configuration strings).
  static Result<std::unique_ptr<Tpm>> open(const std::string& tcti);
  ~Tpm();
  Tpm(const Tpm&) = delete;
  Tpm& operator=(const Tpm&) = delete;

  enum class AkKind { kRsa2048, kEccP256 };
  // The AK's TPM2B_PUBLIC (what the bundle carries), creating it on first use.
  Result<Bytes> ak_public(AkKind kind = AkKind::kRsa2048);
  // A quote over `selection` ("sha256:0,4,7,8,9" syntax) with `qualifying_data`, and the PCR
  // values it covers, as an evidence bundle (event log and IMA list to be added by the caller).
  Result<evidence::tpm2::Tpm2Evidence> quote(ByteView qualifying_data, const std::string& selection,
                                             AkKind kind = AkKind::kRsa2048);

 private:
  Tpm() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha1:0,1+sha256:0,4" -> selections.
Result<std::vector<evidence::tpm2::PcrSelection>> parse_pcr_selection(const std::string& s);

}  // namespace attestnet::agent
