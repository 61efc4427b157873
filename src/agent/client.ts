// The controller's side of nsprobe-agent (native/agent.cc): the NativeAddon surface Sandbox uses
// (src/native.ts), carried over the agent's stdin/stdout in the frames of native/agent-proto.h.
// src/native.ts chooses it (NSPROBE_TRANSPORT=agent: a local agent over a pipe; --via: an agent
// on another host, started by src/agent/bootstrap.ts), so Sandbox and the probes run unchanged.
//
// Differences from the addon, by construction: descriptors a child passes back stay in the agent
// (the numbers in `fds` are handles there, good for adopt() and closeFd()); the calls the addon
// answers synchronously that need the agent (mqUnlink, sysvRemove, netlink) hold the event loop
// for their reply (callSync; mqUnlink falls back to sending in order without waiting when the
// channel is busy; mqUnlinkAsync and netlinkAsync wait on the loop); the host-queue holds
// (mqHold, mqRelease, mqReap) answer with promises; setNofile and setColocate concern this
// process only.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { getSystemErrorMap } from 'node:util';
import type { NativeAddon, NativeBox, NativeClose, NativeEnterSpec, NativeReply } from '../native.js';
import { EF, ENTER_FIXED, FK, IPCOP, MAX_CGROUP, MAX_JOIN, NL, T, frame, parseFrames, strings, u32s, type AgentReply } from './proto.js';

/** A running agent's channel: write frames to stdin, read them from stdout. */
export interface AgentChannel {
  stdin: Writable;
  stdout: Readable;
  /** The local process carrying the channel (the agent itself, or ssh/kubectl/... for --via). */
  proc?: ChildProcess;
  /** Bytes of the agent's output already read by the launcher. */
  leftover?: Buffer;
  /** Where the agent runs, for messages ("local", "via 'kubectl exec -i pod --'"). */
  label: string;
}
/** A box as the agent reports it: its hello is a Buffer (the addon gives an ArrayBuffer). */
export type AgentBox = NativeBox & { hello: Buffer };

export type Launcher = () => Promise<AgentChannel>;

export interface AgentHello {
  version: number;
  pid: number;
  euid: number;
  machine: string;
  release: string;
}

interface Waiter {
  resolve: (r: AgentReply) => void;
  reject: (e: Error) => void;
}

function strerror(errno: number): string {
  const m = getSystemErrorMap().get(-errno);
  if (!m) return `errno ${errno}`;
  return m[1].charAt(0).toUpperCase() + m[1].slice(1);
}

/** The message of a failure reply, worded as the addon words it (native/addon.cc to_failure). */
export function failureMessage(r: Pick<AgentReply, 'kind' | 'err' | 'stage' | 'syscall' | 'arg' | 'v'>): string {
  const num = r.v[0];
  switch (r.kind) {
    case FK.HELLO_TIMEOUT: return `the child did not start serving within ${num} ms`;
    case FK.EXITED: return 'the child exited before it served';
    case FK.MALFORMED: return 'malformed hello from the child';
    case FK.OPEN_JOIN: return `cannot open ${r.arg}: ${strerror(r.err)}`;
    case FK.CGROUP: return `cannot move the child into ${r.arg}: ${strerror(r.err)}`;
    case FK.STAGE_SIGNAL: return `a setup stage ended with signal ${num}`;
    case FK.STAGE_STATUS: return `a setup stage ended with status ${num}`;
    case FK.MAP: return `writing /proc/PID/${r.arg} failed: ${strerror(r.err)}`;
    case FK.REQ_TIMEOUT: return `timeout after ${num} ms`;
    case FK.NO_REPLY: return 'the child exited without replying';
    case FK.NO_BOX: return 'no such sandbox (already closed)';
    case FK.GONE: return `the child is gone (${strerror(r.err)})`;
    case FK.TOO_BIG: return `request larger than ${num} bytes`;
    case FK.BAD_FRAME: return 'the agent could not read the frame';
    case FK.BUSY: return 'a request is already pending on this sandbox';
    case FK.FULL: return 'too many sandboxes open in the agent';
    default: return `${r.syscall} failed at stage ${r.stage}: ${strerror(r.err)}`;
  }
}

/** An Error shaped like the addon's (errors.ts fromNative reads stage, syscall, errno). */
function nativeError(stage: string, syscall: string, errno: number, message: string): Error {
  return Object.assign(new Error(message), { stage, syscall, errno, native: true });
}

function failure(r: AgentReply): Error {
  return nativeError(r.stage || 'request', r.syscall || 'unknown', r.err, failureMessage(r));
}

