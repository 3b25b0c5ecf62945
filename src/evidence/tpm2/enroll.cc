#include "evidence/tpm2/enroll.h"
#include "core/codec.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstring>

namespace attestnet::evidence::tpm2 {

namespace {

const char* md_name(crypto::HashAlg h) {
  return crypto::hash_name(h);
}

Bytes hmac(crypto::HashAlg h, ByteView key, ByteView data) {
  Bytes out(crypto::hash_size(h));
  unsigned int len = 0;
  HMAC(EVP_get_digestbyname(md_name(h)), key.data(), static_cast<int>(key.size()), data.data(),
       data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

void be32(Bytes& o, uint32_t v) {
  for (int i = 3; i >= 0; --i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

Bytes kdfa(crypto::HashAlg h, ByteView key, std::string_view label, ByteView context_u,
           ByteView context_v, uint32_t bits) {
  Bytes out;
  size_t need = (bits + 7) / 8;
  for (uint32_t i = 1; out.size() < need; ++i) {
    Bytes m;
    be32(m, i);
    m.insert(m.end(), label.begin(), label.end());
    m.push_back(0);
    m.insert(m.end(), context_u.begin(), context_u.end());
    m.insert(m.end(), context_v.begin(), context_v.end());
    be32(m, bits);
    Bytes block = hmac(h, key, as_view(m));
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(need);
  return out;
}

Result<EkPublic> parse_ek_public(ByteView in) {
  TPMT_PUBLIC p;
  std::memset(&p, 0, sizeof p);
  TPM2B_PUBLIC p2;
  std::memset(&p2, 0, sizeof p2);
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(in.data(), in.size(), &off, &p2) == TSS2_RC_SUCCESS &&
      off == in.size()) {
    p = p2.publicArea;
  } else {
    off = 0;
    if (Tss2_MU_TPMT_PUBLIC_Unmarshal(in.data(), in.size(), &off, &p) != TSS2_RC_SUCCESS ||
        off != in.size())
      return make_error(Errc::kBadValue, "EK public is neither a TPM2B_PUBLIC nor a TPMT_PUBLIC");
  }
  if (p.type != TPM2_ALG_RSA)
    return make_error(Errc::kUnsupported,
                      "EK of type " + alg_name(p.type) +
                          ": enrollment supports RSA EKs (the TCG default EK template L-1)");
  EkPublic ek;
  ATN_TRY(ek.key, crypto::VerifyKey::from_rsa(ByteView(p.unique.rsa.buffer, p.unique.rsa.size),
                                              p.parameters.rsaDetail.exponent));
  ek.name_alg = p.nameAlg;
  ek.sym_alg = p.parameters.rsaDetail.symmetric.algorithm;
  ek.sym_bits = p.parameters.rsaDetail.symmetric.keyBits.aes;
  ek.sym_mode = p.parameters.rsaDetail.symmetric.mode.aes;
  uint8_t buf[sizeof(TPMT_PUBLIC)];
  size_t n = 0;
  Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof buf, &n);
  ek.public_area.assign(buf, buf + n);
  return ek;
}

Status verify_ek(const EkPublic& ek, ByteView ek_cert,
                 const std::vector<crypto::Certificate>& chain,
                 const std::vector<crypto::Certificate>& roots, int64_t at_unix) {
  auto certs = crypto::Certificate::parse_any(ek_cert);
  if (!certs.ok()) return make_error(Errc::kCertificate, "EK certificate: " + certs.error().reason);
  const crypto::Certificate& leaf = certs->front();
  ATN_CHECK(crypto::verify_chain(leaf, chain, roots, at_unix));
  ATN_TRY(auto cert_key, leaf.public_key());
  if (cert_key.spki_der() != ek.key.spki_der())
    return make_error(Errc::kCertificate,
                      "the EK public key presented is not the key in the EK certificate (" +
                          leaf.subject() + ")");
  return {};
}

Status check_ak_attributes(const AkPublic& ak) {
  if (!ak.public_area)
    return make_error(Errc::kInvalidArgument,
                      "the AK must be given as a TPM public area (TPM2B_PUBLIC) to be enrolled: "
                      "a bare public key does not show its attributes");
  struct Need {
    uint32_t bit;
    const char* name;
  };
  const Need need[] = {{TPMA_OBJECT_RESTRICTED, "restricted"},
                       {TPMA_OBJECT_SIGN_ENCRYPT, "sign"},
                       {TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
                       {TPMA_OBJECT_FIXEDPARENT, "fixedParent"},
                       {TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"}};
  for (const auto& n : need)
    if (!(ak.attributes & n.bit))
      return make_error(Errc::kBadValue, std::string("the AK lacks the ") + n.name +
                                             " attribute: it is not a TPM-resident attestation "
                                             "key");
  if (ak.attributes & TPMA_OBJECT_DECRYPT)
    return make_error(Errc::kBadValue, "the AK is also a decryption key: not an attestation key");
  return {};
}

Bytes CredentialChallenge::tpm2_tools_file() const {
  Bytes out;
  be32(out, 0xBADCC0DE);
  be32(out, 1);
  out.insert(out.end(), id_object.begin(), id_object.end());
  out.insert(out.end(), encrypted_secret.begin(), encrypted_secret.end());
  return out;
}

Result<CredentialChallenge> make_credential(const EkPublic& ek, ByteView ak_name, ByteView secret,
                                            ByteView seed) {
  auto h = hash_of(ek.name_alg);
  if (!h) return make_error(Errc::kUnsupported, "EK name algorithm " + alg_name(ek.name_alg));
  if (ek.sym_alg != TPM2_ALG_AES || ek.sym_mode != TPM2_ALG_CFB ||
      (ek.sym_bits != 128 && ek.sym_bits != 256))
    return make_error(Errc::kUnsupported, "EK symmetric scheme is not AES-128/256-CFB");
  if (seed.size() != crypto::hash_size(*h))
    return make_error(Errc::kInvalidArgument, "credential seed must be " +
                                                  std::to_string(crypto::hash_size(*h)) + " bytes");
  if (secret.empty() || secret.size() > crypto::hash_size(*h))
    return make_error(Errc::kInvalidArgument, "credential secret must be 1.." +
                                                  std::to_string(crypto::hash_size(*h)) + " bytes");
  // Seed encrypted to the EK: RSA-OAEP with the name algorithm and label "IDENTITY\0".
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(ek.key.get(), nullptr);
  const EVP_MD* md = EVP_get_digestbyname(md_name(*h));
  char* label = static_cast<char*>(OPENSSL_malloc(9));
  std::memcpy(label, "IDENTITY", 9);
  size_t outlen = 0;
  Bytes enc;
  bool ok = EVP_PKEY_encrypt_init(ctx) > 0 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0 &&
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0 &&
            EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, 9) > 0;
  if (!ok) OPENSSL_free(label);
  if (ok) ok = EVP_PKEY_encrypt(ctx, nullptr, &outlen, seed.data(), seed.size()) > 0;
  if (ok) {
    enc.resize(outlen);
    ok = EVP_PKEY_encrypt(ctx, enc.data(), &outlen, seed.data(), seed.size()) > 0;
    enc.resize(outlen);
  }
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return make_error(Errc::kBadValue, "RSA-OAEP encryption to the EK failed");

  Bytes sym_key = kdfa(*h, seed, "STORAGE", ak_name, {}, ek.sym_bits);
  Bytes plain;
  plain.push_back(static_cast<uint8_t>(secret.size() >> 8));
  plain.push_back(static_cast<uint8_t>(secret.size()));
  plain.insert(plain.end(), secret.begin(), secret.end());
  Bytes enc_identity(plain.size());
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  uint8_t iv[16] = {0};
  int l1 = 0, l2 = 0;
  EVP_EncryptInit_ex(c, ek.sym_bits == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128(), nullptr,
                     sym_key.data(), iv);
  EVP_EncryptUpdate(c, enc_identity.data(), &l1, plain.data(), static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(c, enc_identity.data() + l1, &l2);
  EVP_CIPHER_CTX_free(c);

  Bytes hmac_key =
      kdfa(*h, seed, "INTEGRITY", {}, {}, static_cast<uint32_t>(crypto::hash_size(*h) * 8));
  Bytes mac_in = enc_identity;
  mac_in.insert(mac_in.end(), ak_name.begin(), ak_name.end());
  Bytes outer = hmac(*h, as_view(hmac_key), as_view(mac_in));

  TPM2B_ID_OBJECT id;
  std::memset(&id, 0, sizeof id);
  Bytes cred;
  cred.push_back(static_cast<uint8_t>(outer.size() >> 8));
  cred.push_back(static_cast<uint8_t>(outer.size()));
  cred.insert(cred.end(), outer.begin(), outer.end());
  cred.insert(cred.end(), enc_identity.begin(), enc_identity.end());
  if (cred.size() > sizeof(id.credential))
    return make_error(Errc::kOversize, "credential blob too large");
  id.size = static_cast<uint16_t>(cred.size());
  std::memcpy(id.credential, cred.data(), cred.size());
  TPM2B_ENCRYPTED_SECRET es;
  std::memset(&es, 0, sizeof es);
  if (enc.size() > sizeof(es.secret))
    return make_error(Errc::kOversize, "encrypted seed too large");
  es.size = static_cast<uint16_t>(enc.size());
  std::memcpy(es.secret, enc.data(), enc.size());

  CredentialChallenge out;
  uint8_t buf[sizeof(TPM2B_ID_OBJECT) + sizeof(TPM2B_ENCRYPTED_SECRET)];
  size_t off = 0;
  Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, buf, sizeof buf, &off);
  out.id_object.assign(buf, buf + off);
  off = 0;
  Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, buf, sizeof buf, &off);
  out.encrypted_secret.assign(buf, buf + off);
  return out;
}

}  // namespace attestnet::evidence::tpm2
