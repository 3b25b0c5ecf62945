#include "net/listen.h"

namespace attestnet::net {

Status listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, uint16_t port,
                 const std::string& what) {
  using tcp = boost::asio::ip::tcp;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec)
    return make_error(Errc::kInvalidArgument,
                      "listen address '" + host + "' for " + what + " is not an IP address");
  tcp::endpoint ep(addr, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(Errc::kIo, "cannot listen for " + what + " on " + host + ":" +
                                     std::to_string(port) + ": " + ec.message());
  return {};
}

}  // namespace attestnet::net
