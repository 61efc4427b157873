// Entering, shared by the addon and the agent: see enter.h. Raw system calls only.
#include "enter.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "agent-proto.h"
#include "raw.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace {

const char* const kStageNames[] = {"none", "clone", "setgroups", "gid_map", "uid_map", "setuid",
                                   "setns", "timens_offsets", "cgroup", "request", "timeout"};
const char* const kSysNames[] = {
    "none", "clone", "unshare", "setns", "open", "read", "write", "readlink", "stat", "mkdir",
    "sethostname", "setdomainname", "msgget", "shmget", "semget", "msgctl", "shmctl", "semctl",
    "mq_open", "mq_unlink", "socket", "bind", "listen", "connect", "accept", "send", "recv",
    "ioctl", "mount", "umount2", "pivot_root", "chdir", "clock_gettime", "fork", "kill", "wait4",
    "setgroups", "setresuid", "setresgid", "prctl", "socketpair", "sendmsg", "poll", "unlink",
    "getdents64", "uname", "capget", "rt_sigaction", "netlink", "futex", "pidfd_open", "waitpid",
    "mmap", "socket_timeout"};
static_assert(sizeof(kSysNames) / sizeof(kSysNames[0]) == SC_COUNT, "syscall names match enum nsp_sys");
// src/protocol.ts hard-codes both header sizes (REQ_HEADER, REP_HEADER); test/protocol-sync checks
// the name lists and op numbers against this file and proto.h.
static_assert(sizeof(nsp_req) == 88 && sizeof(nsp_rep) == 88, "header sizes match src/protocol.ts");

void set_fail(nsp_failure* f, const char* stage, const char* sys, int err, int kind = FK_PLAIN) {
  f->stage = stage;
  f->sys = sys;
  f->err = err;
  f->kind = kind;
  f->num = 0;
  f->arg[0] = 0;
}
void set_arg(nsp_failure* f, const char* s) {
  size_t n = r_strlen(s);
  if (n >= sizeof f->arg) n = sizeof f->arg - 1;
  r_memcpy(f->arg, s, n);
  f->arg[n] = 0;
}

long r_poll1(int fd, short events, long ms) {
  struct pollfd p = {fd, events, 0};
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  long r;
  do r = rsys5(SYS_ppoll, (long)&p, 1, ms < 0 ? 0 : (long)&ts, 0, 8);
  while (r == -EINTR);
  return r;
}

// Writes s to path (relative to dir); returns 0 or -errno.
long write_text_at(int dir, const char* path, const char* s, size_t len) {
  long fd = rsys4(SYS_openat, dir, (long)path, O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) return fd;
  long w = rsys3(SYS_write, fd, (long)s, (long)len);
  rsys1(SYS_close, fd);
  if (w < 0) return w;
  return (size_t)w == len ? 0 : -EIO;
}

void wake(volatile int32_t* word, int value) {
  __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
  rsys6(SYS_futex, (long)word, FUTEX_WAKE, 1, 0, 0, 0);
}

long r_wait4(int pid, int* st, int options) {
  long r;
  do r = rsys4(SYS_wait4, pid, (long)st, options, 0);
  while (r == -EINTR);
  return r;
}

// The first clone out of the caller. The child gets a copy of the caller's signal handlers, which
// are not its own; clone3 with CLONE_CLEAR_SIGHAND (Linux 5.5) resets them in the kernel, where the
// child would otherwise make 62 rt_sigaction calls (8 us here) before it serves. Where clone3 fails
// (older kernels, seccomp filters that answer ENOSYS as Docker's does, or an error that plain
// clone will report in its own words) it falls back to clone().
bool g_clone3 = true;

