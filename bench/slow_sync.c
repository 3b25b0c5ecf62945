// LD_PRELOAD shim for benchmarks: every fdatasync and fsync first sleeps SLOW_SYNC_US
// microseconds, to see how the devnet behaves on a disk whose sync costs a round trip (a cloud
// block volume). It sleeps, so it adds latency, not CPU. Not built by CMake:
//   gcc -O2 -shared -fPIC -o /tmp/slow_sync.so bench/slow_sync.c -ldl
//   LD_PRELOAD=/tmp/slow_sync.so SLOW_SYNC_US=2000 attestnet devnet up ...
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void delay(void) {
  static long us = -1;
  if (us < 0) {
    const char* e = getenv("SLOW_SYNC_US");
    us = e ? atol(e) : 0;
  }
  if (us > 0) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, 0);
  }
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  delay();
  return real(fd);
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  delay();
  return real(fd);
}
