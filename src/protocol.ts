// The wire format of requests to, and replies from, a child in namespaces.
// Mirrors native/proto.h: change both together.

export const MAGIC_REQ = 0x5251534e;
export const MAGIC_REP = 0x5052534e;
export const NARGS = 8;
export const NSTR = 4;
/** magic, op, seq, cpu (bytes 12-15: left 0 here; the addon fills in its co-location hint), n[8], slen[4]. */
export const REQ_HEADER = 88;
export const REP_HEADER = 88;
export const MAX_REQ = 8192;
export const MAX_DATA = 61440;

export const Op = {
  HELLO: 1, IDENTITY: 2, UNAME: 3, SETHOSTNAME: 4, SETDOMAINNAME: 5, READFILE: 6, READLINK: 7,
  STAT: 8, MKDIR: 9, WRITEFILE: 10, MSGGET: 11, SHMGET: 12, SEMGET: 13, IPCRM: 14, MQ_OPEN: 15,
  MQ_UNLINK: 16, LINKS: 17, LINK_SET: 18, TCP_SELFTEST: 19, LISTEN: 20, ACCEPT_RECV: 21, SEND: 22,
  CLOSE_SLOT: 23, MOUNT: 24, UMOUNT: 25, PIVOT_ROOT: 26, CHDIR: 27, CLOCKS: 28, FORK: 29, KILL: 30,
  WAIT: 31, EXIT: 32, HANG: 33, NS_IOCTL: 34, UNSHARE: 35, SETNS: 36, NEST: 37, UNLINK: 38,
  LISTDIR: 39, SETUID: 41, ECHO: 42, ADDR_ADD: 43, VETH_CREATE: 44, LINK_DEL: 45, PRCTL: 46,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** Names of the syscalls in native/proto.h's enum nsp_sys, by index. */
export const SYSCALLS = [
  'none', 'clone', 'unshare', 'setns', 'open', 'read', 'write', 'readlink', 'stat', 'mkdir',
  'sethostname', 'setdomainname', 'msgget', 'shmget', 'semget', 'msgctl', 'shmctl', 'semctl',
  'mq_open', 'mq_unlink', 'socket', 'bind', 'listen', 'connect', 'accept', 'send', 'recv',
  'ioctl', 'mount', 'umount2', 'pivot_root', 'chdir', 'clock_gettime', 'fork', 'kill', 'wait4',
  'setgroups', 'setresuid', 'setresgid', 'prctl', 'socketpair', 'sendmsg', 'poll', 'unlink',
  'getdents64', 'uname', 'capget', 'rt_sigaction', 'netlink', 'futex', 'pidfd_open', 'waitpid',
  'mmap', 'socket_timeout',
] as const;

export type Str = string | Buffer;

export interface Reply {
  op: number;
  seq: number;
  /** 0, or the errno of the syscall that failed. */
  err: number;
  /** The failing syscall's name, when err is set. */
  syscall: string;
  n: number[];
  data: Buffer;
  nfds: number;
}

export class ProtocolError extends Error {}

export function encodeRequest(op: number, seq: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = []): Buffer {
  if (nums.length > NARGS) throw new ProtocolError(`at most ${NARGS} numbers per request`);
  if (strs.length > NSTR) throw new ProtocolError(`at most ${NSTR} strings per request`);
  const bufs = strs.map((s) => (typeof s === 'string' ? Buffer.from(s) : s));
  const total = REQ_HEADER + bufs.reduce((a, b) => a + b.length, 0);
  if (total > MAX_REQ) throw new ProtocolError(`request of ${total} bytes exceeds ${MAX_REQ}`);
  const b = Buffer.alloc(total);
  b.writeUInt32LE(MAGIC_REQ, 0);
  b.writeUInt32LE(op, 4);
  b.writeUInt32LE(seq >>> 0, 8);
  nums.forEach((v, i) => b.writeBigInt64LE(BigInt(v), 16 + 8 * i));
  let off = REQ_HEADER;
  bufs.forEach((s, i) => {
    b.writeUInt16LE(s.length, 80 + 2 * i);
    s.copy(b, off);
    off += s.length;
  });
  return b;
}

/** Decodes and checks a reply; throws ProtocolError on anything malformed. */
export function decodeReply(b: Buffer): Reply {
  if (b.length < REP_HEADER) throw new ProtocolError(`reply of ${b.length} bytes is shorter than its header`);
  if (b.readUInt32LE(0) !== MAGIC_REP) throw new ProtocolError('reply has a bad magic number');
  const dlen = b.readUInt32LE(80);
  if (dlen > MAX_DATA || REP_HEADER + dlen !== b.length) throw new ProtocolError(`reply data length ${dlen} does not match its ${b.length} bytes`);
  const n: number[] = [];
  for (let i = 0; i < NARGS; i++) n.push(Number(b.readBigInt64LE(16 + 8 * i)));
  const err = b.readInt32LE(12);
  if (err < 0 || err > 4095) throw new ProtocolError(`reply has an impossible errno ${err}`);
  const sysc = b.readUInt16LE(84);
  return {
    op: b.readUInt32LE(4),
    seq: b.readUInt32LE(8),
    err,
    syscall: SYSCALLS[sysc] ?? `syscall#${sysc}`,
    n,
    data: b.subarray(REP_HEADER, REP_HEADER + dlen),
    nfds: b.readUInt16LE(86),
  };
}
