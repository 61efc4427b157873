// The typed surface of the native addon. Only src/sandbox.ts and the fuzz/bench entry points use it
// directly; probes go through Sandbox. Where the addon is: see addonCandidates().
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AgentClient, localLauncher } from './agent/client.js';
import { packageRoot } from './paths.js';

export interface NativeEnterSpec {
  /** CLONE_NEW* flags for the clone that creates the namespaces (CLONE_NEWTIME goes via `time`). */
  cloneFlags?: number;
  userns?: boolean;
  /** Switch to dropUid/dropGid before creating the user namespace. */
  drop?: boolean;
  dropUid?: number;
  dropGid?: number;
  uidMap?: string;
  /** Leave /proc/PID/setgroups at "allow" (privileged parents writing multi-id maps). */
  setgroupsAllow?: boolean;
  gidMap?: string;
  time?: boolean;
  offMonotonic?: number;
  offBoottime?: number;
  /** cgroup.procs files the first stage is written into before the namespaces are created. */
  cgroupProcs?: string[];
  /** Join: setns() into these files, in order. */
  joinPaths?: { path: string; type: number }[];
  /** Join: setns() through a pidfd of this process with these CLONE_NEW* flags at once. */
  joinPidfdPid?: number;
  joinPidfdFlags?: number;
  /** Join: clone once more after setns (pid and time namespaces apply to children). */
  joinFork?: boolean;
  /** Clone with fork semantics instead of CLONE_VM. */
  noVm?: boolean;
  timeoutMs?: number;
}

export interface NativeBox {
  id: number;
  /** The serving process in our pid namespace. */
  pid: number;
  /** The child's hello reply (the addon gives a bare ArrayBuffer, the agent client a Buffer). */
  hello: Buffer | ArrayBuffer;
}

export interface NativeReply {
  reply: Buffer;
  fds: number[];
  /** The sender's pid in our pid namespace (SCM_CREDENTIALS). */
  pid: number;
}

export interface NativeClose {
  reaped: boolean;
  killed: boolean;
  exitCode: number | null;
  signal: number | null;
  alreadyClosed?: boolean;
}

export interface NativeAddon {
  enter(spec: NativeEnterSpec): Promise<NativeBox>;
  request(id: number, req: Buffer, timeoutMs: number): Promise<NativeReply>;
  /**
   * request(), resolving with the bare reply as an ArrayBuffer when it carried no fds (the addon:
   * a reply object and a Buffer made in C++ cost more than Buffer.from here). Both read req
   * before they return (Sandbox.call reuses it).
   */
  requestBare?(id: number, req: Buffer, timeoutMs: number): Promise<ArrayBuffer | NativeReply>;
  close(id: number, timeoutMs: number): Promise<NativeClose>;
  adopt(fd: number, timeoutMs: number): Promise<NativeBox>;
  kill(id: number, signal: number): boolean;
  openCount(): number;
  openPids(): number[];
  closeFd(fd: number): void;
  /**
   * PR_SET_CHILD_SUBREAPER: orphaned grandchildren (of a killed server) come to this process and
   * are reaped at exit (shutdown), not handed to init as zombies. Returns whether it is on.
   */
  setSubreaper(on?: boolean): boolean;
  /** Raises the soft RLIMIT_NOFILE to n (at most the hard limit); the limits after (-1: unlimited). */
  setNofile(n: number): { soft: number; hard: number };
  /** mq_unlink(3) in this process's IPC namespace: 0 or -errno. */
  mqUnlink(name: string): number;
  /**
   * Removes the SysV object (1 msg, 2 shm, 3 sem) of key in this process's IPC namespace (the
   * agent's, through the agent): 0 or -errno. Synchronous (a hurried exit), also through the agent.
   */
  sysvRemove?(kind: 1 | 2 | 3, key: number): number;
  /**
   * Host queues told live or dead by the kernel (native/enter.h nsp_mq_hold, src/cleanup.ts):
   * mqHold registers this process (the agent, through it) as the live holder of a queue it
   * made (0, -EBUSY, -ENOENT: lost to a scanner); mqRelease ends that (after the unlink);
   * mqReap removes a queue no live process holds (0; -EBUSY held; -ENOENT none), dryRun only
   * tells. The addon answers at once, the agent with a promise.
   */
  mqHold?(name: string): number | Promise<number>;
  mqRelease?(name: string): number | Promise<number>;
  mqReap?(name: string, dryRun?: boolean): number | Promise<number>;
  /**
   * The agent only: kills and reaps every box synchronously but keeps the agent (a hurried exit
   * removes the host objects through it before shutdown ends it).
   */
  endBoxes?(ms: number): void;
  /** Synchronously kills and reaps every open child (process exit), waiting up to ms (2000) in all. */
  shutdown(ms?: number): void;
  /**
   * CPU co-location (native/addon.cc): while this thread has one sandbox open it stays on one CPU
   * with it; processes it spawns meanwhile inherit that pin. setColocate(false) turns it off and
   * gives the pinned threads their masks back at once. Returns whether it was on.
   */
  setColocate(on?: boolean): boolean;
  netlink(op: 'vethCreate', name: string, peer: string, peerPid: number): number;
  netlink(op: 'linkDel' | 'linkUp' | 'ifindex', name: string): number;
  netlink(op: 'addrAdd', name: string, family: number, addr: Buffer, prefix: number): number;
}