export function encodeEnter(spec: NativeEnterSpec): Buffer {
  const cg = spec.cgroupProcs ?? [];
  const jp = spec.joinPaths ?? [];
  if (cg.length > MAX_CGROUP) throw new Error(`at most ${MAX_CGROUP} cgroup.procs files`);
  if (jp.length > MAX_JOIN) throw new Error(`at most ${MAX_JOIN} namespaces to join`);
  const f = Buffer.alloc(ENTER_FIXED);
  f.writeBigUInt64LE(BigInt(spec.cloneFlags ?? 0), 0);
  f.writeBigInt64LE(BigInt(Math.trunc(spec.offMonotonic ?? 0)), 8);
  f.writeBigInt64LE(BigInt(Math.trunc(spec.offBoottime ?? 0)), 16);
  const join = spec.joinPaths !== undefined || spec.joinPidfdPid !== undefined;
  const flags =
    (spec.userns ? EF.USERNS : 0) | (spec.drop ? EF.DROP : 0) | (spec.time ? EF.TIME : 0) | (spec.noVm ? EF.NOVM : 0) |
    (spec.setgroupsAllow ? EF.SETGROUPS_ALLOW : 0) | (join ? EF.JOIN : 0) | (spec.joinFork ? EF.JOIN_FORK : 0);
  f.writeUInt32LE(flags, 24);
  f.writeInt32LE(spec.dropUid ?? 65534, 28);
  f.writeInt32LE(spec.dropGid ?? 65534, 32);
  f.writeInt32LE(spec.timeoutMs ?? 5000, 36);
  f.writeInt32LE(spec.joinPidfdPid ?? 0, 40);
  f.writeInt32LE(spec.joinPidfdFlags ?? 0, 44);
  f.writeUInt16LE(cg.length, 48);
  f.writeUInt16LE(jp.length, 50);
  jp.forEach((j, i) => f.writeInt32LE(j.type, 52 + 4 * i));
  return Buffer.concat([f, strings([spec.uidMap ?? '', spec.gidMap ?? '', ...cg, ...jp.map((j) => j.path)])]);
}

interface NetlinkArgs {
  peer?: string;
  peerPid?: number;
  family?: number;
  addr?: Buffer;
  prefix?: number;
}
/** The addon's netlink() op names (native/addon.cc) and the agent's NSA_NL_* codes. */
const NL_BY_NAME: Record<string, number> = { vethCreate: NL.VETH_CREATE, linkDel: NL.LINK_DEL, linkUp: NL.LINK_UP, ifindex: NL.IFINDEX, addrAdd: NL.ADDR_ADD };

function hostIpcPayload(op: number, name: string, a0 = 0, a1 = 0): Buffer {
  return Buffer.concat([u32s(op, a0, a1), Buffer.from(name)]);
}

function netlinkPayload(code: number, name: string, a: NetlinkArgs): Buffer {
  const a0 = code === NL.VETH_CREATE ? (a.peerPid ?? 0) : (a.family ?? 0);
  const s1 = code === NL.ADDR_ADD ? (a.addr ?? Buffer.alloc(0)) : (a.peer ?? '');
  return Buffer.concat([u32s(code, a0, a.prefix ?? 0), strings([name, s1])]);
}

