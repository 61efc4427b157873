// The host interface: everything a probe does or reads on the host side (a file of /proc or
// /sys, a folder listing, a namespace link, a stat, the cgroup folder it makes, the pid that names
// the run's objects, the kernel release, the host's own clock, a listener of the host's) goes
// through one `HostIf`, `ctx.host`. Two implementations:
//   - LocalHost: node:fs in this process, what a local run has always done (and as fast).
//   - BoxHost: the same operations as requests to a sandbox entered with no new namespaces, a
//     child in the host's own namespaces with this process's ids. It is what a remote run does
//     through the agent (there the sandbox is on the target); `NSPROBE_HOST=box` makes a local run
//     use it, so the remote path is exercised and compared with the local one on this machine.
// Probe files import neither node:fs nor node:os nor the addon (test/probe-imports.test.ts).
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { noteRunPid } from '../cleanup.js';
import { NsError } from '../errors.js';
import { CLONE, errnoNumber } from '../errno.js';
import { Op } from '../protocol.js';
import { readCapped } from './hostfs.js';
import type { NsType } from '../model.js';
import { AF_INET, SOCK_STREAM, enter, Outcome, request, type Request, type Sandbox, type StatResult } from '../sandbox.js';

export type HostKind = 'local' | 'box';

/**
 * A request that makes or changes something (mkdir, writeFile) lost its box before the answer
 * came (killed by a Ctrl-C, a timeout): the kernel may have done it or not. BoxHost does not
 * retry these (a retry's EEXIST would hide a directory the first one made); it rejects with this,
 * and a caller that creates something registers its cleanup all the same (`making`).
 */
export class OutcomeUnknown extends NsError {
  readonly unknown = true;
  constructor(step: string, cause: NsError) {
    super(cause.stage, cause.syscall, cause.errno, `${step}: outcome unknown, the host's box ended before it answered (${cause.message})`);
    this.name = 'OutcomeUnknown';
  }
}

/**
 * Awaits a request that makes something; when its outcome is unknown (OutcomeUnknown) `undo` is
 * registered as if it was made, then the error goes on. A real answer, failed or not, is returned.
 */
export async function making<T>(r: Request<T>, undo: () => void): Promise<Outcome<T>> {
  try {
    return await r;
  } catch (e) {
    if (e instanceof OutcomeUnknown) undo();
    throw e;
  }
}

/** A listener in the host's network namespace that answers one TCP connection. */
export interface HostListener {
  port: number;
  stop(): Promise<void>;
}

export interface HostIf {
  readonly kind: HostKind;
  /**
   * The process that stands for this run on the host, as the host sees it: Node locally, the box
   * (the agent) otherwise. Its pid names what the run makes on the host (cgroup folders, host
   * queues) so that src/cleanup.ts can tell a live run's objects from a dead one's.
   */
  readonly pid: number;
  readonly euid: number;
  readonly egid: number;
  /** Kernel release (uname -r). */
  readonly release: string;
  /** Where a temporary folder goes. */
  readonly tmpdir: string;
  /** A whole file as text (read by the host-side process). */
  readFile(path: string): Request<string>;
  /** A whole file as bytes, at most `max` (more: EFBIG). */
  readBytes(path: string, max: number): Request<Buffer>;
  /** Names in a folder, without . and .. (order as the file system gives them). */
  readdir(path: string): Request<string[]>;
  readlink(path: string): Request<string>;
  stat(path: string, lstat?: boolean): Request<StatResult>;
  /** Whether lstat succeeds. */
  exists(path: string): Promise<boolean>;
  mkdir(path: string, mode?: number): Request<void>;
  rmdir(path: string): Request<void>;
  /** Writes to an existing file (a cgroup's control files). */
  writeFile(path: string, content: string): Request<void>;
  /** The host's CLOCK_MONOTONIC, seconds. */
  monotonic(): Promise<number>;
  /** Listens on addr (IPv4, any port) in the host's network namespace and answers one TCP connection with `answer`. */
  answerTcp(addr: Buffer, answer: string): Promise<HostListener>;
  /**
   * Whether a host-side process may setns() into its own mount namespace (root of a user
   * namespace that does not own it may not: EPERM), as `nsenter --mount=/proc/self/ns/mnt` tries.
   * null: not known.
   */
  ownMntSetns(): Promise<boolean | null>;
  /** Ends what the host interface holds (BoxHost: its sandbox). Idempotent. */
  close(): Promise<void>;
}

function fsOutcome<T>(step: string, syscall: string, fn: () => T): Request<T> {
  let o: Outcome<T>;
  try {
    o = Outcome.ok(step, fn());
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    o = new Outcome<T>(step, errnoNumber(code) ?? 5 /* EIO */, syscall, undefined);
  }
  return request(Promise.resolve(o));
}

const statOf = (s: fs.Stats): StatResult => ({ dev: s.dev, ino: s.ino, mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, nlink: s.nlink });

let localRelease: string | undefined;