long clone_first(unsigned long flags, char* top, int (*fn)(void*), nsp_ctl* c) {
  if (__atomic_load_n(&g_clone3, __ATOMIC_RELAXED)) {
    struct {
      uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args;
    r_memset(&args, 0, sizeof args);
    char* sp = (char*)((uintptr_t)top & ~(uintptr_t)15) - 16;
    ((void**)sp)[0] = (void*)fn;
    ((void**)sp)[1] = (void*)c;
    args.flags = (flags & ~(unsigned long)CSIGNAL) | 0x100000000ULL /* CLONE_CLEAR_SIGHAND */;
    args.exit_signal = flags & CSIGNAL;
    args.stack = (uint64_t)(uintptr_t)(sp - (NSP_ENTER_STACK - 64));
    args.stack_size = NSP_ENTER_STACK - 64;
    c->mode |= M_SIGHAND_CLEAR;
    long pid = nsp_raw_clone3(&args, sizeof args);
    if (pid > 0) return pid;
    // No child exists: the control block is ours again.
    c->mode &= ~(uint32_t)M_SIGHAND_CLEAR;
    if (pid == -ENOSYS) __atomic_store_n(&g_clone3, false, __ATOMIC_RELAXED);
  }
  return nsp_raw_clone(flags, top, fn, c);
}

void stage_failure(nsp_ctl* c, int st, nsp_failure* f) {
  if (c->err_stage) {
    set_fail(f, nsp_stage_name(c->err_stage), nsp_sys_name(c->err_sys), c->err_errno);
  } else {
    set_fail(f, "clone", "waitpid", ECHILD, WIFSIGNALED(st) ? FK_STAGE_SIGNAL : FK_STAGE_STATUS);
    f->num = WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st);
  }
}

void map_failure(nsp_ctl* c, const char* stage, long r, int b, long timeout_ms, nsp_failure* f) {
  set_fail(f, stage, "write", (int)-r, FK_MAP);
  set_arg(f, stage);
  wake(&c->go, -1);
  nsp_reap(b, timeout_ms);
}

// Kills the serving process and waits up to ms for it to be gone (reaps it, our child).
bool kill_and_wait(int pid, int pidfd, long ms) {
  if (pidfd < 0 || rsys4(SYS_pidfd_send_signal, pidfd, SIGKILL, 0, 0) != 0) rsys2(SYS_kill, pid, SIGKILL);
  long deadline = nsp_now_ms() + ms;
  for (;;) {
    int st = 0;
    long r = r_wait4(pid, &st, WNOHANG | __WALL);
    if (r == pid || r == -ECHILD) return true;
    long left = deadline - nsp_now_ms();
    if (left <= 0) return false;
    if (pidfd >= 0) r_poll1(pidfd, POLLIN, left > 50 ? 50 : left);
    else nsp_sleep_us(500);
  }
}

}  // namespace

const char* nsp_stage_name(int s) { return s >= 0 && s <= ST_TIMEOUT ? kStageNames[s] : "unknown"; }
const char* nsp_sys_name(int s) { return s >= 0 && s < SC_COUNT ? kSysNames[s] : "unknown"; }
bool nsp_clone3_available() { return __atomic_load_n(&g_clone3, __ATOMIC_RELAXED); }

long nsp_now_ms() {
  struct timespec ts;
  rsys2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void nsp_sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  rsys2(SYS_nanosleep, (long)&ts, 0);
}

int nsp_pidfd_open(int pid) { return (int)rsys2(SYS_pidfd_open, pid, 0); }

