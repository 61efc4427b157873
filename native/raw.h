// Raw system calls and libc-free helpers for code that runs in a child cloned from the
// multithreaded Node process. Between clone() and exit such a child may not call malloc,
// stdio, or any libc wrapper that writes errno: with CLONE_VM it shares the address space
// and the TLS of the Node worker thread that created it. Every call here returns -errno.
#pragma once
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
static inline long rsys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long rsys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#else
#error "nsprobe's native addon supports x86_64 and aarch64"
#endif

static inline long rsys0(long n) { return rsys6(n, 0, 0, 0, 0, 0, 0); }
static inline long rsys1(long n, long a) { return rsys6(n, a, 0, 0, 0, 0, 0); }
static inline long rsys2(long n, long a, long b) { return rsys6(n, a, b, 0, 0, 0, 0); }
static inline long rsys3(long n, long a, long b, long c) { return rsys6(n, a, b, c, 0, 0, 0); }
static inline long rsys4(long n, long a, long b, long c, long d) { return rsys6(n, a, b, c, d, 0, 0); }
static inline long rsys5(long n, long a, long b, long c, long d, long e) { return rsys6(n, a, b, c, d, e, 0); }

// clone() onto a new stack; the child calls fn(arg) and exits with its return value.
// Implemented in asm (clone.cc) because the child must not return through the parent's frames.
extern "C" long nsp_raw_clone(unsigned long flags, void* stack_top, int (*fn)(void*), void* arg);
// clone3(args, size): the child pops fn and arg from args->stack + args->stack_size, which the
// caller has written there (16-byte aligned), calls fn(arg) and exits.
extern "C" long nsp_raw_clone3(void* args, unsigned long size);

// pause(): aarch64 has no pause syscall; ppoll on no fds without a timeout blocks the same way.
static inline long r_pause() {
#if defined(SYS_pause)
  return rsys0(SYS_pause);
#else
  return rsys5(SYS_ppoll, 0, 0, 0, 0, 8);
#endif
}

[[noreturn]] static inline void rexit(int code) {
  for (;;) rsys1(SYS_exit, code);
}

static inline size_t r_strlen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
static inline int r_strcmp(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}
static inline void r_memcpy(void* d, const void* s, size_t n) {
  volatile char* dd = (volatile char*)d;
  const char* ss = (const char*)s;
  for (size_t i = 0; i < n; i++) dd[i] = ss[i];
}
static inline void r_memset(void* d, int c, size_t n) {
  volatile char* dd = (volatile char*)d;
  for (size_t i = 0; i < n; i++) dd[i] = (char)c;
}
// Appends the decimal form of v to buf at *pos (bounded by cap). Returns false when it did not fit.
static inline bool r_putnum(char* buf, size_t cap, size_t* pos, long long v) {
  char tmp[24];
  int n = 0;
  unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[n++] = '-';
  if (*pos + n > cap) return false;
  while (n) buf[(*pos)++] = tmp[--n];
  return true;
}
static inline bool r_puts(char* buf, size_t cap, size_t* pos, const char* s) {
  size_t n = r_strlen(s);
  if (*pos + n > cap) return false;
  r_memcpy(buf + *pos, s, n);
  *pos += n;
  return true;
}

// The memory functions the compiler may call for struct copies and zeroing. A program without
// libc (nsprobe-agent, nsprobe-serve) defines NSP_NO_LIBC before its first include, in the one
// source that has its _start, and gets them here; everything else has libc's.
#ifdef NSP_NO_LIBC
extern "C" {
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
void* memmove(void* d, const void* s, size_t n) {
  volatile unsigned char* p = (volatile unsigned char*)d;
  const unsigned char* q = (const unsigned char*)s;
  if (p < q) {
    while (n--) *p++ = *q++;
  } else {
    while (n--) p[n] = q[n];
  }
  return d;
}
int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* p = (const unsigned char*)a;
  const unsigned char* q = (const unsigned char*)b;
  for (size_t i = 0; i < n; i++)
    if (p[i] != q[i]) return p[i] - q[i];
  return 0;
}
}
#endif
