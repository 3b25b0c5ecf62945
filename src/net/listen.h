// Binding a listening socket for the node's servers (peer transport, HTTP API), with an error
// that names what failed to listen and where.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <string>

#include "core/result.h"

namespace attestnet::net {

// Opens, binds (SO_REUSEADDR) and listens on host:port (host: an IP address); `what` names the
// server in the error ("peers", "the API").
Status listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, uint16_t port,
                 const std::string& what);

}  // namespace attestnet::net
