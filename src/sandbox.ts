// Sandbox: a child process in namespaces that serves typed requests. Created by enter() (new
// namespaces) or join() (the namespaces of an existing process); ended by close().
import { readFileSync } from 'node:fs';
import { NsError, errnoName, fromNative } from './errors.js';
import { NS_IOCTL } from './errno.js';
import type { Mode, NsType } from './model.js';
import { CLONE, native, transportContext, type NativeBox, type NativeEnterSpec, type NativeReply } from './native.js';
import { Op, ProtocolError, decodeReply, sendEncoded, type Reply, type Str } from './protocol.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const UNPRIVILEGED_ID = 65534;

export interface EnterOptions {
  /** Namespace types to create. In rootless mode a user namespace is always created too. */
  namespaces: readonly NsType[];
  mode: Mode;
  /** Rootless mode when the caller is root: the unprivileged ids to switch to (default 65534). */
  dropTo?: { uid: number; gid: number };
  /** Time namespace offsets in seconds, written before the first task enters. */
  timeOffsets?: { monotonic?: number; boottime?: number };
  /** cgroup.procs files to move the child into before its namespaces are created. */
  cgroupProcs?: string[];
  /** Extra raw clone flags (tests use this to provoke EINVAL). */
  extraCloneFlags?: number;
  /** Clone with fork semantics instead of CLONE_VM. */
  noVm?: boolean;
  /** Privileged user namespace: the ids to map to 0.. inside (default privilegedIdPlan()). */
  privilegedIds?: PrivilegedIdPlan;
  /** Timeout for entering and the default for each request. */
  timeoutMs?: number;
}

export interface JoinOptions {
  namespaces: readonly NsType[];
  via: 'path' | 'pidfd';
  timeoutMs?: number;
}

/** How rootless mode maps ids for this caller. */
export interface RootlessPlan {
  drop: boolean;
  hostUid: number;
  hostGid: number;
  uidMap: string;
  gidMap: string;
  /** Set when rootless mode could not switch to an unprivileged uid and nests instead. */
  note?: string;
}

// This process's own /proc/self/uid_map and gid_map, read once. Every enter() plans ids from them
// (rootless: is 65534 mapped; privileged user namespace: which block to map), and reading two
// /proc files per sandbox was the larger part of the addon's cost over raw clone() in the
// user/privileged bench row. They cannot change under us: a user namespace's map is written once,
// and Node (multi-threaded) can never move to another user namespace. An empty or unreadable map
// (not written yet) is not kept, so it is read again next time.
const ownMaps = new Map<string, string>();
function ownMap(file: '/proc/self/uid_map' | '/proc/self/gid_map'): string {
  let text = ownMaps.get(file);
  if (text !== undefined) return text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  if (text.trim()) ownMaps.set(file, text);
  return text;
}

// Who the sandboxes are made as: this process, or the target's login when the transport is an
// agent on another host (its context's caller, set with it: src/native.ts setTransport).
export type { CallerIdentity } from './native.js';
const remoteCaller = () => transportContext().caller;
const callerEuid = () => remoteCaller()?.euid ?? process.geteuid?.() ?? 0;
const callerEgid = () => remoteCaller()?.egid ?? process.getegid?.() ?? 0;
const callerMap = (file: '/proc/self/uid_map' | '/proc/self/gid_map'): string => {
  const c = remoteCaller();
  return c ? (file === '/proc/self/uid_map' ? c.uidMap : c.gidMap) : ownMap(file);
};

function idMapped(mapFile: '/proc/self/uid_map' | '/proc/self/gid_map', id: number): boolean {
  for (const line of callerMap(mapFile).split('\n')) {
    const [inside, , count] = line.trim().split(/\s+/).map(Number);
    if (Number.isFinite(inside) && Number.isFinite(count) && id >= inside && id < inside + count) return true;
  }
  return false;
}

/** A block of ids as the caller sees them. */
export interface IdBlock {
  base: number;
  count: number;
}

/** Which of the caller's ids a privileged user namespace maps to 0.. inside. */
export interface PrivilegedIdPlan {
  uid: IdBlock;
  gid: IdBlock;
  /** True when only the caller's own id could be mapped (a user namespace that maps one id). */
  single: boolean;
}

export const PRIVILEGED_ID_BASE = 100000;
export const PRIVILEGED_ID_COUNT = 65536;

