// Entering: the parent's side of making a child in namespaces (or in the namespaces of others),
// shared by the addon (native/addon.cc, on a libuv pool thread) and the agent (native/agent.cc,
// a static program without libc). Plain C++ on raw system calls (raw.h): no N-API, no libuv, no
// malloc, no errno. The stages themselves (what runs in the children) are in child.cc.
//
// nsp_enter() clones the first stage (clone3 with CLONE_CLEAR_SIGHAND where the kernel has it,
// else clone), moves it into cgroups, writes the id maps when the child says its user namespace
// exists, waits for the hello and reaps the setup stages. Errors are data: an nsp_failure names
// the stage, the syscall and the errno, and how to word the message (nsp_failure_message).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "child.h"
#include "proto.h"

#define NSP_ENTER_STACK (512 * 1024)
#define NSP_ENTER_PAGE 4096
#define NSP_ENTER_STACKS 3  // stage A runs on stack 0, B on 1, C on 2
#define NSP_MAX_CGROUP 8

// Memory for a child: the control block (MAP_SHARED) and its stacks.
struct nsp_region {
  nsp_ctl* ctl;
  char* stacks;
  // The first stage's pid while nsp_enter runs (0 before the clone): the agent kills an enter in
  // flight on another thread through it (with ctl->pid_b and ctl->pid_c) when it must end.
  volatile int32_t first;
};
// Maps a region; 0 or -errno.
long nsp_region_map(nsp_region* r);
void nsp_region_unmap(nsp_region* r);
static inline char* nsp_region_top(const nsp_region* r, int i) {
  return r->stacks + (size_t)(i + 1) * (NSP_ENTER_STACK + NSP_ENTER_PAGE);
}

struct nsp_enter_spec {
  int cpu;                    // unused here (the caller pins itself); kept for symmetry
  uint64_t natural[16];       // the caller's own CPU mask: the children's when they spread
  bool join;
  uint64_t clone_flags;
  bool userns, drop, time, no_vm, setgroups_allow;
  int drop_uid, drop_gid;
  int64_t off_mono, off_boot;
  const char* uid_map;        // NUL-terminated, or null
  const char* gid_map;
  const char* cgroup_procs[NSP_MAX_CGROUP];
  int ncgroup;
  const char* join_paths[NSP_MAX_JOIN];
  int join_types[NSP_MAX_JOIN];
  int njoin;
  int join_pidfd_pid, join_pidfd_flags;
  bool join_fork;
  long timeout_ms;
  const char* serve_path;     // nsprobe-serve for time namespaces, or null/empty: fork instead
  bool hello_later;           // without a time namespace: return once the server runs, before its
                              // hello (the caller waits for it on its event loop: nsp_enter_hello)
};
void nsp_enter_spec_init(nsp_enter_spec* s);
// The one builder of an nsp_enter_spec, fed by the agent (its NSA_ENTER frame) and the addon (its
// JS spec, read into the same struct): the fixed fields of e (struct nsa_enter, agent-proto.h)
// and the strings uid_map, gid_map, cgroup_procs[e->ncgroup], join_paths[e->njoin], in that
// order (nstrs of them, NUL-terminated, alive as long as *s). False when the counts do not fit.
// The caller sets what is its own after: natural (its CPU mask), serve_path, hello_later, cpu.
struct nsa_enter;
bool nsp_enter_spec_build(nsp_enter_spec* s, const nsa_enter* e, const char* const* strs, int nstrs);

// How the message of a failure reads (nsp_failure_message words each the same way in C and TS).
enum nsp_fail_kind {
  FK_PLAIN = 0,        // "<syscall> failed at stage <stage>: <strerror>"
  FK_HELLO_TIMEOUT,    // "the child did not start serving within <num> ms"
  FK_EXITED,           // "the child exited before it served"
  FK_MALFORMED,        // "malformed hello from the child"
  FK_OPEN_JOIN,        // "cannot open <arg>: <strerror>"
  FK_CGROUP,           // "cannot move the child into <arg>: <strerror>"
  FK_STAGE_SIGNAL,     // "a setup stage ended with signal <num>"
  FK_STAGE_STATUS,     // "a setup stage ended with status <num>"
  FK_MAP,              // "writing /proc/PID/<arg> failed: <strerror>"
};

