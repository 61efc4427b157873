// The control block shared between the Node worker thread and the stages of a child it creates,
// and the entry points of those stages (child.cc). The block lives in a MAP_SHARED mapping, so it
// stays shared whether a stage was cloned with CLONE_VM or with fork semantics.
#pragma once
#include <stdint.h>

#define NSP_MAX_JOIN 10

// Flags of nsp_ctl.mode
#define M_USERNS 0x1        // the namespaces are created with a new user namespace (parent writes maps)
#define M_DROP 0x2          // switch to drop_uid/drop_gid before creating the user namespace
#define M_TIME 0x4          // create a time namespace (unshare + offsets + one more clone)
#define M_PID_LATE 0x8      // with M_TIME: the pid namespace is unshared together with time, before the last clone
#define M_STAGE_A 0x10      // a first stage without namespaces runs before the namespaces are created
#define M_WAIT_CGROUP 0x20  // stage A waits until the parent has moved it into a cgroup
#define M_JOIN 0x40         // join existing namespaces (setns) instead of creating new ones
#define M_JOIN_FORK 0x80    // after setns, clone once more (pid/time namespaces apply to children)
#define M_NO_VM 0x100       // clone with fork semantics instead of CLONE_VM
#define M_SIGHAND_CLEAR 0x200  // the first stage was cloned with CLONE_CLEAR_SIGHAND: Node's handlers are gone
#define M_UNSHARE 0x400     // stage A creates the namespaces itself with unshare() and goes on as stage B
                            // (no pid namespace: that one needs a new process); with a user namespace it
                            // sends OP_READY when the parent may write the maps

struct nsp_ctl {
  // Set by the parent before the first clone; read-only for the children.
  uint64_t clone_flags;      // CLONE_NEW* for the clone that creates the namespaces
  uint32_t mode;
  int32_t drop_uid, drop_gid;
  int32_t sock;              // the child's end of the socketpair
  int64_t off_mono_s, off_boot_s;
  int32_t join_fd[NSP_MAX_JOIN];
  int32_t join_type[NSP_MAX_JOIN];
  int32_t njoin;
  int32_t keep_fd_max;       // fds above 2 other than sock/join fds are closed in the first stage
  char* stack_b;             // stack tops for the later stages
  char* stack_c;
  int32_t wait_ms;           // how long a stage waits for the parent before giving up
  uint64_t natural[16];      // the CPU mask the children take when told to spread (NSP_CPU_RELEASE)
  char serve_path[512];      // the nsprobe-serve program (empty: none), see native/serve.cc
  int32_t start_cpu;         // CPU + 1 that a first stage B is pinned to from its clone (0: unknown)
  // Written by the parent, waited on by the children (futex words).
  volatile int32_t go;       // 0 wait, 1 go on, -1 abort
  // Written by the children.
  volatile int32_t pid_b;    // pid of the stage that holds the new namespaces (parent's pid ns view)
  volatile int32_t pid_c;    // pid of the serving process when a last clone was needed
  volatile int32_t err_stage;
  volatile int32_t err_errno;
  volatile int32_t err_sys;
};

// Entry points: each runs in a fresh child and never returns to the caller's frames.
int nsp_stage_a(void* ctl);
int nsp_stage_b(void* ctl);
int nsp_stage_join(void* ctl);
// The request loop on fd `sock`; `cpu` is the CPU this process is known to be pinned to, or -1
// (a stage inherits its pin from the worker thread that cloned it, but a cgroup move may have reset
// it: the first request's hint sets it again). Returns the exit code.
// OP_NEST's user kind in a process with memory of its own: out[0] levels, out[1] errno.
void nsp_nest_user(long max, volatile int32_t* out);
// `exe` is nsprobe-serve's path (or "" / null: none), which OP_FORK execs for a serving grandchild.
int nsp_serve(int sock, int cpu, const uint64_t* natural, const char* exe);
// The lock processes sharing Node's memory take around uid switches, forks and /proc/self writes
// (see child.cc); the Node side takes it around clones without CLONE_VM.
extern volatile int32_t nsp_mm_lock;
void nsp_mm_acquire(void);
void nsp_mm_release(void);
// Resets every signal disposition to default and unblocks all signals (raw syscalls only). With
// handlers_cleared (CLONE_CLEAR_SIGHAND did that part), only the signals a caller may have set
// to SIG_IGN and the probes rely on are reset.
void nsp_child_signals(bool handlers_cleared);