long nsp_region_map(nsp_region* r) {
  long c = rsys6(SYS_mmap, 0, NSP_ENTER_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (c < 0 && c > -4096) return c;
  size_t len = (size_t)NSP_ENTER_STACKS * (NSP_ENTER_STACK + NSP_ENTER_PAGE);
  long s = rsys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (s < 0 && s > -4096) {
    rsys2(SYS_munmap, c, NSP_ENTER_PAGE);
    return s;
  }
  for (int i = 0; i < NSP_ENTER_STACKS; i++)
    rsys3(SYS_mprotect, s + (long)i * (NSP_ENTER_STACK + NSP_ENTER_PAGE), NSP_ENTER_PAGE, PROT_NONE);  // guards
  r->ctl = (nsp_ctl*)c;
  r->stacks = (char*)s;
  return 0;
}

void nsp_region_unmap(nsp_region* r) {
  if (!r->ctl) return;
  rsys2(SYS_munmap, (long)r->ctl, NSP_ENTER_PAGE);
  rsys2(SYS_munmap, (long)r->stacks, (long)NSP_ENTER_STACKS * (NSP_ENTER_STACK + NSP_ENTER_PAGE));
  r->ctl = nullptr;
  r->stacks = nullptr;
}

void nsp_enter_spec_init(nsp_enter_spec* s) {
  r_memset(s, 0, sizeof *s);
  s->cpu = -1;
  s->drop_uid = 65534;
  s->drop_gid = 65534;
  s->timeout_ms = 5000;
}

bool nsp_enter_spec_build(nsp_enter_spec* s, const nsa_enter* e, const char* const* strs, int nstrs) {
  nsp_enter_spec_init(s);
  if (e->ncgroup > NSA_MAX_CGROUP || e->ncgroup > NSP_MAX_CGROUP || e->njoin > NSP_MAX_JOIN || nstrs != 2 + e->ncgroup + e->njoin) return false;
  s->uid_map = strs[0];
  s->gid_map = strs[1];
  for (int i = 0; i < e->ncgroup; i++) s->cgroup_procs[i] = strs[2 + i];
  s->ncgroup = e->ncgroup;
  for (int i = 0; i < e->njoin; i++) {
    s->join_paths[i] = strs[2 + e->ncgroup + i];
    s->join_types[i] = e->join_types[i];
  }
  s->njoin = e->njoin;
  s->clone_flags = e->clone_flags;
  s->userns = e->flags & NSA_E_USERNS;
  s->drop = e->flags & NSA_E_DROP;
  s->time = e->flags & NSA_E_TIME;
  s->no_vm = e->flags & NSA_E_NOVM;
  s->setgroups_allow = e->flags & NSA_E_SETGROUPS_ALLOW;
  s->join = (e->flags & NSA_E_JOIN) || e->njoin > 0 || e->join_pidfd_pid > 0;
  s->join_fork = e->flags & NSA_E_JOIN_FORK;
  s->drop_uid = e->drop_uid;
  s->drop_gid = e->drop_gid;
  s->off_mono = e->off_mono;
  s->off_boot = e->off_boot;
  s->join_pidfd_pid = e->join_pidfd_pid;
  s->join_pidfd_flags = e->join_pidfd_flags;
  s->timeout_ms = e->timeout_ms > 0 ? e->timeout_ms : 5000;
  return true;
}

int nsp_region_kill_stages(const nsp_region* r) {
  int first = __atomic_load_n(&r->first, __ATOMIC_SEQ_CST);
  int pids[3] = {first, r->ctl ? r->ctl->pid_b : 0, r->ctl ? r->ctl->pid_c : 0};
  for (int p : pids)
    if (p > 0) rsys2(SYS_kill, p, SIGKILL);
  return first;
}

// Waits for a setup stage (our child) to exit and reaps it; kills it after ms (0: at once, if it
// has not exited yet). Sleeps in poll() on a pidfd, so it wakes the moment the stage exits
// (polling waitpid with a 200 us sleep made every rootless enter as root ~0.2 ms slower: the
// stage was rarely done at the first look).
int nsp_reap(int pid, long ms) {
  int st = 0;
  long r = r_wait4(pid, &st, WNOHANG | __WALL);
  if (r == pid) return st;
  if (r < 0) return -1;
  int pfd = ms > 0 ? nsp_pidfd_open(pid) : -1;
  long deadline = nsp_now_ms() + ms;
  for (;;) {
    long left = deadline - nsp_now_ms();
    if (left <= 0) {
      rsys2(SYS_kill, pid, SIGKILL);
      r_wait4(pid, &st, __WALL);
      if (pfd >= 0) rsys1(SYS_close, pfd);
      return st;
    }
    if (pfd >= 0) r_poll1(pfd, POLLIN, left);
    else nsp_sleep_us(50);
    r = r_wait4(pid, &st, WNOHANG | __WALL);
    if (r == pid || r < 0) {
      if (pfd >= 0) rsys1(SYS_close, pfd);
      return r == pid ? st : -1;
    }
  }
}

long nsp_recv_frame(int fd, char* buf, size_t cap, int* fds, int* nfds, int* cred_pid, int flags) {
  *nfds = 0;
  struct iovec iov = {buf, cap};
  union {
    char b[CMSG_SPACE(sizeof(int) * NSP_FRAME_FDS) + CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  r_memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.b;
  mh.msg_controllen = sizeof u.b;
  long n;
  do n = rsys3(SYS_recvmsg, fd, (long)&mh, MSG_CMSG_CLOEXEC | flags);
  while (n == -EINTR);
  if (n < 0) return n;
  // By hand, not CMSG_NXTHDR: glibc's is a function, and the agent has no libc.
  size_t off = 0;
  while (off + sizeof(struct cmsghdr) <= (size_t)mh.msg_controllen) {
    struct cmsghdr* cm = (struct cmsghdr*)(u.b + off);
    if (cm->cmsg_len < sizeof(struct cmsghdr) || off + cm->cmsg_len > (size_t)mh.msg_controllen) break;
    off += CMSG_ALIGN(cm->cmsg_len);
    if (cm->cmsg_level != SOL_SOCKET) continue;
    if (cm->cmsg_type == SCM_RIGHTS) {
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int x;
        r_memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof x);
        if (*nfds < NSP_FRAME_FDS) fds[(*nfds)++] = x;
        else rsys1(SYS_close, x);
      }
    } else if (cm->cmsg_type == SCM_CREDENTIALS) {
      struct ucred uc;
      r_memcpy(&uc, CMSG_DATA(cm), sizeof uc);
      if (cred_pid) *cred_pid = uc.pid;
    }
  }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int i = 0; i < *nfds; i++) rsys1(SYS_close, fds[i]);
    *nfds = 0;
    return -EMSGSIZE;
  }
  return n;
}

