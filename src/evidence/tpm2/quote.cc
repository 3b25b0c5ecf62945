#include "evidence/tpm2/quote.h"
#include "core/codec.h"

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstring>

#include "core/hash.h"

namespace attestnet::evidence::tpm2 {

std::optional<crypto::HashAlg> hash_of(uint16_t tpm_alg) {
  switch (tpm_alg) {
    case kAlgSha1:
      return crypto::HashAlg::kSha1;
    case kAlgSha256:
      return crypto::HashAlg::kSha256;
    case kAlgSha384:
      return crypto::HashAlg::kSha384;
    case kAlgSha512:
      return crypto::HashAlg::kSha512;
  }
  return std::nullopt;
}

uint16_t tpm_alg_of(crypto::HashAlg h) {
  switch (h) {
    case crypto::HashAlg::kSha1:
      return kAlgSha1;
    case crypto::HashAlg::kSha256:
      return kAlgSha256;
    case crypto::HashAlg::kSha384:
      return kAlgSha384;
    case crypto::HashAlg::kSha512:
      return kAlgSha512;
  }
  return 0;
}

std::string alg_name(uint16_t tpm_alg) {
  if (auto h = hash_of(tpm_alg)) return crypto::hash_name(*h);
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", tpm_alg);
  return buf;
}

std::optional<uint16_t> alg_from_name(std::string_view name) {
  if (name == "sha1") return kAlgSha1;
  if (name == "sha256") return kAlgSha256;
  if (name == "sha384") return kAlgSha384;
  if (name == "sha512") return kAlgSha512;
  return std::nullopt;
}

std::string selection_string(const std::vector<PcrSelection>& sel) {
  std::string out;
  for (const auto& s : sel) {
    if (!out.empty()) out += "+";
    out += alg_name(s.hash_alg) + ":";
    for (size_t i = 0; i < s.pcrs.size(); ++i) out += (i ? "," : "") + std::to_string(s.pcrs[i]);
  }
  return out;
}

std::string sig_alg_name(uint16_t sig_alg) {
  switch (sig_alg) {
    case TPM2_ALG_RSASSA:
      return "rsassa";
    case TPM2_ALG_RSAPSS:
      return "rsapss";
    case TPM2_ALG_ECDSA:
      return "ecdsa";
  }
  return alg_name(sig_alg);
}

namespace {

std::string rc_text(TSS2_RC rc) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", rc);
  return buf;
}

Result<std::vector<PcrSelection>> selections_from(const TPML_PCR_SELECTION& l) {
  if (l.count > TPM2_NUM_PCR_BANKS)
    return make_error(Errc::kBadValue,
                      "PCR selection names " + std::to_string(l.count) + " banks (at most 16)");
  std::vector<PcrSelection> out;
  for (uint32_t i = 0; i < l.count; ++i) {
    const TPMS_PCR_SELECTION& s = l.pcrSelections[i];
    if (s.sizeofSelect > TPM2_PCR_SELECT_MAX)
      return make_error(Errc::kBadValue, "PCR selection bitmap of " +
                                             std::to_string(s.sizeofSelect) + " bytes (at most " +
                                             std::to_string(TPM2_PCR_SELECT_MAX) + ")");
    PcrSelection sel;
    sel.hash_alg = s.hash;
    for (uint32_t b = 0; b < s.sizeofSelect * 8u; ++b)
      if (s.pcrSelect[b / 8] & (1u << (b % 8))) sel.pcrs.push_back(b);
    out.push_back(std::move(sel));
  }
  return out;
}

Bytes b(const uint8_t* p, size_t n) {
  return Bytes(p, p + n);
}

}  // namespace

