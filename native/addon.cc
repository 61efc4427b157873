// The Node side of nsprobe's native addon: creates children in namespaces (enter), in the
// namespaces of others (join), talks to them over a SOCK_SEQPACKET socketpair (request) and
// ends them (close). Everything that may block runs on libuv's thread pool and returns a
// Promise. The children's code is in child.cc; the wire format in proto.h.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <napi.h>
#include <uv.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent-proto.h"
#include "child.h"
#include "enter.h"
#include "netlink.h"
#include "proto.h"
#include "raw.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace {



long now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Memory for a child: the control block (MAP_SHARED) and its stacks. Reused through a small pool:
// munmap costs a TLB shootdown across all of Node's threads.
struct Region : nsp_region {
  Region() { ctl = nullptr; stacks = nullptr; }
};
std::mutex g_pool_mu;
std::vector<Region> g_pool;

bool region_get(Region* r) {
  {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    if (!g_pool.empty()) {
      *r = g_pool.back();
      g_pool.pop_back();
      memset((void*)r->ctl, 0, sizeof(nsp_ctl));
      return true;
    }
  }
  long e = nsp_region_map(r);
  if (e < 0) {
    errno = (int)-e;
    return false;
  }
  return true;
}

void region_put(Region* r) {
  if (!r->ctl) return;
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_pool.size() < 16) {
    g_pool.push_back(*r);
  } else {
    nsp_region_unmap(r);
  }
  r->ctl = nullptr;
}

struct Box {
  uint32_t id = 0;
  int pid = -1;         // serving process, in Node's pid namespace
  int pidfd = -1;
  int fd = -1;          // our end of the socketpair
  bool is_child = true; // false for grandchildren handed to us over a channel
  Region region;        // stacks the child may still run on: kept until it is reaped
  std::mutex mu;        // serialises requests on this box
  std::atomic<bool> closing{false};
  std::atomic<bool> reaped{false};
  std::atomic<bool> shut{false};  // killed by shutdown(): what was waiting on it says so
  int status = 0;
  struct Chan* chan = nullptr;  // its socket's poll on the event loop, once a request waited (JS thread only)

  ~Box() {
    if (fd >= 0) close(fd);
    if (pidfd >= 0) close(pidfd);
    if (reaped || !is_child) region_put(&region);
    // A child we could not reap keeps its stacks: never unmap memory a live CLONE_VM child runs on.
  }
};

std::mutex g_mu;
std::map<uint32_t, std::shared_ptr<Box>> g_boxes;
uint32_t g_next_id = 1;

std::shared_ptr<Box> find_box(uint32_t id) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_boxes.find(id);
  return it == g_boxes.end() ? nullptr : it->second;
}

// Ids of the boxes shutdown() ended, ascending (ids only grow, and a shutdown takes every box
// open): a request sent to one afterwards (one that waited its turn in Sandbox's chain) is told
// the sandbox was shut down, not that it was closed.
std::vector<uint32_t> g_shut_ids;
bool was_shut(uint32_t id) {
  std::lock_guard<std::mutex> lk(g_mu);
  return std::binary_search(g_shut_ids.begin(), g_shut_ids.end(), id);
}
const char kShutMsg[] = "the sandbox was shut down";

uint32_t register_box(const std::shared_ptr<Box>& b) {
  std::lock_guard<std::mutex> lk(g_mu);
  b->id = g_next_id++;
  g_boxes[b->id] = b;
  return b->id;
}

// Boxes being entered (cloned, hello not yet settled): not in g_boxes yet, so an exit in the
// middle of an enter killed nothing of theirs, and their stages died of the parent-death signal
// after Node had gone, as zombies of the caller's subreaper (signals-zombies, about 1 run in 50
// interrupted at a random point). Cleanup kills their stages too, as the agent does.
std::map<Box*, std::weak_ptr<Box>> g_entering;

void entering_add(const std::shared_ptr<Box>& b) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_entering[b.get()] = b;
}

void entering_remove(Box* b) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_entering.erase(b);
}