/** The `inside` ranges of a uid_map/gid_map text: the ids this process's namespace maps. */
export function mappedRanges(text: string): IdBlock[] {
  const out: IdBlock[] = [];
  for (const line of text.split('\n')) {
    const [inside, , count] = line.trim().split(/\s+/).map(Number);
    if (Number.isFinite(inside) && Number.isFinite(count) && count > 0) out.push({ base: inside, count });
  }
  return out;
}

/**
 * A block of up to 65536 ids for a privileged user namespace, chosen from the ids the caller's own
 * namespace maps (environment assumption: /proc/self/uid_map and gid_map are readable, as they
 * are for every process). In the initial user namespace (which maps every id) it is the
 * conventional 100000+65536 of rootful engines; in a user namespace (root of `unshare -Ur`, of a
 * rootless container) it is the largest mapped block that leaves out the caller's own id; when
 * the caller's own id is all that is mapped, that one id.
 */
export function pickIdBlock(ranges: IdBlock[], own: number): { block: IdBlock; single: boolean } {
  const all = ranges.length === 1 && ranges[0].base === 0 && ranges[0].count >= 4294967295;
  if (all) return { block: { base: PRIVILEGED_ID_BASE, count: PRIVILEGED_ID_COUNT }, single: false };
  let best: IdBlock | null = null;
  for (const r of ranges) {
    const end = r.base + r.count;
    const parts = own >= r.base && own < end ? [{ base: r.base, count: own - r.base }, { base: own + 1, count: end - own - 1 }] : [r];
    for (const p of parts) if (p.count > 0 && (!best || p.count > best.count)) best = p;
  }
  if (best) return { block: { base: best.base, count: Math.min(best.count, PRIVILEGED_ID_COUNT) }, single: false };
  return { block: { base: own, count: 1 }, single: true };
}

// The plans are pure functions of the caller's ids and maps (read once, above): each is kept for
// the inputs it was made from and made again only when one of them changes (another transport's
// caller, a setuid). Making them was ~10 us (privileged) and ~7 us (rootless) an enter on the JS
// thread: the maps parsed line by line with a regex split, every time.
interface PlanInputs {
  euid: number;
  egid: number;
  uidMap: string;
  gidMap: string;
  uid: number;
  gid: number;
}
const sameInputs = (a: PlanInputs | undefined, b: PlanInputs) =>
  !!a && a.euid === b.euid && a.egid === b.egid && a.uidMap === b.uidMap && a.gidMap === b.gidMap && a.uid === b.uid && a.gid === b.gid;
const planInputs = (uid = -1, gid = -1): PlanInputs => ({ euid: callerEuid(), egid: callerEgid(), uidMap: callerMap('/proc/self/uid_map'), gidMap: callerMap('/proc/self/gid_map'), uid, gid });
let privilegedMemo: { in: PlanInputs; plan: PrivilegedIdPlan; uidMap: string; gidMap: string } | undefined;
let rootlessMemo: { in: PlanInputs; plan: RootlessPlan } | undefined;

export function privilegedIdPlan(): PrivilegedIdPlan {
  return privilegedMemoFor().plan;
}

function privilegedMemoFor() {
  const inputs = planInputs();
  if (privilegedMemo && sameInputs(privilegedMemo.in, inputs)) return privilegedMemo;
  const u = pickIdBlock(mappedRanges(inputs.uidMap), inputs.euid);
  const g = pickIdBlock(mappedRanges(inputs.gidMap), inputs.egid);
  const plan: PrivilegedIdPlan = Object.freeze({ uid: Object.freeze(u.block), gid: Object.freeze(g.block), single: u.single || g.single });
  privilegedMemo = { in: inputs, plan, uidMap: `0 ${plan.uid.base} ${plan.uid.count}\n`, gidMap: `0 ${plan.gid.base} ${plan.gid.count}\n` };
  return privilegedMemo;
}

export function rootlessPlan(dropTo?: { uid: number; gid: number }): RootlessPlan {
  const inputs = planInputs(dropTo?.uid ?? UNPRIVILEGED_ID, dropTo?.gid ?? UNPRIVILEGED_ID);
  if (rootlessMemo && sameInputs(rootlessMemo.in, inputs)) return rootlessMemo.plan;
  const plan = Object.freeze(makeRootlessPlan(inputs.euid, inputs.egid, inputs.uid, inputs.gid));
  rootlessMemo = { in: inputs, plan };
  return plan;
}