Result<Quote> parse_quote(ByteView in) {
  TPMS_ATTEST a;
  std::memset(&a, 0, sizeof a);
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(in.data(), in.size(), &off, &a);
  if (rc != TSS2_RC_SUCCESS)
    return make_error(Errc::kTruncated, "TPMS_ATTEST does not unmarshal (tss2-mu " + rc_text(rc) +
                                            "): " + std::to_string(in.size()) +
                                            " bytes are not a complete attestation structure");
  if (off != in.size())
    return make_error(Errc::kTrailingBytes,
                      std::to_string(in.size() - off) + " byte(s) after the TPMS_ATTEST structure");
  if (a.magic != TPM2_GENERATED_VALUE)
    return make_error(Errc::kBadMagic, "TPMS_ATTEST magic is " + rc_text(a.magic) +
                                           ", not TPM_GENERATED_VALUE 0xff544347: this was not "
                                           "produced by a TPM");
  if (a.type != TPM2_ST_ATTEST_QUOTE)
    return make_error(Errc::kBadTag, "TPMS_ATTEST type is " + rc_text(a.type) +
                                         ", not TPM_ST_ATTEST_QUOTE 0x8018");
  Quote q;
  q.raw.assign(in.begin(), in.end());
  q.qualified_signer = b(a.qualifiedSigner.name, a.qualifiedSigner.size);
  q.extra_data = b(a.extraData.buffer, a.extraData.size);
  q.clock = a.clockInfo.clock;
  q.reset_count = a.clockInfo.resetCount;
  q.restart_count = a.clockInfo.restartCount;
  q.safe = a.clockInfo.safe == 1;
  q.firmware_version = a.firmwareVersion;
  ATN_TRY(q.selection, selections_from(a.attested.quote.pcrSelect));
  q.pcr_digest = b(a.attested.quote.pcrDigest.buffer, a.attested.quote.pcrDigest.size);
  return q;
}

Result<Signature> parse_signature(ByteView in) {
  TPMT_SIGNATURE s;
  std::memset(&s, 0, sizeof s);
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(in.data(), in.size(), &off, &s);
  if (rc != TSS2_RC_SUCCESS)
    return make_error(Errc::kTruncated,
                      "TPMT_SIGNATURE does not unmarshal (tss2-mu " + rc_text(rc) + ")");
  if (off != in.size())
    return make_error(Errc::kTrailingBytes, std::to_string(in.size() - off) +
                                                " byte(s) after the TPMT_SIGNATURE structure");
  Signature sig;
  sig.sig_alg = s.sigAlg;
  switch (s.sigAlg) {
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS:
      sig.hash_alg = s.signature.rsassa.hash;
      sig.rsa = b(s.signature.rsassa.sig.buffer, s.signature.rsassa.sig.size);
      break;
    case TPM2_ALG_ECDSA:
      sig.hash_alg = s.signature.ecdsa.hash;
      sig.r = b(s.signature.ecdsa.signatureR.buffer, s.signature.ecdsa.signatureR.size);
      sig.s = b(s.signature.ecdsa.signatureS.buffer, s.signature.ecdsa.signatureS.size);
      break;
    default:
      return make_error(Errc::kUnsupported, "signature algorithm " + alg_name(s.sigAlg) +
                                                " is not RSASSA, RSAPSS or ECDSA");
  }
  if (!hash_of(sig.hash_alg))
    return make_error(Errc::kUnsupported,
                      "signature hash " + alg_name(sig.hash_alg) + " is not SHA-1/256/384/512");
  return sig;
}

std::string AkPublic::describe() const {
  std::string d = key.describe();
  if (scheme) d += " " + sig_alg_name(scheme) + "/" + alg_name(scheme_hash);
  return d;
}

