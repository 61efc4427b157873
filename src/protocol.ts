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

const TWO32 = 4294967296;

/** Writes v as a little-endian int64 at off (numbers in int32 range without a BigInt). */
function writeI64(b: Buffer, v: number | bigint, off: number): void {
  if (typeof v === 'number' && (v | 0) === v) {
    b.writeInt32LE(v, off);
    b.writeInt32LE(v < 0 ? -1 : 0, off + 4);
  } else {
    b.writeBigInt64LE(BigInt(v), off);
  }
}

/** The int64 at off as a number (the same value Number(readBigInt64LE) gives, without a BigInt). */
function readI64(b: Buffer, off: number): number {
  return b.readInt32LE(off + 4) * TWO32 + b.readUInt32LE(off);
}

export function encodeRequest(op: number, seq: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = []): Buffer {
  if (nums.length > NARGS) throw new ProtocolError(`at most ${NARGS} numbers per request`);
  if (strs.length > NSTR) throw new ProtocolError(`at most ${NSTR} strings per request`);
  let total = REQ_HEADER;
  const lens: number[] = [];
  for (const s of strs) {
    const n = typeof s === 'string' ? Buffer.byteLength(s) : s.length;
    lens.push(n);
    total += n;
  }
  if (total > MAX_REQ) throw new ProtocolError(`request of ${total} bytes exceeds ${MAX_REQ}`);
  // From the pool (a request is small); the header is zeroed: unused numbers, the cpu hint and
  // unused string lengths are 0 on the wire.
  const b = Buffer.allocUnsafe(total);
  b.fill(0, 0, REQ_HEADER);
  b.writeUInt32LE(MAGIC_REQ, 0);
  b.writeUInt32LE(op, 4);
  b.writeUInt32LE(seq >>> 0, 8);
  for (let i = 0; i < nums.length; i++) writeI64(b, nums[i], 16 + 8 * i);
  let off = REQ_HEADER;
  for (let i = 0; i < strs.length; i++) {
    const s = strs[i];
    b.writeUInt16LE(lens[i], 80 + 2 * i);
    if (typeof s === 'string') b.write(s, off);
    else s.copy(b, off);
    off += lens[i];
  }
  return b;
}

/** Decodes and checks a reply; throws ProtocolError on anything malformed. */
export function decodeReply(b: Buffer): Reply {
  if (b.length < REP_HEADER) throw new ProtocolError(`reply of ${b.length} bytes is shorter than its header`);
  if (b.readUInt32LE(0) !== MAGIC_REP) throw new ProtocolError('reply has a bad magic number');
  const dlen = b.readUInt32LE(80);
  if (dlen > MAX_DATA || REP_HEADER + dlen !== b.length) throw new ProtocolError(`reply data length ${dlen} does not match its ${b.length} bytes`);
  const n: number[] = [];
  for (let i = 0; i < NARGS; i++) n.push(readI64(b, 16 + 8 * i));
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
