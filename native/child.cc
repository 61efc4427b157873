// Everything that runs in a child: the stages that create or join namespaces, and the request
// loop that serves the Node side from inside them. Raw system calls only (see raw.h): no malloc,
// no stdio, no errno, no C++ runtime. Buffers live on the child's own stack.
#include "child.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "netlink.h"
#include "proto.h"
#include "raw.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace {

struct ksigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

void fail(nsp_ctl* c, int stage, int sys, long err) {
  c->err_sys = sys;
  c->err_errno = (int)-err;
  __atomic_store_n(&c->err_stage, stage, __ATOMIC_SEQ_CST);
}

long now_ms() {
  struct timespec ts;
  rsys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Waits until *word is not 0; returns its value, or 0 on timeout.
int wait_word(volatile int32_t* word, int ms) {
  long deadline = now_ms() + ms;
  for (;;) {
    int v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (v != 0) return v;
    long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
    rsys6(SYS_futex, (long)word, FUTEX_WAIT, 0, (long)&ts, 0, 0);
  }
}

void set_deathsig() { rsys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL); }

}  // namespace

// The mm lock. Stage A's switch to an unprivileged uid makes the memory it shares with Node
// (CLONE_VM) non-dumpable until its PR_SET_DUMPABLE a few microseconds later. A process forked
// from that memory in that window copies the flag for good (its /proc/self/uid_map is then
// root-owned: EACCES), and a sharer writing /proc/self/* in it fails alike. Processes that share
// Node's memory therefore take this lock around the switch, around forks, and around writes to
// their own /proc files. A private futex works across CLONE_VM; a forked child resets its copy.
// A holder killed inside the window would leave it taken: waiters take over after 100 ms.
volatile int32_t nsp_mm_lock = 0;

void nsp_mm_acquire() {
  long deadline = 0;
  while (__atomic_exchange_n(&nsp_mm_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    struct timespec ts;
    rsys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
    long now = ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
    if (!deadline) deadline = now + 100;
    if (now >= deadline) return;
    struct timespec wait = {0, 1000000};
    rsys6(SYS_futex, (long)&nsp_mm_lock, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 1, (long)&wait, 0, 0);
  }
}

void nsp_mm_release() {
  __atomic_store_n(&nsp_mm_lock, 0, __ATOMIC_RELEASE);
  rsys6(SYS_futex, (long)&nsp_mm_lock, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, 0, 0);
}

namespace {

// Scope of a credential change (uid switch, setns into a user namespace) in a process that may
// share Node's memory: the kernel makes that memory non-dumpable; it is made dumpable again
// before the lock lets anyone fork from it or write their /proc files.
struct CredChange {
  CredChange() { nsp_mm_acquire(); }
  ~CredChange() {
    rsys2(SYS_prctl, PR_SET_DUMPABLE, 1);
    nsp_mm_release();
  }
};

// fork() under the mm lock; the child starts with its own copy of the lock free.
long fork_locked() {
  nsp_mm_acquire();
  long child = rsys5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (child == 0) {
    nsp_mm_lock = 0;
    return 0;
  }
  nsp_mm_release();
  return child;
}

// Closes every fd above 2 except those listed.
void close_fds_except(const int* keep, int nkeep) {
  int sorted[NSP_MAX_JOIN + 2];
  int n = 0;
  for (int i = 0; i < nkeep; i++)
    if (keep[i] > 2) sorted[n++] = keep[i];
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
      int t = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = t;
    }
  int from = 3;
  for (int i = 0; i <= n; i++) {
    unsigned int to = i < n ? (unsigned int)sorted[i] - 1 : ~0U;
    if (i < n && sorted[i] < from) continue;
    if (to >= (unsigned int)from) {
      if (rsys3(SYS_close_range, from, to, 0) < 0) {
        // No close_range (before 5.9): close up to the open-file limit, not 65535 descriptors.
        struct rlimit rl;
        unsigned int cap = rsys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl) == 0 && rl.rlim_cur < 65536 ? (unsigned int)rl.rlim_cur : 65536;
        unsigned int lim = to > cap - 1 ? cap - 1 : to;
        for (unsigned int fd = from; fd <= lim; fd++) rsys1(SYS_close, fd);
      }
    }
    if (i < n) from = sorted[i] + 1;
  }
}

long write_file(const char* path, const char* data, size_t len, int extra_flags, int mode) {
  long fd = rsys4(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC | extra_flags, mode);
  if (fd < 0) return fd;
  size_t off = 0;
  long r = 0;
  while (off < len) {
    r = rsys3(SYS_write, fd, (long)(data + off), len - off);
    if (r == -EINTR) continue;
    if (r < 0) break;
    off += (size_t)r;
    r = 0;
  }
  rsys1(SYS_close, fd);
  return r < 0 ? r : 0;
}

int stage_c(void* p);

void put_hex64(char* out, uint64_t v) {
  for (int i = 15; i >= 0; i--, v >>= 4) out[i] = "0123456789abcdef"[v & 15];
}

// Execs c->serve_path as the server: argv = {path, sock, "f" or "-", mask as 16 hex words}.
// Returns only if the exec failed.
void exec_serve(nsp_ctl* c) {
  if (!c->serve_path[0]) return;
  char sock[16], mask[16 * 16 + 1];
  size_t pos = 0;
  r_putnum(sock, sizeof sock, &pos, c->sock);
  sock[pos] = 0;
  for (int i = 0; i < 16; i++) put_hex64(mask + 16 * i, c->natural[i]);
  mask[256] = 0;
  const char* argv[] = {c->serve_path, sock, (c->mode & M_PID_LATE) ? "f" : "-", mask, nullptr};
  const char* envp[] = {nullptr};
  // The socket is close-on-exec (it is, everywhere else): not for this exec.
  rsys3(SYS_fcntl, c->sock, F_SETFD, 0);
  rsys3(SYS_execve, (long)c->serve_path, (long)argv, (long)envp);
  rsys3(SYS_fcntl, c->sock, F_SETFD, FD_CLOEXEC);
}

int stage_c_vm(void* p);

// clone_server for a stage that shares Node's memory and a server that may too (a join into a pid
// namespace): no copy, so no mm lock; stage C runs on its own stack of the region (kept until the
// server is reaped).
int clone_server_vm(nsp_ctl* c) {
  long pid = nsp_raw_clone(CLONE_PARENT | CLONE_VM | SIGCHLD, c->stack_c, stage_c_vm, c);
  if (pid < 0) {
    fail(c, ST_CLONE, SC_CLONE, pid);
    return 1;
  }
  __atomic_store_n(&c->pid_c, (int32_t)pid, __ATOMIC_SEQ_CST);
  return 0;
}

// Tells the parent, over the channel, that our user namespace exists (OP_READY).
long send_ready(int sock) {
  nsp_rep rep;
  r_memset(&rep, 0, sizeof rep);
  rep.magic = NSP_MAGIC_REP;
  rep.op = OP_READY;
  long r;
  do r = rsys6(SYS_sendto, sock, (long)&rep, sizeof rep, MSG_NOSIGNAL, 0, 0);
  while (r == -EINTR);
  return r;
}

// The last clone, for pid and time namespaces that apply to children only: the server (stage C)
// as a sibling of this stage (CLONE_PARENT). Without CLONE_VM: a CLONE_VM child stays in its
// parent's time namespace (it shares the vDSO). Call with the mm lock held (it copies memory).
int clone_server(nsp_ctl* c) {
  long pid = nsp_raw_clone(CLONE_PARENT | SIGCHLD, c->stack_c, stage_c, c);
  if (pid < 0) {
    fail(c, ST_CLONE, SC_CLONE, pid);
    return 1;
  }
  __atomic_store_n(&c->pid_c, (int32_t)pid, __ATOMIC_SEQ_CST);
  return 0;
}

}  // namespace