bool nsp_wait_hello(int fd, long ms, char* buf, size_t cap, size_t* len, int* cred_pid, nsp_failure* f, uint32_t op) {
  // ms < 0: the caller's own poll said readable (or it only looks): one read that does not wait.
  long pr = ms < 0 ? 1 : r_poll1(fd, POLLIN, ms);
  if (pr == 0) {
    set_fail(f, "timeout", "poll", ETIMEDOUT, FK_HELLO_TIMEOUT);
    f->num = ms;
    return false;
  }
  int fds[NSP_FRAME_FDS];
  int nfds = 0;
  long n = nsp_recv_frame(fd, buf, cap, fds, &nfds, cred_pid, ms < 0 ? MSG_DONTWAIT : 0);
  if (n == -EAGAIN && ms < 0) {
    set_fail(f, "timeout", "poll", ETIMEDOUT, FK_HELLO_TIMEOUT);
    f->num = 0;
    return false;
  }
  for (int i = 0; i < nfds; i++) rsys1(SYS_close, fds[i]);  // a hello passes none: never kept
  if (n <= 0) {
    set_fail(f, "request", "recvmsg", n == 0 ? EPIPE : (int)-n, FK_EXITED);
    return false;
  }
  *len = (size_t)n;
  const nsp_rep* rep = (const nsp_rep*)buf;
  if ((size_t)n < sizeof(nsp_rep) || rep->magic != NSP_MAGIC_REP || rep->op != op) {
    set_fail(f, "request", "recvmsg", EPROTO, FK_MALFORMED);
    return false;
  }
  if (rep->err) {  // nsprobe-serve could not start the server: its hello says why
    set_fail(f, "clone", nsp_sys_name(rep->sysc), rep->err);
    return false;
  }
  return true;
}

