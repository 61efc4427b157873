// nsprobe-serve SOCK f|- MASK: the server of a sandbox in a time namespace (see exec_serve in
// child.cc). A stage that shares Node's memory cannot serve in a time namespace; forking Node to
// get memory of its own copies Node's page tables. Exec'ing this program is much cheaper, so it is
// built without libc (static, no startup code beyond _start): it runs the same child.cc as the
// addon's children, which makes raw system calls only.
#include <stddef.h>
#include <stdint.h>

#include "child.h"
#include "raw.h"

extern "C" {
// The compiler may emit calls to these for struct copies and zeroing.
void* memset(void* d, int c, size_t n) {
  volatile unsigned char* p = (volatile unsigned char*)d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void* memcpy(void* d, const void* s, size_t n) {
  volatile unsigned char* p = (volatile unsigned char*)d;
  const unsigned char* q = (const unsigned char*)s;
  while (n--) *p++ = *q++;
  return d;
}

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
  bool force_fork = argv[2][0] == 'f';
  uint64_t natural[16];
  const char* m = argv[3];
  for (int i = 0; i < 16; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 16 && *m; j++, m++) v = (v << 4) | (uint64_t)hexval(*m);
    natural[i] = v;
  }
  return nsp_exec_serve(sock, force_fork, natural);
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
