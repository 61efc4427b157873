// The agent's frames (native/agent-proto.h, mirrored here: change both together;
// test/agent.test.ts compares the two).
export const AGENT_MAGIC = 0x4741534e;
export const AGENT_VERSION = 1;
export const HDR = 16;
/** The largest payload a controller frame may carry (NSA_MAX_FRAME = NSP_MAX_REQ + 4096). */
export const MAX_FRAME = 8192 + 4096;
export const REP_FIXED = 64;
export const ENTER_FIXED = 96;
export const MAX_JOIN = 10;
export const MAX_CGROUP = 8;

export const T = {
  HELLO: 1, ENTER: 2, REQUEST: 3, CLOSE: 4, ADOPT: 5, KILL: 6, CLOSEFD: 7, NETLINK: 8, MQ_UNLINK: 9,
  SHUTDOWN: 10, SETNOFILE: 11, PING: 12, HOSTIPC: 13, ERROR: 15,
} as const;

export const NL = { VETH_CREATE: 1, LINK_DEL: 2, LINK_UP: 3, IFINDEX: 4, ADDR_ADD: 5 } as const;

/** NSA_HOSTIPC ops (enum nsa_hostipc_op). */
export const IPCOP = { SYSV_REMOVE: 1, MQ_HOLD: 2, MQ_RELEASE: 3, MQ_REAP: 4, MQ_PEEK: 5 } as const;

export const EF = { USERNS: 0x1, DROP: 0x2, TIME: 0x4, NOVM: 0x8, SETGROUPS_ALLOW: 0x10, JOIN: 0x20, JOIN_FORK: 0x40 } as const;

/** How a failure's message reads: enum nsp_fail_kind (native/enter.h) and enum nsa_fail_kind. */
export const FK = {
  PLAIN: 0, HELLO_TIMEOUT: 1, EXITED: 2, MALFORMED: 3, OPEN_JOIN: 4, CGROUP: 5, STAGE_SIGNAL: 6, STAGE_STATUS: 7, MAP: 8,
  REQ_TIMEOUT: 20, NO_REPLY: 21, NO_BOX: 22, GONE: 23, TOO_BIG: 24, BAD_FRAME: 25, BUSY: 26, FULL: 27,
} as const;

export interface AgentReply {
  type: number;
  tag: number;
  err: number;
  kind: number;
  v: number[];
  fds: number[];
  stage: string;
  syscall: string;
  arg: string;
  data: Buffer;
}

export function frame(type: number, tag: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(HDR);
  h.writeUInt32LE(AGENT_MAGIC, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(tag >>> 0, 8);
  h.writeUInt32LE(payload.length, 12);
  return Buffer.concat([h, payload]);
}

/** u16-length-prefixed strings. */
export function strings(list: ReadonlyArray<string | Buffer>): Buffer {
  return Buffer.concat(
    list.map((s) => {
      const b = typeof s === 'string' ? Buffer.from(s) : s;
      const l = Buffer.alloc(2);
      l.writeUInt16LE(b.length);
      return Buffer.concat([l, b]);
    }),
  );
}

export function u32s(...n: number[]): Buffer {
  const b = Buffer.alloc(4 * n.length);
  n.forEach((x, i) => b.writeInt32LE(x | 0, 4 * i));
  return b;
}

/** Splits complete frames off buf; returns them and the rest. Throws on a frame that cannot be read. */
export function parseFrames(buf: Buffer): { frames: AgentReply[]; rest: Buffer } {
  const frames: AgentReply[] = [];
  let off = 0;
  while (buf.length - off >= HDR) {
    if (buf.readUInt32LE(off) !== AGENT_MAGIC) throw new Error('the agent sent bytes that are not a frame');
    const len = buf.readUInt32LE(off + 12);
    if (len > 4 * 65536) throw new Error(`the agent sent a frame of ${len} bytes`);
    if (buf.length - off < HDR + len) break;
    frames.push(decodeReply(buf.readUInt16LE(off + 4), buf.readUInt32LE(off + 8), buf.subarray(off + HDR, off + HDR + len)));
    off += HDR + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export function decodeReply(type: number, tag: number, p: Buffer): AgentReply {
  if (p.length < REP_FIXED) throw new Error(`short agent reply (${p.length} bytes)`);
  const v = [0, 1, 2, 3].map((i) => Number(p.readBigInt64LE(8 + 8 * i)));
  const nfds = p.readUInt16LE(62);
  const fds = [0, 1, 2, 3].slice(0, Math.min(nfds, 4)).map((i) => p.readInt32LE(40 + 4 * i));
  const sl = [p.readUInt16LE(56), p.readUInt16LE(58), p.readUInt16LE(60)];
  let o = REP_FIXED;
  const s = sl.map((l) => {
    const x = p.subarray(o, o + l).toString();
    o += l;
    return x;
  });
  return { type, tag, err: p.readInt32LE(0), kind: p.readUInt32LE(4), v, fds, stage: s[0], syscall: s[1], arg: s[2], data: Buffer.from(p.subarray(o)) };
}