bool nsp_enter(const nsp_enter_spec* spec, nsp_region* region, nsp_entered* out, nsp_failure* f, bool* reaped) {
  *reaped = false;
  __atomic_store_n(&region->first, 0, __ATOMIC_SEQ_CST);
  out->fd = -1;
  out->pid = -1;
  out->pidfd = -1;
  out->hello_len = 0;
  int sv[2];
  long sr = rsys4(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, (long)sv);
  if (sr < 0) {
    set_fail(f, "clone", "socketpair", (int)-sr);
    *reaped = true;
    return false;
  }
  int one = 1;
  rsys5(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, (long)&one, sizeof one);
  out->fd = sv[0];
  nsp_ctl* c = region->ctl;
  c->sock = sv[1];
  c->wait_ms = (int32_t)spec->timeout_ms;
  c->off_mono_s = spec->off_mono;
  c->off_boot_s = spec->off_boot;
  c->drop_uid = spec->drop_uid;
  c->start_cpu = spec->cpu >= 0 ? spec->cpu + 1 : 0;
  if (spec->serve_path) {  // time namespaces exec it; OP_FORK execs it for serving grandchildren
    size_t n = r_strlen(spec->serve_path);
    if (n < sizeof c->serve_path) r_memcpy((void*)c->serve_path, spec->serve_path, n + 1);
  }
  r_memcpy((void*)c->natural, spec->natural, sizeof c->natural);
  c->drop_gid = spec->drop_gid;
  c->stack_b = nsp_region_top(region, 1);
  c->stack_c = nsp_region_top(region, 2);
  int opened[NSP_MAX_JOIN];
  int nopened = 0;
  auto close_opened = [&]() {
    for (int i = 0; i < nopened; i++) rsys1(SYS_close, opened[i]);
    nopened = 0;
  };
  int (*first)(void*) = nullptr;
  unsigned long first_flags = SIGCHLD;
  if (spec->no_vm) c->mode |= M_NO_VM;
  if (spec->join) {
    c->mode |= M_JOIN;
    if (spec->join_fork) c->mode |= M_JOIN_FORK;
    if (spec->join_pidfd_pid > 0) {
      int pfd = nsp_pidfd_open(spec->join_pidfd_pid);
      if (pfd < 0) {
        set_fail(f, "setns", "pidfd_open", -pfd);
        rsys1(SYS_close, sv[1]);
        *reaped = true;
        return false;
      }
      opened[nopened++] = pfd;
      c->join_fd[0] = pfd;
      c->join_type[0] = spec->join_pidfd_flags;
      c->njoin = 1;
    } else {
      for (int i = 0; i < spec->njoin; i++) {
        if (c->njoin >= NSP_MAX_JOIN) break;
        long fd = rsys4(SYS_openat, AT_FDCWD, (long)spec->join_paths[i], O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) {
          set_fail(f, "setns", "open", (int)-fd, FK_OPEN_JOIN);
          set_arg(f, spec->join_paths[i]);
          close_opened();
          rsys1(SYS_close, sv[1]);
          *reaped = true;
          return false;
        }
        opened[nopened++] = (int)fd;
        c->join_fd[c->njoin] = (int)fd;
        c->join_type[c->njoin] = spec->join_types[i];
        c->njoin++;
      }
    }
    first = nsp_stage_join;
    // setns into a time namespace requires that no other process shares our memory.
    if (!spec->no_vm) first_flags |= CLONE_VM;
  } else {
    c->clone_flags = spec->clone_flags;
    if (spec->userns) c->mode |= M_USERNS;
    if (spec->time) {
      c->mode |= M_TIME;
      if (spec->clone_flags & CLONE_NEWPID) {
        c->mode |= M_PID_LATE;
        c->clone_flags &= ~(uint64_t)CLONE_NEWPID;
      }
    }
    if (spec->drop) c->mode |= M_DROP;
    if (spec->ncgroup > 0) c->mode |= M_WAIT_CGROUP;
    if (spec->drop || spec->ncgroup > 0) {
      c->mode |= M_STAGE_A;
      // Without a pid namespace stage A can unshare the namespaces itself and serve.
      if (!(c->clone_flags & CLONE_NEWPID)) c->mode |= M_UNSHARE;
      first = nsp_stage_a;
    } else {
      first = nsp_stage_b;
      first_flags |= c->clone_flags;
    }
    if (!spec->no_vm) first_flags |= CLONE_VM;
  }

  // The child starts with every signal blocked, resets all handlers (the caller's are not its
  // own), then unblocks. (glibc's pthread_sigmask leaves its two internal signals alone: so do we.)
  uint64_t all = ~(uint64_t)0 & ~((1ULL << (32 - 1)) | (1ULL << (33 - 1)));
  uint64_t old = 0;
  rsys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8);
  char* top = first == nsp_stage_b ? nsp_region_top(region, 1) : nsp_region_top(region, 0);
  // A clone without CLONE_VM copies our memory: not while a stage A has it non-dumpable.
  bool copies_mm = !(first_flags & CLONE_VM);
  if (copies_mm) nsp_mm_acquire();
  long pid = clone_first(first_flags, top, first, c);
  if (pid > 0) __atomic_store_n(&region->first, (int32_t)pid, __ATOMIC_SEQ_CST);
  if (copies_mm) nsp_mm_release();
  rsys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
  rsys1(SYS_close, sv[1]);
  close_opened();
  if (pid < 0) {
    set_fail(f, "clone", "clone", (int)-pid);
    *reaped = true;
    return false;
  }

  int server = (int)pid;
  if (c->mode & M_WAIT_CGROUP) {
    char s[24];
    size_t pos = 0;
    r_putnum(s, sizeof s, &pos, pid);
    for (int i = 0; i < spec->ncgroup; i++) {
      long r = write_text_at(AT_FDCWD, spec->cgroup_procs[i], s, pos);
      if (r < 0) {
        set_fail(f, "cgroup", "write", (int)-r, FK_CGROUP);
        set_arg(f, spec->cgroup_procs[i]);
        wake(&c->go, -1);
        nsp_reap((int)pid, spec->timeout_ms);
        *reaped = true;
        return false;
      }
    }
    wake(&c->go, 1);
  }
  bool setup_exits = (first == nsp_stage_a && !(c->mode & M_UNSHARE)) || (first == nsp_stage_join && spec->join_fork);
  if ((c->mode & M_UNSHARE) && spec->userns) {
    // Stage A goes on as stage B: its user namespace exists once it says so.
    char ready[sizeof(nsp_rep) + 64];
    size_t rlen = 0;
    int cred = 0;
    if (!nsp_wait_hello(out->fd, spec->timeout_ms, ready, sizeof ready, &rlen, &cred, f, OP_READY)) {
      int st = nsp_reap((int)pid, 0);  // kills it if it is still there
      if (c->err_stage) stage_failure(c, st, f);
      *reaped = true;
      return false;
    }
  }
  if (setup_exits) {
    int st = nsp_reap((int)pid, spec->timeout_ms);
    if (c->err_stage || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      stage_failure(c, st, f);
      *reaped = true;
      return false;
    }
    server = first == nsp_stage_a ? c->pid_b : c->pid_c;
  }
  if (spec->userns && !spec->join) {
    int b = c->pid_b ? c->pid_b : server;
    // One lookup of /proc/PID for the three files (each full-path open looked the pid up again).
    char path[32];
    size_t pos = 0;
    r_puts(path, sizeof path, &pos, "/proc/");
    r_putnum(path, sizeof path, &pos, b);
    path[pos] = 0;
    long dir = rsys4(SYS_openat, AT_FDCWD, (long)path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) {
      map_failure(c, "gid_map", dir, b, spec->timeout_ms, f);
      *reaped = true;
      return false;
    }
    long r = 0;
    if (!spec->setgroups_allow) {
      r = write_text_at((int)dir, "setgroups", "deny", 4);
      if (r < 0 && r != -ENOENT) {
        rsys1(SYS_close, dir);
        map_failure(c, "setgroups", r, b, spec->timeout_ms, f);
        *reaped = true;
        return false;
      }
    }
    const char* gm = spec->gid_map ? spec->gid_map : "";
    r = write_text_at((int)dir, "gid_map", gm, r_strlen(gm));
    if (r < 0) {
      rsys1(SYS_close, dir);
      map_failure(c, "gid_map", r, b, spec->timeout_ms, f);
      *reaped = true;
      return false;
    }
    const char* um = spec->uid_map ? spec->uid_map : "";
    r = write_text_at((int)dir, "uid_map", um, r_strlen(um));
    rsys1(SYS_close, dir);
    if (r < 0) {
      map_failure(c, "uid_map", r, b, spec->timeout_ms, f);
      *reaped = true;
      return false;
    }
    wake(&c->go, 1);
  }
  if (spec->time && !spec->join) {
    // Stage B serves itself (it exec'd nsprobe-serve, which entered the time namespace), or a
    // process it made does (nsprobe-serve forked for a pid namespace or an older kernel, or B
    // forked the caller's memory when the exec failed) and B exits. The hello's sender says which.
    int b = c->pid_b ? c->pid_b : server;
    int cred = 0;
    if (!nsp_wait_hello(out->fd, spec->timeout_ms, out->hello, sizeof out->hello, &out->hello_len, &cred, f, OP_HELLO)) {
      int st = nsp_reap(b, 0);  // kills it if it is still there
      if (c->err_stage) stage_failure(c, st, f);
      if (c->pid_c > 0) nsp_reap(c->pid_c, 0);
      *reaped = true;
      return false;
    }
    if (cred != b) {
      int st = nsp_reap(b, spec->timeout_ms);
      if (c->err_stage || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        stage_failure(c, st, f);
        nsp_reap(cred, 0);
        *reaped = true;
        return false;
      }
    }
    out->pid = cred;
    out->pidfd = nsp_pidfd_open(cred);
    return true;
  }
  out->pid = server;
  out->pidfd = nsp_pidfd_open(server);
  if (spec->hello_later) return true;
  return nsp_enter_hello(region, out, spec->timeout_ms, f, reaped);
}