let addon: NativeAddon | undefined;

/**
 * 'glibc' or 'musl', from the C library this process has mapped (/proc/self/maps), so a musl host
 * never loads a glibc binary: the same test as scripts/prebuild-select.mjs, which the install
 * script uses (test/package.test.ts checks that they agree). LIBC=glibc|musl overrides.
 */
export function hostLibc(): 'glibc' | 'musl' {
  if (process.env.LIBC === 'glibc' || process.env.LIBC === 'musl') return process.env.LIBC;
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    if (/\/ld-musl-[^/\s]*\.so/.test(maps)) return 'musl';
    if (/\/libc\.so\.6$/m.test(maps)) return 'glibc';
  } catch {}
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * Where the addon may be, in order: a build from source (build/Release: the install script makes
 * it when no prebuilt binary fits, npm run build in a checkout), then the package's prebuilt binary
 * for this platform, architecture and libc (prebuilds/linux-x64/node.napi.glibc.node, the
 * prebuildify layout). NSPROBE_PREBUILDS_ONLY=1 skips build/Release (to test the prebuilds).
 */
export function addonCandidates(root: string = packageRoot()): string[] {
  const out: string[] = [];
  if (process.env.NSPROBE_PREBUILDS_ONLY !== '1') out.push(join(root, 'build', 'Release', 'nsprobe.node'));
  out.push(join(root, 'prebuilds', `${process.platform}-${process.arch}`, `node.napi.${hostLibc()}.node`));
  return out;
}

/** The addon file native() loads, or null when there is none for this host. */
export function addonPath(root?: string): string | null {
  return addonCandidates(root).find((p) => existsSync(p)) ?? null;
}

/**
 * A helper program built with the addon (nsprobe-serve, nsprobe-seccomp-exec, nsprobe-rawbench):
 * next to the addon file, where the addon itself looks for nsprobe-serve.
 */
export function helperPath(name: 'nsprobe-serve' | 'nsprobe-seccomp-exec' | 'nsprobe-rawbench' | 'nsprobe-agent'): string {
  const p = addonPath();
  if (!p) throw new Error(noAddon());
  return join(dirname(p), name);
}

function noAddon(): string {
  return `the native addon for ${process.platform}-${process.arch} (${hostLibc()}) is missing (none of ${addonCandidates().join(', ')}): no prebuilt binary fits this host, so nsprobe must be built from source by its install script, which npm runs only when allowed: with g++, make and python3 installed, run npm install -g nsprobe --allow-scripts=nsprobe (in a checkout: npm ci or npm run build)`;
}

/** `uname -m` names by Node's process.arch, for the agent programs. */
const MACHINE: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };
const NODE_ARCH: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64' };