/** The descriptor under a child process's pipe stream (libuv's Pipe handle has it), if any. */
function streamFd(s: Readable | Writable): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Sleeps synchronously (the exit path may not wait on the event loop). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether a local process is gone or a zombie (it ended; only its parent's wait is left). */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

export class AgentClient implements NativeAddon {
  private ch?: AgentChannel;
  private starting?: Promise<AgentChannel>;
  private buf: Buffer = Buffer.alloc(0);
  private waiters = new Map<number, Waiter>();
  private nextTag = 1;
  private boxes = new Map<number, number>();
  private helloWaiter?: Waiter;
  hello?: AgentHello;
  /** Why the agent's channel ended, once it did. */
  endedWhy?: string;

  constructor(private readonly launch: Launcher) {}

  /** Starts the agent (once) and waits for its hello. */
  start(): Promise<AgentChannel> {
    if (this.ch) return Promise.resolve(this.ch);
    if (!this.starting) {
      this.starting = (async () => {
        const ch = await this.launch();
        const hello = new Promise<AgentReply>((resolve, reject) => (this.helloWaiter = { resolve, reject }));
        this.attach(ch);
        const h = await hello;
        const [machine = '', release = ''] = h.data.toString('latin1').split('\0');
        this.hello = { version: h.v[0], pid: h.v[1], euid: h.v[2], machine, release };
        this.ch = ch;
        this.updateRef();
        return ch;
      })();
      this.starting.catch(() => undefined).finally(() => (this.starting = undefined));
    }
    return this.starting;
  }

  private attach(ch: AgentChannel): void {
    this.endedWhy = undefined;
    this.buf = ch.leftover ?? Buffer.alloc(0);
    const onData = (d: Buffer) => {
      for (const f of this.takeFrames(ch, d) ?? []) this.dispatch(f);
    };
    ch.stdout.on('data', onData);
    ch.stdout.on('error', () => undefined);
    ch.stdin.on('error', () => undefined);
    ch.stdout.on('close', () => this.fail('the agent exited', ch));
    ch.proc?.on('exit', (code, sig) => {
      // Its output may still be in flight: the stream's close settles the rest.
      this.endedWhy ??= `the agent (${ch.label}) ended with ${sig ?? `exit code ${code}`}`;
    });
    ch.stdout.resume(); // a launcher may have paused it
    if (this.buf.length) setImmediate(() => onData(Buffer.alloc(0)));
  }

  /**
   * The one frame reader (the stream's data events and callSync's direct reads): appends d (not
   * copied: the caller's to give) and takes the whole frames off the buffer. A frame that cannot
   * be read ends the channel (every waiter is rejected with why): null.
   */
  private takeFrames(ch: AgentChannel, d: Buffer): AgentReply[] | null {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    try {
      const p = parseFrames(this.buf);
      this.buf = p.rest;
      return p.frames;
    } catch (e) {
      this.fail((e as Error).message, ch);
      return null;
    }
  }

  private dispatch(f: AgentReply): void {
    if (f.type === T.HELLO && f.tag === 0) {
      const w = this.helloWaiter;
      this.helloWaiter = undefined;
      w?.resolve(f);
      return;
    }
    const w = this.waiters.get(f.tag);
    if (!w) return;
    this.waiters.delete(f.tag);
    this.updateRef();
    if (f.type === T.ERROR) w.reject(failure(f));
    else w.resolve(f);
  }

  private fail(why: string, ch: AgentChannel): void {
    if (this.ch && this.ch !== ch) return;
    const msg = this.endedWhy ?? why;
    const err = () => nativeError('request', 'read', 32 /* EPIPE */, msg);
    this.helloWaiter?.reject(err());
    this.helloWaiter = undefined;
    for (const w of this.waiters.values()) w.reject(err());
    this.waiters.clear();
    this.boxes.clear();
    this.ch = undefined;
    try {
      ch.stdin.destroy();
      ch.stdout.destroy();
    } catch {}
  }

  /** The channel's handles keep Node alive only while a reply is awaited. */
  private updateRef(): void {
    const ch = this.ch;
    if (!ch) return;
    const busy = this.waiters.size > 0;
    for (const h of [ch.stdout, ch.stdin, ch.proc] as Array<{ ref?: () => unknown; unref?: () => unknown } | undefined>) {
      if (busy) h?.ref?.();
      else h?.unref?.();
    }
  }

  private send(ch: AgentChannel, type: number, payload: Buffer, wait: boolean): Promise<AgentReply> {
    const tag = this.nextTag++;
    if (this.nextTag > 0x7fffffff) this.nextTag = 1;
    const p = new Promise<AgentReply>((resolve, reject) => this.waiters.set(tag, { resolve, reject }));
    if (!wait) p.catch(() => undefined);
    this.updateRef();
    ch.stdin.write(frame(type, tag, payload));
    return p;
  }

  private async call(type: number, payload: Buffer): Promise<AgentReply> {
    const ch = await this.start();
    return this.send(ch, type, payload, true);
  }

  /** Sends without waiting for the reply (the calls the addon answers synchronously). */
  private post(type: number, payload: Buffer): boolean {
    if (!this.ch) return false;
    void this.send(this.ch, type, payload, false);
    return true;
  }

  private started(r: AgentReply): AgentBox {
    if (r.err) throw failure(r);
    this.boxes.set(r.v[0], r.v[1]);
    return { id: r.v[0], pid: r.v[1], hello: r.data };
  }

  async enter(spec: NativeEnterSpec): Promise<AgentBox> {
    return this.started(await this.call(T.ENTER, encodeEnter(spec)));
  }

  async request(id: number, req: Buffer, timeoutMs: number): Promise<NativeReply> {
    if (!this.boxes.has(id)) throw nativeError('request', 'send', 9, 'no such sandbox (already closed)');
    const r = await this.call(T.REQUEST, Buffer.concat([u32s(id, timeoutMs), req]));
    if (r.err) throw failure(r);
    return { reply: r.data, fds: r.fds, pid: r.v[0] };
  }

  async close(id: number, timeoutMs: number): Promise<NativeClose> {
    if (!this.boxes.has(id) || !this.ch) return { reaped: true, killed: false, exitCode: null, signal: null, alreadyClosed: true };
    let r: AgentReply;
    try {
      r = await this.call(T.CLOSE, u32s(id, timeoutMs));
    } finally {
      this.boxes.delete(id);
    }
    const out: NativeClose = { reaped: !!r.v[0], killed: !!r.v[1], exitCode: r.v[2] < 0 ? null : r.v[2], signal: r.v[3] < 0 ? null : r.v[3] };
    if (r.kind === 1) out.alreadyClosed = true;
    return out;
  }

  async adopt(fd: number, timeoutMs: number): Promise<AgentBox> {
    return this.started(await this.call(T.ADOPT, u32s(fd, timeoutMs)));
  }

  kill(id: number, signal: number): boolean {
    if (!this.boxes.has(id)) return false;
    return this.post(T.KILL, u32s(id, signal));
  }

  openCount(): number {
    return this.boxes.size;
  }

  openPids(): number[] {
    return [...this.boxes.values()];
  }

  closeFd(fd: number): void {
    this.post(T.CLOSEFD, u32s(fd));
  }

  /** The agent is always a child subreaper (native/agent.cc). */
  setSubreaper(): boolean {
    return true;
  }

  /** This process holds no sandbox descriptors: nothing to raise here (the agent raises its own). */
  setNofile(): { soft: number; hard: number } {
    return { soft: -1, hard: -1 };
  }

  /**
   * Answered synchronously where the channel allows it (callSync), else sent in order and
   * answered without waiting: 0 when sent, -ENOTCONN when no agent runs.
   */
  mqUnlink(name: string): number {
    const r = this.callSync(T.MQ_UNLINK, Buffer.from(name), 3000, true);
    if (typeof r !== 'number') return r.v[0];
    if (r !== -11 && r !== -38) return r;
    return this.post(T.MQ_UNLINK, Buffer.from(name)) ? 0 : -107;
  }

  async mqUnlinkAsync(name: string): Promise<number> {
    return (await this.call(T.MQ_UNLINK, Buffer.from(name))).v[0];
  }

  /** The addon's sysvRemove, in the agent's IPC namespace; synchronous (callSync): 0 or -errno. */
  sysvRemove(kind: 1 | 2 | 3, key: number): number {
    const r = this.callSync(T.HOSTIPC, hostIpcPayload(IPCOP.SYSV_REMOVE, '', kind, key), 3000, true);
    return typeof r === 'number' ? r : r.v[0];
  }

  async mqHold(name: string): Promise<number> {
    return (await this.call(T.HOSTIPC, hostIpcPayload(IPCOP.MQ_HOLD, name))).v[0];
  }

  async mqRelease(name: string): Promise<number> {
    if (!this.ch) return -2; // no agent: nothing held any more
    return (await this.call(T.HOSTIPC, hostIpcPayload(IPCOP.MQ_RELEASE, name))).v[0];
  }

  async mqReap(name: string, dryRun = false): Promise<number> {
    return (await this.call(T.HOSTIPC, hostIpcPayload(dryRun ? IPCOP.MQ_PEEK : IPCOP.MQ_REAP, name))).v[0];
  }

  /** Kills and reaps every box (NSA_SHUTDOWN) synchronously; the agent stays. */
  endBoxes(ms: number): void {
    this.callSync(T.SHUTDOWN, u32s(ms), ms + 3000, true);
  }

  /**
   * Synchronously ends the agent: its stdin closes, so it kills and reaps every child it made and
   * exits; waits up to ms for that. A later call starts a new agent.
   */
  shutdown(ms = 2000): void {
    const ch = this.ch;
    if (!ch) return;
    this.fail('the agent was shut down', ch);
    const pid = ch.proc?.pid;
    if (!pid) return;
    const deadline = Date.now() + ms;
    while (!ended(pid) && Date.now() < deadline) sleepSync(1);
    if (!ended(pid)) ch.proc?.kill('SIGKILL');
  }

  setColocate(): boolean {
    return false;
  }

  /**
   * The addon's synchronous netlink(), answered by the agent (in its network namespace): the
   * frame is written and its reply read on the channel's descriptors directly, with the event
   * loop held (other frames read meanwhile are dispatched as usual). Needs a started agent:
   * -ENOTCONN before; -EAGAIN while frames wait to be written or read by the streams (ours would
   * overtake them); -ENOSYS on a channel without descriptors; -ETIMEDOUT after 10 s.
   */
  netlink(op: 'vethCreate', name: string, peer: string, peerPid: number): number;
  netlink(op: 'linkDel' | 'linkUp' | 'ifindex', name: string): number;
  netlink(op: 'addrAdd', name: string, family: number, addr: Buffer, prefix: number): number;
  netlink(op: string, name: string, x?: string | number, y?: number | Buffer, z?: number): number {
    const code = NL_BY_NAME[op];
    if (!code) return -22; // EINVAL, as the addon answers an unknown op
    const a = op === 'vethCreate' ? { peer: String(x ?? ''), peerPid: Number(y ?? 0) } : op === 'addrAdd' ? { family: Number(x ?? 0), addr: y as Buffer, prefix: z ?? 0 } : {};
    const r = this.callSync(T.NETLINK, netlinkPayload(code, name, a));
    return typeof r === 'number' ? r : r.v[0];
  }

  /**
   * One frame written and its reply read on the channel's descriptors, the event loop held.
   * `drain`: frames the stream has buffered are dispatched first, and only bytes libuv has not
   * yet written (a frame cut in two) stop it (the exit path, where waiting is no option).
   */
  private callSync(type: number, payload: Buffer, ms = 10000, drain = false): AgentReply | number {
    const ch = this.ch;
    if (!ch) return -107; // ENOTCONN
    const wfd = streamFd(ch.stdin), rfd = streamFd(ch.stdout);
    if (wfd === undefined || rfd === undefined) return -38; // ENOSYS
    if (drain) {
      while (ch.stdout.readableLength > 0 && ch.stdout.read() !== null) {
        // read() in flowing mode hands the chunk to onData, which dispatches its frames
      }
      const queued = (ch.stdin as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize;
      if (queued === undefined || queued > 0 || ch.stdout.readableLength > 0) return -11;
      if (this.ch !== ch) return -107;
    } else if (ch.stdin.writableLength > 0 || ch.stdout.readableLength > 0) return -11; // EAGAIN
    const tag = this.nextTag++;
    if (this.nextTag > 0x7fffffff) this.nextTag = 1;
    const deadline = Date.now() + ms;
    const out = frame(type, tag, payload);
    for (let off = 0; off < out.length; ) {
      try {
        off += writeSync(wfd, out, off, out.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return -32; // EPIPE: the agent is gone
        if (Date.now() > deadline) return -110;
        sleepSync(1);
      }
    }
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(rfd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return -32;
        if (Date.now() > deadline) return -110; // ETIMEDOUT (a late reply finds no waiter)
        sleepSync(1);
        continue;
      }
      if (n === 0) {
        this.fail('the agent exited', ch);
        return -32;
      }
      const frames = this.takeFrames(ch, Buffer.from(chunk.subarray(0, n))); // (chunk is read into again)
      if (!frames) return -71; // EPROTO
      let mine: AgentReply | undefined;
      for (const f of frames) {
        if (f.tag === tag && f.type === type) mine = f;
        else this.dispatch(f);
      }
      if (mine) return mine;
    }
  }

  async netlinkAsync(op: keyof typeof NL, name: string, a: NetlinkArgs = {}): Promise<number> {
    return (await this.call(T.NETLINK, netlinkPayload(NL[op], name, a))).v[0];
  }

  async ping(data: Buffer): Promise<Buffer> {
    return (await this.call(T.PING, data)).data;
  }

  /** Writes raw bytes to the agent (the fuzz test's malformed frames). */
  async writeRaw(bytes: Buffer): Promise<void> {
    const ch = await this.start();
    ch.stdin.write(bytes);
  }

  get agentPid(): number | undefined {
    return this.hello?.pid;
  }
  get channel(): AgentChannel | undefined {
    return this.ch;
  }
}

/** A launcher for an agent on this host: the program at path, over a pipe. */
export function localLauncher(path: string, args: string[] = []): Launcher {
  return async () => {
    // Its own process group: Ctrl-C on the terminal reaches the controller, which ends it in order.
    const proc = spawn(path, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', () => resolve());
      proc.once('error', (e) => reject(nativeError('clone', 'execve', (e as NodeJS.ErrnoException).errno ? -(e as NodeJS.ErrnoException).errno! : 2, `cannot start the agent ${path}: ${(e as Error).message}`)));
    });
    return { stdin: proc.stdin!, stdout: proc.stdout!, proc, label: 'local' };
  };
}
