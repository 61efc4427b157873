// Sandbox: a child process in namespaces that serves typed requests. Created by enter() (new
// namespaces) or join() (the namespaces of an existing process); ended by close().
import { readFileSync } from 'node:fs';
import { NsError, errnoName, fromNative } from './errors.js';
import type { Mode, NsType } from './model.js';
import { CLONE, native, type NativeBox, type NativeEnterSpec } from './native.js';
import { Op, ProtocolError, decodeReply, encodeRequest, type Reply, type Str } from './protocol.js';

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
  /** Privileged user namespace: first host id of the 65536 mapped (default 100000). */
  privilegedIdBase?: number;
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

function idMapped(mapFile: string, id: number): boolean {
  try {
    for (const line of readFileSync(mapFile, 'utf8').split('\n')) {
      const [inside, , count] = line.trim().split(/\s+/).map(Number);
      if (Number.isFinite(inside) && Number.isFinite(count) && id >= inside && id < inside + count) return true;
    }
  } catch {
    // unreadable: treat as unmapped
  }
  return false;
}

export function rootlessPlan(dropTo?: { uid: number; gid: number }): RootlessPlan {
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  if (euid !== 0) {
    return { drop: false, hostUid: euid, hostGid: egid, uidMap: `0 ${euid} 1\n`, gidMap: `0 ${egid} 1\n` };
  }
  const uid = dropTo?.uid ?? UNPRIVILEGED_ID;
  const gid = dropTo?.gid ?? UNPRIVILEGED_ID;
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

const open = new Set<Sandbox>();

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

export const IFF_UP = 0x1;
export const NS_IOCTL = { GET_USERNS: 1, GET_PARENT: 2, GET_NSTYPE: 3, GET_OWNER_UID: 4 } as const;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;

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
    const hello = decodeReply(box.hello);
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

  /** Sends a request and returns the reply, whose err says whether the syscall failed. */
  call(op: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = [], timeoutMs = this.timeoutMs): Promise<Reply> {
    const run = async (): Promise<Reply> => {
      if (this.closed) throw new NsError('request', 'send', 9 /* EBADF */, 'the sandbox is closed');
      const seq = this.seq++;
      const req = encodeRequest(op, seq, nums, strs);
      let raw;
      try {
        raw = await native().request(this.id, req, timeoutMs);
      } catch (e) {
        throw fromNative(e);
      }
      let rep: Reply;
      try {
        rep = decodeReply(raw.reply);
      } catch (e) {
        for (const fd of raw.fds) native().closeFd(fd);
        throw new NsError('request', 'recvmsg', 71 /* EPROTO */, (e as ProtocolError).message);
      }
      if (rep.seq !== seq || (rep.op !== op && rep.op !== 0)) {
        for (const fd of raw.fds) native().closeFd(fd);
        throw new NsError('request', 'recvmsg', 71, `reply ${rep.op}#${rep.seq} does not answer request ${op}#${seq}`);
      }
      (rep as Reply & { fds?: number[] }).fds = raw.fds;
      return rep;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Like call(), but a failed syscall becomes a thrown NsError (stage "request"). */
  async must(op: number, nums: ReadonlyArray<number | bigint> = [], strs: ReadonlyArray<Str> = [], timeoutMs?: number): Promise<Reply> {
    const r = await this.call(op, nums, strs, timeoutMs);
    if (r.err) throw new NsError('request', r.syscall, r.err, `${r.syscall} inside failed: ${errnoName(r.err)}`);
    return r;
  }

  async identity(): Promise<Identity> {
    const r = await this.must(Op.IDENTITY);
    const [pid, ppid, sid, pgid, uid, euid, gid, egid] = r.n;
    return { pid, ppid, sid, pgid, uid, euid, gid, egid, capEff: BigInt('0x' + (r.data.toString() || '0')) };
  }
  async uname(): Promise<Uname> {
    const [hostname, domainname, release] = (await this.must(Op.UNAME)).data.toString().split('\0');
    return { hostname, domainname, release };
  }
  sethostname(name: string) { return this.must(Op.SETHOSTNAME, [], [name]); }
  setdomainname(name: string) { return this.must(Op.SETDOMAINNAME, [], [name]); }

  /** Reads a whole file (in chunks) as the child sees it. */
  async readFile(path: string, max = 4 * 1024 * 1024): Promise<string> {
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const r = await this.must(Op.READFILE, [off, 0], [path]);
      parts.push(Buffer.from(r.data));
      off += r.n[0];
      if (r.n[1] || r.n[0] === 0 || off >= max) break;
    }
    return Buffer.concat(parts).toString();
  }
  async readlink(path: string): Promise<string> { return (await this.must(Op.READLINK, [], [path])).data.toString(); }
  async stat(path: string, lstat = false): Promise<StatResult> {
    const [dev, ino, mode, uid, gid, size, nlink] = (await this.must(Op.STAT, [lstat ? 1 : 0], [path])).n;
    return { dev, ino, mode, uid, gid, size, nlink };
  }
  mkdir(path: string, mode = 0o755) { return this.must(Op.MKDIR, [mode], [path]); }
  writeFile(path: string, content: string, flags = 0, mode = 0o644) { return this.must(Op.WRITEFILE, [flags, mode], [path, content]); }
  unlink(path: string, dir = false) { return this.must(Op.UNLINK, [dir ? 0x200 : 0], [path]); }
  async listdir(path: string): Promise<string[]> {
    return (await this.must(Op.LISTDIR, [], [path])).data.toString().split('\n').filter(Boolean);
  }

  /** SysV IPC: returns the id, or the reply's errno as a negative number. */
  async msgget(key: number, flags: number): Promise<number> { const r = await this.call(Op.MSGGET, [key, flags]); return r.err ? -r.err : r.n[0]; }
  async shmget(key: number, size: number, flags: number): Promise<number> { const r = await this.call(Op.SHMGET, [key, size, flags]); return r.err ? -r.err : r.n[0]; }
  async semget(key: number, nsems: number, flags: number): Promise<number> { const r = await this.call(Op.SEMGET, [key, nsems, flags]); return r.err ? -r.err : r.n[0]; }
  ipcrm(kind: 'msg' | 'shm' | 'sem', id: number) { return this.must(Op.IPCRM, [kind === 'msg' ? 1 : kind === 'shm' ? 2 : 3, id]); }
  /** POSIX mq: opens (and closes) the queue `name` ("/q" as mq_open(3) takes it, or "q"); returns 0 or -errno. */
  async mqOpen(name: string, oflag: number, mode = 0o600): Promise<number> { const r = await this.call(Op.MQ_OPEN, [oflag, mode], [name]); return r.err ? -r.err : 0; }
  async mqUnlink(name: string): Promise<number> { const r = await this.call(Op.MQ_UNLINK, [], [name]); return r.err ? -r.err : 0; }

  async links(): Promise<Link[]> {
    const text = (await this.must(Op.LINKS)).data.toString();
    return text.split('\n').filter(Boolean).map((l) => {
      const [index, flags, ...name] = l.split(' ');
      return { index: Number(index), flags: Number(flags), name: name.join(' ') };
    });
  }
  linkSet(name: string, set: number, clear = 0) { return this.must(Op.LINK_SET, [set, clear], [name]); }
  /** Listen, connect, accept and exchange a message both ways on addr inside. Returns the reply. */
  tcpSelftest(family: number, addr: Buffer, port = 0) { return this.call(Op.TCP_SELFTEST, [family, port], [addr]); }
  listen(family: number, type: number, addr: Buffer, port = 0, scope = 0) { return this.call(Op.LISTEN, [family, type, port, scope], [addr]); }
  acceptRecv(slot: number, timeoutMs: number, answer: string) { return this.call(Op.ACCEPT_RECV, [slot, timeoutMs], [answer]); }
  send(family: number, type: number, addr: Buffer, port: number, scope: number, timeoutMs: number, payload: string) {
    return this.call(Op.SEND, [family, type, port, scope, timeoutMs], [addr, payload]);
  }
  closeSlot(slot: number) { return this.call(Op.CLOSE_SLOT, [slot]); }
  addrAdd(ifname: string, family: number, addr: Buffer, prefix: number) { return this.call(Op.ADDR_ADD, [family, prefix], [ifname, addr]); }
  /** Creates a veth pair name <-> peer here; the peer goes to the netns of `peerPid` (a pid as this child sees it; 0: here). */
  vethCreate(name: string, peer: string, peerPid = 0) { return this.call(Op.VETH_CREATE, [peerPid], [name, peer]); }
  /** prctl(option, arg) in the child, e.g. PR_SET_DUMPABLE (4) after a uid change. */
  prctl(option: number, arg: number) { return this.call(Op.PRCTL, [option, arg]); }
  /** Deletes a link in this child's netns (with a veth, its peer too). */
  linkDel(name: string) { return this.call(Op.LINK_DEL, [], [name]); }

  mount(source: string, target: string, fstype: string, flags: number, data = '') { return this.call(Op.MOUNT, [flags], [source, target, fstype, data]); }
  umount(target: string, flags = 0) { return this.call(Op.UMOUNT, [flags], [target]); }
  pivotRoot(newRoot: string, putOld: string) { return this.call(Op.PIVOT_ROOT, [], [newRoot, putOld]); }
  chdir(path: string) { return this.call(Op.CHDIR, [], [path]); }

  async clocks(): Promise<Clocks> {
    const n = (await this.must(Op.CLOCKS)).n;
    return { monotonic: n[0] + n[1] / 1e9, boottime: n[2] + n[3] / 1e9, realtime: n[4] + n[5] / 1e9 };
  }

  /** Forks a grandchild inside that serves requests too (its own Sandbox). */
  async forkServe(opts: { noDeathSignal?: boolean } = {}): Promise<Sandbox> {
    const r = await this.must(Op.FORK, [0, opts.noDeathSignal ? 1 : 0]);
    const fds = (r as Reply & { fds?: number[] }).fds ?? [];
    if (fds.length !== 1) throw new NsError('request', 'fork', 71, 'fork reply carried no channel');
    let box: NativeBox;
    try {
      box = await native().adopt(fds[0], this.timeoutMs);
    } catch (e) {
      throw fromNative(e);
    }
    return new Sandbox(box, this.namespaces, 'child', this.timeoutMs);
  }
  /** Forks a grandchild inside that only waits to be killed; returns its pid as seen inside. */
  async forkPause(): Promise<number> { return (await this.must(Op.FORK, [1, 0])).n[0]; }
  async kill(pid: number, signal: number): Promise<number> { const r = await this.call(Op.KILL, [pid, signal]); return r.err ? -r.err : 0; }
  async wait(pid: number, options = 0, timeoutMs = 0): Promise<{ pid: number; status: number; err: number }> {
    const r = await this.call(Op.WAIT, [pid, options, timeoutMs]);
    return { pid: r.n[0], status: r.n[1], err: r.err };
  }
  nsIoctl(path: string, which: number) { return this.call(Op.NS_IOCTL, [which], [path]); }
  unshare(flags: number) { return this.call(Op.UNSHARE, [flags]); }
  /** setns() into the namespace at path; with unshareFlags, unshare() those after opening it and before setns. */
  setns(path: string, nstype: number, unshareFlags = 0) { return this.call(Op.SETNS, [nstype, unshareFlags], [path]); }
  async nest(kind: 'user' | 'pid', max = 64): Promise<{ levels: number; errno: number }> {
    const r = await this.must(Op.NEST, [kind === 'user' ? 1 : 2, max], [], Math.max(this.timeoutMs, 10000));
    return { levels: r.n[0], errno: r.n[1] };
  }
  setuid(uid: number, gid: number) { return this.call(Op.SETUID, [uid, gid]); }
  async echo(s: Str): Promise<Buffer> { return (await this.must(Op.ECHO, [], [s])).data; }
  /** Test only: a request that never gets a reply. */
  hang(timeoutMs?: number) { return this.call(Op.HANG, [], [], timeoutMs); }

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
    const base = opts.privilegedIdBase ?? 100000;
    Object.assign(spec, { userns: true, drop: false, uidMap: `0 ${base} 65536\n`, gidMap: `0 ${base} 65536\n`, setgroupsAllow: true });
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
