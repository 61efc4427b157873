// The Linux constants probes and the sandbox use, in one place (x86_64/aarch64 generic values):
// errno numbers, mount flags, open/IPC flags, socket families, signals, interface flags, prctl
// options and the nsfs ioctls. CLONE_NEW* flags stay in src/native.ts (the addon's surface) and
// are re-exported here so that a probe imports its constants from one module.
import { constants } from 'node:os';

export { CLONE } from './native.js';
export { errnoName } from './errors.js';

/** errno numbers by name (asm-generic/errno-base.h, errno.h). */
export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EBUSY: 16, EEXIST: 17, ENODEV: 19, ENOTDIR: 20, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, ENOSPC: 28, EROFS: 30,
  EPROTO: 71, EUSERS: 87, ETIMEDOUT: 110,
} as const;

/** The number of an errno name ("EPERM" -> 1), or undefined. */
export function errnoNumber(name: string): number | undefined {
  return (E as Record<string, number>)[name] ?? (constants.errno as Record<string, number>)[name];
}

/** mount(2) flags. */
export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, REMOUNT: 32, BIND: 4096, REC: 16384,
  PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20,
} as const;
/** umount2(2) flags. */
export const MNT_DETACH = 2;

/** open(2) flags. */
export const O = { RDONLY: 0, WRONLY: 1, RDWR: 2, CREAT: 0o100, EXCL: 0o200, TRUNC: 0o1000 } as const;
/** SysV IPC get flags. */
export const IPC = { CREAT: 0o1000, EXCL: 0o2000 } as const;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;

/** Interface flags (linux/if.h). */
export const IFF_UP = 0x1;
export const IFF_LOWER_UP = 0x10000;

export const SIG = { KILL: 9, TERM: 15 } as const;
export const PR_SET_DUMPABLE = 4;
/** unlinkat(2) flag: remove a directory. */
export const AT_REMOVEDIR = 0x200;

/** The nsfs ioctls OP_NS_IOCTL knows (native/proto.h numbering, not the ioctl numbers). */
export const NS_IOCTL = { GET_USERNS: 1, GET_PARENT: 2, GET_NSTYPE: 3, GET_OWNER_UID: 4 } as const;
