// TLS identities without a CA: every node presents a self-signed X.509 certificate for its
// Ed25519 identity key (RFC 8410), and peers are pinned to the raw keys named in genesis. TLS 1.3
// only; the CertificateVerify message proves possession of the identity key, so the certificate's
// own fields (names, validity) carry no trust and are not checked.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio/ssl.hpp>
#include <functional>
#include <memory>
#include <optional>

#include "core/result.h"
#include "crypto/ed25519.h"

namespace attestnet::net {

namespace ssl = boost::asio::ssl;

// A context presenting `key`'s certificate and requiring the peer's (mutual TLS 1.3). `accept`
// decides whether a peer key is acceptable; the handshake fails when it says no.
using PinFn = std::function<bool(const crypto::PublicKey&)>;
Result<std::shared_ptr<ssl::context>> make_tls_context(const crypto::SecretKey& key, bool server,
                                                       PinFn accept);

// The Ed25519 key of the certificate the peer presented in a completed handshake.
std::optional<crypto::PublicKey> peer_key(SSL* ssl);

}  // namespace attestnet::net