function makeRootlessPlan(euid: number, egid: number, uid: number, gid: number): RootlessPlan {
  if (euid !== 0) {
    return { drop: false, hostUid: euid, hostGid: egid, uidMap: `0 ${euid} 1\n`, gidMap: `0 ${egid} 1\n` };
  }
  if (idMapped('/proc/self/uid_map', uid) && idMapped('/proc/self/gid_map', gid)) {
    return { drop: true, hostUid: uid, hostGid: gid, uidMap: `0 ${uid} 1\n`, gidMap: `0 ${gid} 1\n` };
  }
  return {
    drop: false,
    hostUid: 0,
    hostGid: egid,
    uidMap: '0 0 1\n',
    gidMap: `0 ${egid} 1\n`,
    note: `uid ${uid} is not mapped in this user namespace, so rootless mode nests a user namespace as uid 0 without switching uid`,
  };
}

export function cloneFlagsFor(namespaces: readonly NsType[]): number {
  let f = 0;
  for (const ns of namespaces) if (ns !== 'time') f |= CLONE[ns];
  return f;
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
const NS_IOCTL_NAMES: Record<number, string> = { [NS_IOCTL.GET_USERNS]: 'NS_GET_USERNS', [NS_IOCTL.GET_PARENT]: 'NS_GET_PARENT', [NS_IOCTL.GET_NSTYPE]: 'NS_GET_NSTYPE', [NS_IOCTL.GET_OWNER_UID]: 'NS_GET_OWNER_UID' };
function cloneNames(flags: number): string {
  const names = Object.entries(CLONE).filter(([, f]) => flags & f).map(([ns]) => (ns === 'mnt' ? 'CLONE_NEWNS' : `CLONE_NEW${ns.toUpperCase()}`));
  return names.join('|') || `flags ${flags}`;
}

const open = new Set<Sandbox>();
const NO_FDS = Object.freeze([]) as unknown as number[]; // a reply's fds when none came (shared: read only)
const asReply = (r: Reply): Reply => r;
const noValue = (): void => undefined;
/** A failed send or reply as the rejection Sandbox gives: NsError (or ProtocolError), else the error itself. */
function rejectAs(e: unknown): Promise<never> {
  if (e instanceof NsError || e instanceof ProtocolError) return Promise.reject(e);
  try {
    return Promise.reject(fromNative(e));
  } catch (x) {
    return Promise.reject(x);
  }
}

/** Every sandbox not yet closed (for interruption handling and leak checks). */
export function openSandboxes(): ReadonlySet<Sandbox> {
  return open;
}

export interface Identity {
  pid: number;
  ppid: number;
  sid: number;
  pgid: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  capEff: bigint;
}

export interface Uname {
  hostname: string;
  domainname: string;
  release: string;
}

export interface Clocks {
  monotonic: number;
  boottime: number;
  realtime: number;
}

export interface Link {
  index: number;
  flags: number;
  name: string;
}

export interface StatResult {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
}

// Constants moved to src/errno.ts; re-exported for existing importers.
export { AF_INET, AF_INET6, IFF_UP, NS_IOCTL, SOCK_DGRAM, SOCK_STREAM } from './errno.js';

/**
 * What one request did. Every Sandbox request resolves to an Outcome: a failed syscall is data
 * (ok false, errno, code, the syscall), never a throw and never a bare negative number. `step`
 * names what was tried in words ("mount proc on /proc"), so a failure reads as a sentence:
 * "mount proc on /proc: EPERM". Only a broken channel (closed sandbox, timeout, bad reply) throws.
 */
export class Outcome<T> {
  readonly ok: boolean;
  /** 0, or the errno of the syscall that failed. */
  readonly errno: number;
  /** "OK", or the errno's name ("EPERM"). */
  readonly code: string;
  /** The failing syscall ("" when ok). */
  readonly syscall: string;
  /** What was tried, in words, e.g. "mount proc on /tmp/root/proc". */
  readonly step: string;
  /** The value on success; undefined on failure. */
  readonly value: T | undefined;

  constructor(step: string, errno: number, syscall: string, value: T | undefined) {
    this.step = step;
    this.errno = errno;
    this.ok = errno === 0;
    this.code = errno === 0 ? 'OK' : errnoName(errno);
    this.syscall = errno === 0 ? '' : syscall;
    this.value = errno === 0 ? value : undefined;
  }

  static ok<T>(step: string, value: T): Outcome<T> {
    return new Outcome(step, 0, '', value);
  }

  static failed<T>(step: string, e: NsError): Outcome<T> {
    return new Outcome<T>(step, e.errno || 5 /* EIO */, e.syscall, undefined);
  }

  /** "mount proc on /proc: EPERM", or "mount proc on /proc: ok". */
  get sentence(): string {
    return `${this.step}: ${this.ok ? 'ok' : this.code}`;
  }

  /** The failure as an NsError (stage "request"), whose message is the sentence. */
  error(): NsError {
    return new NsError('request', this.syscall || 'request', this.errno, this.sentence);
  }

  /** The value, or throws error(). */
  get(): T {
    if (!this.ok) throw this.error();
    return this.value as T;
  }
}

/** A request in flight: await it for the Outcome, or `.get()` for the value (throws on failure). */
export type Request<T> = Promise<Outcome<T>> & { get(): Promise<T> };

const outcomeValue = <T>(o: Outcome<T>): T => o.get();
// One function for every request's get() (it used to be a closure per request).
function requestGet<T>(this: Promise<Outcome<T>>): Promise<T> {
  return this.then(outcomeValue);
}

export function request<T>(p: Promise<Outcome<T>>): Request<T> {
  (p as Request<T>).get = requestGet;
  return p as Request<T>;
}

/**
 * Runs `fn` (entering, forking) as one step: an NsError it throws becomes a failed Outcome, so
 * helper steps that enter are recorded like requests. Other errors still throw.
 */
export function attempt<T>(step: string, fn: () => Promise<T>): Request<T> {
  return request(
    fn().then(
      (v) => Outcome.ok(step, v),
      (e) => {
        if (e instanceof NsError) return Outcome.failed<T>(step, e);
        throw e;
      },
    ),
  );
}

const MS_FLAG_NAMES: [number, string][] = [[1 << 14, 'MS_REC'], [1 << 18, 'MS_PRIVATE'], [1 << 19, 'MS_SLAVE'], [1 << 20, 'MS_SHARED'], [4096, 'MS_BIND'], [32, 'MS_REMOUNT'], [1, 'MS_RDONLY']];

function mountStep(source: string, target: string, fstype: string, flags: number): string {
  if (fstype) return `mount ${fstype} on ${target}`;
  if (flags & 4096) return `bind-mount ${source} on ${target}`;
  const names = MS_FLAG_NAMES.filter(([f]) => flags & f).map(([, n]) => n);
  if (flags & ((1 << 18) | (1 << 19) | (1 << 20))) return `make ${target} ${flags & (1 << 18) ? 'private' : flags & (1 << 19) ? 'slave' : 'shared'}${flags & (1 << 14) ? ' (recursively)' : ''}`;
  return `mount ${target} with ${names.join('|') || 'flags 0'}`;
}

export class Sandbox {
  readonly id: number;
  /** The serving process as the host sees it. */
  readonly pid: number;
  /** Its pid, ppid, uid and gid as it sees them, when it started serving. */
  readonly inner: { pid: number; ppid: number; uid: number; gid: number };
  readonly namespaces: readonly NsType[];
  readonly mode: Mode | 'join' | 'child';
  readonly plan?: RootlessPlan;
  timeoutMs: number;
  private seq = 1;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(box: NativeBox, namespaces: readonly NsType[], mode: Sandbox['mode'], timeoutMs: number, plan?: RootlessPlan) {
    this.id = box.id;
    this.pid = box.pid;
    const hello = decodeReply(box.hello instanceof ArrayBuffer ? Buffer.from(box.hello) : box.hello);
    this.inner = { pid: hello.n[0], ppid: hello.n[1], uid: hello.n[2], gid: hello.n[3] };
    this.namespaces = namespaces;
    this.mode = mode;
    this.timeoutMs = timeoutMs;
    this.plan = plan;
    open.add(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The wire level: sends a request and returns the raw reply, whose err says whether the syscall
   * failed. Probes use the typed requests below, which resolve to an Outcome.
   */
  call(op: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = [], timeoutMs = this.timeoutMs): Promise<Reply> {
    return this.issue(op, nums, strs, timeoutMs, asReply);
  }

  /**
   * Sends a request; `then` turns its reply into what the returned promise resolves with, in the
   * same reaction (a typed request is one promise turn after the addon's reply: it was four, an
   * async transmit(), its await, call()'s promise and a then() on it).
   */
  private issue<T>(op: number, nums: ReadonlyArray<number | bigint>, strs: ReadonlyArray<Str>, timeoutMs: number, then: (r: Reply) => T): Promise<T> {
    // Requests to one sandbox are served one at a time, in order: each waits for the one before.
    // With none in flight (nearly always: probes await each request) it is sent at once, without
    // a turn through the chain's promise.
    let p: Promise<T>;
    if (this.inFlight++ === 0) p = this.transmit(op, nums, strs, timeoutMs, then);
    else {
      const next = () => this.transmit(op, nums, strs, timeoutMs, then);
      p = this.chain.then(next, next);
    }
    this.chain = p;
    return p;
  }

  /** Requests sent or waiting their turn; transmit() counts itself out when it settles. */
  private inFlight = 0;

  private transmit<T>(op: number, nums: ReadonlyArray<number | bigint>, strs: ReadonlyArray<Str>, timeoutMs: number, then: (r: Reply) => T): Promise<T> {
    let sent: Promise<ArrayBuffer | NativeReply>;
    let seq = 0;
    try {
      if (this.closed) throw new NsError('request', 'send', 9 /* EBADF */, 'the sandbox is closed');
      seq = this.seq++;
      const t = native();
      // The shared buffer, lent to the transport's request() for its call: both copy it before they return.
      sent = sendEncoded(op, seq, nums, strs, (req) => (t.requestBare ? t.requestBare(this.id, req, timeoutMs) : t.request(this.id, req, timeoutMs)));
    } catch (e) {
      this.inFlight--;
      return rejectAs(e);
    }
    return sent.then(
      (got) => {
        this.inFlight--;
        return then(this.accept(got, op, seq));
      },
      (e) => {
        this.inFlight--;
        return rejectAs(e);
      },
    );
  }

  /** The reply the transport gave, decoded and checked against the request it answers. */
  private accept(got: ArrayBuffer | NativeReply, op: number, seq: number): Reply {
    let reply: Buffer;
    let fds: number[] = NO_FDS;
    if (got instanceof ArrayBuffer) reply = Buffer.from(got);
    else ({ reply, fds } = got);
    let rep: Reply;
    try {
      rep = decodeReply(reply);
    } catch (e) {
      for (const fd of fds) native().closeFd(fd);
      throw new NsError('request', 'recvmsg', 71 /* EPROTO */, (e as ProtocolError).message);
    }
    if (rep.seq !== seq || (rep.op !== op && rep.op !== 0)) {
      for (const fd of fds) native().closeFd(fd);
      throw new NsError('request', 'recvmsg', 71, `reply ${rep.op}#${rep.seq} does not answer request ${op}#${seq}`);
    }
    (rep as Reply & { fds?: number[] }).fds = fds;
    return rep;
  }

  /** One request as an Outcome: `parse` turns a successful reply into the value. */
  private req<T>(step: string, op: number, nums: ReadonlyArray<number | bigint>, strs: ReadonlyArray<Str>, parse: (r: Reply) => T, timeoutMs = this.timeoutMs): Request<T> {
    return request(this.issue(op, nums, strs, timeoutMs, (r) => (r.err ? new Outcome<T>(step, r.err, r.syscall, undefined) : Outcome.ok(step, parse(r)))));
  }
  private void(step: string, op: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = [], timeoutMs?: number): Request<void> {
    return this.req(step, op, nums, strs, noValue, timeoutMs);
  }

  identity(): Request<Identity> {
    return this.req('read its identity', Op.IDENTITY, [], [], (r) => {
      const [pid, ppid, sid, pgid, uid, euid, gid, egid] = r.n;
      return { pid, ppid, sid, pgid, uid, euid, gid, egid, capEff: BigInt('0x' + (r.data.toString() || '0')) };
    });
  }
  uname(): Request<Uname> {
    return this.req('uname', Op.UNAME, [], [], (r) => {
      const [hostname, domainname, release] = r.data.toString().split('\0');
      return { hostname, domainname, release };
    });
  }
  sethostname(name: string) { return this.void('set the hostname', Op.SETHOSTNAME, [], [name]); }
  setdomainname(name: string) { return this.void('set the domainname', Op.SETDOMAINNAME, [], [name]); }

  /** Reads a whole file (in chunks) as the child sees it. */
  readFile(path: string, max = 4 * 1024 * 1024): Request<string> {
    const step = `read ${path}`;
    const run = async (): Promise<Outcome<string>> => {
      const parts: Buffer[] = [];
      let off = 0;
      for (;;) {
        const r = await this.call(Op.READFILE, [off, 0], [path]);
        if (r.err) return new Outcome<string>(step, r.err, r.syscall, undefined);
        parts.push(Buffer.from(r.data));
        off += r.n[0];
        if (r.n[1] || r.n[0] === 0 || off >= max) break;
      }
      return Outcome.ok(step, Buffer.concat(parts).toString());
    };
    return request(run());
  }
  readlink(path: string): Request<string> { return this.req(`readlink ${path}`, Op.READLINK, [], [path], (r) => r.data.toString()); }
  stat(path: string, lstat = false): Request<StatResult> {
    return this.req(`${lstat ? 'lstat' : 'stat'} ${path}`, Op.STAT, [lstat ? 1 : 0], [path], (r) => {
      const [dev, ino, mode, uid, gid, size, nlink] = r.n;
      return { dev, ino, mode, uid, gid, size, nlink };
    });
  }
  mkdir(path: string, mode = 0o755) { return this.void(`mkdir ${path}`, Op.MKDIR, [mode], [path]); }
  writeFile(path: string, content: string, flags = 0, mode = 0o644) { return this.void(`write ${path}`, Op.WRITEFILE, [flags, mode], [path, content]); }
  unlink(path: string, dir = false) { return this.void(`remove ${path}`, Op.UNLINK, [dir ? 0x200 : 0], [path]); }
  listdir(path: string): Request<string[]> {
    return this.req(`list ${path}`, Op.LISTDIR, [], [path], (r) => r.data.toString().split('\n').filter(Boolean));
  }

  /** SysV IPC: the value is the object's id. */
  msgget(key: number, flags: number): Request<number> { return this.req(`msgget key ${hex(key)}`, Op.MSGGET, [key, flags], [], (r) => r.n[0]); }
  shmget(key: number, size: number, flags: number): Request<number> { return this.req(`shmget key ${hex(key)}`, Op.SHMGET, [key, size, flags], [], (r) => r.n[0]); }
  semget(key: number, nsems: number, flags: number): Request<number> { return this.req(`semget key ${hex(key)}`, Op.SEMGET, [key, nsems, flags], [], (r) => r.n[0]); }
  ipcrm(kind: 'msg' | 'shm' | 'sem', id: number) { return this.void(`remove SysV ${kind} ${id}`, Op.IPCRM, [kind === 'msg' ? 1 : kind === 'shm' ? 2 : 3, id]); }
  /** POSIX mq: opens (and closes) the queue `name` ("/q" as mq_open(3) takes it, or "q"). */
  mqOpen(name: string, oflag: number, mode = 0o600) { return this.void(`mq_open ${name}`, Op.MQ_OPEN, [oflag, mode], [name]); }
  mqUnlink(name: string) { return this.void(`mq_unlink ${name}`, Op.MQ_UNLINK, [], [name]); }

  links(): Request<Link[]> {
    return this.req('list the network interfaces', Op.LINKS, [], [], (r) =>
      r.data.toString().split('\n').filter(Boolean).map((l) => {
        const [index, flags, ...name] = l.split(' ');
        return { index: Number(index), flags: Number(flags), name: name.join(' ') };
      }),
    );
  }
  linkSet(name: string, set: number, clear = 0) { return this.void(`set the flags of ${name}`, Op.LINK_SET, [set, clear], [name]); }
  /** Listen, connect, accept and exchange a message both ways on addr inside; the value is what came back and the port used. */
  tcpSelftest(family: number, addr: Buffer, port = 0): Request<{ answer: string; port: number }> {
    return this.req('a TCP exchange over loopback', Op.TCP_SELFTEST, [family, port], [addr], (r) => ({ answer: r.data.toString(), port: r.n[0] }));
  }
  /** The value is the listening slot and its port. */
  listen(family: number, type: number, addr: Buffer, port = 0, scope = 0): Request<{ slot: number; port: number }> {
    return this.req(`listen on port ${port}`, Op.LISTEN, [family, type, port, scope], [addr], (r) => ({ slot: r.n[0], port: r.n[1] }));
  }
  /** The value is the message received. */
  acceptRecv(slot: number, timeoutMs: number, answer: string): Request<string> {
    return this.req('accept and receive', Op.ACCEPT_RECV, [slot, timeoutMs], [answer], (r) => r.data.toString());
  }
  /** The value is the answer received. */
  send(family: number, type: number, addr: Buffer, port: number, scope: number, timeoutMs: number, payload: string): Request<string> {
    return this.req(`send to port ${port}`, Op.SEND, [family, type, port, scope, timeoutMs], [addr, payload], (r) => r.data.toString());
  }
  closeSlot(slot: number) { return this.void('close a socket', Op.CLOSE_SLOT, [slot]); }
  addrAdd(ifname: string, family: number, addr: Buffer, prefix: number) { return this.void(`add an address to ${ifname}`, Op.ADDR_ADD, [family, prefix], [ifname, addr]); }
  /** Creates a veth pair name <-> peer here; the peer goes to the netns of `peerPid` (a pid as this child sees it; 0: here). */
  vethCreate(name: string, peer: string, peerPid = 0) { return this.void('create a veth pair', Op.VETH_CREATE, [peerPid], [name, peer]); }
  /** prctl(option, arg) in the child, e.g. PR_SET_DUMPABLE (4) after a uid change. */
  prctl(option: number, arg: number) { return this.void(`prctl(${option}, ${arg})`, Op.PRCTL, [option, arg]); }
  /** Deletes a link in this child's netns (with a veth, its peer too). */
  linkDel(name: string) { return this.void(`delete link ${name}`, Op.LINK_DEL, [], [name]); }

  mount(source: string, target: string, fstype: string, flags: number, data = '') {
    return this.void(mountStep(source, target, fstype, flags), Op.MOUNT, [flags], [source, target, fstype, data]);
  }
  umount(target: string, flags = 0) { return this.void(`unmount ${target}`, Op.UMOUNT, [flags], [target]); }
  pivotRoot(newRoot: string, putOld: string) { return this.void(`pivot_root to ${newRoot}`, Op.PIVOT_ROOT, [], [newRoot, putOld]); }
  chdir(path: string) { return this.void(`chdir ${path}`, Op.CHDIR, [], [path]); }

  clocks(): Request<Clocks> {
    return this.req('read the clocks', Op.CLOCKS, [], [], (r) => {
      const n = r.n;
      return { monotonic: n[0] + n[1] / 1e9, boottime: n[2] + n[3] / 1e9, realtime: n[4] + n[5] / 1e9 };
    });
  }

  /** Forks a grandchild inside that serves requests too (its own Sandbox). */
  forkServe(opts: { noDeathSignal?: boolean } = {}): Request<Sandbox> {
    const step = 'fork a serving process inside';
    const run = async (): Promise<Outcome<Sandbox>> => {
      const r = await this.call(Op.FORK, [0, opts.noDeathSignal ? 1 : 0]);
      if (r.err) return new Outcome<Sandbox>(step, r.err, r.syscall, undefined);
      const fds = (r as Reply & { fds?: number[] }).fds ?? [];
      if (fds.length !== 1) throw new NsError('request', 'fork', 71, 'fork reply carried no channel');
      let box: NativeBox;
      try {
        box = await native().adopt(fds[0], this.timeoutMs);
      } catch (e) {
        throw fromNative(e);
      }
      return Outcome.ok(step, new Sandbox(box, this.namespaces, 'child', this.timeoutMs));
    };
    return request(run());
  }
  /** Forks a grandchild inside that only waits to be killed; the value is its pid as seen inside. */
  forkPause(): Request<number> { return this.req('fork a waiting process inside', Op.FORK, [1, 0], [], (r) => r.n[0]); }
  kill(pid: number, signal: number) { return this.void(`kill(${pid}, ${signal})`, Op.KILL, [pid, signal]); }
  /** waitpid; the value is the reaped pid and its status. */
  wait(pid: number, options = 0, timeoutMs = 0): Request<{ pid: number; status: number }> {
    return this.req(`wait for ${pid}`, Op.WAIT, [pid, options, timeoutMs], [], (r) => ({ pid: r.n[0], status: r.n[1] }));
  }
  /** An nsfs ioctl on path; the value is the reply's numbers (NS_GET_NSTYPE: [type]; GET_USERNS/PARENT: [fd, dev, ino]; GET_OWNER_UID: [uid]). */
  nsIoctl(path: string, which: number): Request<number[]> {
    const name = Object.entries(NS_IOCTL_NAMES).find(([n]) => Number(n) === which)?.[1] ?? `nsfs ioctl ${which}`;
    return this.req(`${name} on ${path}`, Op.NS_IOCTL, [which], [path], (r) => r.n);
  }
  unshare(flags: number) { return this.void(`unshare(${cloneNames(flags)})`, Op.UNSHARE, [flags]); }
  /** setns() into the namespace at path; with unshareFlags, unshare() those after opening it and before setns. */
  setns(path: string, nstype: number, unshareFlags = 0) {
    return this.void(`${unshareFlags ? `unshare(${cloneNames(unshareFlags)}), then ` : ''}setns into ${path}`, Op.SETNS, [nstype, unshareFlags], [path]);
  }
  /** Nests namespaces of a kind in a forked helper until the kernel refuses: levels made and the refusal's errno. */
  nest(kind: 'user' | 'pid', max = 64): Request<{ levels: number; errno: number }> {
    return this.req(`nest ${kind} namespaces`, Op.NEST, [kind === 'user' ? 1 : 2, max], [], (r) => ({ levels: r.n[0], errno: r.n[1] }), Math.max(this.timeoutMs, 10000));
  }
  setuid(uid: number, gid: number) { return this.void(`switch to uid ${uid}, gid ${gid}`, Op.SETUID, [uid, gid]); }
  echo(s: Str): Request<Buffer> { return this.req('echo', Op.ECHO, [], [s], (r) => r.data); }
  /** Test only: a request that never gets a reply. */
  hang(timeoutMs?: number) { return this.void('hang', Op.HANG, [], [], timeoutMs); }

  /** Ends the child and reaps it. Idempotent. */
  async close(graceMs = 1000) {
    if (this.closed) return { reaped: true, killed: false, exitCode: null, signal: null, alreadyClosed: true };
    this.closed = true;
    open.delete(this);
    return native().close(this.id, graceMs);
  }

  /** Kills the child (and so a pid namespace it is PID 1 of) without waiting. */
  killNow(signal = 9): void {
    native().kill(this.id, signal);
  }
}

/** Creates a child in new namespaces. Throws NsError with the stage that failed. */
export async function enter(opts: EnterOptions): Promise<Sandbox> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const spec: NativeEnterSpec = {
    cloneFlags: cloneFlagsFor(opts.namespaces) | (opts.extraCloneFlags ?? 0),
    time: opts.namespaces.includes('time'),
    offMonotonic: opts.timeOffsets?.monotonic ?? 0,
    offBoottime: opts.timeOffsets?.boottime ?? 0,
    cgroupProcs: opts.cgroupProcs,
    noVm: opts.noVm,
    timeoutMs,
  };
  let plan: RootlessPlan | undefined;
  if (opts.mode === 'rootless') {
    plan = rootlessPlan(opts.dropTo);
    spec.cloneFlags! |= CLONE.user;
    Object.assign(spec, { userns: true, drop: plan.drop, dropUid: plan.hostUid, dropGid: plan.hostGid, uidMap: plan.uidMap, gidMap: plan.gidMap });
  } else if (opts.namespaces.includes('user')) {
    // Privileged user namespace: root writes a multi-id range (as rootful engines with userns
    // remapping do), which an unprivileged parent may not. The child stays unmapped until it
    // switches to uid 0 inside (Sandbox.setuid(0, 0)).
    const ids = opts.privilegedIds;
    const memo = ids ? undefined : privilegedMemoFor();
    Object.assign(spec, {
      userns: true,
      drop: false,
      uidMap: memo ? memo.uidMap : `0 ${ids!.uid.base} ${ids!.uid.count}\n`,
      gidMap: memo ? memo.gidMap : `0 ${ids!.gid.base} ${ids!.gid.count}\n`,
      setgroupsAllow: true,
    });
  }
  let box: NativeBox;
  try {
    box = await native().enter(spec);
  } catch (e) {
    throw fromNative(e);
  }
  return new Sandbox(box, opts.namespaces, opts.mode, timeoutMs, plan);
}

/** Starts a child that setns()es into the namespaces of `target` (a Sandbox or a host pid). */
export async function join(target: Sandbox | number, opts: JoinOptions): Promise<Sandbox> {
  const pid = typeof target === 'number' ? target : target.pid;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // The user namespace first: it grants the capabilities to join the others it owns.
  const order = [...opts.namespaces].sort((a, b) => (a === 'user' ? -1 : b === 'user' ? 1 : 0));
  const needsFork = order.includes('pid') || order.includes('time');
  const spec: NativeEnterSpec = {
    joinFork: needsFork,
    // setns into a time namespace needs a process that shares its memory with no one.
    noVm: order.includes('time'),
    timeoutMs,
  };
  if (opts.via === 'pidfd') {
    spec.joinPidfdPid = pid;
    spec.joinPidfdFlags = order.reduce((f, ns) => f | CLONE[ns], 0);
  } else {
    spec.joinPaths = order.map((ns) => ({
      path: `/proc/${pid}/ns/${ns}`,
      type: CLONE[ns],
    }));
  }
  let box: NativeBox;
  try {
    box = await native().enter(spec);
  } catch (e) {
    throw fromNative(e);
  }
  return new Sandbox(box, opts.namespaces, 'join', timeoutMs);
}

/** Kills every open sandbox at once (Ctrl-C): their namespaces die with them. */
export function killAll(): void {
  for (const s of open) s.killNow();
}
