// A real software TPM for tests: swtpm (libtpms) manufactured by swtpm_setup with an EK
// certificate from its local CA, listening on free ports of 127.0.0.1, with its own state
// directory; tpm2-tools drive it through the swtpm TCTI. The instance is killed and its
// directory removed when the object goes away.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "core/bytes.h"
#include "vectors.h"

namespace attestnet::test {

inline bool have_program(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

inline bool have_swtpm() {
  return have_program("swtpm") && have_program("swtpm_setup") && have_program("tpm2_quote");
}

#define REQUIRE_SWTPM()                                                                          \
  do {                                                                                           \
    if (!::attestnet::test::have_swtpm()) {                                                      \
      const char* ci = std::getenv("CI");                                                        \
      if (ci && std::string(ci) == "true") FAIL() << "CI=true but swtpm/tpm2-tools are missing"; \
      GTEST_SKIP() << "SKIPPED: swtpm and tpm2-tools are not installed (scripts/setup installs " \
                      "them)";                                                                   \
    }                                                                                            \
  } while (0)

inline uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

inline bool port_free(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

// The swtpm TCTI talks to the control channel on the server port + 1.
inline uint16_t free_port_pair() {
  for (int i = 0; i < 100; ++i) {
    uint16_t p = free_port();
    if (p < 65535 && port_free(static_cast<uint16_t>(p + 1))) return p;
  }
  return 0;
}

inline void write_bytes(const std::filesystem::path& p, ByteView b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult run(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class Swtpm {
 public:
  // Manufactures a TPM with SHA-1 and SHA-256 PCR banks and an RSA EK certificate.
  explicit Swtpm(const std::string& name) {
    char tmpl[] = "/tmp/attestnet-swtpm-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    dir_ /= name;
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "ca");
    std::ofstream(dir_ / "localca.conf")
        << "statedir = " << (dir_ / "ca").string() << "\n"
        << "signingkey = " << (dir_ / "ca" / "signkey.pem").string() << "\n"
        << "issuercert = " << (dir_ / "ca" / "issuercert.pem").string() << "\n"
        << "certserial = " << (dir_ / "ca" / "certserial").string() << "\n";
    std::ofstream(dir_ / "localca.options") << "--platform-manufacturer attestnet-test\n"
                                            << "--platform-version 2.1\n"
                                            << "--platform-model swtpm\n";
    std::ofstream(dir_ / "setup.conf")
        << "create_certs_tool = /usr/bin/swtpm_localca\n"
        << "create_certs_tool_config = " << (dir_ / "localca.conf").string() << "\n"
        << "create_certs_tool_options = " << (dir_ / "localca.options").string() << "\n";
    auto setup = run("swtpm_setup --tpm2 --tpmstate " + (dir_ / "state").string() +
                     " --create-ek-cert --config " + (dir_ / "setup.conf").string() +
                     " --pcr-banks sha1,sha256 --overwrite");
    if (setup.status != 0) {
      ADD_FAILURE() << "swtpm_setup failed: " << setup.output;
      return;
    }
    for (int attempt = 0; attempt < 5 && !running_; ++attempt) start();
    if (!running_) ADD_FAILURE() << "swtpm did not start: " << last_error_;
  }
  ~Swtpm() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_.parent_path(), ec);
  }
  Swtpm(const Swtpm&) = delete;
  Swtpm& operator=(const Swtpm&) = delete;

  bool ok() const { return running_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path file(const std::string& name) const { return dir_ / name; }
  std::string tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }
  uint16_t port() const { return port_; }

  // Runs a tpm2-tools command against this TPM (transient objects flushed afterwards, as the
  // TPM has only three slots). Fails the test on a non-zero exit.
  std::string tool(const std::string& args, bool expect_ok = true) const {
    auto r = run(prefix() + args);
    run(prefix() + "tpm2_flushcontext -t && tpm2_flushcontext -s");
    if (expect_ok) {
      EXPECT_EQ(r.status, 0) << args << "\n" << r.output;
    }
    return r.output;
  }
  CommandResult try_tool(const std::string& args) const {
    auto r = run(prefix() + "(" + args + ")");
    run(prefix() + "tpm2_flushcontext -t");
    return r;
  }

  std::string prefix() const {
    return "cd " + dir_.string() + " && export TPM2TOOLS_TCTI='" + tcti() + "' && ";
  }

  // The local CA's root and intermediate certificates (PEM).
  std::filesystem::path ca_root() const { return dir_ / "ca" / "swtpm-localca-rootca-cert.pem"; }
  std::filesystem::path ca_issuer() const { return dir_ / "ca" / "issuercert.pem"; }

 private:
  // swtpm cannot bind port 0 and report its port, so another process may take the chosen pair
  // before swtpm binds it: a start that fails is tried again on a fresh pair.
  void start() {
    for (int attempt = 0; attempt < 3 && !running_; ++attempt) start_once();
  }
  void start_once() {
    port_ = free_port_pair();
    uint16_t ctrl = static_cast<uint16_t>(port_ + 1);
    std::string cmd = "swtpm socket --tpm2 --server type=tcp,port=" + std::to_string(port_) +
                      ",bindaddr=127.0.0.1 --ctrl type=tcp,port=" + std::to_string(ctrl) +
                      ",bindaddr=127.0.0.1 --tpmstate dir=" + (dir_ / "state").string() +
                      " --flags not-need-init,startup-clear --daemon --pid file=" +
                      (dir_ / "swtpm.pid").string() +
                      " --log file=" + (dir_ / "swtpm.log").string();
    auto started = run(cmd);
    if (started.status != 0) {
      last_error_ = cmd + ": " + started.output;
      return;
    }
    for (int i = 0; i < 50; ++i) {
      auto r = run("TPM2TOOLS_TCTI='" + tcti() + "' tpm2_pcrread sha256:0");
      if (r.status == 0) {
        running_ = true;
        return;
      }
      last_error_ = r.output;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
  }
  void stop() {
    std::ifstream pid(dir_ / "swtpm.pid");
    long p = 0;
    if (pid >> p && p > 0) ::kill(static_cast<pid_t>(p), SIGTERM);
    std::filesystem::remove(dir_ / "swtpm.pid");
    running_ = false;
  }

  std::filesystem::path dir_;
  uint16_t port_ = 0;
  bool running_ = false;
  std::string last_error_;
};

}  // namespace attestnet::test
