// What the host charges for the kernel primitives a node uses per message: a first-touch page
// fault (every new page of a RocksDB memtable or a grown heap), a system call, and a thread
// wake-up (one hand-off between the io, consensus and effects threads), on the same CPU and
// across CPUs. Under a hypervisor that traps page-table updates and interrupt enables these cost
// many times what they cost on bare metal, and the node's figures move with them: run
//   attestnet_bench --benchmark_filter=Host
// on a host before comparing its attestnet figures with another's (docs/operations.md).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <thread>

namespace attestnet {
namespace {

// Touching one byte of each page of a fresh anonymous mapping: one minor fault per page.
void BM_HostPageFault(benchmark::State& st) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t pages = 4096;
  for (auto _ : st) {
    st.PauseTiming();
    void* m =
        mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      st.SkipWithError("mmap failed");
      break;
    }
    auto* p = static_cast<volatile char*>(m);
    st.ResumeTiming();
    for (size_t i = 0; i < pages; ++i) p[i * page] = 1;
    st.PauseTiming();
    munmap(m, pages * page);
    st.ResumeTiming();
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(pages));
}
BENCHMARK(BM_HostPageFault)->Unit(benchmark::kMicrosecond);

// The cheapest system call there is: entry and exit only.
void BM_HostSyscall(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(syscall(SYS_getppid));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HostSyscall);

bool pin(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// A round trip through two pipes between two threads: two wake-ups and four system calls. Arg 0:
// both threads on CPU 0 (a context switch each way); arg 1: on CPUs 0 and 1 (a cross-CPU
// wake-up each way).
void BM_HostWakeUpRoundTrip(benchmark::State& st) {
  const bool other = st.range(0) != 0;
  if (other && std::thread::hardware_concurrency() < 2) {
    st.SkipWithError("one CPU only");
    return;
  }
  int to[2], from[2];
  if (pipe(to) != 0 || pipe(from) != 0) {
    st.SkipWithError("pipe failed");
    return;
  }
  std::thread echo([&] {
    pin(other ? 1 : 0);
    char c;
    while (read(to[0], &c, 1) == 1 && c != 0) {
      if (write(from[1], &c, 1) != 1) break;
    }
  });
  pin(0);
  char c = 1;
  for (auto _ : st) {
    if (write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1) {
      st.SkipWithError("pipe i/o failed");
      break;
    }
  }
  c = 0;
  (void)!write(to[1], &c, 1);
  echo.join();
  for (int fd : {to[0], to[1], from[0], from[1]}) close(fd);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HostWakeUpRoundTrip)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace attestnet
