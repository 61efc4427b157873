// Residue checker: what a run could leave on the host, snapshotted before and after and diffed.
// Used by the tests (planted debris, soak, interruption) and by `nsprobe --check-residue`.
//
// What it looks at:
// - processes: descendants of `root` (default this process) that did not exist before, and
//   orphans (parent pid 1) that did not exist before, hold a namespace created during the run and
//   run this Node binary (our children never exec, so an escaped one runs it; the exe filter keeps
//   services that systemd starts meanwhile out);
// - mounts in this process's /proc/self/mountinfo (the host's, for the CLI), added or removed;
// - SysV IPC objects in /proc/sysvipc/{msg,shm,sem};
// - POSIX message queues of this IPC namespace, listed by a short-lived helper that mounts an
//   mqueue fs in a private mount namespace (as non-root, through a host mqueue mount if there is
//   one; otherwise reported as unknown, never as residue);
// - network devices (/sys/class/net) and /run/netns entries;
// - cgroup directories named nsprobe-* in the cgroup2 mount and every v1 hierarchy;
// - hostname and domainname;
// - new entries directly in /tmp, /var/tmp, /dev/shm, the cwd, $HOME and the package folder,
//   except the report folder (and folders above it that the run created for it).
import { scrubLine } from './text.js';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { MS } from './errno.js';
import { packageRoot } from './paths.js';
import { NS_TYPES } from './namespaces.js';
import { enter, type Sandbox } from './sandbox.js';
import { localMakerGone, parseSysv, SYSV_HOST_MODE, SYSV_KINDS, sysvKeyMaker } from './cleanup.js';
import { localJudgeNs, PID_INIT_INO } from './pidns.js';


export type ResidueKind = 'process' | 'mount' | 'sysvipc' | 'mqueue' | 'netdev' | 'netns' | 'cgroup' | 'host' | 'file';

export interface Residue {
  kind: ResidueKind;
  /** One line a person reads: what is left (or gone). */
  what: string;
  /** Files: the owner uid (tests use it to tell a nobody run's files from others'). */
  uid?: number;
  /** Processes: the pid. */
  pid?: number;
}

export interface Proc {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: pid + start identifies a process across snapshots. */
  start: number;
  comm: string;
  state: string;
  /** Namespace links ("net:[4026531840]") that could be read. */
  ns: string[];
}

export interface Snapshot {
  root: number;
  procs: Map<number, Proc>;
  /** Every namespace seen on any process. */
  nsSeen: Set<string>;
  /** mount id -> "mountpoint fstype source". */
  mounts: Map<string, string>;
  sysv: Set<string>;
  /**
   * The SysV objects of `sysv` that were a dead nsprobe run's when seen (a key naming a maker
   * that had ended, in the shape nsprobe makes them: src/cleanup.ts deadSysv's rule): a run's
   * debris pass removes them, which is no residue of that run.
   */
  sysvDebris: Set<string>;
  /** Queue names, or null when they could not be listed (see unknown). */
  mqueues: Set<string> | null;
  netdevs: Set<string>;
  netns: Set<string>;
  cgroups: Set<string>;
  host: { hostname: string; domainname: string };
  /** dir -> entry name -> owner uid. */
  files: Map<string, Map<string, number>>;
  /** Checks that could not be made, with why. */
  unknown: string[];
  exclude: string[];
}

export interface SnapshotOptions {
  /** Processes descended from this pid count (default: this process). */
  root?: number;
  /** Paths whose creation is expected (the report folder). */
  exclude?: string[];
  /** Folders whose direct entries are compared (default: /tmp, /var/tmp, /dev/shm, cwd, $HOME, package). */
  dirs?: string[];
  /** List POSIX message queues through a helper sandbox (default true). */
  mqueue?: boolean;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export function readProcs(): { procs: Map<number, Proc>; nsSeen: Set<string> } {
  const procs = new Map<number, Proc>();
  const nsSeen = new Set<string>();
  for (const name of listDir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readText(`/proc/${name}/stat`);
    if (!stat) continue;
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    const p: Proc = { pid: Number(name), ppid: Number(f[1]), start: Number(f[19]), comm: stat.slice(stat.indexOf('(') + 1, close), state: f[0], ns: [] };
    for (const t of NS_TYPES) {
      try {
        p.ns.push(readlinkSync(`/proc/${name}/ns/${t}`));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break; // EACCES: not ours to see
      }
    }
    for (const n of p.ns) nsSeen.add(n);
    procs.set(p.pid, p);
  }
  return { procs, nsSeen };
}

function readMounts(): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    if (!l) continue;
    const [pre, post = ''] = l.split(' - ');
    const f = pre.split(' ');
    const [fstype, source] = post.split(' ');
    m.set(f[0], `${f[4]} ${fstype} ${source}`);
  }
  return m;
}