int open_pidfd(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

void kill_box(Box* b, int sig) {
  if (b->pidfd >= 0 && syscall(SYS_pidfd_send_signal, b->pidfd, sig, nullptr, 0) == 0) return;
  if (b->pid > 0 && !b->reaped) kill(b->pid, sig);
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

// Node made itself a child subreaper (setSubreaper, the CLI does): a grandchild whose parent died
// first is then our child. Reaps it through its pidfd if so (never another process of that pid).
void reap_adopted(Box* b) {
  if (b->is_child || b->pidfd < 0) return;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  while (syscall(SYS_waitid, P_PIDFD, b->pidfd, &si, WEXITED | WNOHANG | __WALL, nullptr) < 0 && errno == EINTR) {
  }
}

bool g_subreaper = false;

// Waits up to ms for the process to exit (and reaps it when it is our child). True when gone.
bool wait_gone(Box* b, long ms) {
  if (b->reaped) return true;
  long deadline = now_ms() + ms;
  for (;;) {
    if (b->is_child) {
      int st = 0;
      pid_t r = waitpid(b->pid, &st, WNOHANG | __WALL);
      if (r == b->pid || (r < 0 && errno == ECHILD)) {
        b->status = st;
        b->reaped = true;
        return true;
      }
    } else if (b->pidfd < 0 || kill(b->pid, 0) < 0) {
      // Without a pidfd we can only tell by the channel closing, which happened before we got here.
      b->reaped = true;
      return true;
    }
    long left = deadline - now_ms();
    if (left <= 0) return false;
    if (b->pidfd >= 0) {
      struct pollfd p = {b->pidfd, POLLIN, 0};
      int pr = poll(&p, 1, (int)(left > 50 ? 50 : left));
      if (pr > 0 && !b->is_child) {
        reap_adopted(b);
        b->reaped = true;
        return true;
      }
    } else {
      usleep(500);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Errors as data

struct Failure {
  std::string stage, syscall, message;
  int err = 0;
};

Napi::Error make_error(Napi::Env env, const Failure& f) {
  std::string msg = f.message.empty() ? (f.syscall + " failed at stage " + f.stage + ": " + strerror(f.err)) : f.message;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("stage", f.stage);
  e.Value().Set("syscall", f.syscall);
  e.Value().Set("errno", f.err);
  e.Value().Set("native", true);
  return e;
}

// Receives one message; fills data, passed fds and the sender's pid (in our pid namespace).
// Returns bytes, 0 on EOF, -errno on failure.
long recv_msg(int fd, std::vector<char>* data, std::vector<int>* fds, int* cred_pid, int flags = 0) {
  // Receive into a per-thread buffer and copy out only what came: a 60 KiB allocation per
  // message made glibc's arenas grow by about 0.5 KiB per sandbox over long runs.
  thread_local char buf[NSP_MAX_REP + 1];
  int got[NSP_FRAME_FDS];
  int ngot = 0;
  long n = nsp_recv_frame(fd, buf, sizeof buf, got, &ngot, cred_pid, flags);
  if (n < 0) return n;
  fds->insert(fds->end(), got, got + ngot);
  data->assign(buf, buf + n);
  return n;
}

// Waits for the child's hello (or another unprompted message, op) on fd. True, or fills f.
// Failure from the shared entering code (enter.cc), worded as before.
Failure to_failure(const nsp_failure& nf) {
  Failure f{nf.stage, nf.sys, "", nf.err};
  switch (nf.kind) {
    case FK_HELLO_TIMEOUT: f.message = "the child did not start serving within " + std::to_string(nf.num) + " ms"; break;
    case FK_EXITED: f.message = "the child exited before it served"; break;
    case FK_MALFORMED: f.message = "malformed hello from the child"; break;
    case FK_OPEN_JOIN: f.message = std::string("cannot open ") + nf.arg + ": " + strerror(nf.err); break;
    case FK_CGROUP: f.message = std::string("cannot move the child into ") + nf.arg + ": " + strerror(nf.err); break;
    case FK_STAGE_SIGNAL: f.message = "a setup stage ended with signal " + std::to_string(nf.num); break;
    case FK_STAGE_STATUS: f.message = "a setup stage ended with status " + std::to_string(nf.num); break;
    case FK_MAP: f.message = std::string("writing /proc/PID/") + nf.arg + " failed: " + strerror(nf.err); break;
    default: break;
  }
  return f;
}

// Waits for the child's hello (or another unprompted message, op) on fd. True, or fills f.
bool wait_hello(int fd, long ms, std::vector<char>* hello, int* cred_pid, Failure* f, uint32_t op = OP_HELLO) {
  char buf[sizeof(nsp_rep) + 64];
  size_t len = 0;
  nsp_failure nf;
  if (!nsp_wait_hello(fd, ms, buf, sizeof buf, &len, cred_pid, &nf, op)) {
    *f = to_failure(nf);
    return false;
  }
  hello->assign(buf, buf + len);
  return true;
}

// ------------------------------------------------------------------------------------------
// enter / join

// ------------------------------------------------------------------------------------------
// CPU co-location
//
// Every step of a sandbox's life hands control from one task to another: Node's main thread to a
// worker, the worker to the new child, the child's reply back to the main thread. When the two
// sit on different CPUs each hand-over costs an inter-processor interrupt, which in a VM is a
// trip through the hypervisor: on the 2-CPU development VM a socketpair round trip took 8 us on
// one CPU and 36 us across two. The scheduler spreads a waking task to an idle CPU, so without
// help the child and Node's main thread land on different CPUs.
// So while a JS thread has exactly one sandbox (open or entering), it stays on the CPU it was on;
// the pool thread that enters moves there too; the child inherits that pin; and each request
// carries the main thread's CPU (nsp_req.cpu), to which the child moves if it changed (a cgroup
// move can reset a pin). Pinning only the child was not enough: a task that wakes the main thread
// while it still runs (the worker that finished entering, a child that replied) makes the
// scheduler move the main thread to the idle CPU, and in about a third of the runs the two then
// chased each other. Pinning the pool thread only while it entered was not enough either: it woke
// on the other CPU each time and paid a migration.
// With two or more sandboxes there is work to run side by side (the suite runs two probes at a
// time, each with a few sandboxes): pinning them all to one CPU made the suite 8% slower (median
// 332 against 312 ms). So then every pinned thread gets its mask back, and requests tell the
// children to take back the mask they were started with (NSP_CPU_RELEASE).
// When no sandbox is left, the masks come back after 50 ms (setColocate(false): at once).
// enter + 1 request + close for a UTS namespace, one at a time: 0.17 ms without, 0.09 ms with.
// NSPROBE_COLOCATE=0 (or setColocate(false)) turns it off.
bool g_colocate = true;
// NSPROBE_COLOCATE=all: every sandbox stays on the JS thread's CPU however many are open. A wake-up
// of a task on another CPU is an inter-processor interrupt, in a VM a trip through the hypervisor:
// in a suite run (mostly 3-7 sandboxes open, so spread) sendto was 2.3% of the JS thread's samples,
// most of it try_to_wake_up. Measured here at load 4-5 (n=21-25, interleaved): wall 305 against
// 358 ms and CPU 239 against 257 ms on Node 24, wall 402 against 499 ms and CPU 333 against 366 ms
// on Node 20. Not the default yet: the 8% loss measured when the spreading was chosen was on an
// idle machine.
bool g_colocate_all = false;

// nsprobe-serve, next to this addon (see native/serve.cc); empty when it is not there or
// NSPROBE_EXEC_SERVE=0, and then a time namespace's server is forked from Node as before.
// NSPROBE_SERVE_PATH names another program (tests use one that cannot be exec'd).
std::string g_serve_path;

void find_serve_path() {
  const char* e = getenv("NSPROBE_EXEC_SERVE");
  if (e && strcmp(e, "0") == 0) return;
  const char* o = getenv("NSPROBE_SERVE_PATH");
  if (o && *o) {
    g_serve_path = o;
    return;
  }
  Dl_info info;
  if (!dladdr((void*)&find_serve_path, &info) || !info.dli_fname) return;
  std::string p = info.dli_fname;
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return;
  p = p.substr(0, slash + 1) + "nsprobe-serve";
  if (access(p.c_str(), X_OK) == 0) g_serve_path = p;
}
const uint64_t kUnpinGraceMs = 50;

// Threads pinned here (the JS thread, pool threads that entered) and the masks to give back.
struct PinnedThread {
  pid_t tid;
  int cpu;
  cpu_set_t saved;
};
std::mutex g_pin_mu;
std::vector<PinnedThread> g_pinned;

pid_t self_tid() {
  thread_local pid_t tid = (pid_t)syscall(SYS_gettid);
  return tid;
}

// The calling thread's own mask while we have not pinned it, read once per thread: every enter
// asked the kernel again (76 sched_getaffinity calls a suite run). Nothing in nsprobe changes a
// thread's mask but the pins here, which keep the mask they replace (PinnedThread.saved).
thread_local bool t_own_ok = false;
thread_local cpu_set_t t_own;
bool own_mask(cpu_set_t* out) {
  if (!t_own_ok) {
    if (sched_getaffinity(0, sizeof t_own, &t_own) < 0) return false;
    t_own_ok = true;
  }
  *out = t_own;
  return true;
}

// Pins the calling thread to cpu, remembering its own mask the first time.
void pin_self(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return;
  pid_t tid = self_tid();
  std::lock_guard<std::mutex> lk(g_pin_mu);
  PinnedThread* t = nullptr;
  for (auto& p : g_pinned)
    if (p.tid == tid) t = &p;
  if (t && t->cpu == cpu) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (!t) {
    PinnedThread p{tid, cpu, {}};
    if (!own_mask(&p.saved)) return;
    if (sched_setaffinity(0, sizeof one, &one) == 0) g_pinned.push_back(p);
  } else if (sched_setaffinity(0, sizeof one, &one) == 0) {
    t->cpu = cpu;
  }
}

// Whether the calling thread is pinned to cpu by us.
bool pinned_to(int cpu) {
  pid_t tid = self_tid();
  std::lock_guard<std::mutex> lk(g_pin_mu);
  for (auto& p : g_pinned)
    if (p.tid == tid) return p.cpu == cpu;
  return false;
}

void unpin_all() {
  std::lock_guard<std::mutex> lk(g_pin_mu);
  for (auto& p : g_pinned) sched_setaffinity(p.tid, sizeof p.saved, &p.saved);
  g_pinned.clear();
}

// The calling thread's own mask: the one it had before we pinned it, if we did.
void natural_mask(cpu_set_t* out) {
  pid_t tid = self_tid();
  {
    std::lock_guard<std::mutex> lk(g_pin_mu);
    for (auto& p : g_pinned)
      if (p.tid == tid) {
        *out = p.saved;
        return;
      }
  }
  if (!own_mask(out)) {
    CPU_ZERO(out);
    for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, out);
  }
}

// Per JS thread: sandboxes open or entering, and the timer that unpins after the last one.
thread_local int t_active = 0;
thread_local uv_timer_t* t_unpin = nullptr;

// The hint a request carries (nsp_req.cpu): where the child should be.
uint32_t cpu_hint() {
  if (!g_colocate || t_active == 0) return 0;
  if (t_active > 1 && !g_colocate_all) return NSP_CPU_RELEASE;
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : (uint32_t)cpu + 1;
}

void unpin_fired(uv_timer_t*) {
  if (t_active == 0) unpin_all();
}

// Called on the JS thread when it starts entering (hold), and when that failed or a sandbox was
// closed (release). Threads and processes this thread starts while pinned inherit the pin; so
// hold is called after the work is queued.
void main_pin_hold(int cpu) {
  t_active++;
  if (t_unpin) uv_timer_stop(t_unpin);
  if (!g_colocate) return;
  if (g_colocate_all) return pin_self(cpu >= 0 ? cpu : sched_getcpu());
  if (t_active == 2) unpin_all();  // two sandboxes: let them spread
  if (t_active == 1) pin_self(cpu);
}
// The CPU a sandbox about to be entered should start on: this thread's, if it will be alone.
int start_cpu() { return g_colocate && (t_active == 0 || g_colocate_all) ? sched_getcpu() : -1; }
void main_pin_release(Napi::Env env) {
  if (t_active > 0) t_active--;
  if (t_active == 1 && g_colocate) pin_self(sched_getcpu());  // one left: keep it close again
  if (t_active > 0) return;
  if (!t_unpin) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return unpin_all();
    t_unpin = new uv_timer_t;
    uv_timer_init(loop, t_unpin);
    uv_unref((uv_handle_t*)t_unpin);
  }
  uv_timer_start(t_unpin, unpin_fired, kUnpinGraceMs, 0);
}

// The keys parse_spec reads (and those of the objects enter and close resolve with), made once per environment: a Get by a C string made a V8 string
// from UTF-8 each time, and Has + Get (+ Get again) per key were about 40 property lookups an
// enter on the JS thread; now it is one Get per key, by a kept string.
enum SpecKey {
  K_CLONE_FLAGS, K_USERNS, K_DROP, K_TIME, K_NO_VM, K_SETGROUPS_ALLOW, K_JOIN_FORK, K_DROP_UID, K_DROP_GID,
  K_OFF_MONO, K_OFF_BOOT, K_TIMEOUT, K_UID_MAP, K_GID_MAP, K_CGROUP_PROCS, K_JOIN_PATHS, K_JOIN_PIDFD_PID,
  K_JOIN_PIDFD_FLAGS, K_PATH, K_TYPE,
  // and the keys of what enter and close resolve with
  K_ID, K_PID, K_HELLO, K_REAPED, K_KILLED, K_EXIT_CODE, K_SIGNAL, K_ALREADY_CLOSED, K_COUNT
};
const char* const kSpecKeys[K_COUNT] = {"cloneFlags", "userns", "drop", "time", "noVm", "setgroupsAllow", "joinFork",
                                        "dropUid", "dropGid", "offMonotonic", "offBoottime", "timeoutMs", "uidMap",
                                        "gidMap", "cgroupProcs", "joinPaths", "joinPidfdPid", "joinPidfdFlags", "path", "type",
                                        "id", "pid", "hello", "reaped", "killed", "exitCode", "signal", "alreadyClosed"};
// Kept in an array (a reference to a string itself needs Node-API 10): an element read is cheap.
struct SpecKeys {
  Napi::ObjectReference arr;
};
SpecKeys* spec_keys(Napi::Env env) {
  SpecKeys* keys = env.GetInstanceData<SpecKeys>();
  if (keys) return keys;
  keys = new SpecKeys;
  Napi::Array a = Napi::Array::New(env, K_COUNT);
  for (uint32_t i = 0; i < K_COUNT; i++) a.Set(i, Napi::String::New(env, kSpecKeys[i]));
  keys->arr = Napi::Persistent(a.As<Napi::Object>());
  env.SetInstanceData<SpecKeys>(keys);  // deleted with the environment
  return keys;
}

Napi::Value key(Napi::Env env, SpecKey k) { return spec_keys(env)->arr.Value().Get((uint32_t)k); }

// An enter as JS asked for it: the fixed fields in the agent's frame layout (struct nsa_enter) and
// the strings, so enter.cc's one builder (nsp_enter_spec_build) makes the nsp_enter_spec of both.
struct EnterSpec {
  int cpu = -1;  // the CPU the child starts on (co-location), or -1
  cpu_set_t natural;  // the JS thread's own mask: the children's when they spread
  nsa_enter e{};
  std::vector<std::string> strs;  // uid_map, gid_map, cgroup_procs..., join_paths...
  bool has(uint32_t f) const { return e.flags & f; }
  bool join() const { return has(NSA_E_JOIN) || e.njoin > 0 || e.join_pidfd_pid > 0; }
  long timeout_ms() const { return e.timeout_ms > 0 ? e.timeout_ms : 5000; }
};

// Settles enter/join/adopt: the new box, registered, with the child's hello; or the failure.
void settle_started(Napi::Env env, Napi::Promise::Deferred& d, bool ok, const Failure& fail,
                    const std::shared_ptr<Box>& box, const std::vector<char>& hello) {
  entering_remove(box.get());
  if (!ok) {
    main_pin_release(env);
    d.Reject(make_error(env, fail).Value());
    return;
  }
  uint32_t id = register_box(box);
  Napi::Object o = Napi::Object::New(env);
  Napi::Object keys = spec_keys(env)->arr.Value();
  o.Set(keys.Get((uint32_t)K_ID), Napi::Number::New(env, id));
  o.Set(keys.Get((uint32_t)K_PID), Napi::Number::New(env, box->pid));
  // A bare ArrayBuffer (Sandbox makes the Buffer): a Buffer made here takes V8's slow path.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, hello.size());
  if (!hello.empty()) memcpy(ab.Data(), hello.data(), hello.size());
  o.Set(keys.Get((uint32_t)K_HELLO), ab);
  d.Resolve(o);
}

// The shared entering code (enter.cc) on a plain view of the spec (its strings stay spec's).
void to_nsp_spec(const EnterSpec& spec_, nsp_enter_spec* out) {
  const char* strs[2 + NSA_MAX_CGROUP + NSP_MAX_JOIN];
  int n = 0;
  for (auto& x : spec_.strs) strs[n++] = x.c_str();
  nsp_enter_spec_build(out, &spec_.e, strs, n);  // parse_spec keeps the counts in bounds
  static_assert(sizeof out->natural == sizeof spec_.natural, "cpu mask sizes");
  memcpy(out->natural, &spec_.natural, sizeof out->natural);
  out->serve_path = g_serve_path.c_str();
}

// The enter both paths share (EnterWorker on a pool thread, enter_on_loop on the JS thread): the
// box's memory, the spec, nsp_enter, and the child's descriptors into the box. False with *f;
// box->reaped then says whether its region is free again.
bool enter_into(const EnterSpec& spec, const std::shared_ptr<Box>& held, bool hello_later, int cpu, nsp_entered* out, Failure* f) {
  Box* box = held.get();
  if (!region_get(&box->region)) {
    *f = {"clone", "mmap", "", errno};
    return false;
  }
  entering_add(held);  // its region (ctl) is there: cleanup may read the stages' pids from now on
  nsp_enter_spec ns;
  to_nsp_spec(spec, &ns);
  ns.hello_later = hello_later;
  if (cpu >= 0) ns.cpu = cpu;  // the child starts there too
  nsp_failure nf;
  bool reaped = false;
  bool ok = nsp_enter(&ns, &box->region, out, &nf, &reaped);
  box->fd = out->fd;
  box->pidfd = out->pidfd;
  box->pid = out->pid;
  if (!ok) {
    *f = to_failure(nf);
    box->reaped = reaped;
  }
  return ok;
}

class EnterWorker : public Napi::AsyncWorker {
 public:
  EnterWorker(Napi::Env env, EnterSpec spec)
      : Napi::AsyncWorker(env), spec_(std::move(spec)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (spec_.cpu >= 0) pin_self(spec_.cpu);
    start();
  }
  void OnOK() override { settle_started(Env(), deferred_, ok_, fail_, box_, hello_); }
  void OnError(const Napi::Error& e) override {
    main_pin_release(Env());
    deferred_.Reject(e.Value());
  }

 private:
  void start() {
    box_ = std::make_shared<Box>();
    nsp_entered out;
    if (!enter_into(spec_, box_, false, -1, &out, &fail_)) return;
    hello_.assign(out.hello, out.hello + out.hello_len);
    ok_ = true;
  }

  EnterSpec spec_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Box> box_;
  std::vector<char> hello_;
  Failure fail_;
  bool ok_ = false;
};

EnterSpec parse_spec(const Napi::Object& o) {
  EnterSpec s;
  nsa_enter& e = s.e;
  Napi::Object keys = spec_keys(o.Env())->arr.Value();
  auto get = [&](const Napi::Object& from, SpecKey k) { return from.Get(keys.Get((uint32_t)k)); };
  auto num = [&](SpecKey k, double d) {
    Napi::Value v = get(o, k);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
  };
  auto flag = [&](SpecKey k, uint32_t f) { return get(o, k).ToBoolean().Value() ? f : 0u; };
  auto str = [&](SpecKey k) {
    Napi::Value v = get(o, k);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  e.clone_flags = (uint64_t)num(K_CLONE_FLAGS, 0);
  e.flags = flag(K_USERNS, NSA_E_USERNS) | flag(K_DROP, NSA_E_DROP) | flag(K_TIME, NSA_E_TIME) | flag(K_NO_VM, NSA_E_NOVM) |
            flag(K_SETGROUPS_ALLOW, NSA_E_SETGROUPS_ALLOW) | flag(K_JOIN_FORK, NSA_E_JOIN_FORK);
  e.drop_uid = (int)num(K_DROP_UID, 65534);
  e.drop_gid = (int)num(K_DROP_GID, 65534);
  e.off_mono = (int64_t)num(K_OFF_MONO, 0);
  e.off_boot = (int64_t)num(K_OFF_BOOT, 0);
  // Clamped to 1 ms .. INT32_MAX: a negative wait means "only look" to nsp_wait_hello, and a JS
  // number of 2^31 or more would wrap negative in the cast (review finding).
  {
    double t = num(K_TIMEOUT, 5000);
    e.timeout_ms = !(t >= 1) ? 5000 : t > 2147483647.0 ? 2147483647 : (int32_t)t;
  }
  s.strs.push_back(str(K_UID_MAP));
  s.strs.push_back(str(K_GID_MAP));
  Napi::Value cg = get(o, K_CGROUP_PROCS);
  if (cg.IsArray()) {
    Napi::Array a = cg.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && e.ncgroup < NSA_MAX_CGROUP; i++, e.ncgroup++) s.strs.push_back(a.Get(i).ToString().Utf8Value());
  }
  Napi::Value jp = get(o, K_JOIN_PATHS);
  if (jp.IsArray()) {
    e.flags |= NSA_E_JOIN;
    Napi::Array a = jp.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && e.njoin < NSP_MAX_JOIN; i++, e.njoin++) {
      Napi::Object j = a.Get(i).As<Napi::Object>();
      s.strs.push_back(get(j, K_PATH).ToString().Utf8Value());
      e.join_types[e.njoin] = (int)get(j, K_TYPE).ToNumber().Int32Value();
    }
  }
  Napi::Value jpid = get(o, K_JOIN_PIDFD_PID);
  if (!jpid.IsUndefined()) {
    e.flags |= NSA_E_JOIN;
    e.join_pidfd_pid = jpid.IsNumber() ? (int)jpid.As<Napi::Number>().DoubleValue() : 0;
    e.join_pidfd_flags = (int)num(K_JOIN_PIDFD_FLAGS, 0);
  }
  return s;
}

// Entering with nothing to wait for before the hello (no setup stage that exits, no cgroup move,
// no time namespace, the child shares our memory) runs on the JS thread, and the hello is
// awaited on the event loop: two thread hops fewer per sandbox (see enter_on_loop below).
bool g_enter_worker = false;  // NSPROBE_ENTER_WORKER=1 (read at load): always the pool thread
bool enter_on_loop_fits(const EnterSpec& s) {
  return !g_enter_worker && !s.join() && !s.has(NSA_E_TIME) && !s.has(NSA_E_DROP) && !s.has(NSA_E_NOVM) && s.e.ncgroup == 0;
}
Napi::Value enter_on_loop(Napi::Env env, const EnterSpec& spec, int cpu);

Napi::Value Enter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "enter(options) needs an options object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  EnterSpec spec = parse_spec(info[0].As<Napi::Object>());
  int cpu = spec.cpu = start_cpu();
  natural_mask(&spec.natural);
  if (enter_on_loop_fits(spec)) return enter_on_loop(env, spec, cpu);
  auto* w = new EnterWorker(env, std::move(spec));
  Napi::Promise p = w->Promise();
  w->Queue();
  main_pin_hold(cpu);  // after Queue(): the pool threads it may start must not inherit the pin
  return p;
}

// ------------------------------------------------------------------------------------------
// request

// What request() resolves with: {reply, fds, pid}.
Napi::Object reply_object(Napi::Env env, const std::vector<char>& reply, const std::vector<int>& fds, int cred) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("reply", Napi::Buffer<char>::Copy(env, reply.data(), reply.size()));
  Napi::Array a = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) a.Set((uint32_t)i, fds[i]);
  o.Set("fds", a);
  o.Set("pid", cred);
  return o;
}