namespace {

Result<AkPublic> ak_from_public_area(const TPMT_PUBLIC& p) {
  AkPublic ak;
  if (p.type == TPM2_ALG_RSA) {
    ATN_TRY(ak.key, crypto::VerifyKey::from_rsa(ByteView(p.unique.rsa.buffer, p.unique.rsa.size),
                                                p.parameters.rsaDetail.exponent));
    ak.scheme = p.parameters.rsaDetail.scheme.scheme;
    ak.scheme_hash = p.parameters.rsaDetail.scheme.details.anySig.hashAlg;
  } else if (p.type == TPM2_ALG_ECC) {
    crypto::VerifyKey::Type curve;
    if (p.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) {
      curve = crypto::VerifyKey::Type::kEcP256;
    } else if (p.parameters.eccDetail.curveID == TPM2_ECC_NIST_P384) {
      curve = crypto::VerifyKey::Type::kEcP384;
    } else {
      return make_error(Errc::kUnsupported, "AK curve " +
                                                std::to_string(p.parameters.eccDetail.curveID) +
                                                " is not NIST P-256 or P-384");
    }
    ATN_TRY(ak.key,
            crypto::VerifyKey::from_ec(curve, ByteView(p.unique.ecc.x.buffer, p.unique.ecc.x.size),
                                       ByteView(p.unique.ecc.y.buffer, p.unique.ecc.y.size)));
    ak.scheme = p.parameters.eccDetail.scheme.scheme;
    ak.scheme_hash = p.parameters.eccDetail.scheme.details.anySig.hashAlg;
  } else {
    return make_error(Errc::kUnsupported,
                      "AK public area of type " + alg_name(p.type) + " is not RSA or ECC");
  }
  if (ak.scheme == TPM2_ALG_NULL) ak.scheme = 0, ak.scheme_hash = 0;
  uint8_t buf[sizeof(TPMT_PUBLIC)];
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
    return make_error(Errc::kBadValue, "AK public area does not marshal");
  ak.public_area = Bytes(buf, buf + off);
  auto name_hash = hash_of(p.nameAlg);
  if (!name_hash) return make_error(Errc::kUnsupported, "AK name algorithm " + alg_name(p.nameAlg));
  Bytes h = crypto::digest(*name_hash, as_view(*ak.public_area));
  ak.name = {static_cast<uint8_t>(p.nameAlg >> 8), static_cast<uint8_t>(p.nameAlg)};
  ak.name.insert(ak.name.end(), h.begin(), h.end());
  ak.attributes = p.objectAttributes;
  return ak;
}

}  // namespace

Result<AkPublic> parse_ak(ByteView in) {
  std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  if (text.find("-----BEGIN") != std::string_view::npos) {
    AkPublic ak;
    ATN_TRY(ak.key, crypto::VerifyKey::from_pem(text));
    return ak;
  }
  {
    TPM2B_PUBLIC p;
    std::memset(&p, 0, sizeof p);
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(in.data(), in.size(), &off, &p) == TSS2_RC_SUCCESS &&
        off == in.size())
      return ak_from_public_area(p.publicArea);
  }
  {
    TPMT_PUBLIC p;
    std::memset(&p, 0, sizeof p);
    size_t off = 0;
    if (Tss2_MU_TPMT_PUBLIC_Unmarshal(in.data(), in.size(), &off, &p) == TSS2_RC_SUCCESS &&
        off == in.size())
      return ak_from_public_area(p);
  }
  auto spki = crypto::VerifyKey::from_spki_der(in);
  if (spki.ok()) {
    AkPublic ak;
    ak.key = std::move(spki).value();
    return ak;
  }
  return make_error(Errc::kBadValue,
                    "AK is neither a TPM2B_PUBLIC, a TPMT_PUBLIC, a PEM public key nor a DER "
                    "SubjectPublicKeyInfo");
}

Result<std::shared_ptr<const AkPublic>> AkCache::get(ByteView ak_public) {
  Hash32 key = sha256(ak_public);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) return it->second;
  }
  ATN_TRY(AkPublic ak, parse_ak(ak_public));
  auto shared = std::make_shared<const AkPublic>(std::move(ak));
  std::lock_guard<std::mutex> lock(mu_);
  if (map_.size() >= capacity_) map_.clear();
  map_.emplace(key, shared);
  return shared;
}

Hash32 AkCache::signature_key(ByteView ak_public, ByteView attest, ByteView signature,
                              uint16_t plain_hash) {
  Writer w(ak_public.size() + attest.size() + signature.size() + 32);
  w.bytes(ak_public).bytes(attest).bytes(signature).u16(plain_hash);
  return hash_domain("attestnet/tpm2-quote-signature", as_view(w.data()));
}