function readSysv(): { all: Set<string>; debris: Set<string> } {
  const all = new Set<string>();
  const debris = new Set<string>();
  const judges = localJudgeNs() === PID_INIT_INO;
  for (const [kind, name] of SYSV_KINDS) {
    for (const o of parseSysv(kind, readText(`/proc/sysvipc/${name}`) ?? '')) {
      const id = `${name} key 0x${(o.key >>> 0).toString(16).padStart(8, '0')} id ${o.id}`;
      all.add(id);
      // (deadSysv's rule: judged only by a process of the initial pid namespace with its own /proc.)
      const maker = judges ? sysvKeyMaker(o.key) : null;
      if (maker !== null && o.mode === SYSV_HOST_MODE && o.shape && (o.cpid === null || o.cpid === maker) && localMakerGone(maker, o.ctimeMs)) debris.add(id);
    }
  }
  return { all, debris };
}

function mountsOfType(type: string): string[] {
  const out: string[] = [];
  for (const l of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [pre, post] = l.split(' - ');
    if (post?.split(' ')[0] === type) out.push(pre.split(' ')[4]);
  }
  return out;
}

function readCgroups(): Set<string> {
  const found = new Set<string>();
  const roots = [...mountsOfType('cgroup2'), ...mountsOfType('cgroup')];
  const walk = (dir: string, depth: number) => {
    if (depth > 32) return;
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (e.name.startsWith('nsprobe-')) found.add(p);
      walk(p, depth + 1);
    }
  };
  for (const r of new Set(roots)) walk(r, 0);
  return found;
}

/** POSIX message queues of this IPC namespace, or null with why not. */
async function readMqueues(): Promise<{ names: Set<string> | null; why?: string }> {
  const root = process.geteuid?.() === 0;
  let s: Sandbox | undefined;
  let why = '';
  try {
    s = await enter({ namespaces: ['mnt'], mode: root ? 'privileged' : 'rootless', timeoutMs: 3000 });
    // Private first: /tmp's parent mount may be shared with the host's.
    const p = await s.mount('', '/', '', MS.REC | MS.PRIVATE);
    const m = !p.ok ? p : await s.mount('none', '/tmp', 'mqueue', 0);
    if (m.ok) return { names: new Set(await s.listdir('/tmp').get()) };
    why = `mounting mqueue in a ${root ? '' : 'rootless '}mount namespace failed (${m.sentence})`;
  } catch (e) {
    why = `no helper for listing message queues: ${(e as Error).message}`;
  } finally {
    await s?.close().catch(() => undefined);
  }
  for (const mp of mountsOfType('mqueue')) {
    try {
      return { names: new Set(readdirSync(mp)) };
    } catch {
      // try the next
    }
  }
  return { names: null, why: `${why}, and no mqueue fs is mounted here` };
}

function defaultDirs(): string[] {
  const dirs = ['/tmp', '/var/tmp', '/dev/shm', process.cwd(), homedir()];
  try {
    dirs.push(packageRoot());
  } catch {
    // not run from the package
  }
  return [...new Set(dirs.map((d) => resolve(d)))];
}

function readFiles(dirs: string[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const d of dirs) {
    const m = new Map<string, number>();
    for (const n of listDir(d)) {
      let uid = -1;
      try {
        uid = lstatSync(join(d, n)).uid;
      } catch {
        // gone meanwhile
      }
      m.set(n, uid);
    }
    out.set(d, m);
  }
  return out;
}

export async function snapshot(opts: SnapshotOptions = {}): Promise<Snapshot> {
  const unknown: string[] = [];
  let mqueues: Set<string> | null = null;
  if (opts.mqueue !== false) {
    // First, so that the helper is gone before the processes are read.
    const r = await readMqueues();
    mqueues = r.names;
    if (!r.names) unknown.push(`POSIX message queues: ${r.why}`);
  }
  const { procs, nsSeen } = readProcs();
  const sysv = readSysv();
  return {
    root: opts.root ?? process.pid,
    procs,
    nsSeen,
    mounts: readMounts(),
    sysv: sysv.all,
    sysvDebris: sysv.debris,
    mqueues,
    netdevs: new Set(listDir('/sys/class/net')),
    netns: new Set(listDir('/run/netns')),
    cgroups: readCgroups(),
    host: { hostname: (readText('/proc/sys/kernel/hostname') ?? '').trim(), domainname: (readText('/proc/sys/kernel/domainname') ?? '').trim() },
    files: readFiles(opts.dirs ?? defaultDirs()),
    unknown,
    exclude: (opts.exclude ?? []).map((p) => resolve(p)),
  };
}

/** Whether `pid` descends from `root` in this process table. */
function descends(procs: Map<number, Proc>, pid: number, root: number): boolean {
  const seen = new Set<number>();
  for (let p = procs.get(pid); p && !seen.has(p.pid); p = procs.get(p.ppid)) {
    seen.add(p.pid);
    if (p.ppid === root) return true;
  }
  return false;
}

