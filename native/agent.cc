// nsprobe-agent: the namespace work of nsprobe as one static program without libc, for hosts
// without Node (over ssh, kubectl exec, nsenter, ...; see src/agent/). It speaks the frames of
// agent-proto.h on stdin/stdout: enter (enter.cc, the same code as the addon's), requests to the
// children (child.cc's request loop, as with the addon), close, kill, adopt, a few host-side
// operations. One poll loop on the main thread serves every request, close and kill; entering
// (which waits on the child: its hello, id maps, cgroup files, up to its timeout) runs on a few
// worker threads, so a slow or held enter stalls neither requests to other boxes nor other enters.
// The workers never exit (a child's PR_SET_PDEATHSIG fires when the thread that made it ends).
//
// nsprobe-agent [--rm FILE]: with --rm the agent unlinks FILE and then its directory first thing
// (the bootstrap put it there), so nothing stays on disk whatever happens to the shell.
#define NSP_NO_LIBC  // raw.h gives us memset and memcpy
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include "agent-proto.h"
#include "child.h"
#include "enter.h"
#include "netlink.h"
#include "proto.h"
#include "raw.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

int g_in = 0, g_out = 1;

struct ABox {
  bool used;
  bool entering;  // its enter runs on a worker (a Job); no id yet
  uint32_t id;
  int pid, pidfd, fd;
  bool is_child, reaped;
  int status;
  nsp_region region;
  // a request in flight
  bool pending;
  uint32_t ptag, ptimeout;
  long pdeadline;
  // closing
  bool closing, killed;
  uint32_t ctag;
  long cdeadline;
};

ABox g_boxes[NSA_MAX_BOXES];
uint32_t g_next_id = 1;
int g_handles[64];  // descriptors children passed back, until adopted or closed
int g_nhandles = 0;
nsp_region g_pool[16];
int g_npool = 0;
uint64_t g_natural[16];

ABox* find_box(uint32_t id) {
  for (auto& b : g_boxes)
    if (b.used && b.id == id) return &b;
  return nullptr;
}
ABox* find_pid(int pid) {
  for (auto& b : g_boxes)
    if (b.used && !b.entering && b.is_child && b.pid == pid && !b.reaped) return &b;
  return nullptr;
}
ABox* new_box() {
  for (auto& b : g_boxes)
    if (!b.used) {
      r_memset(&b, 0, sizeof b);
      b.used = true;
      b.pid = b.pidfd = b.fd = -1;
      b.is_child = true;
      return &b;
    }
  return nullptr;
}

bool region_get(nsp_region* r) {
  if (g_npool > 0) {
    *r = g_pool[--g_npool];
    r_memset(r->ctl, 0, sizeof(nsp_ctl));
    return true;
  }
  return nsp_region_map(r) == 0;
}
void region_put(nsp_region* r) {
  if (!r->ctl) return;
  if (g_npool < 16) g_pool[g_npool++] = *r;
  else nsp_region_unmap(r);
  r->ctl = nullptr;
}

void free_box(ABox* b) {
  if (b->fd >= 0) rsys1(SYS_close, b->fd);
  if (b->pidfd >= 0) rsys1(SYS_close, b->pidfd);
  // A child we could not reap keeps its stacks: never unmap memory a live CLONE_VM child runs on.
  if (b->reaped || !b->is_child) region_put(&b->region);
  b->used = false;
}

void kill_box(ABox* b, int sig) {
  if (b->pidfd >= 0 && rsys4(SYS_pidfd_send_signal, b->pidfd, sig, 0, 0) == 0) return;
  if (b->pid > 0 && !b->reaped) rsys2(SYS_kill, b->pid, sig);
}

int g_entering = 0;  // enters on workers, queued or running

// Reaps every child that has exited; a box's own process gets its status recorded. While a
// worker enters, only the boxes' own processes: wait4(-1) would take the setup stages the worker
// waits for (children of any thread of ours are ours to wait for), the orphans wait till after.
void reap_any() {
  if (g_entering > 0) {
    for (auto& b : g_boxes) {
      if (!b.used || b.entering || !b.is_child || b.reaped || b.pid <= 0) continue;
      int st = 0;
      long r = rsys4(SYS_wait4, b.pid, (long)&st, WNOHANG | __WALL, 0);
      if (r == b.pid) {
        b.status = st;
        b.reaped = true;
      }
    }
    return;
  }
  for (;;) {
    int st = 0;
    long r = rsys4(SYS_wait4, -1, (long)&st, WNOHANG | __WALL, 0);
    if (r == -EINTR) continue;
    if (r <= 0) return;
    ABox* b = find_pid((int)r);
    if (b) {
      b->status = st;
      b->reaped = true;
    }
  }
}