// What requestBare() resolves with: the reply as a bare ArrayBuffer when no fds came with it (the
// JS side makes the Buffer: a Buffer made here is a Uint8Array whose prototype is then changed,
// a slow path in V8, and the {reply, fds, pid} object's three named sets were more again: 5.8 ms
// of a suite run's ~740 replies on the JS thread); otherwise the object, as request() gives it.
Napi::Value reply_value(Napi::Env env, const std::vector<char>& reply, const std::vector<int>& fds, int cred, bool bare) {
  if (!bare || !fds.empty()) return reply_object(env, reply, fds, cred);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, reply.size());
  if (!reply.empty()) memcpy(ab.Data(), reply.data(), reply.size());
  return ab;
}

class RequestWorker : public Napi::AsyncWorker {
 public:
  RequestWorker(Napi::Env env, std::shared_ptr<Box> box, std::vector<char> req, long timeout_ms, bool sent, bool bare)
      : Napi::AsyncWorker(env), box_(std::move(box)), req_(std::move(req)), timeout_ms_(timeout_ms), sent_(sent), bare_(bare),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::lock_guard<std::mutex> lk(box_->mu);
    if (box_->closing) {
      fail_ = {"request", "send", "the sandbox is closed", EPIPE};
      return;
    }
    ssize_t w = 0;
    long deadline = now_ms() + timeout_ms_;
    if (!sent_) {
      // The socket is non-blocking once its sandbox's poll watches it (uv_poll_init): a full
      // socket (the child not reading yet) is waited on here, until the request's deadline.
      for (;;) {
        do w = send(box_->fd, req_.data(), req_.size(), MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) break;
        long left = deadline - now_ms();
        struct pollfd o = {box_->fd, POLLOUT, 0};
        if (left <= 0 || (poll(&o, 1, (int)left) < 0 && errno != EINTR)) {
          kill_box(box_.get(), SIGKILL);
          fail_ = {"timeout", "send", "", ETIMEDOUT};
          fail_.message = "timeout after " + std::to_string(timeout_ms_) + " ms";
          return;
        }
      }
    }
    if (w < 0) {
      fail_ = {"request", "send", "", errno};
      fail_.message = std::string("the child is gone (") + strerror(errno) + ")";
      return;
    }
    struct pollfd p = {box_->fd, POLLIN, 0};
    int pr;
    do {
      long left = deadline - now_ms();
      pr = poll(&p, 1, (int)(left < 0 ? 0 : left));
    } while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      // A child that does not answer is killed with everything it started (for PID 1 of a pid
      // namespace that is the whole namespace; its own children die by their parent-death signal).
      kill_box(box_.get(), SIGKILL);
      fail_ = {"timeout", "poll", "", ETIMEDOUT};
      fail_.message = "timeout after " + std::to_string(timeout_ms_) + " ms";
      return;
    }
    long n = recv_msg(box_->fd, &reply_, &fds_, &cred_pid_);
    if (n == 0) {
      fail_ = {"request", "recvmsg", "the child exited without replying", EPIPE};
      return;
    }
    if (n < 0) {
      fail_ = {"request", "recvmsg", "", (int)-n};
      return;
    }
    ok_ = true;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!ok_ && box_->shut) fail_ = {"request", "recvmsg", kShutMsg, ECANCELED};  // killed by shutdown()
    if (!ok_) {
      deferred_.Reject(make_error(env, fail_).Value());
      return;
    }
    deferred_.Resolve(reply_value(env, reply_, fds_, cred_pid_, bare_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<Box> box_;
  std::vector<char> req_;
  long timeout_ms_;
  bool sent_;
  bool bare_;
  Napi::Promise::Deferred deferred_;
  std::vector<char> reply_;
  std::vector<int> fds_;
  int cred_pid_ = 0;
  Failure fail_;
  bool ok_ = false;
};

// ------------------------------------------------------------------------------------------
// The fast paths: a request or a close that needs no blocking call waits for its answer on the
// event loop itself (uv_poll on the socket or the pidfd), which saves two thread hops per call.
// A send that would block, or a kernel without pidfd, falls back to the workers above.

// One async context serves every fast-path callback (they need one to run promise reactions).
Napi::AsyncContext* g_async = nullptr;

// The async context every settle of a waiting request runs in, made by the first waiter.
void ensure_async(Napi::Env e) {
  if (!g_async) g_async = new Napi::AsyncContext(e, "nsprobe");
}

// Settles a promise from a libuv callback: inside a handle and a callback scope.
void settle_scoped(Napi::Env env, Napi::Promise::Deferred& d, const std::function<void(Napi::Env, Napi::Promise::Deferred&)>& settle) {
  Napi::HandleScope hs(env);
  Napi::CallbackScope cs(env, *g_async);
  settle(env, d);
}

struct Waiter {
  Napi::Env env;
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Box> box;
  uv_poll_t poll;
  uv_timer_t timer;
  int open_handles = 0;
  long timeout_ms = 0;
  bool done = false;
  bool killed = false;
  Waiter(Napi::Env e, std::shared_ptr<Box> b)
      : env(e), deferred(Napi::Promise::Deferred::New(e)), box(std::move(b)) {
    ensure_async(e);
  }
};

void waiter_handle_closed(uv_handle_t* h) {
  Waiter* w = (Waiter*)h->data;
  if (--w->open_handles == 0) delete w;
}

// Settles the promise inside a callback scope (so promise reactions run) and releases the handles.
// The handles are closed first: uv_close stops them at once (the promise's reactions may start a
// poll on the same fd), and a uv_poll_stop before it removed the fd from epoll twice, the second
// time failing with ENOENT. w itself lives until both close callbacks ran.
void waiter_finish(Waiter* w, const std::function<void(Napi::Env, Napi::Promise::Deferred&)>& settle) {
  if (w->done) return;
  w->done = true;
  uv_close((uv_handle_t*)&w->poll, waiter_handle_closed);
  uv_close((uv_handle_t*)&w->timer, waiter_handle_closed);
  settle_scoped(w->env, w->deferred, settle);
}

bool waiter_start(Waiter* w, int fd, uv_poll_cb on_ready, uv_timer_cb on_timer) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(w->env, &loop) != napi_ok || !loop) return false;
  if (uv_poll_init(loop, &w->poll, fd) != 0) return false;
  w->poll.data = w;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles = 2;
  uv_poll_start(&w->poll, UV_READABLE, on_ready);
  uv_timer_start(&w->timer, on_timer, (uint64_t)(w->timeout_ms < 0 ? 0 : w->timeout_ms), 0);
  return true;
}

