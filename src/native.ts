// The typed surface of the native addon (build/Release/nsprobe.node). Only src/sandbox.ts and the
// fuzz/bench entry points use it directly; probes go through Sandbox.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
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
  hello: Buffer;
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

export function native(): NativeAddon {
  if (!addon) {
    const path = join(packageRoot(), 'build', 'Release', 'nsprobe.node');
    if (!existsSync(path)) throw new Error(`the native addon is not built (${path} is missing): run npm ci or npm run build`);
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
