#include "net/tls.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace attestnet::net {
namespace {

std::optional<crypto::PublicKey> key_of(X509* cert) {
  if (!cert) return std::nullopt;
  EVP_PKEY* pk = X509_get0_pubkey(cert);
  if (!pk || EVP_PKEY_id(pk) != EVP_PKEY_ED25519) return std::nullopt;
  crypto::PublicKey out{};
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pk, out.data(), &len) != 1 || len != out.size())
    return std::nullopt;
  return out;
}

}  // namespace

std::optional<crypto::PublicKey> peer_key(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  auto k = key_of(cert);
  X509_free(cert);
  return k;
}

Result<std::shared_ptr<ssl::context>> make_tls_context(const crypto::SecretKey& key, bool server,
                                                       PinFn accept) {
  auto ctx =
      std::make_shared<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.seed().data(), key.seed().size()),
      EVP_PKEY_free);
  if (!pkey) return make_error(Errc::kInternal, "OpenSSL cannot load the Ed25519 identity key");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600L * 24 * 365 * 100);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = "attestnet " + to_hex(ByteView(key.public_key().data(), 8));
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), pkey.get(), nullptr) <= 0)
    return make_error(Errc::kInternal, "OpenSSL cannot sign the node's self-signed certificate");
  if (SSL_CTX_use_certificate(c, cert.get()) != 1 || SSL_CTX_use_PrivateKey(c, pkey.get()) != 1)
    return make_error(Errc::kInternal, "OpenSSL refuses the node certificate or key");

  // Pinning replaces path validation: the only certificate that matters is the peer's own, and
  // it is acceptable exactly when its key is one `accept` names.
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  ctx->set_verify_callback([accept](bool, ssl::verify_context& vc) {
    X509_STORE_CTX* sc = vc.native_handle();
    if (X509_STORE_CTX_get_error_depth(sc) != 0) return false;  // no chains: a lone certificate
    auto k = key_of(X509_STORE_CTX_get_current_cert(sc));
    return k && accept(*k);
  });
  return ctx;
}

}  // namespace attestnet::net