// enter on the JS thread: clone (the child inherits the pin, so hold first), write the id maps of
// a user namespace, then wait for the hello on the event loop. Measured (uts, privileged, one at a
// time, interleaved at load 15): enter + 1 request + close 0.093 ms through a pool thread, 0.078 ms
// so; privileged user 0.132 against 0.112. NSPROBE_ENTER_WORKER=1 takes the pool thread (to compare).
void enter_settle(Waiter* w, bool ok, const nsp_failure& nf, const nsp_entered& out, bool reaped) {
  std::vector<char> hello;
  if (ok) hello.assign(out.hello, out.hello + out.hello_len);
  else w->box->reaped = reaped;
  Failure fail = ok ? Failure{} : to_failure(nf);
  waiter_finish(w, [&](Napi::Env env, Napi::Promise::Deferred& d) { settle_started(env, d, ok, fail, w->box, hello); });
}

nsp_entered entered_of(const Box* b) {
  nsp_entered out;
  out.fd = b->fd;
  out.pid = b->pid;
  out.pidfd = b->pidfd;
  out.hello_len = 0;
  return out;
}

void enter_ready(uv_poll_t* h, int status, int events) {
  Waiter* w = (Waiter*)h->data;
  if (w->done) return;
  nsp_entered out = entered_of(w->box.get());
  nsp_failure nf;
  bool reaped = false;
  bool ok = nsp_enter_hello(&w->box->region, &out, -1, &nf, &reaped);  // readable: no poll first
  if (!ok && nf.kind == FK_HELLO_TIMEOUT) return;  // spurious wake-up: keep waiting
  enter_settle(w, ok, nf, out, reaped);
}