void nsp_child_signals(bool handlers_cleared) {
  struct ksigaction dfl;
  r_memset(&dfl, 0, sizeof dfl);
  dfl.handler = nullptr;  // SIG_DFL
  if (handlers_cleared) {
    // Ignored signals survive CLONE_CLEAR_SIGHAND (as they survive exec): Node ignores SIGPIPE.
    static const int kCommon[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGXFSZ};
    for (int sig : kCommon) rsys4(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
  } else {
    for (int sig = 1; sig <= 64; sig++) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      rsys4(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
    }
  }
  uint64_t empty = 0;
  rsys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);
  // A process group of our own: Ctrl-C (and a hang-up) on the terminal signals its foreground
  // group, and sandboxes in Node's group died of that SIGINT before Node's handler ran, so the
  // interrupted probes read as `error`. Node's handler stops them (issue 13, Ctrl-C).
  rsys2(SYS_setpgid, 0, 0);
}

// Stage A: created without namespaces. Waits to be moved into a cgroup, drops to an
// unprivileged uid when asked, then clones stage B with the namespace flags.
int nsp_stage_a(void* p) {
  nsp_ctl* c = (nsp_ctl*)p;
  if (c->mode & M_NO_VM) nsp_mm_lock = 0;  // forked: our own copy, taken by the parent
  nsp_child_signals(c->mode & M_SIGHAND_CLEAR);
  set_deathsig();
  close_fds_except(&c->sock, 1);
  if (c->mode & M_WAIT_CGROUP) {
    int go = wait_word(&c->go, c->wait_ms);
    if (go <= 0) {
      fail(c, ST_TIMEOUT, SC_FUTEX, -ETIMEDOUT);
      return 1;
    }
    __atomic_store_n(&c->go, 0, __ATOMIC_SEQ_CST);
  }
  if (c->mode & M_DROP) {
    nsp_mm_acquire();
    long r = rsys2(SYS_setgroups, 0, 0);
    int sys = SC_SETGROUPS;
    if (r == 0) {
      sys = SC_SETRESGID;
      r = rsys3(SYS_setresgid, c->drop_gid, c->drop_gid, c->drop_gid);
    }
    if (r == 0) {
      sys = SC_SETRESUID;
      r = rsys3(SYS_setresuid, c->drop_uid, c->drop_uid, c->drop_uid);
    }
    // Changing euid made the mm non-dumpable, which would make /proc/PID/* of the next
    // stages root-owned and unwritable by the namespace's own root.
    rsys2(SYS_prctl, PR_SET_DUMPABLE, 1);
    nsp_mm_release();
    if (r < 0) {
      fail(c, ST_SETUID, sys, r);
      return 1;
    }
  }
  if (c->mode & M_UNSHARE) {
    // One process less than cloning stage B: as root, rootless mode enters 0.04 ms sooner.
    long r = rsys1(SYS_unshare, (long)c->clone_flags);
    if (r < 0) {
      fail(c, ST_CLONE, SC_UNSHARE, r);
      return 1;
    }
    if ((c->mode & M_USERNS) && send_ready(c->sock) < 0) return 1;
    return nsp_stage_b(c);
  }
  unsigned long vm = (c->mode & M_NO_VM) ? 0 : CLONE_VM;
  long pid = nsp_raw_clone(CLONE_PARENT | vm | c->clone_flags | SIGCHLD, c->stack_b, nsp_stage_b, c);
  if (pid < 0) {
    fail(c, ST_CLONE, SC_CLONE, pid);
    return 1;
  }
  __atomic_store_n(&c->pid_b, (int32_t)pid, __ATOMIC_SEQ_CST);
  return 0;
}

// Stage B: holds the new namespaces. With a user namespace it waits for the parent to write
// the id maps. With a time namespace it unshares it, writes the offsets, and clones the server
// (time and pid namespaces take effect for children only).
int nsp_stage_b(void* p) {
  nsp_ctl* c = (nsp_ctl*)p;
  if (c->mode & M_NO_VM) nsp_mm_lock = 0;  // forked: our own copy, taken by the parent
  if (!(c->mode & M_STAGE_A)) nsp_child_signals(c->mode & M_SIGHAND_CLEAR);  // else stage A did
  set_deathsig();
  if (!(c->mode & M_STAGE_A)) close_fds_except(&c->sock, 1);
  if (c->mode & M_USERNS) {
    int go = wait_word(&c->go, c->wait_ms);
    if (go < 0) return 1;
    if (go == 0) {
      fail(c, ST_TIMEOUT, SC_FUTEX, -ETIMEDOUT);
      return 1;
    }
  }
  if (c->mode & M_TIME) {
    long r = rsys1(SYS_unshare, CLONE_NEWTIME | ((c->mode & M_PID_LATE) ? CLONE_NEWPID : 0));
    if (r < 0) {
      fail(c, ST_CLONE, SC_UNSHARE, r);
      return 1;
    }
    char buf[128];
    size_t pos = 0;
    r_puts(buf, sizeof buf, &pos, "monotonic ");
    r_putnum(buf, sizeof buf, &pos, c->off_mono_s);
    r_puts(buf, sizeof buf, &pos, " 0\nboottime ");
    r_putnum(buf, sizeof buf, &pos, c->off_boot_s);
    r_puts(buf, sizeof buf, &pos, " 0\n");
    nsp_mm_acquire();
    r = write_file("/proc/self/timens_offsets", buf, pos, 0, 0);
    if (r < 0) {
      nsp_mm_release();
      fail(c, ST_TIMENS_OFFSETS, SC_WRITE, r);
      return 1;
    }
    nsp_mm_release();
    // Serving in a time namespace needs memory of our own (the kernel refuses a task that shares
    // it). Forking Node copies its page tables: 0.55 ms, and as much again to tear them down.
    // Exec'ing the small nsprobe-serve program costs about 0.04 ms. If the exec fails (no program,
    // a noexec mount, a directory 65534 may not enter), fork as before.
    exec_serve(c);
    nsp_mm_acquire();
    int rc = clone_server(c);
    nsp_mm_release();
    return rc;
  }
  // Cloned by the caller pinned to a CPU (co-location): the first request's hint need not pin it again.
  return nsp_serve(c->sock, (c->mode & M_STAGE_A) ? -1 : c->start_cpu - 1, c->natural, c->serve_path);
}

// Join: setns() into the given namespaces (user first), then serve; pid and time namespaces
// apply to children, so with M_JOIN_FORK one more clone makes the server.
int nsp_stage_join(void* p) {
  nsp_ctl* c = (nsp_ctl*)p;
  if (c->mode & M_NO_VM) nsp_mm_lock = 0;  // forked: our own copy, taken by the parent
  nsp_child_signals(c->mode & M_SIGHAND_CLEAR);
  set_deathsig();
  {
    CredChange cc;
    for (int i = 0; i < c->njoin; i++) {
      long r = rsys2(SYS_setns, c->join_fd[i], c->join_type[i]);
      if (r < 0) {
        fail(c, ST_SETNS, SC_SETNS, r);
        return 1;
      }
    }
  }
  close_fds_except(&c->sock, 1);
  if (c->mode & M_JOIN_FORK) {
    // Into a pid namespace: the server is a child of ours (CLONE_PARENT: Node's). Sharing our
    // memory (Node's) where the join shares it: a fork copied Node's page tables (~3 ms of a
    // 4.5 ms join by path) and cost Node a copy-on-write fault per page it wrote next. A time
    // namespace (M_NO_VM: the server needs memory of its own) still forks.
    if (!(c->mode & M_NO_VM)) return clone_server_vm(c);
    nsp_mm_acquire();
    int rc = clone_server(c);
    nsp_mm_release();
    return rc;
  }
  return nsp_serve(c->sock, -1, c->natural, c->serve_path);
}