bool AkCache::signature_known(const Hash32& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return signatures_.count(key) > 0;
}

void AkCache::remember_signature(const Hash32& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (signatures_.size() >= 16 * capacity_) signatures_.clear();
  signatures_.insert(key);
}

size_t AkCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

Result<Signature> parse_signature_file(ByteView in, const AkPublic& ak, uint16_t plain_hash) {
  auto tss = parse_signature(in);
  if (tss.ok()) return tss;
  // A plain signature: raw RSA bytes of the modulus size, or a DER ECDSA-Sig-Value.
  Signature sig;
  bool rsa = ak.key.type() == crypto::VerifyKey::Type::kRsa;
  if (rsa && in.size() != static_cast<size_t>(ak.key.bits() / 8)) return tss.error();
  if (!rsa && (in.empty() || in[0] != 0x30)) return tss.error();
  sig.sig_alg = ak.scheme ? ak.scheme : (rsa ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA);
  sig.hash_alg = ak.scheme_hash ? ak.scheme_hash : plain_hash;
  if (rsa) {
    sig.rsa.assign(in.begin(), in.end());
  } else {
    sig.der.assign(in.begin(), in.end());
  }
  return sig;
}

Result<PcrValues> parse_tpm2_tools_pcrs(ByteView in) {
  // tpm2-tools writes the in-memory structs: TPML_PCR_SELECTION, a UINT32 count, then that
  // many TPML_DIGEST (host byte order, x86-64 layout).
  if (in.size() < sizeof(TPML_PCR_SELECTION) + sizeof(uint32_t))
    return make_error(Errc::kTruncated, "PCR file of " + std::to_string(in.size()) +
                                            " bytes is shorter than a tpm2-tools serialized "
                                            "PCR selection");
  TPML_PCR_SELECTION sel;
  std::memcpy(&sel, in.data(), sizeof sel);
  uint32_t n = 0;
  std::memcpy(&n, in.data() + sizeof sel, sizeof n);
  size_t need = sizeof sel + sizeof n + static_cast<size_t>(n) * sizeof(TPML_DIGEST);
  if (n > 64 || in.size() != need)
    return make_error(Errc::kBadValue, "PCR file says " + std::to_string(n) +
                                           " digest lists, which does not match its size of " +
                                           std::to_string(in.size()) + " bytes");
  ATN_TRY(auto selections, selections_from(sel));
  std::vector<Bytes> digests;
  for (uint32_t i = 0; i < n; ++i) {
    TPML_DIGEST d;
    std::memcpy(&d, in.data() + sizeof sel + sizeof n + i * sizeof(TPML_DIGEST), sizeof d);
    if (d.count > 8) return make_error(Errc::kBadValue, "PCR digest list of more than 8 entries");
    for (uint32_t j = 0; j < d.count; ++j) {
      if (d.digests[j].size > sizeof(d.digests[j].buffer))
        return make_error(Errc::kBadValue, "PCR digest longer than 64 bytes");
      digests.push_back(b(d.digests[j].buffer, d.digests[j].size));
    }
  }
  PcrValues out;
  size_t k = 0;
  for (const auto& s : selections) {
    auto h = hash_of(s.hash_alg);
    if (!h) return make_error(Errc::kUnsupported, "PCR bank " + alg_name(s.hash_alg));
    for (uint32_t pcr : s.pcrs) {
      if (k >= digests.size())
        return make_error(Errc::kTruncated, "PCR file selects more PCRs than it has values");
      if (digests[k].size() != crypto::hash_size(*h))
        return make_error(Errc::kBadValue, "PCR " + std::to_string(pcr) + " of bank " +
                                               alg_name(s.hash_alg) + " has " +
                                               std::to_string(digests[k].size()) + " bytes");
      out[s.hash_alg][pcr] = digests[k++];
    }
  }
  if (k != digests.size())
    return make_error(Errc::kTrailingBytes, "PCR file has more values than its selection");
  return out;
}