void enter_timeout(uv_timer_t* h) {
  Waiter* w = (Waiter*)h->data;
  if (w->done) return;
  nsp_entered out = entered_of(w->box.get());
  nsp_failure nf;
  // The JS thread may have been busy past the deadline (a spawnSync) while the hello came: libuv
  // runs timers before polling, so look first; only a hello that is not there is a timeout.
  bool reaped = false;
  bool ok = nsp_enter_hello(&w->box->region, &out, -1, &nf, &reaped);
  if (ok || nf.kind != FK_HELLO_TIMEOUT) return enter_settle(w, ok, nf, out, reaped);
  memset(&nf, 0, sizeof nf);
  nf.stage = "timeout";
  nf.sys = "poll";
  nf.err = ETIMEDOUT;
  nf.kind = FK_HELLO_TIMEOUT;
  nf.num = w->timeout_ms;
  nsp_enter_hello(&w->box->region, &out, 0, &nf, &reaped, true);
  enter_settle(w, false, nf, out, reaped);
}

Napi::Value enter_on_loop(Napi::Env env, const EnterSpec& spec, int cpu) {
  main_pin_hold(cpu);
  auto box = std::make_shared<Box>();
  nsp_entered out;
  Failure fail;
  bool ok = enter_into(spec, box, true, cpu >= 0 && pinned_to(cpu) ? cpu : -1, &out, &fail);
  Waiter* w = new Waiter(env, box);
  w->timeout_ms = spec.timeout_ms();
  Napi::Promise p = w->deferred.Promise();
  if (ok && waiter_start(w, box->fd, enter_ready, enter_timeout)) return p;
  // Failed, or no poll handle: settle here (a hello is waited for in place).
  if (ok) {
    nsp_failure nf;
    bool reaped = false;
    ok = nsp_enter_hello(&box->region, &out, spec.timeout_ms(), &nf, &reaped);
    if (!ok) {
      fail = to_failure(nf);
      box->reaped = reaped;
    }
  }
  std::vector<char> hello;
  if (ok) hello.assign(out.hello, out.hello + out.hello_len);
  settle_started(env, w->deferred, ok, ok ? Failure{} : fail, box, hello);
  delete w;
  return p;
}

// Settles a request with what recv_msg returned (n) for it.
void settle_reply(Napi::Env env, Napi::Promise::Deferred& d, long n, const std::vector<char>& reply, const std::vector<int>& fds, int cred, bool bare) {
  if (n <= 0) {
    Failure f = n == 0 ? Failure{"request", "recvmsg", "the child exited without replying", EPIPE} : Failure{"request", "recvmsg", "", (int)-n};
    d.Reject(make_error(env, f).Value());
    return;
  }
  d.Resolve(reply_value(env, reply, fds, cred, bare));
}

// A box's socket on the event loop: one uv_poll for the box's life, armed from its first request
// that had to wait until the box is closed, and a queue of the requests waiting for replies (the
// child answers in order). A poll per request (init, start, stop, close) cost five epoll_ctl
// calls, one of them failing, per request that waited: 3,810 in a suite run for ~740 requests.
// The poll is unreferenced: a request's timer keeps the loop alive while it waits, and an idle
// open sandbox does not. Readable with nothing waiting (the child exited, or sent what nobody
// asked for): the poll stops, and the next request arms it again; what came stays unread.
struct ReqWaiter {
  Napi::Env env;
  Napi::Promise::Deferred deferred;
  Chan* chan;
  uv_timer_t timer;
  long timeout_ms;
  bool bare;
  bool done = false;
  ReqWaiter(Napi::Env e, Chan* c, long t, bool b) : env(e), deferred(Napi::Promise::Deferred::New(e)), chan(c), timeout_ms(t), bare(b) {
    ensure_async(e);
  }
};

struct Chan {
  uv_poll_t poll;
  std::shared_ptr<Box> box;  // kept (and so its fd open) until the poll is closed
  // A vector, not a deque: a deque's map allocation pulls in std::__throw_bad_array_new_length
  // (GLIBCXX_3.4.29), above the prebuild's GCC 8 floor; the queue is a few entries deep.
  std::vector<ReqWaiter*> q;
  bool armed = false;
  bool release = false;  // the box was closed: close the poll once nothing waits
  bool closed = false;
};
thread_local std::vector<Chan*> t_chans;  // open ones, for the environment's teardown

void chan_closed(uv_handle_t* h) { delete (Chan*)h->data; }

void chan_close_now(Chan* c) {
  if (c->closed) return;
  c->closed = true;
  if (c->box->chan == c) c->box->chan = nullptr;
  t_chans.erase(std::remove(t_chans.begin(), t_chans.end(), c), t_chans.end());
  uv_close((uv_handle_t*)&c->poll, chan_closed);
}

void chan_maybe_close(Chan* c) {
  if (c->release && c->q.empty()) chan_close_now(c);
}

void chan_ready(uv_poll_t* h, int status, int events);

// The box's channel, made on first use; nullptr when the loop cannot poll it (then a worker waits).
Chan* chan_of(Napi::Env env, const std::shared_ptr<Box>& box) {
  if (box->chan) return box->chan;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return nullptr;
  Chan* c = new Chan;
  if (uv_poll_init(loop, &c->poll, box->fd) != 0) {
    delete c;
    return nullptr;
  }
  c->poll.data = c;
  c->box = box;
  uv_unref((uv_handle_t*)&c->poll);
  box->chan = c;
  t_chans.push_back(c);
  return c;
}

void req_closed(uv_handle_t* h) { delete (ReqWaiter*)h->data; }

// Settles a waiting request inside a callback scope (so promise reactions run); the timer is
// closed first, w freed by its close callback.
void req_finish(ReqWaiter* w, const std::function<void(Napi::Env, Napi::Promise::Deferred&)>& settle) {
  w->done = true;
  uv_close((uv_handle_t*)&w->timer, req_closed);
  settle_scoped(w->env, w->deferred, settle);
}