function exeOf(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** Everything in `after` that was not in `before` (and, for mounts, IPC and devices, what went away). */
export function diff(before: Snapshot, after: Snapshot): Residue[] {
  const out: Residue[] = [];
  const existed = (p: Proc) => before.procs.get(p.pid)?.start === p.start;
  for (const p of after.procs.values()) {
    if (existed(p) || p.pid === after.root) continue;
    const desc = descends(after.procs, p.pid, after.root);
    const newNs = p.ns.filter((n) => !before.nsSeen.has(n));
    const orphan = p.ppid === 1 && newNs.length > 0 && exeOf(p.pid) === process.execPath;
    if (desc || orphan) {
      const why = desc ? `a descendant of ${after.root}` : 'an orphan';
      out.push({ kind: 'process', pid: p.pid, what: `pid ${p.pid} (${p.comm}, state ${p.state}, ppid ${p.ppid}) is ${why}${newNs.length ? ` in new namespaces ${newNs.join(' ')}` : ''}` });
    }
  }
  for (const [id, m] of after.mounts) if (!before.mounts.has(id)) out.push({ kind: 'mount', what: `mounted: ${m} (mount id ${id})` });
  for (const [id, m] of before.mounts) if (!after.mounts.has(id)) out.push({ kind: 'mount', what: `unmounted: ${m} (mount id ${id})` });
  for (const s of after.sysv) if (!before.sysv.has(s)) out.push({ kind: 'sysvipc', what: `SysV ${s}` });
  // (A dead run's object that went is the debris pass's removal: not a change this run made.)
  for (const s of before.sysv) if (!after.sysv.has(s) && !before.sysvDebris.has(s)) out.push({ kind: 'sysvipc', what: `removed: SysV ${s}` });
  if (before.mqueues && after.mqueues) {
    for (const q of after.mqueues) if (!before.mqueues.has(q)) out.push({ kind: 'mqueue', what: `POSIX message queue /${q}` });
    for (const q of before.mqueues) if (!after.mqueues.has(q)) out.push({ kind: 'mqueue', what: `removed: POSIX message queue /${q}` });
  }
  for (const d of after.netdevs) if (!before.netdevs.has(d)) out.push({ kind: 'netdev', what: `network device ${d}` });
  for (const d of before.netdevs) if (!after.netdevs.has(d)) out.push({ kind: 'netdev', what: `removed: network device ${d}` });
  for (const n of after.netns) if (!before.netns.has(n)) out.push({ kind: 'netns', what: `/run/netns/${n}` });
  for (const c of after.cgroups) if (!before.cgroups.has(c)) out.push({ kind: 'cgroup', what: `cgroup ${c}` });
  for (const k of ['hostname', 'domainname'] as const) {
    if (before.host[k] !== after.host[k]) out.push({ kind: 'host', what: `${k} changed from '${before.host[k]}' to '${after.host[k]}'` });
  }
  const excluded = (path: string) => [...before.exclude, ...after.exclude].some((x) => x === path || x.startsWith(path + '/'));
  for (const [dir, names] of after.files) {
    const old = before.files.get(dir);
    if (!old) continue;
    for (const [n, uid] of names) {
      const p = join(dir, n);
      if (!old.has(n) && !excluded(p)) out.push({ kind: 'file', uid, what: `new file ${p} (uid ${uid})` });
    }
  }
  return out;
}

/** One line per residue, for the CLI and test messages. */
export function formatResidue(r: readonly Residue[]): string {
  // Names of files, processes, queues and devices are anyone's choice: no escape reaches a terminal.
  return r.map((x) => `residue: ${x.kind}: ${scrubLine(x.what)}\n`).join('');
}

export interface CheckOptions extends SnapshotOptions {
  /** Residue that is not ours (tests: other engineers' files); dropped before deciding. */
  ignore?: (r: Residue) => boolean;
  /**
   * How long residue may take to go away (a killed child's parent reaps it, another process's
   * transient object goes): re-snapshot until the diff is empty or this passes (default 1000 ms).
   */
  settleMs?: number;
}

/** Snapshots again (until clean, up to settleMs) and returns what is left since `before`. */
export async function residueSince(before: Snapshot, opts: CheckOptions = {}): Promise<{ residue: Residue[]; after: Snapshot }> {
  const deadline = Date.now() + (opts.settleMs ?? 1000);
  for (;;) {
    const after = await snapshot({ root: opts.root ?? before.root, exclude: opts.exclude ?? before.exclude, dirs: opts.dirs ?? [...before.files.keys()], mqueue: opts.mqueue ?? before.mqueues !== null });
    const residue = diff(before, after).filter((r) => !opts.ignore?.(r));
    if (!residue.length || Date.now() >= deadline) return { residue, after };
    await new Promise((r) => setTimeout(r, 50));
  }
}
