// nsprobe-seccomp-exec CMD [ARGS...]: runs CMD under a seccomp filter like a container runtime's
// default profile: unshare and setns fail with EPERM, clone with any CLONE_NEW* flag fails with
// EPERM, clone3 with ENOSYS (so libc falls back to clone). Used by the tests to inject the
// seccomp gate for real.
// nsprobe-seccomp-exec --old-kernel CMD [ARGS...]: instead, only clone3, pidfd_open,
// pidfd_send_signal and close_range fail with ENOSYS, as on a 3.10 or 4.x kernel (or under an
// older container profile): namespaces stay allowed, so the fallbacks (clone, waitpid, a close
// loop) are what runs.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error unsupported architecture
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#include <string.h>

#define NS_FLAGS 0x7E020000u  // NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET

// Installs the filter whose body follows the common prologue (another architecture's calls pass,
// then the syscall number is loaded for the body), then runs argv. Returns only on failure.
static int exec_filtered(const struct sock_filter* body, size_t n, char** argv) {
  struct sock_filter f[32] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
  };
  const size_t head = 4;
  if (head + n > sizeof f / sizeof f[0]) return 1;
  memcpy(f + head, body, n * sizeof *body);
  struct sock_fprog prog = {.len = (unsigned short)(head + n), .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
    perror("seccomp");
    return 1;
  }
  execvp(argv[0], argv);
  perror("exec");
  return 127;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s [--old-kernel] CMD [ARGS...]\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "--old-kernel") == 0) {
    if (argc < 3) return 2;
    static const struct sock_filter old_kernel[] = {
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_open, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_send_signal, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    return exec_filtered(old_kernel, sizeof old_kernel / sizeof old_kernel[0], argv + 2);
  }
  static const struct sock_filter container[] = {
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setns, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
  };
  return exec_filtered(container, sizeof container / sizeof container[0], argv + 1);
}