struct nsp_failure {
  const char* stage;   // a stage name (nsp_stage_name)
  const char* sys;     // a syscall name
  int err;
  int kind;
  long num;
  char arg[256];
};

// The result of a successful enter: our end of the channel, the serving process and its hello.
struct nsp_entered {
  int fd;
  int pid;
  int pidfd;           // -1 where the kernel has no pidfd_open
  size_t hello_len;
  char hello[sizeof(nsp_rep) + 64];
};

// Returns true with *out filled, or false with *f filled. The region stays in use until the
// serving process is reaped (its stacks); when *reaped is set on failure, it is free again.
bool nsp_enter(const nsp_enter_spec* spec, nsp_region* region, nsp_entered* out, nsp_failure* f, bool* reaped);
// After nsp_enter with hello_later, once out->fd is readable (ms 0) or to wait (ms > 0): takes the
// hello. On failure (f filled; FK_HELLO_TIMEOUT with ms 0: nothing there yet, nothing done) the
// server is killed and reaped as nsp_enter would; f may come pre-filled with fail_now (a timeout).
bool nsp_enter_hello(nsp_region* region, nsp_entered* out, long ms, nsp_failure* f, bool* reaped, bool fail_now = false);
// Waits for an unprompted message (OP_HELLO or OP_READY) on a channel; the sender's pid in
// *cred_pid (the channel needs SO_PASSCRED). buf holds at least sizeof(nsp_rep) + 64 bytes.
bool nsp_wait_hello(int fd, long ms, char* buf, size_t cap, size_t* len, int* cred_pid, nsp_failure* f, uint32_t op);

// Receives one message on a channel: the bytes into buf (cap), the descriptors it passed into
// fds (at most NSP_FRAME_FDS, *nfds of them), the sender's pid into *cred_pid (when the channel
// has SO_PASSCRED; may be null). Bytes, 0 at EOF, or -errno; a message cut short (data or
// descriptors) is -EMSGSIZE with its descriptors closed. EINTR is retried. flags: MSG_DONTWAIT.
// The one recvmsg of the addon (addon.cc recv_msg), the agent and the hello wait below.
#define NSP_FRAME_FDS 4
long nsp_recv_frame(int fd, char* buf, size_t cap, int* fds, int* nfds, int* cred_pid, int flags);

const char* nsp_stage_name(int s);
const char* nsp_sys_name(int s);
long nsp_now_ms();
int nsp_pidfd_open(int pid);
// Waits up to ms for our child pid to exit and reaps it (kills it after ms; 0: at once). Its
// wait status, or -1.
int nsp_reap(int pid, long ms);
// Kills (SIGKILL) the stages of an enter in flight on another thread: the first clone, stage B
// and the last clone, as far as they exist yet. Returns the first stage's pid (0 before the clone).
int nsp_region_kill_stages(const nsp_region* r);
// Raw clock/sleep helpers for the parent side.
void nsp_sleep_us(long us);
// Whether the last first clone went through clone3 (false once the kernel said ENOSYS).
bool nsp_clone3_available();

// Host IPC objects (the caller's own IPC namespace), shared by the addon and the agent.
// Removes the SysV object (1 msg, 2 shm, 3 sem) of key: 0 or -errno.
long nsp_sysv_remove(int kind, int key);
// A POSIX queue's liveness, told by the kernel (src/cleanup.ts): the run that made a host queue
// registers this process with mq_notify (SIGEV_NONE) on it and holds the descriptor; a second
// registration gets EBUSY while the registrant lives, and the kernel ends the registration when
// the registrant closes any descriptor of that queue or dies. So a later run can tell a dead
// run's queue from a live one's by name alone, without an mqueue mount to list them.
// nsp_mq_hold: opens name (no O_CREAT) and registers; 0 with *fd the held descriptor, -EBUSY
// (another process holds it), -ENOENT (gone, or unlinked while we registered: a scanner took it),
// or -errno. Never open and close another descriptor of a held queue in this process: the close
// ends the registration.
long nsp_mq_hold(const char* name, int* fd);
// nsp_mq_reap: opens name and tries to register: -EBUSY when a live process holds it; else (no
// holder: its run is gone) unlinks it (unless dry_run) and returns 0. -ENOENT, -EACCES, ...: not
// there, not this caller's.
long nsp_mq_reap(const char* name, bool dry_run);
