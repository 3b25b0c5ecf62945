#include "agent/tpm.h"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "core/codec.h"

namespace attestnet::agent {

using namespace evidence::tpm2;

namespace {
Error tpm_error(const char* what, TSS2_RC rc) {
  return make_error(Errc::kIo, std::string(what) + " failed: " + Tss2_RC_Decode(rc));
}
}  // namespace

struct Tpm::Impl {
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* ctx = nullptr;
  std::map<AkKind, std::pair<ESYS_TR, Bytes>> aks;  // handle, TPM2B_PUBLIC
  ~Impl() {
    if (ctx) {
      for (auto& [k, v] : aks) Esys_FlushContext(ctx, v.first);
      Esys_Finalize(&ctx);
    }
    if (tcti) Tss2_TctiLdr_Finalize(&tcti);
  }
};

Result<std::unique_ptr<Tpm>> Tpm::open(const std::string& conf) {
  std::unique_ptr<Tpm> t(new Tpm());
  t->impl_ = std::make_unique<Impl>();
  TSS2_RC rc = Tss2_TctiLdr_Initialize(conf.c_str(), &t->impl_->tcti);
  if (rc != TSS2_RC_SUCCESS)
    return make_error(Errc::kIo, "cannot reach the TPM through TCTI '" + conf +
                                     "': " + Tss2_RC_Decode(rc) +
                                     " (is swtpm running, or /dev/tpmrm0 readable?)");
  rc = Esys_Initialize(&t->impl_->ctx, t->impl_->tcti, nullptr);
  if (rc != TSS2_RC_SUCCESS) return tpm_error("Esys_Initialize", rc);
  return t;
}

Tpm::~Tpm() = default;

namespace {

TPM2B_PUBLIC ak_template(Tpm::AkKind kind) {
  TPM2B_PUBLIC pub;
  std::memset(&pub, 0, sizeof pub);
  TPMT_PUBLIC& p = pub.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                       TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  if (kind == Tpm::AkKind::kRsa2048) {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
  } else {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  }
  return pub;
}

TPML_PCR_SELECTION to_tpml(const std::vector<PcrSelection>& sel) {
  TPML_PCR_SELECTION l;
  std::memset(&l, 0, sizeof l);
  l.count = static_cast<uint32_t>(sel.size());
  for (size_t i = 0; i < sel.size(); ++i) {
    l.pcrSelections[i].hash = sel[i].hash_alg;
    l.pcrSelections[i].sizeofSelect = 3;
    for (uint32_t pcr : sel[i].pcrs)
      l.pcrSelections[i].pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  }
  return l;
}

}  // namespace

Result<std::vector<PcrSelection>> parse_pcr_selection(const std::string& s) {
  std::vector<PcrSelection> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t plus = s.find('+', start);
    std::string part =
        s.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    size_t colon = part.find(':');
    if (colon == std::string::npos)
      return make_error(Errc::kInvalidArgument, "PCR selection '" + part + "' is not bank:list");
    auto alg = alg_from_name(part.substr(0, colon));
    if (!alg) return make_error(Errc::kInvalidArgument, "unknown PCR bank in '" + part + "'");
    PcrSelection sel{*alg, {}};
    std::string list = part.substr(colon + 1);
    size_t i = 0;
    while (i < list.size()) {
      size_t comma = list.find(',', i);
      std::string n = list.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
      try {
        unsigned long v = std::stoul(n);
        if (v >= 24) throw std::out_of_range("pcr");
        sel.pcrs.push_back(static_cast<uint32_t>(v));
      } catch (...) {
        return make_error(Errc::kInvalidArgument, "PCR '" + n + "' is not 0..23");
      }
      if (comma == std::string::npos) break;
      i = comma + 1;
    }
    std::sort(sel.pcrs.begin(), sel.pcrs.end());
    out.push_back(std::move(sel));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return out;
}

Result<Bytes> Tpm::ak_public(AkKind kind) {
  auto it = impl_->aks.find(kind);
  if (it != impl_->aks.end()) return it->second.second;
  TPM2B_SENSITIVE_CREATE sens;
  std::memset(&sens, 0, sizeof sens);
  TPM2B_PUBLIC tmpl = ak_template(kind);
  TPM2B_DATA outside;
  std::memset(&outside, 0, sizeof outside);
  TPML_PCR_SELECTION creation_pcr;
  std::memset(&creation_pcr, 0, sizeof creation_pcr);
  ESYS_TR handle = ESYS_TR_NONE;
  TPM2B_PUBLIC* out_pub = nullptr;
  TPM2B_CREATION_DATA* creation_data = nullptr;
  TPM2B_DIGEST* creation_hash = nullptr;
  TPMT_TK_CREATION* ticket = nullptr;
  TSS2_RC rc = Esys_CreatePrimary(impl_->ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
                                  ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &creation_pcr,
                                  &handle, &out_pub, &creation_data, &creation_hash, &ticket);
  if (rc != TSS2_RC_SUCCESS) return tpm_error("creating the attestation key (CreatePrimary)", rc);
  uint8_t buf[sizeof(TPM2B_PUBLIC)];
  size_t off = 0;
  Tss2_MU_TPM2B_PUBLIC_Marshal(out_pub, buf, sizeof buf, &off);
  Esys_Free(out_pub);
  Esys_Free(creation_data);
  Esys_Free(creation_hash);
  Esys_Free(ticket);
  Bytes pub(buf, buf + off);
  impl_->aks[kind] = {handle, pub};
  return pub;
}

Result<Tpm2Evidence> Tpm::quote(ByteView qualifying_data, const std::string& selection,
                                AkKind kind) {
  ATN_TRY(auto sel, parse_pcr_selection(selection));
  if (qualifying_data.size() > sizeof(TPM2B_DATA::buffer))
    return make_error(Errc::kInvalidArgument, "qualifying data too long");
  ATN_TRY(Bytes ak_pub, ak_public(kind));
  ATN_TRY(AkPublic ak, parse_ak(as_view(ak_pub)));
  ESYS_TR handle = impl_->aks[kind].first;
  // PCRs can change between the read and the quote (something extends): retry until the
  // values read hash to the quoted digest.
  for (int attempt = 0; attempt < 3; ++attempt) {
    Tpm2Evidence e;
    e.ak_public = ak_pub;
    for (const auto& s : sel)
      for (uint32_t pcr : s.pcrs) {
        TPML_PCR_SELECTION one = to_tpml({{s.hash_alg, {pcr}}});
        UINT32 counter = 0;
        TPML_PCR_SELECTION* out_sel = nullptr;
        TPML_DIGEST* values = nullptr;
        TSS2_RC rc = Esys_PCR_Read(impl_->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &one,
                                   &counter, &out_sel, &values);
        if (rc != TSS2_RC_SUCCESS) return tpm_error("PCR_Read", rc);
        bool got = values->count == 1;
        if (got)
          e.pcrs[s.hash_alg][pcr] =
              Bytes(values->digests[0].buffer, values->digests[0].buffer + values->digests[0].size);
        Esys_Free(out_sel);
        Esys_Free(values);
        if (!got)
          return make_error(Errc::kNotFound, "the TPM has no PCR " + std::to_string(pcr) +
                                                 " in bank " + alg_name(s.hash_alg) +
                                                 " (is the bank allocated?)");
      }
    TPM2B_DATA qd;
    std::memset(&qd, 0, sizeof qd);
    qd.size = static_cast<UINT16>(qualifying_data.size());
    std::memcpy(qd.buffer, qualifying_data.data(), qualifying_data.size());
    TPMT_SIG_SCHEME scheme;
    std::memset(&scheme, 0, sizeof scheme);
    scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme
    TPML_PCR_SELECTION tpml = to_tpml(sel);
    TPM2B_ATTEST* quoted = nullptr;
    TPMT_SIGNATURE* sig = nullptr;
    TSS2_RC rc = Esys_Quote(impl_->ctx, handle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd,
                            &scheme, &tpml, &quoted, &sig);
    if (rc != TSS2_RC_SUCCESS) return tpm_error("Quote", rc);
    e.quote.assign(quoted->attestationData, quoted->attestationData + quoted->size);
    uint8_t buf[sizeof(TPMT_SIGNATURE)];
    size_t off = 0;
    Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, sizeof buf, &off);
    e.signature.assign(buf, buf + off);
    Esys_Free(quoted);
    Esys_Free(sig);
    auto parsed_sig = parse_signature(as_view(e.signature));
    if (!parsed_sig.ok()) return parsed_sig.error();
    auto check = verify_quote(ak, as_view(e.quote), *parsed_sig, e.pcrs);
    if (check.ok()) return e;
    if (check.error().code != Errc::kPcrMismatch) return check.error();
  }
  return make_error(Errc::kStale,
                    "the PCRs kept changing between reading them and quoting (3 attempts)");
}

}  // namespace attestnet::agent
