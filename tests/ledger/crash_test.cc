// Crash safety with real processes: a writer persists blocks as fast as it can and is killed
// with SIGKILL at random moments, 50 times. After each kill the store reopens, the chain audits
// from genesis, every block the writer reported durable is there, and no partial block shows.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "ledger/audit.h"

namespace attestnet::ledger {
namespace {

TEST(CrashSafety, SigkillAtRandomMomentsLosesNothingAcknowledged) {
  crypto::init();
  Genesis g;
  g.chain_id = "crash-test";
  for (int i = 0; i < 4; ++i) {
    g.members.push_back(
        {"n" + std::to_string(i),
         crypto::SecretKey::from_seed(crypto::test_seed("crash-" + std::to_string(i))).public_key(),
         "local"});
  }
  auto dir =
      std::filesystem::temp_directory_path() / ("attestnet-crash-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::mt19937_64 rng(1234);
  uint64_t acknowledged = 0;
  for (int round = 0; round < 50; ++round) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      dup2(out[1], 1);
      close(out[0]);
      execl(CRASH_WRITER, CRASH_WRITER, dir.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    // Most rounds kill at a random moment (possibly during start-up); every fifth waits until
    // the writer acknowledged a new block first, so slow (sanitizer) builds still make progress.
    const bool wait_for_progress = round % 5 == 4;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(10 + rng() % 90);
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string buf;
    char chunk[4096];
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      bool progressed = buf.find("durable ") != std::string::npos;
      if (now >= give_up || (now >= deadline && (!wait_for_progress || progressed))) break;
      ssize_t n = read(out[0], chunk, sizeof chunk);
      if (n > 0)
        buf.append(chunk, n);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ssize_t n;
    while ((n = read(out[0], chunk, sizeof chunk)) > 0) buf.append(chunk, n);
    close(out[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the writer exited by itself";
    for (size_t pos = buf.rfind("durable "); pos != std::string::npos;) {
      acknowledged = std::max<uint64_t>(acknowledged, std::stoull(buf.substr(pos + 8)));
      break;
    }
    auto store = ReplicaStore::open_read_only(dir.string());
    if (!store.ok() && acknowledged == 0) continue;  // killed before the store existed
    ASSERT_TRUE(store.ok()) << "round " << round << ": " << store.error().to_string();
    EXPECT_GE((*store)->highest_header(), acknowledged)
        << "round " << round << ": lost a durable block";
    auto audit = audit_chain(**store, g);
    ASSERT_TRUE(audit.ok()) << "round " << round << ": " << audit.error().to_string();
    // Only the last header may lack its certificate (killed between the two writes).
    EXPECT_LE(audit->uncertified.size(), 1u);
    EXPECT_EQ(audit->log_size, audit->headers * 10) << "a block's records appear with its header";
  }
  EXPECT_GE(acknowledged, 10u) << "every fifth round waits for a new durable block";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace attestnet::ledger
