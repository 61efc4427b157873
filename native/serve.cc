// nsprobe-serve SOCK f|- MASK: the server of a sandbox in a time namespace (see exec_serve in
// child.cc). A stage that shares Node's memory cannot serve in a time namespace; forking Node to
// get memory of its own copies Node's page tables. Exec'ing this program is much cheaper, so it is
// built without libc (static, no startup code beyond _start): it runs the same child.cc as the
// addon's children, which makes raw system calls only.
#define NSP_NO_LIBC  // raw.h gives us memset and memcpy
#include <stddef.h>
#include <stdint.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "child.h"
#include "proto.h"
#include "raw.h"

static void set_deathsig() { rsys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL); }

struct ExecServeArgs {
  int sock;
  const uint64_t* natural;
  const char* exe;
};
static int exec_serve_child(void* p) {
  ExecServeArgs* a = (ExecServeArgs*)p;
  set_deathsig();
  return nsp_serve(a->sock, -1, a->natural, a->exe);
}
static bool same_link(const char* a, const char* b) {
  char x[64], y[64];
  long n = rsys4(SYS_readlinkat, AT_FDCWD, (long)a, (long)x, sizeof x);
  long m = rsys4(SYS_readlinkat, AT_FDCWD, (long)b, (long)y, sizeof y);
  if (n <= 0 || n != m) return false;
  for (long i = 0; i < n; i++)
    if (x[i] != y[i]) return false;
  return true;
}
alignas(16) static char g_exec_stack[256 * 1024];  // the forked server's stack

// Forks once more where the exec did not already move us into the time namespace for children
// (kernels before 5.17) or a pid namespace waits for a child (force_fork), then serves on sock.
static int serve_after_exec(int sock, bool force_fork, const uint64_t* natural, const char* exe) {
  set_deathsig();  // kept across exec, but say it again
  if (force_fork || !same_link("/proc/self/ns/time", "/proc/self/ns/time_for_children")) {
    ExecServeArgs a = {sock, natural, exe};
    long pid = nsp_raw_clone(CLONE_PARENT | SIGCHLD, g_exec_stack + sizeof g_exec_stack, exec_serve_child, &a);
    if (pid < 0) {
      // Errors are data: a hello that carries the failure.
      nsp_rep rep;
      r_memset(&rep, 0, sizeof rep);
      rep.magic = NSP_MAGIC_REP;
      rep.op = OP_HELLO;
      rep.err = (int32_t)-pid;
      rep.sysc = SC_CLONE;
      rsys6(SYS_sendto, sock, (long)&rep, sizeof rep, MSG_NOSIGNAL, 0, 0);
      return 1;
    }
    return 0;
  }
  return nsp_serve(sock, -1, natural, exe);
}

extern "C" {

static long parse_num(const char* s) {
  long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (*s - '0');
  return v;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return 0;
}

// Called from _start with the initial stack: argc, argv[], NULL, envp[].
int nsp_serve_main(long* sp) {
  long argc = sp[0];
  char** argv = (char**)(sp + 1);
  if (argc < 4) return 2;
  int sock = (int)parse_num(argv[1]);
  // f: fork once more (a pid namespace waits for a child); -: only where the time namespace
  // for children differs; k / n: a serving grandchild exec'd by OP_FORK (child.cc spawn_server),
  // which checked the time namespaces already, with / without a parent-death signal.
  char how = argv[2][0];
  bool force_fork = how == 'f';
  uint64_t natural[16];
  const char* m = argv[3];
  for (int i = 0; i < 16; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 16 && *m; j++, m++) v = (v << 4) | (uint64_t)hexval(*m);
    natural[i] = v;
  }
  if (how == 'u') {  // OP_NEST's user kind (child.cc op_nest): argv[1] the pipe, argv[3] the levels
    set_deathsig();
    int32_t out[2] = {0, 0};
    nsp_nest_user(parse_num(argv[3]), out);
    rsys3(SYS_write, sock, (long)out, sizeof out);
    return 0;
  }
  if (how == 'p' || how == 'q') {  // OP_FORK mode 1: a process that waits until it is killed
    if (how == 'p') set_deathsig();
    for (;;) r_pause();
  }
  if (how == 'k' || how == 'n') {
    if (how == 'k') set_deathsig();
    return nsp_serve(sock, -1, natural, argv[0]);
  }
  return serve_after_exec(sock, force_fork, natural, argv[0]);
}
}

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  xorl %ebp, %ebp\n"
    "  movq %rsp, %rdi\n"
    "  andq $-16, %rsp\n"
    "  callq nsp_serve_main\n"
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
    "  bl nsp_serve_main\n"
    "  mov x8, #94\n"  // exit_group
    "  svc #0\n"
    "  brk #0\n");
#endif
