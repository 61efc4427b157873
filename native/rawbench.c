// The raw floor for `npm run bench`: clone() a child into the requested namespaces, let it exit,
// wait for it, in a loop. Prints one latency in nanoseconds per line.
// Usage: nsprobe-rawbench FLAGS ITERATIONS [spread|pin] [bare|vm|rootless|maps]
//   FLAGS: CLONE_NEW* mask as a number; 0x80 = time.
//   spread (default): may run on every CPU, as the scheduler places it (an inherited pin is undone);
//   pin: stays on the CPU it started on, with its children, as the addon's co-location does.
//   bare (default): clone() and wait, nothing else: the floor the ratio is taken against.
//   vm: the same with CLONE_VM, as the addon clones: the child shares our memory, so no page
//   tables are copied or torn down. What is left is the kernel's cost of the namespaces and a
//   process; here it is a third of bare's.
//   rootless: the work rootless mode itself requires, done as the addon does it, in C. Run as
//   root: the child switches to uid/gid 65534, unshares a user namespace with FLAGS and tells the
//   parent. Otherwise: clone() makes the child in the user namespace and FLAGS at once. Then the
//   parent writes its setgroups, gid_map and uid_map and lets it go, and it exits. Not for pid or
//   time (they need one more process).
//   maps: privileged mode's user namespace, done as the addon does it, in C (as root): clone()
//   makes the child in the user namespace and FLAGS, the parent writes gid_map and uid_map
//   "0 100000 65536" (setgroups stays allowed) and lets it go, and it exits.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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

static int sync_pipe[2][2];
// Run as root: rootless mode drops to 65534 first (set before the timed loop).
static int as_root;

// Cloned straight into its namespaces: waits for its maps, then exits.
static int mapped_child(void* arg) {
  (void)arg;
  char c = 0;
  return read(sync_pipe[1][0], &c, 1) == 1 ? 0 : 1;
}

static int rootless_child(void* arg) {
  unsigned long flags = *(unsigned long*)arg;
  char c = 0;
  if (as_root) {
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) return 1;
    prctl(PR_SET_DUMPABLE, 1);
  }
  if (unshare(CLONE_NEWUSER | flags) < 0) return 1;
  if (write(sync_pipe[0][1], &c, 1) != 1 || read(sync_pipe[1][0], &c, 1) != 1) return 1;
  return 0;
}

static int write_at(int dir, const char* name, const char* s) {
  int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, s, strlen(s));
  close(fd);
  return w == (ssize_t)strlen(s) ? 0 : -1;
}

// The maps rootless mode writes, made once before the timed loop (as the addon gets them ready).
static char uid_map[32], gid_map[32];
static int privileged_maps;
static void make_maps(void) {
  if (privileged_maps) {
    snprintf(uid_map, sizeof uid_map, "0 100000 65536\n");
    snprintf(gid_map, sizeof gid_map, "0 100000 65536\n");
    return;
  }
  snprintf(uid_map, sizeof uid_map, "0 %u 1\n", as_root ? 65534u : (unsigned)geteuid());
  snprintf(gid_map, sizeof gid_map, "0 %u 1\n", as_root ? 65534u : (unsigned)getegid());
}

// The parent's side of rootless mode: the same three writes as the addon's.
static int write_maps(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  int r = (!privileged_maps && write_at(dir, "setgroups", "deny")) || write_at(dir, "gid_map", gid_map) || write_at(dir, "uid_map", uid_map);
  close(dir);
  return r ? -1 : 0;
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
    fprintf(stderr, "usage: %s CLONE_FLAGS ITERATIONS [spread|pin] [bare|vm|rootless|maps]\n", argv[0]);
    return 2;
  }
  unsigned long flags = strtoul(argv[1], NULL, 0);
  long n = strtol(argv[2], NULL, 0);
  place(argc > 3 ? argv[3] : "spread");
  privileged_maps = argc > 4 && strcmp(argv[4], "maps") == 0;
  int rootless = privileged_maps || (argc > 4 && strcmp(argv[4], "rootless") == 0);
  unsigned long vm = argc > 4 && strcmp(argv[4], "vm") == 0 ? CLONE_VM : 0;
  // As root the child drops to 65534 and unshares; otherwise clone() makes the user namespace.
  as_root = geteuid() == 0;
  if (privileged_maps && !as_root) {
    fprintf(stderr, "maps: privileged mode's maps need root\n");
    return 2;
  }
  make_maps();
  if (rootless && (flags & (CLONE_NEWPID | CLONE_NEWTIME))) {
    fprintf(stderr, "rootless: not for pid or time namespaces\n");
    return 2;
  }
  unsigned long ns = flags & ~(unsigned long)CLONE_NEWUSER;
  if (rootless && (pipe2(sync_pipe[0], O_CLOEXEC) < 0 || pipe2(sync_pipe[1], O_CLOEXEC) < 0)) return 1;
  size_t sz = 64 * 1024;
  char* stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return 1;
  for (long i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int with_time = (flags & CLONE_NEWTIME) != 0;
    pid_t pid;
    if (rootless) {
      char c = 0;
      int direct = !as_root || privileged_maps;  // cloned straight into its namespaces
      pid = direct ? clone(mapped_child, stack + sz, (int)(ns | CLONE_NEWUSER) | SIGCHLD, NULL) : clone(rootless_child, stack + sz, SIGCHLD, &ns);
      if (pid < 0 || (!direct && read(sync_pipe[0][0], &c, 1) != 1) || write_maps(pid) < 0 || write(sync_pipe[1][1], &c, 1) != 1) {
        perror("rootless");
        return 1;
      }
    } else {
      pid = clone(with_time ? time_child : child, stack + sz, (int)((flags & ~(unsigned long)CLONE_NEWTIME) | vm) | SIGCHLD, NULL);
    }
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