// Takes the replies that are there for the requests at the front of c's queue (the child answers
// in order), settling them all in one handle and callback scope: their reactions (the probes'
// continuations) run once, when it closes, not one scope per reply. Stops at the first read that
// finds nothing (no extra read when the queue empties), or once `until` is settled; true if it was.
bool chan_take(Chan* c, ReqWaiter* until) {
  if (c->q.empty()) return false;
  std::vector<char> reply;
  std::vector<int> fds;
  int cred = 0;
  long n = recv_msg(c->box->fd, &reply, &fds, &cred, MSG_DONTWAIT);
  if (n == -EAGAIN || n == -EINTR) return false;  // nothing there (a spurious wake-up): keep waiting
  Napi::Env env = c->q.front()->env;
  Napi::HandleScope hs(env);
  Napi::CallbackScope cs(env, *g_async);
  bool got = false;
  for (;;) {
    ReqWaiter* w = c->q.front();
    c->q.erase(c->q.begin());
    w->done = true;
    uv_close((uv_handle_t*)&w->timer, req_closed);  // w is freed by its close callback
    settle_reply(env, w->deferred, n, reply, fds, cred, w->bare);
    if (w == until) got = true;
    if (got || c->q.empty()) break;
    reply.clear();
    fds.clear();
    n = recv_msg(c->box->fd, &reply, &fds, &cred, MSG_DONTWAIT);
    if (n == -EAGAIN || n == -EINTR) break;
  }
  return got;
}

void chan_ready(uv_poll_t* h, int status, int events) {
  Chan* c = (Chan*)h->data;
  // On an error (POLLERR: the child died with our request unread) libuv has stopped the poll
  // itself: the next request must start it again. The recv below reads the error.
  if (status < 0) c->armed = false;
  if (c->q.empty()) {
    uv_poll_stop(&c->poll);
    c->armed = false;
    return;
  }
  chan_take(c, nullptr);
  chan_maybe_close(c);  // c is freed only by its close callback, after this returns
}

void request_timeout(uv_timer_t* h) {
  ReqWaiter* w = (ReqWaiter*)h->data;
  if (w->done) return;
  Chan* c = w->chan;
  // The JS thread may have been busy past the deadline (a spawnSync, a long synchronous step)
  // while the reply came: libuv runs timers before it polls, so look first. Only a reply that is
  // not there is a timeout (replies to requests before it are taken on the way).
  if (chan_take(c, w)) return chan_maybe_close(c);
  if (w->done) return chan_maybe_close(c);  // settled by what ran when the replies taken settled (a shutdown())
  c->q.erase(std::remove(c->q.begin(), c->q.end(), w), c->q.end());
  kill_box(c->box.get(), SIGKILL);
  req_finish(w, [&](Napi::Env env, Napi::Promise::Deferred& d) {
    Failure f{"timeout", "poll", "timeout after " + std::to_string(w->timeout_ms) + " ms", ETIMEDOUT};
    d.Reject(make_error(env, f).Value());
  });
  chan_maybe_close(c);
}

// Waits on the loop for the reply to a request just sent; false when it cannot.
bool request_wait(Napi::Env env, const std::shared_ptr<Box>& box, long timeout, bool bare, Napi::Value* promise) {
  Chan* c = chan_of(env, box);
  uv_loop_t* loop = nullptr;
  if (!c || napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return false;
  auto* w = new ReqWaiter(env, c, timeout, bare);
  *promise = w->deferred.Promise();
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, request_timeout, (uint64_t)(timeout < 0 ? 0 : timeout), 0);
  c->q.push_back(w);
  if (!c->armed) {
    uv_poll_start(&c->poll, UV_READABLE, chan_ready);
    c->armed = true;
  }
  return true;
}

// The polls go. At the environment's teardown the waiting requests die with it (no JS runs any
// more); from shutdown() (called from JS) each is rejected: the sandbox was shut down.
void chans_close_all(bool settle) {
  // Taken by swap, not copied: a vector's copy allocates through the path that needs
  // std::__throw_bad_array_new_length (GLIBCXX_3.4.29), above the prebuild's GCC 8 floor.
  std::vector<Chan*> all;
  all.swap(t_chans);
  for (Chan* c : all) {
    for (ReqWaiter* w : c->q) {
      w->done = true;
      uv_close((uv_handle_t*)&w->timer, req_closed);
      if (settle) w->deferred.Reject(make_error(w->env, {"request", "recvmsg", kShutMsg, ECANCELED}).Value());
    }
    c->q.clear();
    chan_close_now(c);
  }
}

Napi::Value rejected(Napi::Env env, const Failure& f);

enum class Fast { kDone, kNotSent, kSentNeedWorker };

// Tries the fast path; otherwise says whether the worker still has to send.
Fast request_fast(Napi::Env env, const std::shared_ptr<Box>& box, const char* data, size_t len, long timeout, bool bare, Napi::Value* promise) {
  if (box->closing) return Fast::kNotSent;
  ssize_t sent;
  do sent = send(box->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Fast::kNotSent;
  if (sent >= 0 && (!box->chan || box->chan->q.empty())) {
    // With the child on our CPU it has usually run and replied while we were in send() (385 of
    // 400 times here): take the reply now, without a timer and an epoll round.
    std::vector<char> reply;
    std::vector<int> fds;
    int cred = 0;
    long n = recv_msg(box->fd, &reply, &fds, &cred, MSG_DONTWAIT);
    if (n != -EAGAIN && n != -EINTR) {
      auto d = Napi::Promise::Deferred::New(env);
      settle_reply(env, d, n, reply, fds, cred, bare);
      *promise = d.Promise();
      return Fast::kDone;
    }
  }
  if (sent < 0) {
    int e = errno;
    *promise = rejected(env, {"request", "send", std::string("the child is gone (") + strerror(e) + ")", e});
    return Fast::kDone;
  }
  if (!request_wait(env, box, timeout, bare, promise)) return Fast::kSentNeedWorker;  // the request is out; a worker collects the reply
  return Fast::kDone;
}

// A promise already rejected with f. Deferreds are made only where they are settled: an
// unsettled one keeps its promise alive for ever (Request and Close used to make one up front and
// return another, leaking a pending promise per call: ~47 bytes of V8 heap each).
Napi::Value rejected(Napi::Env env, const Failure& f) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(make_error(env, f).Value());
  return d.Promise();
}

Napi::Value request_impl(const Napi::CallbackInfo& info, bool bare) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    Napi::TypeError::New(env, "request(id, buffer, timeoutMs) needs a sandbox id and a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto box = find_box(info[0].As<Napi::Number>().Uint32Value());
  Napi::Buffer<char> buf = info[1].As<Napi::Buffer<char>>();
  if (!box) {
    uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    if (was_shut(id)) return rejected(env, {"request", "send", kShutMsg, ECANCELED});
    return rejected(env, {"request", "send", "no such sandbox (already closed)", EBADF});
  }
  if (buf.Length() > NSP_MAX_REQ)
    return rejected(env, {"request", "send", "request larger than " + std::to_string(NSP_MAX_REQ) + " bytes", EMSGSIZE});
  long timeout = info.Length() > 2 && info[2].IsNumber() ? (long)info[2].As<Napi::Number>().Int64Value() : 5000;
  // A copy with the co-location hint filled in (the caller's buffer stays as it was).
  char req[NSP_MAX_REQ];
  size_t len = buf.Length();
  memcpy(req, buf.Data(), len);
  uint32_t hint = cpu_hint();
  if (hint && len >= sizeof(nsp_req)) memcpy(req + offsetof(nsp_req, cpu), &hint, sizeof hint);
  Napi::Value fast;
  Fast f = request_fast(env, box, req, len, timeout, bare, &fast);
  if (f == Fast::kDone) return fast;
  auto* w = new RequestWorker(env, box, std::vector<char>(req, req + len), timeout, f == Fast::kSentNeedWorker, bare);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// request(id, buffer, timeoutMs): {reply: Buffer, fds, pid}.
Napi::Value Request(const Napi::CallbackInfo& info) { return request_impl(info, false); }
// requestBare(id, buffer, timeoutMs): the reply as an ArrayBuffer when it carried no fds, else as request().
Napi::Value RequestBare(const Napi::CallbackInfo& info) { return request_impl(info, true); }

// ------------------------------------------------------------------------------------------
// close

// Forgets a closed box and describes how it ended.
Napi::Object close_result(Napi::Env env, const std::shared_ptr<Box>& box, bool killed) {
  size_t erased;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    erased = g_boxes.erase(box->id);
  }
  if (erased) main_pin_release(env);
  Napi::Object o = Napi::Object::New(env);
  Napi::Object keys = spec_keys(env)->arr.Value();
  int st = box->status;
  o.Set(keys.Get((uint32_t)K_REAPED), Napi::Boolean::New(env, box->reaped.load()));
  o.Set(keys.Get((uint32_t)K_KILLED), Napi::Boolean::New(env, killed));
  bool known = box->is_child && box->reaped;
  o.Set(keys.Get((uint32_t)K_EXIT_CODE), known && WIFEXITED(st) ? Napi::Value(Napi::Number::New(env, WEXITSTATUS(st))) : env.Null());
  o.Set(keys.Get((uint32_t)K_SIGNAL), known && WIFSIGNALED(st) ? Napi::Value(Napi::Number::New(env, WTERMSIG(st))) : env.Null());
  return o;
}