bool nsp_enter_hello(nsp_region* region, nsp_entered* out, long ms, nsp_failure* f, bool* reaped, bool fail_now) {
  int cred = 0;
  if (!fail_now && nsp_wait_hello(out->fd, ms, out->hello, sizeof out->hello, &out->hello_len, &cred, f, OP_HELLO)) return true;
  if (!fail_now && ms <= 0 && f->kind == FK_HELLO_TIMEOUT) return false;  // not there yet
  if (region->ctl->err_stage) stage_failure(region->ctl, 0, f);
  *reaped = kill_and_wait(out->pid, out->pidfd, 2000);
  return false;
}

// ------------------------------------------------------------------------------------------
// Host IPC objects (enter.h)

long nsp_sysv_remove(int kind, int key) {
  long id = kind == 1 ? rsys2(SYS_msgget, key, 0) : kind == 2 ? rsys3(SYS_shmget, key, 0, 0) : kind == 3 ? rsys3(SYS_semget, key, 0, 0) : -EINVAL;
  if (id < 0) return id;
  return kind == 1 ? rsys3(SYS_msgctl, id, 0 /* IPC_RMID */, 0) : kind == 2 ? rsys3(SYS_shmctl, id, 0, 0) : rsys4(SYS_semctl, id, 0, 0, 0);
}

