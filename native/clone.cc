// nsp_raw_clone: clone() onto a new stack without libc (see raw.h).
// The child pops fn and arg from its new stack, calls fn(arg) and exits with the result,
// so it never returns into the frames of the thread that created it.
// nsp_raw_clone3: the same through clone3(args, size); the caller has put fn and arg at the
// child's initial stack pointer (args->stack + args->stack_size).
#include "raw.h"

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl nsp_raw_clone\n"
    ".type nsp_raw_clone,@function\n"
    "nsp_raw_clone:\n"
    "  andq $-16, %rsi\n"
    "  subq $16, %rsi\n"
    "  movq %rdx, 0(%rsi)\n"   // fn
    "  movq %rcx, 8(%rsi)\n"   // arg
    "  movl $56, %eax\n"       // SYS_clone(flags, newsp, parent_tid, child_tid, tls)
    "  xorl %edx, %edx\n"
    "  xorl %r10d, %r10d\n"
    "  xorl %r8d, %r8d\n"
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 1f\n"
    "  xorl %ebp, %ebp\n"
    "  popq %rax\n"
    "  popq %rdi\n"
    "  callq *%rax\n"
    "  movl %eax, %edi\n"
    "  movl $60, %eax\n"       // SYS_exit
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size nsp_raw_clone, .-nsp_raw_clone\n"
    ".globl nsp_raw_clone3\n"
    ".type nsp_raw_clone3,@function\n"
    "nsp_raw_clone3:\n"
    "  movl $435, %eax\n"      // SYS_clone3(args, size)
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 2f\n"
    "  xorl %ebp, %ebp\n"
    "  popq %rax\n"
    "  popq %rdi\n"
    "  callq *%rax\n"
    "  movl %eax, %edi\n"
    "  movl $60, %eax\n"
    "  syscall\n"
    "  hlt\n"
    "2:\n"
    "  ret\n"
    ".size nsp_raw_clone3, .-nsp_raw_clone3\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl nsp_raw_clone\n"
    ".type nsp_raw_clone,%function\n"
    "nsp_raw_clone:\n"
    "  and x1, x1, #-16\n"
    "  stp x2, x3, [x1, #-16]!\n"
    "  mov x8, #220\n"         // SYS_clone(flags, newsp, parent_tid, tls, child_tid)
    "  mov x2, xzr\n"
    "  mov x3, xzr\n"
    "  mov x4, xzr\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  ldp x1, x0, [sp], #16\n"
    "  blr x1\n"
    "  mov x8, #93\n"          // SYS_exit
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size nsp_raw_clone, .-nsp_raw_clone\n"
    ".globl nsp_raw_clone3\n"
    ".type nsp_raw_clone3,%function\n"
    "nsp_raw_clone3:\n"
    "  mov x8, #435\n"         // SYS_clone3(args, size)
    "  svc #0\n"
    "  cbnz x0, 2f\n"
    "  ldp x1, x0, [sp], #16\n"
    "  blr x1\n"
    "  mov x8, #93\n"
    "  svc #0\n"
    "  brk #0\n"
    "2:\n"
    "  ret\n"
    ".size nsp_raw_clone3, .-nsp_raw_clone3\n");
#endif