Result<Bytes> pcr_digest(uint16_t hash_alg, const std::vector<PcrSelection>& selection,
                         const PcrValues& values) {
  auto h = hash_of(hash_alg);
  if (!h) return make_error(Errc::kUnsupported, "PCR digest hash " + alg_name(hash_alg));
  Bytes concat;
  for (const auto& s : selection) {
    auto bank = values.find(s.hash_alg);
    for (uint32_t pcr : s.pcrs) {
      if (bank == values.end() || !bank->second.count(pcr))
        return make_error(Errc::kPcrMismatch, "the quote covers PCR " + std::to_string(pcr) +
                                                  " of bank " + alg_name(s.hash_alg) +
                                                  " but no value for it was supplied");
      const Bytes& v = bank->second.at(pcr);
      concat.insert(concat.end(), v.begin(), v.end());
    }
  }
  return crypto::digest(*h, as_view(concat));
}

Status verify_signature(const AkPublic& ak, const Quote& q, const Signature& sig) {
  auto h = hash_of(sig.hash_alg);
  if (!h) return make_error(Errc::kUnsupported, "signature hash " + alg_name(sig.hash_alg));
  if (ak.scheme && ak.scheme != sig.sig_alg)
    return make_error(Errc::kBadSignature, "the signature is " + sig_alg_name(sig.sig_alg) +
                                               " but the AK is restricted to " +
                                               sig_alg_name(ak.scheme));
  Status st;
  ByteView msg = as_view(q.raw);
  switch (sig.sig_alg) {
    case TPM2_ALG_RSASSA:
      st = ak.key.verify_pkcs1(*h, msg, as_view(sig.rsa));
      break;
    case TPM2_ALG_RSAPSS:
      st = ak.key.verify_pss(*h, msg, as_view(sig.rsa));
      break;
    case TPM2_ALG_ECDSA:
      st = sig.der.empty() ? ak.key.verify_ecdsa_rs(*h, msg, as_view(sig.r), as_view(sig.s))
                           : ak.key.verify_ecdsa_der(*h, msg, as_view(sig.der));
      break;
    default:
      return make_error(Errc::kUnsupported, "signature algorithm " + alg_name(sig.sig_alg));
  }
  if (!st.ok()) {
    if (st.error().code != Errc::kBadSignature) return st;
    return make_error(Errc::kBadSignature,
                      "the quote's " + sig_alg_name(sig.sig_alg) + "/" + alg_name(sig.hash_alg) +
                          " signature does not verify with the AK (" + ak.describe() +
                          "): the quote was altered or signed by another key");
  }
  return {};
}

Result<VerifiedQuote> verify_quote(const AkPublic& ak, ByteView tpms_attest, const Signature& sig,
                                   const PcrValues& pcrs, bool signature_verified) {
  ATN_TRY(Quote q, parse_quote(tpms_attest));
  if (!signature_verified) ATN_CHECK(verify_signature(ak, q, sig));
  // qualifiedSigner is the AK's *qualified* name (it folds in the parent hierarchy's), so it
  // cannot be compared with the AK's name here; the signature is what binds the quote to the AK.
  ATN_TRY(Bytes d, pcr_digest(sig.hash_alg, q.selection, pcrs));
  if (d != q.pcr_digest)
    return make_error(Errc::kPcrMismatch, "the supplied PCR values (" +
                                              selection_string(q.selection) + ") hash to " +
                                              to_hex(d) + " but the quote signed pcrDigest " +
                                              to_hex(q.pcr_digest) + ": a PCR value was changed");
  VerifiedQuote v;
  for (const auto& s : q.selection)
    for (uint32_t pcr : s.pcrs) v.pcrs[s.hash_alg][pcr] = pcrs.at(s.hash_alg).at(pcr);
  v.quote = std::move(q);
  v.signature = sig;
  return v;
}

}  // namespace attestnet::evidence::tpm2