namespace {
// struct sigevent as the kernel reads it (64 bytes): value, signo, notify, then padding.
struct k_sigevent {
  uint64_t value;
  int32_t signo, notify;
  int32_t pad[12];
};
const char* mq_bare(const char* n) { return n[0] == '/' ? n + 1 : n; }
long mq_register(int fd) {
  k_sigevent ev;
  r_memset(&ev, 0, sizeof ev);
  ev.notify = 1;  // SIGEV_NONE: nothing is ever delivered; the registration is the point
  return rsys2(SYS_mq_notify, fd, (long)&ev);
}
}  // namespace

long nsp_mq_hold(const char* name, int* fd) {
  *fd = -1;
  long q = rsys4(SYS_mq_open, (long)mq_bare(name), O_RDWR | O_CLOEXEC, 0, 0);
  if (q < 0) return q;
  // EBUSY: someone registered: a scanner that is about to unlink it (then nlink drops to 0) or
  // one only looking (MQ_PEEK, residue checks), which lets go at once. So try for up to 20 ms.
  long r = -EBUSY;
  for (int i = 0; i < 100; i++) {
    r = mq_register((int)q);
    struct stat st;
    // Unlinked since our open (a scanner saw it unheld): not ours now.
    if ((r == 0 || r == -EBUSY) && rsys2(SYS_fstat, q, (long)&st) == 0 && st.st_nlink == 0) r = -ENOENT;
    if (r != -EBUSY) break;
    nsp_sleep_us(200);
  }
  if (r < 0) {
    rsys1(SYS_close, q);
    return r;
  }
  *fd = (int)q;
  return 0;
}

long nsp_mq_reap(const char* name, bool dry_run) {
  long q = rsys4(SYS_mq_open, (long)mq_bare(name), O_RDWR | O_CLOEXEC, 0, 0);
  if (q < 0) return q;
  long r = mq_register((int)q);
  if (r == 0 && !dry_run) r = rsys1(SYS_mq_unlink, (long)mq_bare(name));
  rsys1(SYS_close, q);  // ends our registration, if we made one
  return r;
}