// Whether an adopted (not our child) process is gone.
bool adopted_gone(ABox* b) {
  if (b->pidfd >= 0) {
    struct pollfd p = {b->pidfd, POLLIN, 0};
    struct timespec ts = {0, 0};
    if (rsys5(SYS_ppoll, (long)&p, 1, (long)&ts, 0, 8) > 0) return true;
    return false;
  }
  // Without a pidfd we can only tell by the channel closing, which happened before we got here
  // (as the addon does: a zombie of its own parent still answers kill(pid, 0)).
  return true;
}
bool box_gone(ABox* b) {
  if (b->reaped) return true;
  if (b->is_child) {
    int st = 0;
    long r = rsys4(SYS_wait4, b->pid, (long)&st, WNOHANG | __WALL, 0);
    if (r == b->pid || r == -ECHILD) {
      b->status = st;
      b->reaped = true;
      return true;
    }
    return false;
  }
  if (adopted_gone(b)) {
    reap_any();  // as a subreaper the orphan may be ours now
    b->reaped = true;
    return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------
// Output

void write_all(const char* p, size_t n) {
  while (n) {
    long w = rsys3(SYS_write, g_out, (long)p, (long)n);
    if (w == -EINTR || w == -EAGAIN) continue;
    if (w <= 0) return;  // the controller is gone: stdin will tell us
    p += w;
    n -= (size_t)w;
  }
}

alignas(16) char g_outbuf[sizeof(nsa_hdr) + sizeof(nsa_rep) + 3 * 300 + NSP_MAX_REP + 64];

struct Reply {
  nsa_rep r;
  const char* s[3];
  const char* data;
  size_t dlen;
};
void reply_init(Reply* y) {
  r_memset(y, 0, sizeof *y);
  y->s[0] = y->s[1] = y->s[2] = "";
}

void send_reply(uint16_t type, uint32_t tag, Reply* y) {
  size_t sl[3];
  for (int i = 0; i < 3; i++) {
    sl[i] = r_strlen(y->s[i]);
    if (sl[i] > 300) sl[i] = 300;
    y->r.slen[i] = (uint16_t)sl[i];
  }
  if (y->dlen > NSP_MAX_REP + 64) y->dlen = NSP_MAX_REP + 64;
  size_t len = sizeof(nsa_rep) + sl[0] + sl[1] + sl[2] + y->dlen;
  nsa_hdr h = {NSA_MAGIC, type, 0, tag, (uint32_t)len};
  char* p = g_outbuf;
  r_memcpy(p, &h, sizeof h);
  p += sizeof h;
  r_memcpy(p, &y->r, sizeof y->r);
  p += sizeof y->r;
  for (int i = 0; i < 3; i++) {
    r_memcpy(p, y->s[i], sl[i]);
    p += sl[i];
  }
  if (y->dlen) r_memcpy(p, y->data, y->dlen);
  write_all(g_outbuf, sizeof h + len);
}

void reply_err(uint16_t type, uint32_t tag, int err, uint32_t kind, const char* stage, const char* sys, long num = 0) {
  Reply y;
  reply_init(&y);
  y.r.err = err;
  y.r.kind = kind;
  y.r.v[0] = num;
  y.s[0] = stage;
  y.s[1] = sys;
  send_reply(type, tag, &y);
}

void reply_failure(uint16_t type, uint32_t tag, const nsp_failure& f) {
  Reply y;
  reply_init(&y);
  y.r.err = f.err;
  y.r.kind = (uint32_t)f.kind;
  y.r.v[0] = f.num;
  y.s[0] = f.stage;
  y.s[1] = f.sys;
  y.s[2] = f.arg;
  send_reply(type, tag, &y);
}

void reply_values(uint16_t type, uint32_t tag, long v0, long v1 = 0, long v2 = 0, long v3 = 0) {
  Reply y;
  reply_init(&y);
  y.r.v[0] = v0;
  y.r.v[1] = v1;
  y.r.v[2] = v2;
  y.r.v[3] = v3;
  send_reply(type, tag, &y);
}

void reply_started(uint16_t type, uint32_t tag, ABox* b, const char* hello, size_t hlen) {
  Reply y;
  reply_init(&y);
  y.r.v[0] = b->id;
  y.r.v[1] = b->pid;
  y.data = hello;
  y.dlen = hlen;
  send_reply(type, tag, &y);
}

// ------------------------------------------------------------------------------------------
// Input

// A cursor over a payload.
struct Cur {
  const char* p;
  size_t left;
  bool ok;
  bool take(void* out, size_t n) {
    if (!ok || left < n) return ok = false;
    r_memcpy(out, p, n);
    p += n;
    left -= n;
    return true;
  }
  uint32_t u32() {
    uint32_t v = 0;
    take(&v, 4);
    return v;
  }
  // A u16-prefixed string copied NUL-terminated into *dst (bounded by end).
  const char* str(char** dst, char* end) {
    uint16_t n = 0;
    if (!take(&n, 2) || left < n || *dst + n + 1 > end) {
      ok = false;
      return "";
    }
    char* s = *dst;
    r_memcpy(s, p, n);
    s[n] = 0;
    p += n;
    left -= n;
    *dst += n + 1;
    return s;
  }
};

char g_strs[NSA_MAX_FRAME + 64];

// ------------------------------------------------------------------------------------------
// Entering on workers. The main loop parses an enter into a Job and queues it; a worker runs
// nsp_enter (the box's region is its own, the strings are the job's) and writes a byte to the
// wake pipe; the main loop replies and the box is ready for requests. Without a worker (none
// could be made, or every job slot is taken) the main loop enters itself, as it always did.

#define NSA_WORKERS 4
#define NSA_JOBS 32
#define NSA_WORKER_STACK (256 * 1024)

enum { J_FREE = 0, J_QUEUED, J_RUNNING, J_DONE };

struct Job {
  volatile int32_t state;
  uint32_t tag;
  ABox* box;
  nsp_enter_spec spec;
  nsp_entered out;
  nsp_failure f;
  bool ok, reaped;
  char strs[NSA_MAX_FRAME + 64];
};

Job g_jobs[NSA_JOBS];
volatile int32_t g_jobseq = 0;  // bumped (and futex-woken) when a job is queued
int g_nworkers = 0;
int g_wake[2] = {-1, -1};       // workers -> main loop: a job is done

void run_job(Job* j) {
  j->ok = nsp_enter(&j->spec, &j->box->region, &j->out, &j->f, &j->reaped);
}

int worker_main(void*) {
  for (;;) {
    int32_t seq = __atomic_load_n(&g_jobseq, __ATOMIC_SEQ_CST);
    Job* j = nullptr;
    for (auto& x : g_jobs) {
      int32_t want = J_QUEUED;
      if (__atomic_compare_exchange_n(&x.state, &want, J_RUNNING, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        j = &x;
        break;
      }
    }
    if (!j) {
      rsys6(SYS_futex, (long)&g_jobseq, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, seq, 0, 0, 0);
      continue;
    }
    run_job(j);
    __atomic_store_n(&j->state, J_DONE, __ATOMIC_SEQ_CST);
    char c = 1;
    rsys3(SYS_write, g_wake[1], (long)&c, 1);  // a full pipe already says the same
  }
}

// One more worker thread (shares our memory, descriptors and signal handlers). False if none.
bool add_worker() {
  if (g_wake[0] < 0 && rsys2(SYS_pipe2, (long)g_wake, O_CLOEXEC | O_NONBLOCK) < 0) return false;
  long st = rsys6(SYS_mmap, 0, NSA_WORKER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (st < 0 && st > -4096) return false;
  unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  long t = nsp_raw_clone(flags, (char*)st + NSA_WORKER_STACK, worker_main, nullptr);
  if (t < 0) {
    rsys2(SYS_munmap, st, NSA_WORKER_STACK);
    return false;
  }
  g_nworkers++;
  return true;
}

Job* queue_slot() {
  for (auto& j : g_jobs)
    if (__atomic_load_n(&j.state, __ATOMIC_SEQ_CST) == J_FREE) return &j;
  return nullptr;
}

void reply_enter(Job* j) {
  ABox* b = j->box;
  b->entering = false;
  b->fd = j->out.fd;
  b->pidfd = j->out.pidfd;
  b->pid = j->out.pid;
  if (!j->ok) {
    b->reaped = j->reaped;
    free_box(b);
    reply_failure(NSA_ENTER, j->tag, j->f);
    return;
  }
  b->id = g_next_id++;
  reply_started(NSA_ENTER, j->tag, b, j->out.hello, j->out.hello_len);
}

// Replies to every enter a worker finished.
void collect_jobs() {
  char buf[64];
  while (g_wake[0] >= 0 && rsys3(SYS_read, g_wake[0], (long)buf, sizeof buf) > 0) {
  }
  for (auto& j : g_jobs) {
    if (__atomic_load_n(&j.state, __ATOMIC_SEQ_CST) != J_DONE) continue;
    reply_enter(&j);
    g_entering--;
    __atomic_store_n(&j.state, J_FREE, __ATOMIC_SEQ_CST);
  }
}

// Ends every enter in flight (the agent is ending): a queued one is not started, a running one
// has its stages killed, so the worker's waits end at once; waits up to ms for them.
void cancel_jobs(long ms) {
  for (auto& j : g_jobs) {
    int32_t want = J_QUEUED;
    if (__atomic_compare_exchange_n(&j.state, &want, J_DONE, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      j.ok = false;
      j.reaped = true;
      j.out.fd = j.out.pid = j.out.pidfd = -1;
      j.f.stage = "clone";
      j.f.sys = "clone";
      j.f.err = ECANCELED;
      j.f.kind = FK_PLAIN;
      j.f.num = 0;
      j.f.arg[0] = 0;
    }
  }
  long deadline = nsp_now_ms() + ms;
  while (g_entering > 0) {
    for (auto& j : g_jobs) {
      if (__atomic_load_n(&j.state, __ATOMIC_SEQ_CST) != J_RUNNING) continue;
      nsp_region_kill_stages(&j.box->region);
    }
    collect_jobs();
    if (g_entering <= 0 || nsp_now_ms() >= deadline) break;
    nsp_sleep_us(500);
  }
}

void do_enter(uint32_t tag, Cur& c) {
  nsa_enter e;
  if (!c.take(&e, sizeof e) || e.ncgroup > NSA_MAX_CGROUP || e.njoin > NSP_MAX_JOIN) {
    reply_err(NSA_ENTER, tag, EINVAL, FK_BAD_FRAME, "request", "read");
    return;
  }
  // A free job slot and a worker for it, or this loop enters itself (into the static job).
  static Job inline_job;
  Job* j = queue_slot();
  if (j && g_entering >= g_nworkers && g_nworkers < NSA_WORKERS) add_worker();
  if (j && g_nworkers == 0) j = nullptr;
  bool queued = j != nullptr;
  if (!j) j = &inline_job;
  nsp_enter_spec& s = j->spec;
  char* dst = j->strs;
  char* end = j->strs + sizeof j->strs;
  const char* strs[2 + NSA_MAX_CGROUP + NSP_MAX_JOIN];
  int nstrs = 2 + e.ncgroup + e.njoin;
  for (int i = 0; i < nstrs; i++) strs[i] = c.str(&dst, end);
  if (!c.ok || !nsp_enter_spec_build(&s, &e, strs, nstrs)) {
    reply_err(NSA_ENTER, tag, EINVAL, FK_BAD_FRAME, "request", "read");
    return;
  }
  r_memcpy(s.natural, g_natural, sizeof s.natural);
  s.serve_path = nullptr;  // a time namespace's server is forked from the agent (it is small)
  ABox* b = new_box();
  if (!b) {
    reply_err(NSA_ENTER, tag, EMFILE, FK_FULL, "clone", "clone");
    return;
  }
  if (!region_get(&b->region)) {
    b->used = false;
    reply_err(NSA_ENTER, tag, ENOMEM, FK_PLAIN, "clone", "mmap");
    return;
  }
  b->entering = true;
  j->box = b;
  j->tag = tag;
  if (!queued) {
    run_job(j);
    reply_enter(j);
    return;
  }
  g_entering++;
  __atomic_store_n(&j->state, J_QUEUED, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&g_jobseq, 1, __ATOMIC_SEQ_CST);
  rsys6(SYS_futex, (long)&g_jobseq, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, 0, 0);
}

alignas(16) char g_repbuf[NSP_MAX_REP + 1];

void do_request(uint32_t tag, Cur& c) {
  uint32_t id = c.u32();
  uint32_t timeout = c.u32();
  if (!c.ok) {
    reply_err(NSA_REQUEST, tag, EINVAL, FK_BAD_FRAME, "request", "send");
    return;
  }
  ABox* b = find_box(id);
  if (!b || b->closing) {
    reply_err(NSA_REQUEST, tag, EBADF, FK_NO_BOX, "request", "send");
    return;
  }
  if (c.left > NSP_MAX_REQ) {
    reply_err(NSA_REQUEST, tag, EMSGSIZE, FK_TOO_BIG, "request", "send", NSP_MAX_REQ);
    return;
  }
  if (b->pending) {
    reply_err(NSA_REQUEST, tag, EBUSY, FK_BUSY, "request", "send");
    return;
  }
  long w;
  do w = rsys6(SYS_sendto, b->fd, (long)c.p, (long)c.left, MSG_NOSIGNAL, 0, 0);
  while (w == -EINTR);
  if (w < 0) {
    reply_err(NSA_REQUEST, tag, (int)-w, FK_GONE, "request", "send");
    return;
  }
  b->pending = true;
  b->ptag = tag;
  b->ptimeout = timeout ? timeout : 5000;
  b->pdeadline = nsp_now_ms() + b->ptimeout;
}

bool add_handle(int fd) {
  if (g_nhandles >= 64) return false;
  g_handles[g_nhandles++] = fd;
  return true;
}
bool take_handle(int fd) {
  for (int i = 0; i < g_nhandles; i++)
    if (g_handles[i] == fd) {
      g_handles[i] = g_handles[--g_nhandles];
      return true;
    }
  return false;
}

// The reply to a box's pending request is there (or the channel ended).
static_assert(NSP_FRAME_FDS <= sizeof(nsa_rep::fds) / sizeof(int32_t), "an agent reply carries every descriptor a frame can");
void finish_request(ABox* b) {
  int fds[NSP_FRAME_FDS];
  int nfds = 0;
  int cred = 0;
  long n = nsp_recv_frame(b->fd, g_repbuf, sizeof g_repbuf, fds, &nfds, &cred, MSG_DONTWAIT);
  if (n == -EAGAIN) return;
  b->pending = false;
  if (n <= 0) {
    for (int i = 0; i < nfds; i++) rsys1(SYS_close, fds[i]);
    if (n == 0) reply_err(NSA_REQUEST, b->ptag, EPIPE, FK_NO_REPLY, "request", "recvmsg");
    else reply_err(NSA_REQUEST, b->ptag, (int)-n, FK_PLAIN, "request", "recvmsg");
    return;
  }
  Reply y;
  reply_init(&y);
  for (int i = 0; i < nfds; i++) {
    if (add_handle(fds[i])) {
      y.r.fds[y.r.nfds++] = fds[i];
    } else {
      rsys1(SYS_close, fds[i]);
    }
  }
  y.r.v[0] = cred;
  y.data = g_repbuf;
  y.dlen = (size_t)n;
  send_reply(NSA_REQUEST, b->ptag, &y);
}

void request_timeout(ABox* b) {
  b->pending = false;
  // A child that does not answer is killed with everything it started.
  kill_box(b, SIGKILL);
  reply_err(NSA_REQUEST, b->ptag, ETIMEDOUT, FK_REQ_TIMEOUT, "timeout", "poll", b->ptimeout);
}

void close_reply(ABox* b) {
  int st = b->status;
  bool child = b->is_child && b->reaped;
  long code = child && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  long sig = child && WIFSIGNALED(st) ? WTERMSIG(st) : -1;
  uint32_t tag = b->ctag;
  bool reaped = b->reaped, killed = b->killed;
  if (b->pending) {  // a request still waiting: the channel is gone
    b->pending = false;
    reply_err(NSA_REQUEST, b->ptag, EPIPE, FK_NO_REPLY, "request", "recvmsg");
  }
  free_box(b);
  reply_values(NSA_CLOSE, tag, reaped, killed, code, sig);
}

void do_close(uint32_t tag, Cur& c) {
  uint32_t id = c.u32();
  uint32_t grace = c.u32();
  ABox* b = c.ok ? find_box(id) : nullptr;
  if (!b || b->closing) {
    Reply y;
    reply_init(&y);
    y.r.kind = 1;
    y.r.v[0] = 1;
    y.r.v[2] = y.r.v[3] = -1;
    send_reply(NSA_CLOSE, tag, &y);
    return;
  }
  b->closing = true;
  b->ctag = tag;
  // Closing our end makes the child's recv return 0 and it exits; a child stuck in a request
  // does not see that, so after the grace time it is killed.
  rsys2(SYS_shutdown, b->fd, SHUT_RDWR);
  if (box_gone(b)) {
    close_reply(b);
    return;
  }
  b->cdeadline = nsp_now_ms() + (grace ? grace : 1000);
}

void close_tick(ABox* b, long now) {
  if (box_gone(b)) {
    close_reply(b);
    return;
  }
  if (now < b->cdeadline) return;
  if (!b->killed) {
    b->killed = true;
    kill_box(b, SIGKILL);
    b->cdeadline = now + 5000;
    return;
  }
  close_reply(b);
}

void do_adopt(uint32_t tag, Cur& c) {
  int fd = (int)c.u32();
  uint32_t timeout = c.u32();
  if (!c.ok || !take_handle(fd)) {
    reply_err(NSA_ADOPT, tag, EBADF, FK_PLAIN, "request", "recvmsg");
    return;
  }
  ABox* b = new_box();
  if (!b) {
    rsys1(SYS_close, fd);
    reply_err(NSA_ADOPT, tag, EMFILE, FK_FULL, "request", "recvmsg");
    return;
  }
  b->is_child = false;
  b->fd = fd;
  int one = 1;
  rsys5(SYS_setsockopt, fd, SOL_SOCKET, SO_PASSCRED, (long)&one, sizeof one);
  char hello[sizeof(nsp_rep) + 64];
  size_t hlen = 0;
  int cred = 0;
  nsp_failure f;
  if (!nsp_wait_hello(fd, timeout ? timeout : 5000, hello, sizeof hello, &hlen, &cred, &f, OP_HELLO)) {
    free_box(b);
    reply_failure(NSA_ADOPT, tag, f);
    return;
  }
  b->pid = cred;
  b->pidfd = cred > 0 ? nsp_pidfd_open(cred) : -1;
  b->id = g_next_id++;
  reply_started(NSA_ADOPT, tag, b, hello, hlen);
}

// Kills every box and waits up to ms for all of them; then reaps orphans. Returns how many.
int end_all(long ms) {
  int n = 0;
  cancel_jobs(ms);
  // A box whose enter could not be ended (its worker is stuck in a system call) has no process
  // of its own yet: exit_group ends that worker.
  for (auto& b : g_boxes)
    if (b.used && !b.entering) kill_box(&b, SIGKILL);
  long deadline = nsp_now_ms() + ms;
  for (auto& b : g_boxes) {
    if (!b.used || b.entering) continue;
    while (!box_gone(&b) && nsp_now_ms() < deadline) nsp_sleep_us(500);
    if (b.pending) {
      b.pending = false;
      reply_err(NSA_REQUEST, b.ptag, EPIPE, FK_NO_REPLY, "request", "recvmsg");
    }
    if (b.closing) {
      close_reply(&b);
    } else {
      free_box(&b);
    }
    n++;
  }
  for (int i = 0; i < g_nhandles; i++) rsys1(SYS_close, g_handles[i]);
  g_nhandles = 0;
  // The orphans of killed servers (we are a subreaper): reap them, waiting 200 ms without a new one.
  long idle_until = nsp_now_ms() + 200;
  for (;;) {
    int st;
    long r = rsys4(SYS_wait4, -1, (long)&st, WNOHANG | __WALL, 0);
    if (r > 0) {
      idle_until = nsp_now_ms() + 200;
      continue;
    }
    if (r == -EINTR) continue;
    if (r < 0 || nsp_now_ms() >= idle_until) break;
    nsp_sleep_us(1000);
  }
  return n;
}

[[noreturn]] void leave(int code) {
  end_all(2000);
  for (;;) rsys1(SYS_exit_group, code);
}

void do_netlink(uint32_t tag, Cur& c) {
  uint32_t op = c.u32();
  int32_t a0 = (int32_t)c.u32(), a1 = (int32_t)c.u32();
  char* dst = g_strs;
  char* end = g_strs + sizeof g_strs;
  const char* s0 = c.str(&dst, end);
  char* s1p = dst;
  uint16_t s1len = 0;
  if (c.left >= 2) r_memcpy(&s1len, c.p, 2);
  const char* s1 = c.str(&dst, end);
  if (!c.ok) {
    reply_err(NSA_NETLINK, tag, EINVAL, FK_BAD_FRAME, "request", "read");
    return;
  }
  long r = -EINVAL;
  switch (op) {
    case NSA_NL_VETH_CREATE: r = nl_veth_create(s0, s1, a0); break;
    case NSA_NL_LINK_DEL: r = nl_link_del(s0); break;
    case NSA_NL_LINK_UP: r = nl_link_updown(s0, 1); break;
    case NSA_NL_IFINDEX: r = nl_ifindex(s0); break;
    case NSA_NL_ADDR_ADD: r = nl_addr_add(s0, a0, s1p, s1len, a1); break;
  }
  (void)s1;
  reply_values(NSA_NETLINK, tag, r);
}

// Host queues the agent holds (NSA_IPC_MQ_HOLD), by name.
#define NSA_MAX_HELD 32
struct Held {
  bool used;
  int fd;
  char name[256];
};
Held g_held[NSA_MAX_HELD];

Held* find_held(const char* name) {
  for (auto& h : g_held)
    if (h.used && r_strcmp(h.name, name) == 0) return &h;
  return nullptr;
}

void do_hostipc(uint32_t tag, Cur& c) {
  uint32_t op = c.u32();
  int32_t a0 = (int32_t)c.u32(), a1 = (int32_t)c.u32();
  char name[256];
  size_t n = c.left < sizeof name - 1 ? c.left : sizeof name - 1;
  if (c.ok) r_memcpy(name, c.p, n);
  name[c.ok ? n : 0] = 0;
  const char* q = name[0] == '/' ? name + 1 : name;
  if (!c.ok || c.left > sizeof name - 1) {
    reply_err(NSA_HOSTIPC, tag, EINVAL, FK_BAD_FRAME, "request", "read");
    return;
  }
  long r = -EINVAL;
  Held* h = find_held(q);
  switch (op) {
    case NSA_IPC_SYSV_REMOVE: r = nsp_sysv_remove(a0, a1); break;
    case NSA_IPC_MQ_HOLD: {
      if (h) {
        r = 0;
        break;
      }
      Held* f = nullptr;
      for (auto& x : g_held)
        if (!x.used) {
          f = &x;
          break;
        }
      if (!f) {
        r = -ENFILE;
        break;
      }
      int fd = -1;
      r = nsp_mq_hold(q, &fd);
      if (r == 0) {
        f->used = true;
        f->fd = fd;
        r_memcpy(f->name, q, r_strlen(q) + 1);
      }
      break;
    }
    case NSA_IPC_MQ_RELEASE:
      if (h) {
        rsys1(SYS_close, h->fd);
        h->used = false;
        r = 0;
      } else {
        r = -ENOENT;
      }
      break;
    // Never opened (and so closed) here while we hold it: the close would end our registration.
    case NSA_IPC_MQ_REAP: r = h ? -EBUSY : nsp_mq_reap(q, false); break;
    case NSA_IPC_MQ_PEEK: r = h ? -EBUSY : nsp_mq_reap(q, true); break;
  }
  reply_values(NSA_HOSTIPC, tag, r);
}

void set_nofile(uint32_t tag, uint32_t want) {
  struct rlimit rl;
  long soft = -1, hard = -1;
  if (rsys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl) == 0) {
    if (want > rl.rlim_max) want = (uint32_t)(rl.rlim_max > 0xffffffffu ? 0xffffffffu : rl.rlim_max);
    if (want > rl.rlim_cur) {
      struct rlimit nl = {want, rl.rlim_max};
      if (rsys4(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)&nl, 0) == 0) rl = nl;
    }
    soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
    hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long)rl.rlim_max;
  }
  if (tag) reply_values(NSA_SETNOFILE, tag, soft, hard);
}

void dispatch(const nsa_hdr& h, const char* payload) {
  Cur c = {payload, h.len, true};
  switch (h.type) {
    case NSA_ENTER: do_enter(h.tag, c); break;
    case NSA_REQUEST: do_request(h.tag, c); break;
    case NSA_CLOSE: do_close(h.tag, c); break;
    case NSA_ADOPT: do_adopt(h.tag, c); break;
    case NSA_KILL: {
      uint32_t id = c.u32();
      int sig = (int)c.u32();
      ABox* b = c.ok ? find_box(id) : nullptr;
      if (b && sig > 0 && sig < 65) kill_box(b, sig);
      reply_values(NSA_KILL, h.tag, b ? 1 : 0);
      break;
    }
    case NSA_CLOSEFD: {
      int fd = (int)c.u32();
      bool ok = c.ok && take_handle(fd);
      if (ok) rsys1(SYS_close, fd);
      reply_values(NSA_CLOSEFD, h.tag, ok ? 1 : 0);
      break;
    }
    case NSA_NETLINK: do_netlink(h.tag, c); break;
    case NSA_MQ_UNLINK: {
      char name[300];
      size_t n = h.len < sizeof name - 1 ? h.len : sizeof name - 1;
      r_memcpy(name, payload, n);
      name[n] = 0;
      const char* q = name[0] == '/' ? name + 1 : name;
      reply_values(NSA_MQ_UNLINK, h.tag, rsys1(SYS_mq_unlink, (long)q));
      break;
    }
    case NSA_SHUTDOWN: {
      uint32_t ms = c.u32();
      int n = end_all(c.ok ? ms : 2000);
      reply_values(NSA_SHUTDOWN, h.tag, n);
      break;
    }
    case NSA_HOSTIPC: do_hostipc(h.tag, c); break;
    case NSA_SETNOFILE: set_nofile(h.tag ? h.tag : 1, c.u32()); break;
    case NSA_PING: {
      Reply y;
      reply_init(&y);
      y.data = payload;
      y.dlen = h.len;
      send_reply(NSA_PING, h.tag, &y);
      break;
    }
    default: reply_err(NSA_ERROR, h.tag, EINVAL, FK_BAD_FRAME, "request", "read"); break;
  }
}

alignas(16) char g_inbuf[2 * (NSA_MAX_FRAME + sizeof(nsa_hdr))];
size_t g_inlen = 0;

// Reads what stdin has and runs each whole frame. False when stdin ended or a frame was unreadable.
bool read_input() {
  long n;
  do n = rsys3(SYS_read, g_in, (long)(g_inbuf + g_inlen), (long)(sizeof g_inbuf - g_inlen));
  while (n == -EINTR);
  if (n == -EAGAIN) return true;
  if (n <= 0) return false;
  g_inlen += (size_t)n;
  size_t off = 0;
  while (g_inlen - off >= sizeof(nsa_hdr)) {
    nsa_hdr h;
    r_memcpy(&h, g_inbuf + off, sizeof h);
    if (h.magic != NSA_MAGIC || h.flags != 0) {
      reply_err(NSA_ERROR, 0, EPROTO, FK_BAD_FRAME, "request", "read");
      return false;
    }
    if (h.len > NSA_MAX_FRAME) {
      reply_err(NSA_ERROR, h.tag, EMSGSIZE, FK_TOO_BIG, "request", "read", NSA_MAX_FRAME);
      return false;
    }
    if (g_inlen - off < sizeof h + h.len) break;
    // The payload is copied out: dispatch may write replies but never reads stdin again.
    dispatch(h, g_inbuf + off + sizeof h);
    off += sizeof h + h.len;
  }
  if (off) {
    for (size_t i = off; i < g_inlen; i++) g_inbuf[i - off] = g_inbuf[i];
    g_inlen -= off;
  }
  return true;
}

void send_hello() {
  struct utsname u;
  r_memset(&u, 0, sizeof u);
  rsys1(SYS_uname, (long)&u);
  char data[2 * sizeof u.machine + 2];
  size_t pos = 0;
  size_t m = r_strlen(u.machine), r = r_strlen(u.release);
  r_memcpy(data, u.machine, m);
  pos += m;
  data[pos++] = 0;
  if (r > sizeof u.machine) r = sizeof u.machine;
  r_memcpy(data + pos, u.release, r);
  pos += r;
  data[pos++] = 0;
  Reply y;
  reply_init(&y);
  y.r.v[0] = NSA_VERSION;
  y.r.v[1] = rsys0(SYS_getpid);
  y.r.v[2] = rsys0(SYS_geteuid);
  y.data = data;
  y.dlen = pos;
  send_reply(NSA_HELLO, 0, &y);
}

struct ksigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

pollfd g_pfd[2 + 2 * NSA_MAX_BOXES];
ABox* g_pbox[2 + 2 * NSA_MAX_BOXES];

int agent_main(int argc, char** argv) {
  if (argc >= 3 && argv[1][0] == '-' && argv[1][1] == '-' && argv[1][2] == 'r' && argv[1][3] == 'm' && !argv[1][4]) {
    // The bootstrap's copy of us: unlink it and its private directory now.
    const char* file = argv[2];
    rsys3(SYS_unlinkat, AT_FDCWD, (long)file, 0);
    char dir[512];
    size_t n = r_strlen(file);
    if (n < sizeof dir) {
      r_memcpy(dir, file, n + 1);
      while (n > 0 && dir[n - 1] != '/') n--;
      if (n > 1) {
        dir[n - 1] = 0;
        rsys3(SYS_unlinkat, AT_FDCWD, (long)dir, AT_REMOVEDIR);
      }
    }
  }
  // The channel moves off 0 and 1 (the children keep 0-2 open): /dev/null takes their place, so
  // no child holds the controller's pipes.
  g_in = (int)rsys3(SYS_fcntl, 0, F_DUPFD_CLOEXEC, 3);
  g_out = (int)rsys3(SYS_fcntl, 1, F_DUPFD_CLOEXEC, 3);
  if (g_in < 0 || g_out < 0) return 3;
  long dn = rsys4(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDWR, 0);
  if (dn >= 0) {
    rsys3(SYS_dup3, dn, 0, 0);
    rsys3(SYS_dup3, dn, 1, 0);
    if (dn > 2) rsys1(SYS_close, dn);
  }
  // A closed stdout is seen as EPIPE, not a signal that would skip the cleanup.
  struct ksigaction ign;
  r_memset(&ign, 0, sizeof ign);
  ign.handler = (void*)1;  // SIG_IGN
  rsys4(SYS_rt_sigaction, SIGPIPE, (long)&ign, 0, 8);
  // Orphans of killed servers come to us and are reaped, not left to init.
  rsys2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
  set_nofile(0, 1024);
  r_memset(g_natural, 0, sizeof g_natural);
  if (rsys3(SYS_sched_getaffinity, 0, sizeof g_natural, (long)g_natural) < 0) r_memset(g_natural, 0xff, sizeof g_natural);
  send_hello();

  for (;;) {
    int np = 0;
    g_pfd[np] = {g_in, POLLIN, 0};
    g_pbox[np++] = nullptr;
    if (g_wake[0] >= 0) {
      g_pfd[np] = {g_wake[0], POLLIN, 0};
      g_pbox[np++] = nullptr;
    }
    long now = nsp_now_ms();
    long wait = -1;
    bool tick = false;
    for (auto& b : g_boxes) {
      if (!b.used) continue;
      if (b.pending) {
        g_pfd[np] = {b.fd, POLLIN, 0};
        g_pbox[np++] = &b;
        long left = b.pdeadline - now;
        if (wait < 0 || left < wait) wait = left < 0 ? 0 : left;
      }
      if (b.closing) {
        if (b.pidfd >= 0) {
          g_pfd[np] = {b.pidfd, POLLIN, 0};
          g_pbox[np++] = &b;
        } else {
          tick = true;
        }
        long left = b.cdeadline - now;
        if (wait < 0 || left < wait) wait = left < 0 ? 0 : left;
      }
    }
    if (tick && (wait < 0 || wait > 1)) wait = 1;  // no pidfd (old kernels): look again each ms
    struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
    long pr = rsys5(SYS_ppoll, (long)g_pfd, np, wait < 0 ? 0 : (long)&ts, 0, 8);
    if (pr < 0 && pr != -EINTR) leave(4);
    if (g_entering > 0) collect_jobs();
    for (int i = 1; i < np && pr > 0; i++) {
      ABox* b = g_pbox[i];
      if (!b || !g_pfd[i].revents || !b->used) continue;
      if (g_pfd[i].fd == b->fd && b->pending) finish_request(b);
    }
    reap_any();
    now = nsp_now_ms();
    for (auto& b : g_boxes) {
      if (!b.used) continue;
      if (b.pending && !b.closing && now >= b.pdeadline) request_timeout(&b);
      if (b.used && b.closing) close_tick(&b, now);
    }
    if (pr > 0 && (g_pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!read_input()) leave(0);
    }
  }
}

}  // namespace

extern "C" int nsp_agent_main(long* sp) {
  long argc = sp[0];
  char** argv = (char**)(sp + 1);
  return agent_main((int)argc, argv);
}

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  xorl %ebp, %ebp\n"
    "  movq %rsp, %rdi\n"
    "  andq $-16, %rsp\n"
    "  callq nsp_agent_main\n"
    "  movl %eax, %edi\n"
    "  movl $231, %eax\n"  // exit_group
    "  syscall\n"
    "  hlt\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  mov x29, xzr\n"
    "  mov x0, sp\n"
    "  bl nsp_agent_main\n"
    "  mov x8, #94\n"  // exit_group
    "  svc #0\n"
    "  brk #0\n");
#endif