/** This process's host, through node:fs. */
export const localHost: HostIf = {
  kind: 'local',
  pid: process.pid,
  get euid() {
    return process.geteuid?.() ?? 0;
  },
  get egid() {
    return process.getegid?.() ?? 0;
  },
  get release() {
    return (localRelease ??= fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  },
  get tmpdir() {
    return tmpdir();
  },
  readFile: (p) => fsOutcome(`read ${p}`, 'open', () => fs.readFileSync(p, 'utf8')),
  readBytes: (p, max) => {
    const r = readCapped(p, { maxBytes: max });
    if (r.ok) return request(Promise.resolve(Outcome.ok(`read ${p}`, r.data)));
    return request(Promise.resolve(new Outcome<Buffer>(`read ${p}`, errnoNumber(r.code) ?? (r.code === 'EFBIG' ? 27 : 5), 'read', undefined)));
  },
  readdir: (p) => fsOutcome(`list ${p}`, 'open', () => fs.readdirSync(p)),
  readlink: (p) => fsOutcome(`readlink ${p}`, 'readlink', () => fs.readlinkSync(p)),
  stat: (p, l = false) => fsOutcome(`${l ? 'lstat' : 'stat'} ${p}`, 'stat', () => statOf(l ? fs.lstatSync(p) : fs.statSync(p))),
  exists: async (p) => {
    try {
      fs.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  },
  mkdir: (p, mode = 0o755) => fsOutcome(`mkdir ${p}`, 'mkdir', () => void fs.mkdirSync(p, { mode })),
  rmdir: (p) => fsOutcome(`remove ${p}`, 'unlink', () => fs.rmdirSync(p)),
  // 'r+': an existing file only, not truncated (O_WRONLY without O_CREAT, as the box writes).
  writeFile: (p, content) => fsOutcome(`write ${p}`, 'open', () => fs.writeFileSync(p, content, { flag: 'r+' })),
  monotonic: async () => Number(process.hrtime.bigint()) / 1e9,
  // Locally the consumers' evaluation runs nsenter itself (src/consumers.ts).
  ownMntSetns: async () => null,
  // A sandbox process in the host's namespaces listens, as BoxHost's does: a Node server here
  // loaded Node's net, dns and cluster modules for this one connection.
  answerTcp: async (addr, answer) => answerFrom(await enter({ namespaces: [], mode: 'privileged', timeoutMs: 60000 }), addr, answer),
  close: async () => undefined,
};

/**
 * Listens on addr (IPv4, any port) in the sandbox `l`, which is the listener's alone, and answers
 * one connection with `answer`; stop() (or a failure to listen) closes `l`.
 */
async function answerFrom(l: Sandbox, addr: Buffer, answer: string): Promise<HostListener> {
  try {
    const { slot, port } = await l.listen(AF_INET, SOCK_STREAM, addr, 0).get();
    l.timeoutMs = 60000;
    const served = l.acceptRecv(slot, 55000, answer).catch(() => undefined);
    return {
      port,
      stop: async () => {
        await l.close(0).catch(() => undefined);
        await served;
      },
    };
  } catch (e) {
    await l.close(0).catch(() => undefined);
    throw e;
  }
}

/**
 * The host seen through a sandbox in the host's own namespaces (no clone flags, this process's
 * ids). Requests are serialised on that one child, as on any sandbox. When the child is gone (an
 * interruption kills every sandbox), the next request enters a new one, so the cleanups that run
 * after an interruption (removing a cgroup) still reach the host.
 */
export class BoxHost implements HostIf {
  readonly kind = 'box' as const;
  readonly tmpdir: string;
  private box: Sandbox;
  private info: { pid: number; euid: number; egid: number; release: string };
  private closed = false;
  private readonly forget: () => void;

  private constructor(box: Sandbox, info: BoxHost['info'], tmp: string) {
    this.box = box;
    this.info = info;
    this.tmpdir = tmp;
    // The cgroups made through the box carry its pid: a hurried exit of this process removes them too.
    this.forget = noteRunPid(info.pid);
  }

  /** Namespaces of the box: none (tests give one, as a control: a box that is not the host). */
  private namespaces: readonly NsType[] = [];

  private static async enterBox(timeoutMs: number, namespaces: readonly NsType[]): Promise<Sandbox> {
    return enter({ namespaces, mode: 'privileged', timeoutMs });
  }

  static async open(opts: { timeoutMs?: number; tmpdir?: string; namespaces?: readonly NsType[] } = {}): Promise<BoxHost> {
    const namespaces = opts.namespaces ?? [];
    const box = await BoxHost.enterBox(opts.timeoutMs ?? 5000, namespaces);
    try {
      const id = await box.identity().get();
      const un = await box.uname().get();
      // The box's own environment is not known to it; /tmp is where a temporary folder goes on
      // any Linux host (a local run in box mode takes Node's, to stay comparable).
      const h = new BoxHost(box, { pid: box.pid, euid: id.euid, egid: id.egid, release: un.release }, opts.tmpdir ?? '/tmp');
      h.namespaces = namespaces;
      return h;
    } catch (e) {
      await box.close().catch(() => undefined);
      throw e;
    }
  }

  get pid() {
    return this.info.pid;
  }
  get euid() {
    return this.info.euid;
  }
  get egid() {
    return this.info.egid;
  }
  get release() {
    return this.info.release;
  }

  /**
   * Runs a request on the box; a broken channel (the box was killed) enters a new box once and
   * retries, except for a request that makes something (`makes`: its step): that one rejects with
   * OutcomeUnknown once a new box is there for the next request.
   */
  private on<T>(fn: (s: Sandbox) => Promise<Outcome<T>>, makes?: string): Request<T> {
    const run = async (): Promise<Outcome<T>> => {
      if (this.closed) throw new NsError('request', 'send', 9 /* EBADF */, 'the host interface is closed');
      const box = this.box;
      try {
        return await fn(box);
      } catch (e) {
        if (!(e instanceof NsError)) throw e;
        if (makes !== undefined) {
          // The next request (the caller's cleanup, first of all) gets a new box.
          if (!this.closed && this.box === box) await this.renew(box).catch(() => undefined);
          throw new OutcomeUnknown(makes, e);
        }
        if (this.closed) throw e;
        await this.renew(box);
        return fn(this.box);
      }
    };
    return request(run());
  }

  /** Closes a broken box and enters its replacement, unless the interface was closed or another request renewed it first. */
  private async renew(box: Sandbox): Promise<void> {
    await box.close(0).catch(() => undefined);
    if (!this.closed && this.box === box) this.box = await BoxHost.enterBox(box.timeoutMs, this.namespaces);
  }

  readFile(p: string) { return this.on((s) => s.readFile(p)); }
  readBytes(p: string, max: number): Request<Buffer> {
    const step = `read ${p}`;
    return this.on(async (s) => {
      const parts: Buffer[] = [];
      let off = 0;
      for (;;) {
        const r = await s.call(Op.READFILE, [off, 0], [p]);
        if (r.err) return new Outcome<Buffer>(step, r.err, r.syscall, undefined);
        parts.push(Buffer.from(r.data));
        off += r.n[0];
        if (off > max) return new Outcome<Buffer>(step, 27 /* EFBIG */, 'read', undefined);
        if (r.n[1] || r.n[0] === 0) break;
      }
      return Outcome.ok(step, Buffer.concat(parts));
    });
  }
  readdir(p: string) { return this.on((s) => s.listdir(p)); }
  readlink(p: string) { return this.on((s) => s.readlink(p)); }
  stat(p: string, lstat = false) { return this.on((s) => s.stat(p, lstat)); }
  async exists(p: string) { return (await this.stat(p, true)).ok; }
  mkdir(p: string, mode = 0o755) { return this.on((s) => s.mkdir(p, mode), `mkdir ${p}`); }
  rmdir(p: string) { return this.on((s) => s.unlink(p, true)); }
  writeFile(p: string, content: string) { return this.on((s) => s.writeFile(p, content), `write ${p}`); }
  async monotonic() { return (await this.on((s) => s.clocks()).get()).monotonic; }

  async ownMntSetns(): Promise<boolean | null> {
    // In a forked child: a setns into a mount namespace moves the caller's root and cwd to its root.
    try {
      const c = await this.on((s) => s.forkServe()).get();
      try {
        const r = await c.setns('/proc/self/ns/mnt', CLONE.mnt);
        return r.ok ? true : r.code === 'EPERM' ? false : null;
      } finally {
        await c.close(0).catch(() => undefined);
      }
    } catch {
      return null;
    }
  }

  async answerTcp(addr: Buffer, answer: string): Promise<HostListener> {
    // A process of its own (forked from the box), so that waiting for the connection holds up no
    // other request of the box.
    return answerFrom(await this.on((s) => s.forkServe()).get(), addr, answer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.box.close().catch(() => undefined);
    this.forget();
  }
}

/** Which host interface a run uses: `NSPROBE_HOST=box` (read here only) selects BoxHost. */
export function hostKindFrom(env: Record<string, string | undefined>): HostKind {
  return env.NSPROBE_HOST === 'box' ? 'box' : 'local';
}

/** The host interface of a run of this kind (LocalHost is shared; a BoxHost is the caller's to close). */
export async function openHost(kind: HostKind, timeoutMs?: number): Promise<HostIf> {
  return kind === 'box' ? BoxHost.open({ timeoutMs, tmpdir: tmpdir() }) : localHost;
}

let current: HostIf = localHost;

/**
 * The host of the run in progress (LocalHost outside a run): what probe declarations that depend
 * on the host (the identity probe's namespace list, by kernel release) read.
 */
export function currentHost(): HostIf {
  return current;
}

/** Sets the run's host; returns a function that puts back the previous one. */
export function useHost(h: HostIf): () => void {
  const prev = current;
  current = h;
  return () => {
    if (current === h) current = prev;
  };
}