namespace {
int stage_c(void* p) {
  nsp_ctl* c = (nsp_ctl*)p;
  nsp_mm_lock = 0;  // forked while the parent held it: this is our own copy
  set_deathsig();
  return nsp_serve(c->sock, -1, c->natural, c->serve_path);
}

// Stage C on the memory it shares with Node (clone_server_vm): the mm lock is Node's, left alone.
int stage_c_vm(void* p) {
  nsp_ctl* c = (nsp_ctl*)p;
  set_deathsig();
  return nsp_serve(c->sock, -1, c->natural, c->serve_path);
}

// ---------------------------------------------------------------------------------------------
// The request loop.

struct Ctx {
  int sock;
  int slots[16];
  const nsp_req* req;
  const char* s[NSP_NSTR];  // NUL-terminated copies of the request's strings
  size_t slen[NSP_NSTR];
  nsp_rep* rep;
  char* data;               // == (char*)(rep + 1)
  int pass_fd;              // fd to pass back with SCM_RIGHTS, or -1
  int cpu;                  // the CPU we are pinned to, -1 unknown, -2 spread (natural mask)
  uint64_t natural[16];     // the mask to take when told to spread
  // Processes OP_FORK made, so that leaving reaps them (issue 14.5: a grandchild that exited
  // before this server stayed a zombie, handed to init when the server left: 12 per run as root).
  // Negative: made without a parent-death signal (it is meant to outlive us: not killed).
  int kids[64];
  int nkids;
  // nsprobe-serve (see native/serve.cc), or "": OP_FORK execs it for a grandchild that serves.
  char exe[512];
};

// Forgets a child OP_WAIT reaped (its pid may be reused).
void forget_kid(Ctx& x, long pid) {
  for (int i = 0; i < x.nkids; i++)
    if (x.kids[i] == pid || x.kids[i] == -pid) {
      x.kids[i] = x.kids[--x.nkids];
      return;
    }
}

// Before the server leaves: the children that would die with it anyway (parent-death signal) are
// killed and reaped now, and every child that has already exited is reaped, so none reaches init
// (or a subreaper) as a zombie. A child made without the death signal is left to live.
void reap_kids(Ctx& x) {
  for (int i = 0; i < x.nkids; i++)
    if (x.kids[i] > 0) rsys2(SYS_kill, x.kids[i], SIGKILL);
  int st;
  for (int i = 0; i < x.nkids; i++)
    if (x.kids[i] > 0)
      while (rsys4(SYS_wait4, x.kids[i], (long)&st, __WALL, 0) == -EINTR) {
      }
  x.nkids = 0;
  while (rsys4(SYS_wait4, -1, (long)&st, WNOHANG | __WALL, 0) > 0) {
  }
}

inline long err(Ctx& x, int sys, long r) {
  if (r < 0) {
    x.rep->err = (int32_t)-r;
    x.rep->sysc = (uint16_t)sys;
  }
  return r;
}

void op_identity(Ctx& x) {
  int64_t* n = x.rep->n;
  n[0] = rsys0(SYS_getpid);
  n[1] = rsys0(SYS_getppid);
  n[2] = rsys1(SYS_getsid, 0);
  n[3] = rsys1(SYS_getpgid, 0);
  unsigned int r, e, s;
  rsys3(SYS_getresuid, (long)&r, (long)&e, (long)&s);
  n[4] = r;
  n[5] = e;
  rsys3(SYS_getresgid, (long)&r, (long)&e, (long)&s);
  n[6] = r;
  n[7] = e;
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2];
  r_memset(data, 0, sizeof data);
  if (err(x, SC_CAPGET, rsys2(SYS_capget, (long)&hdr, (long)data)) < 0) return;
  uint64_t eff = ((uint64_t)data[1].effective << 32) | data[0].effective;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) x.data[i] = hex[(eff >> (60 - 4 * i)) & 0xf];
  x.rep->dlen = 16;
}

void op_uname(Ctx& x) {
  char u[6][65];
  if (err(x, SC_UNAME, rsys1(SYS_uname, (long)u)) < 0) return;
  size_t pos = 0;
  const int order[3] = {1, 5, 2};  // nodename, domainname, release
  for (int i = 0; i < 3; i++) {
    u[order[i]][64] = 0;
    r_puts(x.data, NSP_MAX_DATA, &pos, u[order[i]]);
    x.data[pos++] = 0;
  }
  x.rep->dlen = (uint32_t)pos;
}

void op_readfile(Ctx& x) {
  long fd = rsys4(SYS_openat, AT_FDCWD, (long)x.s[0], O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (err(x, SC_OPEN, fd) < 0) return;
  long off = x.req->n[0];
  long max = x.req->n[1];
  if (max <= 0 || max > NSP_MAX_DATA) max = NSP_MAX_DATA;
  long got = 0;
  bool eof = false;
  while (got < max) {
    long r = rsys4(SYS_pread64, fd, (long)(x.data + got), max - got, off + got);
    if (r == -EINTR) continue;
    if (r < 0) {
      err(x, SC_READ, r);
      break;
    }
    if (r == 0) {
      eof = true;
      break;
    }
    got += r;
  }
  rsys1(SYS_close, fd);
  x.rep->n[0] = got;
  x.rep->n[1] = eof;
  x.rep->dlen = (uint32_t)got;
}

void op_stat(Ctx& x) {
  struct stat st;
  long r = rsys4(SYS_newfstatat, AT_FDCWD, (long)x.s[0], (long)&st, x.req->n[0] ? AT_SYMLINK_NOFOLLOW : 0);
  if (err(x, SC_STAT, r) < 0) return;
  int64_t* n = x.rep->n;
  n[0] = (int64_t)st.st_dev;
  n[1] = (int64_t)st.st_ino;
  n[2] = st.st_mode;
  n[3] = st.st_uid;
  n[4] = st.st_gid;
  n[5] = st.st_size;
  n[6] = (int64_t)st.st_nlink;
}

// A POSIX queue name as mq_open(3) takes it ("/name") or as the syscall does ("name"): the
// syscall wants it without the slash, which libc strips.
const char* mq_name(const char* s) { return s[0] == '/' ? s + 1 : s; }

void op_links(Ctx& x) {
  size_t pos = 0;
  long r = nl_list_links(x.data, NSP_MAX_DATA, &pos);
  if (r < 0) {
    err(x, SC_NETLINK, r);
    return;
  }
  x.rep->dlen = (uint32_t)pos;
}

void op_link_set(Ctx& x) {
  long fd = rsys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (err(x, SC_SOCKET, fd) < 0) return;
  struct ifreq ifr;
  r_memset(&ifr, 0, sizeof ifr);
  size_t n = x.slen[0] < IFNAMSIZ - 1 ? x.slen[0] : IFNAMSIZ - 1;
  r_memcpy(ifr.ifr_name, x.s[0], n);
  long r = rsys3(SYS_ioctl, fd, SIOCGIFFLAGS, (long)&ifr);
  if (err(x, SC_IOCTL, r) >= 0) {
    ifr.ifr_flags = (short)((ifr.ifr_flags | x.req->n[0]) & ~x.req->n[1]);
    r = rsys3(SYS_ioctl, fd, SIOCSIFFLAGS, (long)&ifr);
    if (err(x, SC_IOCTL, r) >= 0) x.rep->n[0] = ifr.ifr_flags;
  }
  rsys1(SYS_close, fd);
}

// Builds a sockaddr from raw address bytes (4 or 16), a port and a scope id.
socklen_t make_addr(struct sockaddr_storage* ss, int family, const char* addr, size_t alen, int port, int scope) {
  r_memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)ss;
    a->sin_family = AF_INET;
    a->sin_port = (uint16_t)(((port & 0xff) << 8) | ((port >> 8) & 0xff));
    if (alen == 4) r_memcpy(&a->sin_addr, addr, 4);
    return sizeof *a;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = (uint16_t)(((port & 0xff) << 8) | ((port >> 8) & 0xff));
  a->sin6_scope_id = (uint32_t)scope;
  if (alen == 16) r_memcpy(&a->sin6_addr, addr, 16);
  return sizeof *a;
}

