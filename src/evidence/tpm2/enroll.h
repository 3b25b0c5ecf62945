// AK enrollment as Keylime's registrar does it:
//   1. the EK certificate chains to a TPM manufacturer CA named in policy;
//   2. the EK public area the agent presents is the key in that certificate;
//   3. the AK is a restricted, fixedTPM, fixedParent, sensitiveDataOrigin signing key;
//   4. TPM2_MakeCredential (computed here, in software, against the EK) wraps a secret for the
//      AK's name; only the TPM holding both the EK and an AK of that name can recover it with
//      TPM2_ActivateCredential. The agent returns the secret and the AK is enrolled for a vm_id.
// Pure except that OAEP encryption draws its padding randomness from OpenSSL's generator.
#pragma once

#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/pkey.h"
#include "evidence/tpm2/quote.h"

namespace attestnet::evidence::tpm2 {

struct EkPublic {
  crypto::VerifyKey key;
  Bytes public_area;  // marshalled TPMT_PUBLIC
  uint16_t name_alg = 0;
  uint16_t sym_alg = 0, sym_bits = 0, sym_mode = 0;
};
Result<EkPublic> parse_ek_public(ByteView tpm2b_or_tpmt_public);

// Checks 1 and 2. `at_unix` is the time at which certificate validity is judged.
Status verify_ek(const EkPublic& ek, ByteView ek_cert,
                 const std::vector<crypto::Certificate>& chain,
                 const std::vector<crypto::Certificate>& manufacturer_roots, int64_t at_unix);

// Check 3.
Status check_ak_attributes(const AkPublic& ak);

struct CredentialChallenge {
  Bytes id_object;         // marshalled TPM2B_ID_OBJECT
  Bytes encrypted_secret;  // marshalled TPM2B_ENCRYPTED_SECRET
  // The file tpm2_activatecredential -i reads: magic BADCC0DE, version 1, both of the above.
  Bytes tpm2_tools_file() const;
};
// Check 4, verifier side. `seed` must be fresh random bytes of the EK name algorithm's size.
Result<CredentialChallenge> make_credential(const EkPublic& ek, ByteView ak_name, ByteView secret,
                                            ByteView seed);

// KDFa of TPM 2.0 Part 1, 11.4.10.2 (exposed for its tests).
Bytes kdfa(crypto::HashAlg h, ByteView key, std::string_view label, ByteView context_u,
           ByteView context_v, uint32_t bits);

}  // namespace attestnet::evidence::tpm2
