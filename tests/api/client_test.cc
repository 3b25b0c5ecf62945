// The blocking HTTP client (api/client.h) against small servers on 127.0.0.1: the errors a user
// sees, the call's deadline, and a kept-alive connection the server closed; and the server's
// spliced JSON dump (dump_with_hex).
#include "api/client.h"
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <string>
#include <thread>

namespace attestnet::api {
namespace {

// A listening socket on a free port of 127.0.0.1.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  Url url() const { return Url{"127.0.0.1", port, ""}; }
};

// Reads until the end of a request's header (the tests send no bodies).
bool read_request(int c) {
  std::string got;
  char buf[1024];
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return true;
}

void answer(int c, const std::string& body) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nContent-Type: text/plain\r\n\r\n" + body;
  ASSERT_EQ(::send(c, r.data(), r.size(), MSG_NOSIGNAL), static_cast<ssize_t>(r.size()));
}

TEST(HttpClient, AnswersAKeptAliveConnectionServesMoreThanOneCall) {
  Listener l;
  std::thread server([&] {
    int c = ::accept(l.fd, nullptr, nullptr);
    for (int i = 0; i < 3 && read_request(c); ++i) answer(c, "call " + std::to_string(i));
    ::close(c);
  });
  HttpSession s(l.url());
  for (int i = 0; i < 3; ++i) {
    auto r = s.call("GET", "/healthz");
    ASSERT_TRUE(r.ok()) << r.error().reason;
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->body, "call " + std::to_string(i));
  }
  server.join();
}

TEST(HttpClient, ReconnectsOnceWhenTheServerClosedAKeptAliveConnection) {
  Listener l;
  std::thread server([&] {
    int c = ::accept(l.fd, nullptr, nullptr);
    if (read_request(c)) answer(c, "first");
    ::close(c);  // between the calls: the client's next write or read fails on this one
    c = ::accept(l.fd, nullptr, nullptr);
    if (read_request(c)) answer(c, "second");
    ::close(c);
  });
  HttpSession s(l.url());
  auto a = s.call("GET", "/x");
  ASSERT_TRUE(a.ok()) << a.error().reason;
  EXPECT_EQ(a->body, "first");
  auto b = s.call("GET", "/x");
  ASSERT_TRUE(b.ok()) << b.error().reason;
  EXPECT_EQ(b->body, "second");
  server.join();
}

TEST(HttpClient, NamesTheStepAndTheAddressWhenNobodyListens) {
  Listener l;
  Url u = l.url();
  l.close();
  auto r = http_call(u, "GET", "/healthz", "", "application/json", 2000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("HTTP connect to 127.0.0.1:" + std::to_string(u.port)),
            std::string::npos)
      << r.error().reason;
  EXPECT_NE(r.error().reason.find("refused"), std::string::npos) << r.error().reason;
}

TEST(HttpClient, GivesUpAtTheDeadlineWhenTheServerNeverAnswers) {
  Listener l;
  int held = -1;
  std::thread server([&] {
    held = ::accept(l.fd, nullptr, nullptr);
    read_request(held);  // and never answers
  });
  auto r = http_call(l.url(), "POST", "/v1/attestations", "{}", "application/json", 200);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("no answer from 127.0.0.1:" + std::to_string(l.port) +
                                  " within 200 ms (receive)"),
            std::string::npos)
      << r.error().reason;
  server.join();
  ::close(held);
}

TEST(HttpClient, RefusesHttpsWithAReason) {
  auto u = parse_url("https://node.example:8443");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().reason.find("https:// is not supported"), std::string::npos);
}

// The committed answer's body is spliced (api/http_server.h): it must be exactly the text the
// whole object dumps to, whatever the other members hold.
TEST(DumpWithHex, IsTheDumpOfTheWholeObject) {
  nlohmann::json j = {{"request_id", "ab"},
                      {"status", "committed"},
                      {"record", {{"note", "a \"response\": {\n trap"}, {"x", 1}}},
                      {"response", {{"block_time", 5}, {"format", "attestnet-response/1"}}}};
  auto text = dump_with_hex(j, "response", "binary", "00ff11aa");
  ASSERT_TRUE(text.ok()) << text.error().reason;
  nlohmann::json whole = j;
  whole["response"]["binary"] = "00ff11aa";
  EXPECT_EQ(*text, whole.dump(2));
  EXPECT_EQ(nlohmann::json::parse(*text), whole);

  EXPECT_FALSE(dump_with_hex(j, "response", "binary", "0x12").ok());
  EXPECT_FALSE(dump_with_hex(j, "missing", "binary", "00").ok());
  EXPECT_FALSE(dump_with_hex(j, "status", "binary", "00").ok());
}

}  // namespace
}  // namespace attestnet::api