class CloseWorker : public Napi::AsyncWorker {
 public:
  CloseWorker(Napi::Env env, std::shared_ptr<Box> box, long timeout_ms)
      : Napi::AsyncWorker(env), box_(std::move(box)), timeout_ms_(timeout_ms), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    // Closing our end makes the child's recv return 0 and it exits; a child stuck in a request
    // does not see that, so after the grace time it is killed.
    shutdown(box_->fd, SHUT_RDWR);
    if (!wait_gone(box_.get(), timeout_ms_)) {
      killed_ = true;
      kill_box(box_.get(), SIGKILL);
      wait_gone(box_.get(), 5000);
    }
    std::lock_guard<std::mutex> lk(box_->mu);  // wait for a pending request to finish
  }
  void OnOK() override {
    Napi::Object o = close_result(Env(), box_, killed_);
    box_.reset();
    deferred_.Resolve(o);
  }

 private:
  std::shared_ptr<Box> box_;
  long timeout_ms_;
  bool killed_ = false;
  Napi::Promise::Deferred deferred_;
};

// Close on the event loop: wait for the pidfd to turn readable (the process ended), then reap.
void close_ready(uv_poll_t* h, int status, int events) {
  Waiter* w = (Waiter*)h->data;
  if (w->box->is_child) {
    int st = 0;
    pid_t r = waitpid(w->box->pid, &st, WNOHANG | __WALL);
    if (r == 0) return;  // not yet reapable: keep waiting
    if (r == w->box->pid) w->box->status = st;
  } else {
    reap_adopted(w->box.get());
  }
  w->box->reaped = true;
  waiter_finish(w, [&](Napi::Env env, Napi::Promise::Deferred& d) { d.Resolve(close_result(env, w->box, w->killed)); });
}

void close_timeout(uv_timer_t* h) {
  Waiter* w = (Waiter*)h->data;
  if (!w->killed) {
    // The grace time is over (a child stuck in a request does not see EOF): kill it.
    w->killed = true;
    kill_box(w->box.get(), SIGKILL);
    uv_timer_start(&w->timer, close_timeout, 5000, 0);
    return;
  }
  waiter_finish(w, [&](Napi::Env env, Napi::Promise::Deferred& d) { d.Resolve(close_result(env, w->box, true)); });
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto box = info.Length() > 0 && info[0].IsNumber() ? find_box(info[0].As<Napi::Number>().Uint32Value()) : nullptr;
  if (!box || box->closing.exchange(true)) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("reaped", true);
    o.Set("killed", false);
    o.Set("exitCode", env.Null());
    o.Set("signal", env.Null());
    o.Set("alreadyClosed", true);
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(o);
    return d.Promise();
  }
  long timeout = info.Length() > 1 && info[1].IsNumber() ? (long)info[1].As<Napi::Number>().Int64Value() : 1000;
  if (box->chan) {
    box->chan->release = true;
    chan_maybe_close(box->chan);  // or once the requests still waiting have their answer (EOF)
  }
  if (box->pidfd >= 0) {
    // Closing our end makes the child's recv return 0 and it exits.
    shutdown(box->fd, SHUT_RDWR);
    // With the child on our CPU it has usually exited by now (390 of 400 times here): reap it
    // at once instead of through a poll on its pidfd.
    int st = 0;
    if (box->is_child && waitpid(box->pid, &st, WNOHANG | __WALL) == box->pid) {
      box->status = st;
      box->reaped = true;
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(close_result(env, box, false));
      return d.Promise();
    }
    Waiter* w = new Waiter(env, box);
    w->timeout_ms = timeout;
    Napi::Promise p = w->deferred.Promise();
    if (waiter_start(w, box->pidfd, close_ready, close_timeout)) return p;
    delete w;
  }
  auto* w = new CloseWorker(env, box, timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// adopt(fd): a channel to a grandchild (passed back by OP_FORK). Waits for its hello.
class AdoptWorker : public Napi::AsyncWorker {
 public:
  AdoptWorker(Napi::Env env, int fd, long timeout_ms)
      : Napi::AsyncWorker(env), fd_(fd), timeout_ms_(timeout_ms), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    box_ = std::make_shared<Box>();
    box_->is_child = false;
    box_->fd = fd_;
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int cred = 0;
    if (!wait_hello(fd_, timeout_ms_, &hello_, &cred, &fail_)) return;
    box_->pid = cred;
    box_->pidfd = cred > 0 ? open_pidfd(cred) : -1;
    ok_ = true;
  }
  void OnOK() override { settle_started(Env(), deferred_, ok_, fail_, box_, hello_); }

 private:
  int fd_;
  long timeout_ms_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Box> box_;
  std::vector<char> hello_;
  Failure fail_;
  bool ok_ = false;
};

Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "adopt(fd) needs a file descriptor").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  long timeout = info.Length() > 1 && info[1].IsNumber() ? (long)info[1].As<Napi::Number>().Int64Value() : 5000;
  auto* w = new AdoptWorker(env, info[0].As<Napi::Number>().Int32Value(), timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  main_pin_hold(start_cpu());
  return p;
}

Napi::Value Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto box = info.Length() > 0 && info[0].IsNumber() ? find_box(info[0].As<Napi::Number>().Uint32Value()) : nullptr;
  if (!box) return Napi::Boolean::New(env, false);
  int sig = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : SIGKILL;
  kill_box(box.get(), sig);
  return Napi::Boolean::New(env, true);
}

Napi::Value OpenCount(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lk(g_mu);
  return Napi::Number::New(info.Env(), (double)g_boxes.size());
}

Napi::Value OpenPids(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lk(g_mu);
  Napi::Array a = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (auto& kv : g_boxes) a.Set(i++, kv.second->pid);
  return a;
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// Host-side netlink (runs in the Node process's own network namespace).
Napi::Value NetlinkOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string op = info[0].ToString().Utf8Value();
  std::string a = info.Length() > 1 ? info[1].ToString().Utf8Value() : "";
  long r = -EINVAL;
  if (op == "vethCreate") {
    std::string b = info[2].ToString().Utf8Value();
    int pid = info.Length() > 3 ? info[3].ToNumber().Int32Value() : 0;
    r = nl_veth_create(a.c_str(), b.c_str(), pid);
  } else if (op == "linkDel") {
    r = nl_link_del(a.c_str());
  } else if (op == "linkUp") {
    r = nl_link_updown(a.c_str(), 1);
  } else if (op == "ifindex") {
    r = nl_ifindex(a.c_str());
  } else if (op == "addrAdd") {
    int family = info[2].ToNumber().Int32Value();
    Napi::Buffer<char> addr = info[3].As<Napi::Buffer<char>>();
    int prefix = info[4].ToNumber().Int32Value();
    r = nl_addr_add(a.c_str(), family, addr.Data(), addr.Length(), prefix);
  }
  return Napi::Number::New(env, (double)r);
}

// As a subreaper, the orphans of killed servers (grandchildren that died by their parent-death
// signal) are our children: reap every child that has exited, and wait up to ms for those still
// dying, so none is handed on to init (or the caller's subreaper) as a zombie. Only at exit (or
// when no child_process may be running): it reaps any child. Returns how many it reaped.
int reap_orphans(long ms) {
  // 200 ms without a new orphan ends the wait early: a server killed by its parent-death signal
  // took more than 20 ms to die on a loaded 2-core machine, and reached the caller as a zombie.
  const long idle = 200;
  long now = now_ms(), deadline = now + ms, idle_until = now + idle;
  int n = 0;
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG | __WALL);
    if (r > 0) {
      n++;
      idle_until = now_ms() + idle;  // more may be on their way out
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    now = now_ms();
    // ECHILD: no child left. Children that stay alive (one still being entered, another
    // program's) are not waited for past `idle` without a new orphan.
    if (r < 0 || now >= deadline || now >= idle_until) return n;
    usleep(1000);
  }
}

