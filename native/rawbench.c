// The raw floor for `npm run bench`: clone() a child into the requested namespaces, let it exit,
// wait for it, in a loop. Prints one latency in nanoseconds per line.
// Usage: nsprobe-rawbench FLAGS ITERATIONS [spread|pin]
//   FLAGS: CLONE_NEW* mask as a number; 0x80 = time.
//   spread (default): may run on every CPU, as the scheduler places it (an inherited pin is undone);
//   pin: stays on the CPU it started on, with its children, as the addon's co-location does.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int child(void* arg) {
  (void)arg;
  return 0;
}

// A time namespace applies to children only, and clone() cannot take CLONE_NEWTIME (it overlaps
// the exit-signal bits): the child unshares it and forks once more, as the addon does.
static int time_child(void* arg) {
  (void)arg;
  if (unshare(CLONE_NEWTIME) < 0) return 1;
  pid_t p = fork();
  if (p < 0) return 1;
  if (p == 0) _exit(0);
  int st;
  waitpid(p, &st, 0);
  return 0;
}

static void place(const char* how) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (strcmp(how, "pin") == 0) {
    CPU_SET(sched_getcpu(), &set);
  } else {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET(i, &set);
  }
  sched_setaffinity(0, sizeof set, &set);  // the kernel keeps it within our cpuset
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CLONE_FLAGS ITERATIONS [spread|pin]\n", argv[0]);
    return 2;
  }
  unsigned long flags = strtoul(argv[1], NULL, 0);
  long n = strtol(argv[2], NULL, 0);
  place(argc > 3 ? argv[3] : "spread");
  size_t sz = 64 * 1024;
  char* stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return 1;
  for (long i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int with_time = (flags & CLONE_NEWTIME) != 0;
    pid_t pid = clone(with_time ? time_child : child, stack + sz, (int)(flags & ~(unsigned long)CLONE_NEWTIME) | SIGCHLD, NULL);
    if (pid < 0) {
      perror("clone");
      return 1;
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "child failed\n");
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld\n", (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
  }
  return 0;
}