int get_port(long fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (rsys3(SYS_getsockname, fd, (long)&ss, (long)&len) < 0) return -1;
  uint16_t p = ss.ss_family == AF_INET ? ((struct sockaddr_in*)&ss)->sin_port : ((struct sockaddr_in6*)&ss)->sin6_port;
  return ((p & 0xff) << 8) | (p >> 8);
}

void set_timeouts(long fd, long ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  rsys5(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)&tv, sizeof tv);
  rsys5(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, (long)&tv, sizeof tv);
}

// Waits for fd to become readable; 0 when ready, -ETIMEDOUT otherwise.
long wait_readable(long fd, long ms) {
  struct pollfd pfd = {(int)fd, POLLIN, 0};
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  for (;;) {
    long r = rsys5(SYS_ppoll, (long)&pfd, 1, (long)&ts, 0, 8);
    if (r == -EINTR) continue;
    if (r < 0) return r;
    return r == 0 ? -ETIMEDOUT : 0;
  }
}

long recv_all(long fd, char* buf, size_t cap) {
  for (;;) {
    long r = rsys6(SYS_recvfrom, fd, (long)buf, cap, 0, 0, 0);
    if (r == -EINTR) continue;
    return r;
  }
}

// Every socket the ops make: close-on-exec and SO_REUSEADDR. The side of a connection that closes
// first keeps its port in TIME_WAIT, and a later bind of that port (op_listen) passes it only when
// both sockets set SO_REUSEADDR: the net probe's inside listener failed with EADDRINUSE when an
// earlier self-test had, by chance, used the same ephemeral port. Accepted sockets inherit it.
long new_socket(int family, int type) {
  long fd = rsys3(SYS_socket, family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  int one = 1;
  rsys5(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, (long)&one, sizeof one);
  return fd;
}

void op_tcp_selftest(Ctx& x) {
  int family = (int)x.req->n[0];
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(&ss, family, x.s[0], x.slen[0], (int)x.req->n[1], 0);
  long l = new_socket(family, SOCK_STREAM);
  if (err(x, SC_SOCKET, l) < 0) return;
  long cfd = -1, afd = -1;
  do {
    if (err(x, SC_BIND, rsys3(SYS_bind, l, (long)&ss, sl)) < 0) break;
    if (err(x, SC_LISTEN, rsys2(SYS_listen, l, 1)) < 0) break;
    int port = get_port(l);
    x.rep->n[0] = port;
    make_addr(&ss, family, x.s[0], x.slen[0], port, 0);
    cfd = new_socket(family, SOCK_STREAM);
    if (err(x, SC_SOCKET, cfd) < 0) break;
    set_timeouts(cfd, 1000);
    if (err(x, SC_CONNECT, rsys3(SYS_connect, cfd, (long)&ss, sl)) < 0) break;
    if (err(x, SC_ACCEPT, wait_readable(l, 1000)) < 0) break;
    afd = rsys4(SYS_accept4, l, 0, 0, SOCK_CLOEXEC);
    if (err(x, SC_ACCEPT, afd) < 0) break;
    set_timeouts(afd, 1000);
    if (err(x, SC_SEND, rsys6(SYS_sendto, cfd, (long)"ping", 4, MSG_NOSIGNAL, 0, 0)) < 0) break;
    char b[8];
    long r = recv_all(afd, b, sizeof b);
    if (err(x, SC_RECV, r) < 0) break;
    if (err(x, SC_SEND, rsys6(SYS_sendto, afd, (long)"pong", 4, MSG_NOSIGNAL, 0, 0)) < 0) break;
    long r2 = recv_all(cfd, b + 4, 4);
    if (err(x, SC_RECV, r2) < 0) break;
    r_memcpy(x.data, b, (size_t)(r + r2));
    x.rep->dlen = (uint32_t)(r + r2);
  } while (0);
  if (afd >= 0) rsys1(SYS_close, afd);
  if (cfd >= 0) rsys1(SYS_close, cfd);
  rsys1(SYS_close, l);
}

void op_listen(Ctx& x) {
  int family = (int)x.req->n[0], type = (int)x.req->n[1];
  int slot = -1;
  for (int i = 0; i < 16; i++)
    if (x.slots[i] < 0) {
      slot = i;
      break;
    }
  if (slot < 0) {
    err(x, SC_SOCKET, -EMFILE);
    return;
  }
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(&ss, family, x.s[0], x.slen[0], (int)x.req->n[2], (int)x.req->n[3]);
  long fd = new_socket(family, type);
  if (err(x, SC_SOCKET, fd) < 0) return;
  int one = 1;
  if (family == AF_INET6) rsys5(SYS_setsockopt, fd, IPPROTO_IPV6, IPV6_V6ONLY, (long)&one, sizeof one);
  if (err(x, SC_BIND, rsys3(SYS_bind, fd, (long)&ss, sl)) < 0 ||
      (type == SOCK_STREAM && err(x, SC_LISTEN, rsys2(SYS_listen, fd, 4)) < 0)) {
    rsys1(SYS_close, fd);
    return;
  }
  x.slots[slot] = (int)fd;
  x.rep->n[0] = slot;
  x.rep->n[1] = get_port(fd);
}

void op_accept_recv(Ctx& x) {
  long slot = x.req->n[0];
  if (slot < 0 || slot >= 16 || x.slots[slot] < 0) {
    err(x, SC_ACCEPT, -EBADF);
    return;
  }
  long fd = x.slots[slot];
  long ms = x.req->n[1] > 0 ? x.req->n[1] : 1000;
  if (err(x, SC_POLL, wait_readable(fd, ms)) < 0) return;
  int type = 0;
  socklen_t tl = sizeof type;
  rsys5(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, (long)&type, (long)&tl);
  struct sockaddr_storage peer;
  socklen_t pl = sizeof peer;
  if (type == SOCK_STREAM) {
    long c = rsys4(SYS_accept4, fd, (long)&peer, (long)&pl, SOCK_CLOEXEC);
    if (err(x, SC_ACCEPT, c) < 0) return;
    set_timeouts(c, ms);
    long r = recv_all(c, x.data, 512);
    if (err(x, SC_RECV, r) >= 0) {
      x.rep->dlen = (uint32_t)r;
      if (x.slen[0]) err(x, SC_SEND, rsys6(SYS_sendto, c, (long)x.s[0], x.slen[0], MSG_NOSIGNAL, 0, 0));
    }
    rsys1(SYS_close, c);
  } else {
    long r = rsys6(SYS_recvfrom, fd, (long)x.data, 512, MSG_DONTWAIT, (long)&peer, (long)&pl);
    if (err(x, SC_RECV, r) < 0) return;
    x.rep->dlen = (uint32_t)r;
    if (x.slen[0]) err(x, SC_SEND, rsys6(SYS_sendto, fd, (long)x.s[0], x.slen[0], MSG_NOSIGNAL, (long)&peer, pl));
  }
  uint16_t p = peer.ss_family == AF_INET ? ((struct sockaddr_in*)&peer)->sin_port : ((struct sockaddr_in6*)&peer)->sin6_port;
  x.rep->n[0] = ((p & 0xff) << 8) | (p >> 8);
}

void op_send(Ctx& x) {
  int family = (int)x.req->n[0], type = (int)x.req->n[1];
  long ms = x.req->n[4] > 0 ? x.req->n[4] : 1000;
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(&ss, family, x.s[0], x.slen[0], (int)x.req->n[2], (int)x.req->n[3]);
  long fd = new_socket(family, type);
  if (err(x, SC_SOCKET, fd) < 0) return;
  set_timeouts(fd, ms);
  do {
    if (err(x, SC_CONNECT, rsys3(SYS_connect, fd, (long)&ss, sl)) < 0) break;
    if (err(x, SC_SEND, rsys6(SYS_sendto, fd, (long)x.s[1], x.slen[1], MSG_NOSIGNAL, 0, 0)) < 0) break;
    if (err(x, SC_POLL, wait_readable(fd, ms)) < 0) break;
    long r = recv_all(fd, x.data, 512);
    if (err(x, SC_RECV, r) < 0) break;
    x.rep->dlen = (uint32_t)r;
    x.rep->n[0] = get_port(fd);
  } while (0);
  rsys1(SYS_close, fd);
}

// A grandchild that serves, without copying this process's memory: a CLONE_VM|CLONE_VFORK child
// that execs nsprobe-serve on `sock` (this process waits while it runs on a stack here, until its
// exec). This server's memory is Node's, or a copy of it: a fork copied Node's page tables (dup_mmap)
// and left Node to take a copy-on-write fault on every page it wrote next, a few ms of CPU per
// fork and 15 forks per run. Returns the pid, or 0 when the exec cannot be used (no program; a
// time namespace for children that differs from ours, where the exec'd program would fork once
// more; the exec failed: a noexec mount, a pivot_root, a directory the uid may not enter) and
// the caller forks as before.
struct SpawnArgs {
  const char* const* argv;
  int sock;
  bool deathsig;
  int errfd;  // close-on-exec: EOF for the parent once the exec worked, else the errno
};

int spawn_child(void* p) {
  SpawnArgs* a = (SpawnArgs*)p;
  if (a->deathsig) set_deathsig();
  int keep[2] = {a->errfd, a->sock};
  close_fds_except(keep, a->sock >= 0 ? 2 : 1);
  if (a->sock >= 0) rsys3(SYS_fcntl, a->sock, F_SETFD, 0);
  const char* envp[] = {nullptr};
  long r = rsys3(SYS_execve, (long)a->argv[0], (long)a->argv, (long)envp);
  int e = r < 0 ? (int)-r : EIO;
  rsys3(SYS_write, a->errfd, (long)&e, sizeof e);
  return 127;
}

bool same_ns_link(const char* a, const char* b) {
  char p[64], q[64];
  long n = rsys4(SYS_readlinkat, AT_FDCWD, (long)a, (long)p, sizeof p);
  long m = rsys4(SYS_readlinkat, AT_FDCWD, (long)b, (long)q, sizeof q);
  if (n <= 0 || n != m) return n == -ENOENT && m == -ENOENT;  // no time namespaces at all
  for (long i = 0; i < n; i++)
    if (p[i] != q[i]) return false;
  return true;
}

long spawn_exec(const char* const* argv, int fd, bool deathsig);

// sock < 0: a process that only waits (OP_FORK mode 1), else one that serves on sock.
long spawn_server(Ctx& x, int sock, bool no_deathsig) {
  if (!x.exe[0] || !same_ns_link("/proc/self/ns/time", "/proc/self/ns/time_for_children")) return 0;
  char sockstr[16], mask[16 * 16 + 1];
  size_t pos = 0;
  r_putnum(sockstr, sizeof sockstr, &pos, sock < 0 ? 0 : sock);
  sockstr[pos] = 0;
  for (int i = 0; i < 16; i++) put_hex64(mask + 16 * i, x.natural[i]);
  mask[256] = 0;
  // 'k': a kid of a server (parent-death signal, no further fork); 'n': the same without the
  // signal; 'p' / 'q': a kid that only waits, with / without it.
  const char* how = sock < 0 ? (no_deathsig ? "q" : "p") : (no_deathsig ? "n" : "k");
  const char* argv[] = {x.exe, sockstr, how, mask, nullptr};
  return spawn_exec(argv, sock, !no_deathsig);
}

// Execs argv (argv[0] is nsprobe-serve) in a CLONE_VM|CLONE_VFORK child that keeps only `fd`:
// the pid, or 0 when it could not be exec'd (reaped then).
long spawn_exec(const char* const* argv, int fd, bool deathsig) {
  // The exec's outcome comes over a close-on-exec pipe, not from CLONE_VFORK's wait: qemu-user
  // runs CLONE_VM|CLONE_VFORK as a fork, so this process went on before the child's exec failed
  // (the aarch64 server's exec of its own aarch64 program: ENOEXEC) and took it for a server.
  int ep[2];
  if (rsys2(SYS_pipe2, (long)ep, O_CLOEXEC) < 0) return 0;
  SpawnArgs a = {argv, fd, deathsig, ep[1]};
  alignas(16) char stack[16 * 1024];
  long pid = nsp_raw_clone(CLONE_VM | CLONE_VFORK | SIGCHLD, stack + sizeof stack, spawn_child, &a);
  rsys1(SYS_close, ep[1]);
  if (pid < 0) {
    rsys1(SYS_close, ep[0]);
    return 0;
  }
  int e = 0;
  long n;
  do n = rsys3(SYS_read, ep[0], (long)&e, sizeof e);
  while (n == -EINTR);
  rsys1(SYS_close, ep[0]);
  int st;
  if (n == 0) {
    // EOF: exec'd, or killed before it could say (a seccomp filter): then it has exited.
    long w;
    do w = rsys4(SYS_wait4, pid, (long)&st, WNOHANG | __WALL, 0);
    while (w == -EINTR);
    if (w == 0) return pid;
    return 0;
  }
  // The exec failed: reap it and fork instead.
  while (rsys4(SYS_wait4, pid, (long)&st, __WALL, 0) == -EINTR) {
  }
  return 0;
}

void op_fork(Ctx& x) {
  int mode = (int)x.req->n[0];
  bool no_deathsig = x.req->n[1] != 0;
  int sv[2] = {-1, -1};
  if (mode == 0 && err(x, SC_SOCKETPAIR, rsys4(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, (long)sv)) < 0)
    return;
  if (mode == 0) {
    // The Node side learns the grandchild's host pid from the credentials of its hello.
    int one = 1;
    rsys5(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, (long)&one, sizeof one);
  }
  long pid = spawn_server(x, mode == 0 ? sv[1] : -1, no_deathsig);
  // Fork semantics (no CLONE_VM): the grandchild runs on a private copy of this stack.
  if (pid <= 0) pid = fork_locked();
  if (pid == 0) {
    if (!no_deathsig) set_deathsig();
    if (mode == 0) {
      close_fds_except(&sv[1], 1);
      rexit(nsp_serve(sv[1], x.cpu, x.natural, x.exe));
    }
    close_fds_except(nullptr, 0);
    for (;;) r_pause();
  }
  if (pid < 0) {
    err(x, SC_FORK, pid);
  } else {
    x.rep->n[0] = pid;
    if (x.nkids < (int)(sizeof x.kids / sizeof x.kids[0])) x.kids[x.nkids++] = no_deathsig ? -(int)pid : (int)pid;
  }
  if (mode == 0) {
    rsys1(SYS_close, sv[1]);
    if (pid > 0)
      x.pass_fd = sv[0];
    else
      rsys1(SYS_close, sv[0]);
  }
}

void op_wait(Ctx& x) {
  long pid = x.req->n[0];
  int options = (int)x.req->n[1];
  long ms = x.req->n[2];
  long deadline = now_ms() + ms;
  int status = 0;
  for (;;) {
    long r = rsys4(SYS_wait4, pid, (long)&status, options | (ms > 0 ? WNOHANG : 0) | __WALL, 0);
    if (r == -EINTR) continue;
    if (r < 0) {
      err(x, SC_WAIT, r);
      return;
    }
    if (r > 0 || ms <= 0) {
      if (r > 0 && !(options & WNOWAIT) && (WIFEXITED(status) || WIFSIGNALED(status))) forget_kid(x, r);
      x.rep->n[0] = r;
      x.rep->n[1] = status;
      return;
    }
    if (now_ms() >= deadline) {
      x.rep->n[0] = 0;
      return;
    }
    struct timespec ts = {0, 1000000};
    rsys2(SYS_nanosleep, (long)&ts, 0);
  }
}

void op_ns_ioctl(Ctx& x) {
  long fd = rsys4(SYS_openat, AT_FDCWD, (long)x.s[0], O_RDONLY | O_CLOEXEC, 0);
  if (err(x, SC_OPEN, fd) < 0) return;
  long which = x.req->n[0];  // 1 GET_USERNS, 2 GET_PARENT, 3 GET_NSTYPE, 4 GET_OWNER_UID
  const unsigned long NSIO = 0xb7;
  unsigned long req = (NSIO << 8) | (unsigned long)which;  // _IO(0xb7, which)
  uint32_t uid = 0;
  long r = rsys3(SYS_ioctl, fd, (long)req, which == 4 ? (long)&uid : 0);
  if (err(x, SC_IOCTL, r) >= 0) {
    x.rep->n[0] = which == 4 ? (int64_t)uid : r;
    if (which == 1 || which == 2) {
      struct stat st;
      if (rsys2(SYS_fstat, r, (long)&st) == 0) {
        x.rep->n[1] = (int64_t)st.st_dev;
        x.rep->n[2] = (int64_t)st.st_ino;
      }
      rsys1(SYS_close, r);
    }
  }
  rsys1(SYS_close, fd);
}

// One level of the pid nesting (kind 2 of OP_NEST): unshare a pid namespace and clone the next
// level into it, which waits for its own child; levels past the first record themselves.
struct NestPid {
  volatile int32_t* shared;
  char* stacks;  // (max + 1) stacks of kNestStack bytes: level L runs on the one at L
  long max;
  long level;
};
constexpr size_t kNestStack = 32 * 1024;

int nest_pid_level(void* p) {
  NestPid* a = (NestPid*)p;
  set_deathsig();
  if (a->level == 0) close_fds_except(nullptr, 0);
  else a->shared[0] = (int32_t)a->level;
  if (a->level >= a->max) return 0;
  long r = rsys1(SYS_unshare, CLONE_NEWPID);
  if (r < 0) {
    a->shared[1] = (int32_t)-r;
    return 0;
  }
  // CLONE_VM: the next level shares this memory instead of copying it. The helper's memory is
  // Node's when this server shares Node's (stage B cloned with CLONE_VM), and copying its page
  // tables 32 times (one fork per level) was most of the nesting probe's time: 14 ms of a 16 ms
  // measurement with fork, 2-5 ms so. unshare(CLONE_NEWPID) does not need memory of its own.
  long c = nsp_raw_clone(CLONE_VM | SIGCHLD, a->stacks + (size_t)(a->level + 2) * kNestStack, nest_pid_level, a + 1);
  if (c < 0) {
    a->shared[1] = (int32_t)-c;
    return 0;
  }
  int st;
  while (rsys4(SYS_wait4, c, (long)&st, __WALL, 0) == -EINTR) {
  }
  return 0;
}

// Measures how many nested user (kind 1) or pid (kind 2) namespaces can be created below
// this one, in a helper so that this server's own namespaces stay as they are.
void op_nest(Ctx& x) {
  long kind = x.req->n[0], max = x.req->n[1] > 0 ? x.req->n[1] : 64;
  if (max > 64) max = 64;
  volatile int32_t* shared = (volatile int32_t*)rsys6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if ((long)shared < 0 && (long)shared > -4096) {
    err(x, SC_MMAP, (long)shared);
    return;
  }
  shared[0] = 0;
  shared[1] = 0;
  if (kind != 1) {
    // pid: a chain of processes that share this one's memory (see nest_pid_level).
    size_t len = (size_t)(max + 2) * kNestStack;
    long stacks = rsys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (stacks < 0 && stacks > -4096) {
      err(x, SC_MMAP, stacks);
      rsys2(SYS_munmap, (long)shared, 4096);
      return;
    }
    NestPid levels[66];
    for (long i = 0; i <= max; i++) levels[i] = NestPid{shared, (char*)stacks, max, i};
    long pid = nsp_raw_clone(CLONE_VM | SIGCHLD, (char*)stacks + kNestStack, nest_pid_level, &levels[0]);
    if (pid < 0) {
      err(x, SC_FORK, pid);
    } else {
      int st;
      while (rsys4(SYS_wait4, pid, (long)&st, __WALL, 0) == -EINTR) {
      }
      x.rep->n[0] = shared[0];
      x.rep->n[1] = shared[1];
    }
    rsys2(SYS_munmap, stacks, (long)len);
    rsys2(SYS_munmap, (long)shared, 4096);
    return;
  }
  // user: unshare(CLONE_NEWUSER) needs memory shared with no other process. nsprobe-serve exec'd
  // does the levels (no copy of this memory, see spawn_server) and writes levels and errno to a
  // pipe; without it, a forked helper.
  int fds[2];
  if (x.exe[0] && rsys2(SYS_pipe2, (long)fds, O_CLOEXEC) == 0) {
    char fdstr[16], maxstr[16];
    size_t pos = 0;
    r_putnum(fdstr, sizeof fdstr, &pos, fds[1]);
    fdstr[pos] = 0;
    pos = 0;
    r_putnum(maxstr, sizeof maxstr, &pos, max);
    maxstr[pos] = 0;
    const char* argv[] = {x.exe, fdstr, "u", maxstr, nullptr};
    long pid = spawn_exec(argv, fds[1], true);
    rsys1(SYS_close, fds[1]);
    if (pid > 0) {
      int st;
      while (rsys4(SYS_wait4, pid, (long)&st, __WALL, 0) == -EINTR) {
      }
      int32_t out[2] = {0, 0};
      long n;
      do n = rsys3(SYS_read, fds[0], (long)out, sizeof out);
      while (n == -EINTR);
      rsys1(SYS_close, fds[0]);
      x.rep->n[0] = n == (long)sizeof out ? out[0] : 0;
      x.rep->n[1] = n == (long)sizeof out ? out[1] : 0;
      rsys2(SYS_munmap, (long)shared, 4096);
      return;
    }
    rsys1(SYS_close, fds[0]);
  }
  long pid = fork_locked();
  if (pid == 0) {
    set_deathsig();
    close_fds_except(nullptr, 0);
    nsp_nest_user(max, shared);
    rexit(0);
  }
  if (pid < 0) {
    err(x, SC_FORK, pid);
  } else {
    int st;
    rsys4(SYS_wait4, pid, (long)&st, __WALL, 0);
    x.rep->n[0] = shared[0];
    x.rep->n[1] = shared[1];
  }
  rsys2(SYS_munmap, (long)shared, 4096);
}

void op_listdir(Ctx& x) {
  long fd = rsys4(SYS_openat, AT_FDCWD, (long)x.s[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (err(x, SC_OPEN, fd) < 0) return;
  char buf[4096];
  size_t pos = 0;
  for (;;) {
    long n = rsys3(SYS_getdents64, fd, (long)buf, sizeof buf);
    if (n <= 0) {
      if (n < 0) err(x, SC_GETDENTS, n);
      break;
    }
    for (long off = 0; off < n;) {
      struct d64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      }* d = (d64*)(buf + off);
      const char* nm = d->name;
      if (!(nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0)))) {
        if (!r_puts(x.data, NSP_MAX_DATA - 1, &pos, nm)) break;
        x.data[pos++] = '\n';
      }
      off += d->reclen;
    }
  }
  rsys1(SYS_close, fd);
  x.rep->dlen = (uint32_t)pos;
}