// setSubreaper(on): PR_SET_CHILD_SUBREAPER, so that orphaned grandchildren come to us (and are
// reaped at exit) instead of to init. Returns whether it is on.
Napi::Value SetSubreaper(const Napi::CallbackInfo& info) {
  bool on = info.Length() < 1 || info[0].ToBoolean().Value();
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) == 0) g_subreaper = on;
  return Napi::Boolean::New(info.Env(), g_subreaper);
}

// setNofile(n): raises the soft RLIMIT_NOFILE to n (at most the hard limit; never lowers it).
// Returns {soft, hard} after the change (Node has no setrlimit).
Napi::Value SetNofile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && info.Length() > 0 && info[0].IsNumber()) {
    rlim_t want = (rlim_t)info[0].As<Napi::Number>().Int64Value();
    if (want > rl.rlim_max) want = rl.rlim_max;
    if (want > rl.rlim_cur) {
      struct rlimit nl = {want, rl.rlim_max};
      if (setrlimit(RLIMIT_NOFILE, &nl) == 0) rl = nl;
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("soft", rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
  o.Set("hard", rl.rlim_max == RLIM_INFINITY ? -1.0 : (double)rl.rlim_max);
  return o;
}

// mqUnlink(name): mq_unlink(3) in Node's own IPC namespace (the host's): 0 or -errno. Sync, so
// a hurried exit (second signal) can remove the host queue a probe made.
Napi::Value MqUnlink(const Napi::CallbackInfo& info) {
  std::string name = info.Length() > 0 ? info[0].ToString().Utf8Value() : "";
  const char* n = name.c_str();
  if (*n == '/') n++;
  long r = syscall(SYS_mq_unlink, n);
  return Napi::Number::New(info.Env(), r < 0 ? -(double)errno : 0.0);
}

// sysvRemove(kind, key): removes the SysV object (1 msg, 2 shm, 3 sem) of that key in Node's own
// IPC namespace (the host's): 0 or -errno. Sync, for a hurried exit as mqUnlink.
Napi::Value SysvRemove(const Napi::CallbackInfo& info) {
  int kind = info.Length() > 0 ? info[0].ToNumber().Int32Value() : 0;
  int key = info.Length() > 1 ? info[1].ToNumber().Int32Value() : 0;
  return Napi::Number::New(info.Env(), (double)nsp_sysv_remove(kind, key));
}

// Host queues this process holds with mq_notify (enter.h nsp_mq_hold), by name.
std::map<std::string, int> g_mq_held;

std::string mq_arg(const Napi::CallbackInfo& info) {
  std::string name = info.Length() > 0 ? info[0].ToString().Utf8Value() : "";
  return name[0] == '/' ? name.substr(1) : name;
}

// mqHold(name): registers Node as the live holder of a host queue: 0 or -errno (-EBUSY, -ENOENT).
Napi::Value MqHold(const Napi::CallbackInfo& info) {
  std::string name = mq_arg(info);
  if (g_mq_held.count(name)) return Napi::Number::New(info.Env(), 0);
  int fd = -1;
  long r = nsp_mq_hold(name.c_str(), &fd);
  if (r == 0) g_mq_held[name] = fd;
  return Napi::Number::New(info.Env(), (double)r);
}

// mqRelease(name): closes the held descriptor (its registration ends): 0, or -ENOENT if not held.
Napi::Value MqRelease(const Napi::CallbackInfo& info) {
  auto it = g_mq_held.find(mq_arg(info));
  if (it == g_mq_held.end()) return Napi::Number::New(info.Env(), -(double)ENOENT);
  close(it->second);
  g_mq_held.erase(it);
  return Napi::Number::New(info.Env(), 0);
}

// mqReap(name, dryRun?): removes a host queue no live process holds (enter.h nsp_mq_reap): 0 or
// -errno (-EBUSY: held, also by this process, whose own queues are never opened here).
Napi::Value MqReap(const Napi::CallbackInfo& info) {
  std::string name = mq_arg(info);
  if (g_mq_held.count(name)) return Napi::Number::New(info.Env(), -(double)EBUSY);
  bool dry = info.Length() > 1 && info[1].ToBoolean().Value();
  return Napi::Number::New(info.Env(), (double)nsp_mq_reap(name.c_str(), dry));
}

// At environment teardown (process exit, worker end): kill and reap every open child, so a
// Node process that exits with sandboxes open leaves nothing behind.
void CleanupWithin(long ms, bool settle) {
  std::map<uint32_t, std::shared_ptr<Box>> boxes;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    boxes.swap(g_boxes);
    for (auto& kv : boxes) {
      kv.second->shut = true;
      g_shut_ids.push_back(kv.first);  // ascending: the map's order, above every earlier id
    }
  }
  for (auto& kv : boxes) kill_box(kv.second.get(), SIGKILL);
  std::vector<std::shared_ptr<Box>> entering;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    for (auto& kv : g_entering)
      if (auto b = kv.second.lock()) entering.push_back(b);
  }
  std::vector<int> first_stages;
  for (auto& b : entering) {
    int first = nsp_region_kill_stages(&b->region);
    if (first > 0) first_stages.push_back(first);
  }
  long deadline = now_ms() + ms;  // one deadline for all (a box per wait made a hurried exit 2 s)
  for (auto& kv : boxes) {
    long left = deadline - now_ms();
    wait_gone(kv.second.get(), left > 0 ? left : 0);
  }
  if (g_subreaper) {
    reap_orphans(500);
  } else {
    // Not a subreaper: reap the killed first stages (our children) ourselves; the stages they
    // made go to init, which reaps them.
    for (int p : first_stages) {
      long left = deadline - now_ms();
      nsp_reap(p, left > 0 ? left : 0);
    }
  }
  chans_close_all(settle);
  if (t_unpin) {
    uv_timer_stop(t_unpin);
    uv_close((uv_handle_t*)t_unpin, [](uv_handle_t* h) { delete (uv_timer_t*)h; });
    t_unpin = nullptr;
  }
  unpin_all();
}

void Cleanup(void*) { CleanupWithin(2000, false); }

// shutdown(ms?): kill every open child and wait up to ms (default 2000) for all of them. Requests
// still waiting for a reply are rejected ("the sandbox was shut down"), never left pending.
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  CleanupWithin(info.Length() > 0 && info[0].IsNumber() ? (long)info[0].As<Napi::Number>().Int64Value() : 2000, true);
  return info.Env().Undefined();
}

// setColocate(on?: boolean): turns CPU co-location on or off; returns whether it was on.
Napi::Value SetColocate(const Napi::CallbackInfo& info) {
  bool was = g_colocate;
  if (info.Length() > 0) g_colocate = info[0].ToBoolean().Value();
  if (!g_colocate) unpin_all();
  return Napi::Boolean::New(info.Env(), was);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  find_serve_path();
  const char* ew = getenv("NSPROBE_ENTER_WORKER");
  g_enter_worker = ew && strcmp(ew, "1") == 0;
  const char* co = getenv("NSPROBE_COLOCATE");
  if (co && (strcmp(co, "0") == 0 || strcmp(co, "off") == 0)) g_colocate = false;
  if (co && strcmp(co, "all") == 0) g_colocate_all = true;
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("setColocate", Napi::Function::New(env, SetColocate));
  exports.Set("enter", Napi::Function::New(env, Enter));
  exports.Set("request", Napi::Function::New(env, Request));
  exports.Set("requestBare", Napi::Function::New(env, RequestBare));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("adopt", Napi::Function::New(env, Adopt));
  exports.Set("kill", Napi::Function::New(env, Kill));
  exports.Set("openCount", Napi::Function::New(env, OpenCount));
  exports.Set("openPids", Napi::Function::New(env, OpenPids));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("netlink", Napi::Function::New(env, NetlinkOp));
  exports.Set("setSubreaper", Napi::Function::New(env, SetSubreaper));
  exports.Set("setNofile", Napi::Function::New(env, SetNofile));
  exports.Set("mqUnlink", Napi::Function::New(env, MqUnlink));
  exports.Set("sysvRemove", Napi::Function::New(env, SysvRemove));
  exports.Set("mqHold", Napi::Function::New(env, MqHold));
  exports.Set("mqRelease", Napi::Function::New(env, MqRelease));
  exports.Set("mqReap", Napi::Function::New(env, MqReap));
  napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  return exports;
}

}  // namespace

NODE_API_MODULE(nsprobe, Init)
