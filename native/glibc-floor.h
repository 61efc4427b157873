/* Force-included (binding.gyp: -include) into every C++ source of the addon. It keeps the
 * addon's glibc symbol versions at or below 2.28, the floor of official Node builds, whatever
 * glibc builds it, so a binary built on Debian 12 (glibc 2.36) loads on RHEL 8 and Debian 10.
 * test/package.test.ts reads the versions of the built binaries and fails above the floor.
 *
 * - dladdr moved from libdl to libc in 2.34 (dladdr@GLIBC_2.34), pthread_sigmask from libpthread
 *   to libc in 2.32: we bind the original versions, which newer glibc still exports for old
 *   binaries, and link -ldl -lpthread (binding.gyp) so an older glibc finds them where they lived.
 * - libstdc++'s headers read __libc_single_threaded (a glibc 2.32 variable) to skip atomic
 *   reference counts: we make that read a constant 0 ("not single-threaded": always atomic, as
 *   before 2.32), which is right in Node, a multi-threaded process anyway.
 * Not glibc (musl), or another architecture: nothing to do, the addon is built there from source. */
#ifndef NSPROBE_GLIBC_FLOOR_H
#define NSPROBE_GLIBC_FLOOR_H
#include <features.h>
#if defined(__GLIBC__)
#if defined(__x86_64__)
#define NSPROBE_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define NSPROBE_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef NSPROBE_GLIBC_BASE
__asm__(".symver dladdr,dladdr@" NSPROBE_GLIBC_BASE);
__asm__(".symver pthread_sigmask,pthread_sigmask@" NSPROBE_GLIBC_BASE);
#endif
#if defined(__cplusplus) && defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
static const char nsprobe_libc_single_threaded = 0;
#define __libc_single_threaded nsprobe_libc_single_threaded
#endif
#endif
#endif
#endif