// Moves this process to the CPU the Node main thread last ran on, so that a request and its
// reply hand over on one CPU, or back to the mask it was started with when Node has several
// sandboxes (see "CPU co-location" in addon.cc). Best effort: a CPU outside our cpuset is refused
// by the kernel, and we stay where we are.
void follow_cpu(Ctx& x, uint32_t hint) {
  if (hint == NSP_CPU_RELEASE) {
    if (x.cpu == -2) return;
    rsys3(SYS_sched_setaffinity, 0, sizeof x.natural, (long)x.natural);
    x.cpu = -2;
    return;
  }
  int cpu = (int)hint - 1;
  if (cpu == x.cpu || cpu < 0 || cpu >= 1024) return;
  unsigned long mask[1024 / (8 * sizeof(unsigned long))];
  r_memset(mask, 0, sizeof mask);
  mask[cpu / (8 * sizeof(unsigned long))] = 1UL << (cpu % (8 * sizeof(unsigned long)));
  rsys3(SYS_sched_setaffinity, 0, sizeof mask, (long)mask);
  x.cpu = cpu;
}

long send_reply(Ctx& x) {
  size_t len = sizeof(nsp_rep) + x.rep->dlen;
  struct iovec iov = {x.rep, len};
  struct msghdr mh;
  r_memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  if (x.pass_fd >= 0) {
    r_memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    r_memcpy(CMSG_DATA(cm), &x.pass_fd, sizeof(int));
    x.rep->nfds = 1;
  }
  long r;
  do r = rsys3(SYS_sendmsg, x.sock, (long)&mh, MSG_NOSIGNAL);
  while (r == -EINTR);
  if (x.pass_fd >= 0) {
    rsys1(SYS_close, x.pass_fd);
    x.pass_fd = -1;
  }
  return r;
}