/**
 * Where the agent for a machine (`uname -m`: x86_64, aarch64) may be, in order: NSPROBE_AGENT_PATH
 * (this machine only), build/Release/nsprobe-agent (this machine), build/agent/nsprobe-agent-MACHINE
 * (scripts/build-agent.mjs, every architecture it has a compiler for), the prebuilt one in
 * prebuilds/linux-ARCH/.
 */
export function agentCandidates(machine: string = MACHINE[process.arch] ?? process.arch, root: string = packageRoot()): string[] {
  const out: string[] = [];
  const here = machine === (MACHINE[process.arch] ?? process.arch);
  if (here && process.env.NSPROBE_AGENT_PATH) out.push(process.env.NSPROBE_AGENT_PATH);
  if (here && process.env.NSPROBE_PREBUILDS_ONLY !== '1') out.push(join(root, 'build', 'Release', 'nsprobe-agent'));
  if (process.env.NSPROBE_PREBUILDS_ONLY !== '1') out.push(join(root, 'build', 'agent', `nsprobe-agent-${machine}`));
  const arch = NODE_ARCH[machine];
  if (arch) out.push(join(root, 'prebuilds', `linux-${arch}`, 'nsprobe-agent'));
  return out;
}

/** The agent program for a machine, or null when this package has none. */
export function agentPath(machine?: string): string | null {
  return agentCandidates(machine).find((p) => existsSync(p)) ?? null;
}

let transport: NativeAddon | undefined;

/**
 * Who the sandboxes are made as when the agent runs on another host (--ssh, src/remote/): the
 * target login's euid, egid and id maps, read there before the run.
 */
export interface CallerIdentity {
  euid: number;
  egid: number;
  uidMap: string;
  gidMap: string;
}

/**
 * What the transport says about where its sandboxes are made: `remote` (--via, --ssh: on the
 * target, so the probes' host side and the host facts go through a box there, src/host/boxfs.ts),
 * and `caller` (who they are made as there; null: this process). Set with the transport, so the
 * two never disagree; a local agent (NSPROBE_TRANSPORT=agent) and the addon are neither.
 */
export interface TransportContext {
  remote: boolean;
  caller: CallerIdentity | null;
}
const LOCAL: TransportContext = { remote: false, caller: null };
let context: TransportContext = LOCAL;

/**
 * The one place the transport is chosen: an agent set by --via or --ssh (setTransport, with its
 * context), else a local agent over a pipe with NSPROBE_TRANSPORT=agent (the suite runs through
 * it that way), else the addon. setTransport(undefined) goes back to that and to LOCAL.
 */
export function setTransport(t: NativeAddon | undefined, ctx: Partial<TransportContext> = {}): void {
  transport = t;
  context = t ? { remote: ctx.remote ?? false, caller: ctx.caller ?? null } : LOCAL;
}

/** The context of the transport set by setTransport (LOCAL when none is). */
export function transportContext(): TransportContext {
  return context;
}

export function transportName(): 'addon' | 'agent' {
  return transport || process.env.NSPROBE_TRANSPORT === 'agent' ? 'agent' : 'addon';
}

export function native(): NativeAddon {
  if (transport) return transport;
  if (process.env.NSPROBE_TRANSPORT === 'agent') {
    const path = agentPath();
    if (!path) throw new Error(`NSPROBE_TRANSPORT=agent, but there is no agent program for ${process.arch} (none of ${agentCandidates().join(', ')}): run npm run build`);
    const a = new AgentClient(localLauncher(path));
    transport = a;
    process.on('exit', () => a.shutdown());
    return a;
  }
  if (!addon) {
    const path = addonPath();
    if (!path) throw new Error(noAddon());
    addon = createRequire(import.meta.url)(path) as NativeAddon;
    // process.exit() skips the addon's environment cleanup: kill and reap on 'exit' too, or the
    // children die by their parent-death signal but stay zombies under a non-reaping init.
    const a = addon;
    process.on('exit', () => a.shutdown());
  }
  return addon;
}

/** CLONE_NEW* flags by namespace type (from the one table in src/namespaces.ts). */
export { CLONE } from './namespaces.js';
