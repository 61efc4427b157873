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

// One buffer that Sandbox.call encodes every request into, lent to one send at a time
// (sendEncoded): the request's bytes exist only while that send runs, and both transports copy
// them before request() returns (the addon into its own stack buffer, the agent client into its
// frame). Its own ArrayBuffer (Buffer.alloc does not take the pool), written through one DataView:
// a request used to be a pooled allocation, a fill and a dozen Buffer.writeUInt*LE calls (each a
// JS function with its own range checks: writeUInt16LE alone 4.5 ms of a suite run's ~740
// requests). Safe by construction: no view of it outlives its send's call (encodeShared is not
// exported), a request encoded while another is lent is refused (ProtocolError) instead of
// overwriting it, and once the send returns the header's magic is cleared, so a transport that
// kept the view instead of copying sends a request every child refuses (EPROTO), never stale bytes.
const scratch = Buffer.alloc(MAX_REQ);
const view = new DataView(scratch.buffer, scratch.byteOffset, MAX_REQ);

/** Writes v as a little-endian int64 at off (numbers in int32 range without a BigInt). */
function writeI64(v: number | bigint, off: number): void {
  if (typeof v === 'number' && (v | 0) === v) {
    view.setInt32(off, v, true);
    view.setInt32(off + 4, v < 0 ? -1 : 0, true);
  } else {
    scratch.writeBigInt64LE(BigInt(v), off); // rare; its range check as before
  }
}

function tooLong(strs: ReadonlyArray<Str>): never {
  let total = REQ_HEADER;
  for (const s of strs) total += typeof s === 'string' ? Buffer.byteLength(s) : s.length;
  throw new ProtocolError(`request of ${total} bytes exceeds ${MAX_REQ}`);
}

let lent = false;

/** Encodes a request into the one shared buffer; the view is valid until the next encode. */
function encodeShared(op: number, seq: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = []): Buffer {
  if (nums.length > NARGS) throw new ProtocolError(`at most ${NARGS} numbers per request`);
  if (strs.length > NSTR) throw new ProtocolError(`at most ${NSTR} strings per request`);
  view.setUint32(0, MAGIC_REQ, true);
  view.setUint32(4, op, true);
  view.setUint32(8, seq >>> 0, true);
  // The cpu hint, unused numbers and unused string lengths are 0 on the wire.
  view.setUint32(12, 0, true);
  let i = 0;
  for (; i < nums.length; i++) writeI64(nums[i], 16 + 8 * i);
  for (; i < NARGS; i++) {
    view.setInt32(16 + 8 * i, 0, true);
    view.setInt32(20 + 8 * i, 0, true);
  }
  view.setUint32(80, 0, true);
  view.setUint32(84, 0, true);
  let off = REQ_HEADER;
  for (i = 0; i < strs.length; i++) {
    const s = strs[i];
    let n: number;
    if (typeof s === 'string') {
      // A UTF-16 unit is at most 3 bytes of UTF-8: with that much room the write is whole.
      if (s.length * 3 > MAX_REQ - off && off + Buffer.byteLength(s) > MAX_REQ) tooLong(strs);
      n = scratch.write(s, off);
    } else {
      if (off + s.length > MAX_REQ) tooLong(strs);
      scratch.set(s, off);
      n = s.length;
    }
    view.setUint16(80 + 2 * i, n, true);
    off += n;
  }
  return scratch.subarray(0, off);
}

/**
 * Encodes a request into the one shared buffer and calls send with a view of it, valid only
 * during that call: send must copy what it keeps before it returns (both transports do). What
 * send returns is returned. Encoding another request inside send throws (it would overwrite this
 * one's bytes).
 */
export function sendEncoded<T>(op: number, seq: number, nums: ReadonlyArray<number | bigint>, strs: ReadonlyArray<Str>, send: (req: Buffer) => T): T {
  if (lent) throw new ProtocolError('a request was encoded while another was being sent (the shared request buffer is lent to one send at a time)');
  const req = encodeShared(op, seq, nums, strs);
  lent = true;
  try {
    return send(req);
  } finally {
    lent = false;
    view.setUint32(0, 0, true); // a view kept past here reads as a malformed request
  }
}

/** Encodes a request into a Buffer of its own. */
export function encodeRequest(op: number, seq: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = []): Buffer {
  if (lent) throw new ProtocolError('a request was encoded while another was being sent (the shared request buffer is lent to one send at a time)');
  return Buffer.from(encodeShared(op, seq, nums, strs));
}

/** Decodes and checks a reply; throws ProtocolError on anything malformed. */
export function decodeReply(b: Buffer): Reply {
  if (b.length < REP_HEADER) throw new ProtocolError(`reply of ${b.length} bytes is shorter than its header`);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (v.getUint32(0, true) !== MAGIC_REP) throw new ProtocolError('reply has a bad magic number');
  const dlen = v.getUint32(80, true);
  if (dlen > MAX_DATA || REP_HEADER + dlen !== b.length) throw new ProtocolError(`reply data length ${dlen} does not match its ${b.length} bytes`);
  const err = v.getInt32(12, true);
  if (err < 0 || err > 4095) throw new ProtocolError(`reply has an impossible errno ${err}`);
  // Each int64 as a number: the same value Number(readBigInt64LE) gives, without a BigInt.
  const n = [
    v.getInt32(20, true) * TWO32 + v.getUint32(16, true),
    v.getInt32(28, true) * TWO32 + v.getUint32(24, true),
    v.getInt32(36, true) * TWO32 + v.getUint32(32, true),
    v.getInt32(44, true) * TWO32 + v.getUint32(40, true),
    v.getInt32(52, true) * TWO32 + v.getUint32(48, true),
    v.getInt32(60, true) * TWO32 + v.getUint32(56, true),
    v.getInt32(68, true) * TWO32 + v.getUint32(64, true),
    v.getInt32(76, true) * TWO32 + v.getUint32(72, true),
  ];
  const sysc = v.getUint16(84, true);
  return {
    op: v.getUint32(4, true),
    seq: v.getUint32(8, true),
    err,
    syscall: sysc < SYSCALLS.length ? SYSCALLS[sysc] : `syscall#${sysc}`,
    n,
    data: b.subarray(REP_HEADER, REP_HEADER + dlen),
    nfds: v.getUint16(86, true),
  };
}