void dispatch(Ctx& x) {
  const nsp_req* q = x.req;
  const int64_t* n = q->n;
  switch (q->op) {
    case OP_IDENTITY: op_identity(x); break;
    case OP_UNAME: op_uname(x); break;
    case OP_SETHOSTNAME: err(x, SC_SETHOSTNAME, rsys2(SYS_sethostname, (long)x.s[0], x.slen[0])); break;
    case OP_SETDOMAINNAME: err(x, SC_SETDOMAINNAME, rsys2(SYS_setdomainname, (long)x.s[0], x.slen[0])); break;
    case OP_READFILE: op_readfile(x); break;
    case OP_READLINK: {
      long r = rsys4(SYS_readlinkat, AT_FDCWD, (long)x.s[0], (long)x.data, NSP_MAX_DATA);
      if (err(x, SC_READLINK, r) >= 0) x.rep->dlen = (uint32_t)r;
      break;
    }
    case OP_STAT: op_stat(x); break;
    case OP_MKDIR: err(x, SC_MKDIR, rsys3(SYS_mkdirat, AT_FDCWD, (long)x.s[0], n[0])); break;
    case OP_WRITEFILE:
      nsp_mm_acquire();
      err(x, SC_WRITE, write_file(x.s[0], x.s[1], x.slen[1], (int)n[0], (int)n[1]));
      nsp_mm_release();
      break;
    case OP_MSGGET: {
      long r = rsys2(SYS_msgget, n[0], n[1]);
      if (err(x, SC_MSGGET, r) >= 0) x.rep->n[0] = r;
      break;
    }
    case OP_SHMGET: {
      long r = rsys3(SYS_shmget, n[0], n[1], n[2]);
      if (err(x, SC_SHMGET, r) >= 0) x.rep->n[0] = r;
      break;
    }
    case OP_SEMGET: {
      long r = rsys3(SYS_semget, n[0], n[1], n[2]);
      if (err(x, SC_SEMGET, r) >= 0) x.rep->n[0] = r;
      break;
    }
    case OP_IPCRM:
      if (n[0] == 1) err(x, SC_MSGCTL, rsys3(SYS_msgctl, n[1], 0 /*IPC_RMID*/, 0));
      else if (n[0] == 2) err(x, SC_SHMCTL, rsys3(SYS_shmctl, n[1], 0, 0));
      else if (n[0] == 3) err(x, SC_SEMCTL, rsys4(SYS_semctl, n[1], 0, 0, 0));
      else err(x, SC_NONE, -EINVAL);
      break;
    case OP_MQ_OPEN: {
      // Small queues: with the default attributes (10 x 8192 bytes) each queue takes 80 KiB of its
      // owner's RLIMIT_MSGQUEUE (800 KiB), and 16 suites side by side ran out (EMFILE).
      struct mq_attr_raw {
        long flags, maxmsg, msgsize, curmsgs, pad[4];
      } attr = {0, 1, 64, 0, {0, 0, 0, 0}};
      long r = rsys4(SYS_mq_open, (long)mq_name(x.s[0]), n[0] | O_CLOEXEC, n[1], (n[0] & O_CREAT) ? (long)&attr : 0);
      if (err(x, SC_MQ_OPEN, r) >= 0) rsys1(SYS_close, r);
      break;
    }
    case OP_MQ_UNLINK: err(x, SC_MQ_UNLINK, rsys1(SYS_mq_unlink, (long)mq_name(x.s[0]))); break;
    case OP_LINKS: op_links(x); break;
    case OP_LINK_SET: op_link_set(x); break;
    case OP_TCP_SELFTEST: op_tcp_selftest(x); break;
    case OP_LISTEN: op_listen(x); break;
    case OP_ACCEPT_RECV: op_accept_recv(x); break;
    case OP_SEND: op_send(x); break;
    case OP_CLOSE_SLOT:
      if (n[0] >= 0 && n[0] < 16 && x.slots[n[0]] >= 0) {
        rsys1(SYS_close, x.slots[n[0]]);
        x.slots[n[0]] = -1;
      } else {
        err(x, SC_NONE, -EBADF);
      }
      break;
    case OP_MOUNT:
      err(x, SC_MOUNT,
          rsys5(SYS_mount, x.slen[0] ? (long)x.s[0] : 0, (long)x.s[1], x.slen[2] ? (long)x.s[2] : 0, n[0],
                x.slen[3] ? (long)x.s[3] : 0));
      break;
    case OP_UMOUNT: err(x, SC_UMOUNT, rsys2(SYS_umount2, (long)x.s[0], n[0])); break;
    case OP_PIVOT_ROOT:
      if (err(x, SC_PIVOT_ROOT, rsys2(SYS_pivot_root, (long)x.s[0], (long)x.s[1])) >= 0)
        err(x, SC_CHDIR, rsys1(SYS_chdir, (long)"/"));
      break;
    case OP_CHDIR: err(x, SC_CHDIR, rsys1(SYS_chdir, (long)x.s[0])); break;
    case OP_CLOCKS: {
      const int ids[3] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME};
      for (int i = 0; i < 3; i++) {
        struct timespec ts;
        if (err(x, SC_CLOCK_GETTIME, rsys2(SYS_clock_gettime, ids[i], (long)&ts)) < 0) break;
        x.rep->n[2 * i] = ts.tv_sec;
        x.rep->n[2 * i + 1] = ts.tv_nsec;
      }
      break;
    }
    case OP_FORK: op_fork(x); break;
    case OP_KILL: err(x, SC_KILL, rsys2(SYS_kill, n[0], n[1])); break;
    case OP_WAIT: op_wait(x); break;
    case OP_NS_IOCTL: op_ns_ioctl(x); break;
    case OP_UNSHARE: err(x, SC_UNSHARE, rsys1(SYS_unshare, n[0])); break;
    case OP_SETNS: {
      long fd = rsys4(SYS_openat, AT_FDCWD, (long)x.s[0], O_RDONLY | O_CLOEXEC, 0);
      if (err(x, SC_OPEN, fd) < 0) break;
      // Opened first, then moved (e.g. into a sibling user namespace): the setns then fails or
      // works for the namespace relationship alone, not for permission to open the file.
      {
        CredChange cc;
        if (!n[1] || err(x, SC_UNSHARE, rsys1(SYS_unshare, n[1])) >= 0) err(x, SC_SETNS, rsys2(SYS_setns, fd, n[0]));
      }
      rsys1(SYS_close, fd);
      break;
    }
    case OP_NEST: op_nest(x); break;
    case OP_UNLINK: err(x, SC_UNLINK, rsys3(SYS_unlinkat, AT_FDCWD, (long)x.s[0], n[0])); break;
    case OP_LISTDIR: op_listdir(x); break;
    case OP_SETUID: {
      CredChange cc;
      if (err(x, SC_SETRESGID, rsys3(SYS_setresgid, n[1], n[1], n[1])) < 0) break;
      err(x, SC_SETRESUID, rsys3(SYS_setresuid, n[0], n[0], n[0]));
      break;
    }
    case OP_ECHO:
      r_memcpy(x.data, x.s[0], x.slen[0]);
      x.rep->dlen = (uint32_t)x.slen[0];
      break;
    case OP_ADDR_ADD: {
      long r = nl_addr_add(x.s[0], (int)n[0], x.s[1], x.slen[1], (int)n[1]);
      err(x, SC_NETLINK, r);
      break;
    }
    case OP_VETH_CREATE: err(x, SC_NETLINK, nl_veth_create(x.s[0], x.s[1], (int)n[0])); break;
    case OP_LINK_DEL: err(x, SC_NETLINK, nl_link_del(x.s[0])); break;
    case OP_PRCTL: {
      long r = rsys5(SYS_prctl, n[0], n[1], 0, 0, 0);
      if (err(x, SC_PRCTL, r) >= 0) x.rep->n[0] = r;
      break;
    }
    default: err(x, SC_NONE, -ENOSYS); break;
  }
}

}  // namespace

int nsp_serve(int sock, int cpu, const uint64_t* natural, const char* exe) {
  Ctx x;
  {
    size_t i = 0;
    for (; exe && exe[i] && i + 1 < sizeof x.exe; i++) x.exe[i] = exe[i];
    x.exe[exe && exe[i] ? 0 : i] = 0;  // a path too long for the buffer: none
  }
  x.sock = sock;
  x.cpu = cpu;
  r_memcpy(x.natural, natural, sizeof x.natural);
  for (int i = 0; i < 16; i++) x.slots[i] = -1;
  x.pass_fd = -1;
  x.nkids = 0;
  alignas(16) char reqbuf[NSP_MAX_REQ + 16];
  alignas(16) char strbuf[NSP_MAX_REQ + NSP_NSTR + 16];
  alignas(16) char repbuf[NSP_MAX_REP];
  x.rep = (nsp_rep*)repbuf;
  x.data = repbuf + sizeof(nsp_rep);

  // Hello: tells the parent we serve, and who we are inside.
  r_memset(x.rep, 0, sizeof(nsp_rep));
  x.rep->magic = NSP_MAGIC_REP;
  x.rep->op = OP_HELLO;
  x.rep->n[0] = rsys0(SYS_getpid);
  x.rep->n[1] = rsys0(SYS_getppid);
  x.rep->n[2] = rsys0(SYS_getuid);
  x.rep->n[3] = rsys0(SYS_getgid);
  if (send_reply(x) < 0) return 1;

  for (;;) {
    long n = rsys6(SYS_recvfrom, sock, (long)reqbuf, sizeof reqbuf, 0, 0, 0);
    if (n == -EINTR) continue;
    if (n <= 0) {  // the Node side closed its end (or went away): leave
      reap_kids(x);
      return 0;
    }
    const nsp_req* q = (const nsp_req*)reqbuf;
    r_memset(x.rep, 0, sizeof(nsp_rep));
    x.rep->magic = NSP_MAGIC_REP;
    bool ok = (size_t)n >= sizeof(nsp_req) && (size_t)n <= NSP_MAX_REQ && q->magic == NSP_MAGIC_REQ;
    size_t total = 0;
    if (ok) {
      for (int i = 0; i < NSP_NSTR; i++) total += q->slen[i];
      ok = total == (size_t)n - sizeof(nsp_req);
    }
    if (!ok) {
      x.rep->op = 0;
      x.rep->seq = (size_t)n >= 12 ? q->seq : 0;
      x.rep->err = EPROTO;
      if (send_reply(x) < 0) {
        reap_kids(x);
        return 1;
      }
      continue;
    }
    x.rep->op = q->op;
    x.rep->seq = q->seq;
    const char* src = reqbuf + sizeof(nsp_req);
    char* dst = strbuf;
    for (int i = 0; i < NSP_NSTR; i++) {
      r_memcpy(dst, src, q->slen[i]);
      dst[q->slen[i]] = 0;
      x.s[i] = dst;
      x.slen[i] = q->slen[i];
      src += q->slen[i];
      dst += q->slen[i] + 1;
    }
    x.req = q;
    if (q->cpu) follow_cpu(x, q->cpu);
    if (q->op == OP_EXIT) {
      reap_kids(x);
      rsys1(SYS_exit_group, (int)q->n[0]);
    }
    if (q->op == OP_HANG)
      for (;;) r_pause();
    dispatch(x);
    if (send_reply(x) < 0) {
      reap_kids(x);
      return 1;
    }
  }
}

// The user kind of OP_NEST, in a process with memory of its own: unshare user namespaces one
// inside the other until the kernel refuses; out[0] = levels made, out[1] = the refusal's errno.
void nsp_nest_user(long max, volatile int32_t* out) {
  for (long level = 0; level < max; level++) {
    long r = rsys1(SYS_unshare, CLONE_NEWUSER);
    if (r < 0) {
      out[1] = (int32_t)-r;
      return;
    }
    // Map root of the new namespace to root of the one above (our own ids there).
    write_file("/proc/self/setgroups", "deny", 4, 0, 0);
    long w = write_file("/proc/self/uid_map", "0 0 1\n", 6, 0, 0);
    if (w == 0) w = write_file("/proc/self/gid_map", "0 0 1\n", 6, 0, 0);
    if (w < 0) {
      out[1] = (int32_t)-w;
      out[0] = (int32_t)(level + 1);
      return;
    }
    out[0] = (int32_t)(level + 1);
  }
}
