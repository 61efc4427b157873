// What an nsprobe run leaves when it cannot clean up, and how the next run takes it away.
//
// A run that is SIGKILLed (or loses power, or crashes in the addon) leaves what only its own
// cleanup would have removed: cgroups `nsprobe-<pid>-<token>` below its own cgroup, POSIX queues
// `nsprobe-mqh-<pid>-<token>` in the host's IPC namespace and temporary report files in the report
// folder (`.nsprobe-tmp-<pid>-<random>`, and the older `.<file>.tmp-<pid>-<n>`). Each name carries
// the pid of the run that made it, so at start a run removes those whose maker is gone: its pid
// no longer runs, or the process with that pid started after the object was made (pid reuse).
// A pid is a pid of one pid namespace: the names say which (src/pidns.ts, `<pid>@<inode>` outside
// the initial one), and a pass judges only makers of its own pid namespace, and only when the
// /proc it reads is that namespace's; everything else stays.
// Only names nsprobe makes, only objects this caller owns (root: any), and only what the kernel
// lets this caller remove; each removal is a line in the report notes.
//
// Host queues are the exception where this caller cannot list them: a normal user has no mqueue
// mount (mounting the host's needs CAP_SYS_ADMIN over its IPC namespace's owner), so for it
// (and through an agent) their names are enumerable instead (a caller that lists keeps the pid
// names, which no two live runs share): `nsprobe-mqh-u<uid>-<slot>`, slot 0..HOST_QUEUE_SLOTS-1, the first free one taken with
// O_CREAT|O_EXCL (claimHostQueue). The kernel tells a live run's queue from a dead one's: the
// run registers itself (Node, or the agent through which it runs) with mq_notify on its queue
// and holds it; a second registration gets EBUSY while that process lives, and the kernel ends
// the registration when it dies. A later run opens the bounded names and removes those no one
// holds (native mqReap): no listing, no pid in the name.
//
// A second signal hurries the exit (hurriedCleanup): no waiting for sandboxes to answer, but the
// children are killed and reaped, this run's cgroups and host queues are removed and its
// temporary report files deleted, all synchronously, before the process leaves.
import { lstatSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Root, parseCgroup, removeCgroup } from '../probes/cgroup.js';
import { localHost, type HostIf } from './host/hostif.js';
import { hostPidNs, localJudgeNs, localPidNs, localPidTag, PID_INIT_INO, PID_TAG_RE, tagNs } from './pidns.js';
import { mqueueMountPoint } from './host/mountinfo.js';
import { native, transportContext, type NativeAddon } from './native.js';
import type { Outcome } from './sandbox.js';

/** Where this process's mount namespace has an mqueue filesystem (the host's queues), or null. */
export function ownMqueueMount(): string | null {
  let text: string | null = null;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // unreadable: none
  }
  return mqueueMountPoint(text);
}

/**
 * Pids other than this process's that name this run's objects on this machine (a BoxHost's child
 * made through the addon or a local agent, src/host/hostif.ts): a hurried exit removes their
 * cgroups here too.
 */
const runPids = new Set<number>();

/**
 * Notes such a pid (`forget` once its host interface is closed). A pid of a remote transport's
 * (a --via/--ssh target's box) is the target's: it names cgroups there, never here, and the same
 * number here may be another live run's, whose cgroup a hurried exit would kill and remove. So it
 * is not noted: the target's objects go through the agent while it answers (its boxes end, it
 * removes the noted host IPC objects), and what is left there (the cgroups below its box's) is
 * the next run's target pass (collectDebris({ host })).
 */
export function noteRunPid(pid: number): () => void {
  if (transportContext().remote) return () => false;
  runPids.add(pid);
  return () => runPids.delete(pid);
}

/** Host-IPC queues this process made and has not removed yet (a hurried exit removes them). */
const hostQueues = new Set<string>();

/** Notes a queue about to be made in the host's IPC namespace (`forget` once it is removed). */
export function noteHostQueue(name: string): () => void {
  hostQueues.add(name);
  return () => hostQueues.delete(name);
}

/** How many host queues one user's runs may have at once (each ipc probe holds one while it runs: two probes, two modes, a run holds at most four; the suite runs many side by side). */
export const HOST_QUEUE_SLOTS = 32;
const SLOT_QUEUE_RE = /^nsprobe-mqh-u(\d+)-(\d+)$/;

/** The uid the host queues are named after: the agent's (--via, --ssh) or this process's. */
function queueUid(): number {
  const caller = transportContext().caller;
  if (caller) return caller.euid;
  const hello = (native() as { hello?: { euid: number } }).hello;
  return hello?.euid ?? euid();
}

export function hostQueueName(uid: number, slot: number): string {
  return `nsprobe-mqh-u${uid}-${slot}`;
}

const ENOENT = 2, EBUSY = 16, EEXIST = 17;

/** Whether this process can list the host's queues: asked once, by collectDebris at the start of a run, or by the first claim (in-process suites, tests). */
let listable: Promise<boolean> | null = null;

/**
 * Makes a host queue, noted for a hurried exit first (`create` makes it with O_CREAT|O_EXCL in
 * the host's IPC namespace, the probe's host sandbox). Where this process can list the host's
 * queues the name carries its pid. Else it is the first free slot name, and the transport's
 * process registers as its live holder (mqHold). A queue taken by another run's
 * scanner between create and hold (it saw it unheld) is gone: the next slot. `done` after the
 * queue is removed: ends the hold and the note. `made` is create's outcome (EEXIST when every
 * slot is taken).
 */
export async function claimHostQueue<T>(create: (name: string) => Promise<Outcome<T>>): Promise<{ name: string; made: Outcome<T>; done: () => Promise<void> }> {
  const lists = !transportContext().remote && (await (listable ??= hostQueueDir().then(async (q) => (await q?.close(), q !== null), () => false)));
  if (lists) {
    // This caller lists the host's queues (a later run of it finds this one by listing): a name
    // with this run's pid, which no other live run's queue can have. Slot names are shared by
    // the runs of one user, and with four root runs side by side two of them held one slot (a
    // scanner unlinked one run's queue before its hold and another run made the name again),
    // or saw another run's queue under its own name after removing its own.
    // (The pid's namespace too, src/pidns.ts: a run in another pid namespace shares this IPC one.)
    const name = `nsprobe-mqh-${localPidTag()}-${Math.random().toString(36).slice(2, 10)}`;
    const forget = noteHostQueue(name);
    const made = await create(name);
    if (!made.ok) forget();
    return { name, made, done: async () => forget() };
  }
  const uid = queueUid();
  let last: { name: string; made: Outcome<T> } | null = null;
  for (let slot = 0; slot < HOST_QUEUE_SLOTS; slot++) {
    const name = hostQueueName(uid, slot);
    if (hostQueues.has(name)) continue; // this run's already
    const forget = noteHostQueue(name);
    const made = await create(name);
    last = { name, made };
    if (!made.ok) {
      forget();
      if (made.errno === EEXIST) continue;
      break;
    }
    const n = native();
    // EBUSY: another run's scanner registered on it (it unlinks it next: ENOENT) or one only
    // looks (it lets go at once); under load that scanner may wait for a CPU: ask again, a while.
    let held = n.mqHold ? await n.mqHold(name) : 0;
    for (const until = performance.now() + 2000; held === -EBUSY && performance.now() < until; ) {
      await new Promise((r) => setTimeout(r, 5));
      held = await n.mqHold!(name);
    }
    if (held === -ENOENT) {
      forget(); // a scanner removed it: not ours any more
      continue;
    }
    // (Any other answer: it is ours, held or not; the probe removes it as always.)
    return {
      name,
      made,
      done: async () => {
        if (held === 0) await Promise.resolve(n.mqRelease?.(name)).catch(() => undefined);
        forget();
      },
    };
  }
  if (!last) throw new Error(`every host queue slot (${HOST_QUEUE_SLOTS}) is this run's already`);
  return { name: last.name, made: last.made, done: async () => undefined };
}

const hostSysv = new Map<string, { kind: 1 | 2 | 3; key: number }>();

/**
 * The mode the ipc probe makes its host-side SysV objects with: 0610. The execute bit means
 * nothing to SysV IPC and no program asks for it, so an object of the same key (a key nsprobe
 * names its maker with can also come from ftok(path, 'N')) in another program's 0600 is never
 * taken for nsprobe's: not by a debris pass, not by a hurried exit or an after-close cleanup
 * whose create came back EEXIST (the key noted was another's).
 */
export const SYSV_HOST_MODE = 0o610;

/** Notes a SysV object (1 msg, 2 shm, 3 sem) about to be made with key in the host's IPC namespace (`forget` once removed). */
export function noteHostSysv(kind: 1 | 2 | 3, key: number): () => void {
  const k = `${kind}:${key}`;
  hostSysv.set(k, { kind, key });
  return () => hostSysv.delete(k);
}

// SysV keys of the objects the ipc probe makes in the host's IPC namespace: the 0x4e prefix, and
// the low 24 bits a fixed permutation of the maker's pid (the host-side box that makes it: 22
// bits, pid_max's ceiling) and a 2-bit salt (a random first one, the next on EEXIST). So the
// key names its maker: a debris pass reads /proc/sysvipc (key, creator uid, ctime; the creator
// pid of shm segments), decodes the pid and takes the object only when that process is gone.
// A shm segment's cpid must be that pid (a foreign segment matches 1 in 2^22); msg and sem list
// no creator, so there the proof is the decoded pid below the host's pid_max, the shape nsprobe
// makes (mode 0610, SYSV_HOST_MODE; a queue never sent to; one semaphore never operated on) and the owner.
// A key has no room for the maker's pid namespace: a pid is judged as one of the initial pid
// namespace, so only a maker there uses salts 0-2; a maker in any other (or one that cannot tell)
// makes salt-3 keys with random pid bits (sysvUnjudgedKey), which no pass ever judges, and a pass
// judges keys only when it is itself in the initial pid namespace with its own procfs.
const SYSV_PREFIX = 0x4e;
const M1 = 0x9e3779 | 1, M2 = 0x2c1b3d | 1;
/** The inverse of an odd m modulo 2^24 (Newton's iteration). */
function inv24(m: number): number {
  let x = m;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(m, x)) & 0xffffff;
  return x;
}
const I1 = inv24(M1), I2 = inv24(M2);
function mix24(v: number): number {
  v = Math.imul(v, M1) & 0xffffff;
  v ^= v >>> 12;
  v = Math.imul(v, M2) & 0xffffff;
  return v ^ (v >>> 11);
}
function unmix24(v: number): number {
  v ^= v >>> 11;
  v ^= v >>> 22;
  v = Math.imul(v, I2) & 0xffffff;
  v ^= v >>> 12;
  return Math.imul(v, I1) & 0xffffff;
}

/** The key of a host-side SysV object made by process `pid` of the initial pid namespace (salt 0-2; 3 is sysvUnjudgedKey's). */
export function sysvHostKey(pid: number, salt: number): number {
  return ((SYSV_PREFIX << 24) | mix24((pid & 0x3fffff) | ((salt & 3) << 22))) | 0;
}

/** A key for a maker outside the initial pid namespace: salt 3, random pid bits (a new one on EEXIST); no pass judges it. */
export function sysvUnjudgedKey(): number {
  return sysvHostKey(Math.floor(Math.random() * 0x3fffff) + 1, 3);
}

/** The maker's pid a host-side key names (sysvHostKey's inverse), or null for a key nsprobe does not make or never judges (salt 3). */
export function sysvKeyMaker(key: number): number | null {
  if (key >>> 24 !== SYSV_PREFIX) return null;
  const v = unmix24(key & 0xffffff);
  if (v >>> 22 === 3) return null;
  const pid = v & 0x3fffff;
  return pid > 0 ? pid : null;
}


/** One object of /proc/sysvipc/{msg,shm,sem}, the fields a debris pass judges. */
export interface SysvObject {
  kind: 1 | 2 | 3;
  key: number;
  id: number;
  mode: number;
  uid: number;
  cuid: number;
  ctimeMs: number;
  /** shm: the creator's pid; msg and sem: not listed (null). */
  cpid: number | null;
  /** Whether it has the shape nsprobe makes it in (see above). */
  shape: boolean;
}

export const SYSV_KINDS = [[1, 'msg'], [2, 'shm'], [3, 'sem']] as const;

/** The objects of one /proc/sysvipc/<kind> text (kind 1 msg, 2 shm, 3 sem). */
export function parseSysv(kind: 1 | 2 | 3, text: string): SysvObject[] {
  const out: SysvObject[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length < 10 || f.some((x) => !Number.isFinite(x))) continue;
    const mode = parseInt(line.trim().split(/\s+/)[2], 8);
    const base = { kind, key: f[0] | 0, id: f[1], mode };
    if (kind === 1 && f.length >= 14) out.push({ ...base, uid: f[7], cuid: f[9], ctimeMs: f[13] * 1000, cpid: null, shape: f[3] === 0 && f[4] === 0 && f[5] === 0 && f[6] === 0 });
    else if (kind === 2 && f.length >= 14) out.push({ ...base, uid: f[7], cuid: f[9], ctimeMs: f[13] * 1000, cpid: f[4], shape: f[3] === 4096 && f[6] === 0 });
    else if (kind === 3) out.push({ ...base, uid: f[4], cuid: f[6], ctimeMs: f[9] * 1000, cpid: null, shape: f[3] === 1 && f[8] === 0 });
  }
  return out;
}

/**
 * The host-side SysV objects on `host`'s machine whose maker is gone: keys nsprobe makes
 * (sysvKeyMaker, below that host's pid_max; a shm segment's cpid the key's pid), the shape it
 * makes them in, made and owned by this caller (root: by root, or by the uid its rootless mode
 * runs as; never another user's), and the maker no longer runs there (or started after the
 * object was made). This run's own noted objects are not looked at.
 */
export async function deadSysv(host: HostIf = localHost): Promise<(SysvObject & { pid: number })[]> {
  // A key's pid is judged as one of the initial pid namespace, by a pass that reads its /proc.
  if ((await hostPidNs(host)).judges !== PID_INIT_INO) return [];
  const texts = await Promise.all(SYSV_KINDS.map(([, name]) => host.readFile(`/proc/sysvipc/${name}`).catch(() => null)));
  const all = SYSV_KINDS.flatMap(([kind], i) => (texts[i]?.ok ? parseSysv(kind, texts[i]!.value!) : []));
  const cands = all.filter((o) => sysvKeyMaker(o.key) !== null && o.mode === SYSV_HOST_MODE && o.shape && !hostSysv.has(`${o.kind}:${o.key}`));
  if (!cands.length) return [];
  const pm = await host.readFile('/proc/sys/kernel/pid_max').catch(() => null);
  const pidMax = pm?.ok ? Number(pm.value!.trim()) || 1 << 22 : 1 << 22;
  const owners = new Set([host.euid]);
  if (host.euid === 0) {
    // A root caller's rootless mode makes its host-side objects as an unprivileged uid.
    const { rootlessPlan } = await import('./sandbox.js');
    owners.add(rootlessPlan().hostUid);
  }
  const judged = await Promise.all(
    cands.map(async (o) => {
      const pid = sysvKeyMaker(o.key)!;
      if (pid >= pidMax || (o.cpid !== null && o.cpid !== pid)) return null;
      if (o.uid !== o.cuid || !owners.has(o.cuid)) return null;
      return (await makerMayRun(pid, host === localHost ? o.ctimeMs : null, host)) ? null : { ...o, pid };
    }),
  );
  return judged.filter((x) => x !== null);
}

/**
 * The name patterns of what a run makes (src/pidns.ts): group 1 the maker's pid, group 2 its pid
 * namespace's inode (absent: the initial one). Temporary files and folders in the report folder
 * (the older `.<file>.tmp-<pid>-<n>` names: the initial namespace), cgroups, host queues.
 */
const TEMP_RE = [new RegExp(`^\\.nsprobe-tmp-${PID_TAG_RE}-[A-Za-z0-9_-]+$`), /^\.[A-Za-z0-9_.-]+\.tmp-(\d+)-\d+$/];
export const CGROUP_RE = new RegExp(`^nsprobe-${PID_TAG_RE}-[a-z0-9]+$`);
export const QUEUE_RE = new RegExp(`^nsprobe-mqh-${PID_TAG_RE}-[a-z0-9]+$`);

/** The maker of a name matched by one of those patterns: its pid and pid namespace (0: not known, never judged). */
function makerOf(m: RegExpExecArray): { pid: number; ns: number } {
  return { pid: Number(m[1]), ns: tagNs(m[2]) };
}

/** The maker of a temporary file's name, or null for a name nsprobe does not make. */
export function tempMaker(name: string): { pid: number; ns: number } | null {
  for (const re of TEMP_RE) {
    const m = re.exec(name);
    if (m) return makerOf(m);
  }
  return null;
}

export function tempPid(name: string): number | null {
  return tempMaker(name)?.pid ?? null;
}

let bootMs: number | null | undefined;

/** ENOENT and ESRCH: no such process (a /proc/PID file of a pid that does not run). */
const GONE = new Set(['ENOENT', 'ESRCH']);

/**
 * When process `pid` (in the pid namespace of `host`'s /proc) started, ms since the epoch; null
 * when gone, 0 when it runs but its start is not known. Locally (LocalHost) the boot time comes
 * from this machine's /proc/stat; through a target's host interface only "runs or not" counts
 * (the objects' creation times are not known there, see makerMayRun).
 */
export async function processStartMs(pid: number, host: HostIf = localHost): Promise<number | null> {
  const r = await host.readFile(`/proc/${pid}/stat`);
  if (!r.ok) return GONE.has(r.code ?? '') ? null : 0; // not known: the safe side, it runs
  return statStartMs(r.value!, host === localHost);
}

/**
 * The start of the process a /proc/PID/stat text is of (ms since the epoch; 0 when not known, or
 * not `local`: the boot time is this machine's), or null for one that makes nothing any more.
 */
function statStartMs(stat: string, local: boolean): number | null {
  // Fields from 3 on (state, ppid, ...) after the parenthesised comm. A zombie (Z) or a dying
  // process (X) makes nothing any more: its parent has not reaped it yet (a killed agent's box
  // waits for a subreaper); unless other threads still run (field 20, num_threads: a leader
  // that ended alone shows Z too).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if ((fields[0] === 'Z' || fields[0] === 'X') && Number(fields[17]) <= 1) return null;
  if (!local) return 0;
  if (bootMs === undefined) {
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      bootMs = m ? Number(m[1]) * 1000 : null;
    } catch {
      bootMs = null;
    }
  }
  // Field 22: starttime, in USER_HZ (100 ticks per second).
  const ticks = Number(fields[19]);
  return bootMs === null || !Number.isFinite(ticks) ? 0 : bootMs + ticks * 10;
}

/**
 * makerMayRun's "no" for this machine, synchronously (the residue snapshot's): process `pid` of
 * this pid namespace is gone, a zombie, or started more than 2 s after `madeMs`.
 */
export function localMakerGone(pid: number, madeMs: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    return GONE.has((e as NodeJS.ErrnoException).code ?? '');
  }
  const started = statStartMs(stat, true);
  return started === null || (started !== 0 && started > madeMs + 2000);
}

/**
 * Whether the run that made an object at `madeMs` (its name carries `pid`) may still be running,
 * asked of the /proc of `host` (the machine whose object it is: this one, or a --via/--ssh
 * target through its host interface): the pid runs and that process started before the object
 * was made. btime has a resolution of one second, so a process that started within 2 s after the
 * object counts as its maker (the safe side: a live run's object is never taken). `madeMs` null
 * (not known: a target's stat carries no times) keeps every object whose pid runs.
 */
export async function makerMayRun(pid: number, madeMs: number | null, host: HostIf = localHost): Promise<boolean> {
  if (pid === process.pid && host === localHost) return true;
  if (pid === host.pid) return true; // the host interface's own process (a target's box)
  const started = await processStartMs(pid, host);
  if (started === null) return false;
  if (madeMs === null || started === 0) return true;
  return started <= madeMs + 2000;
}

export interface Debris {
  kind: 'cgroup' | 'queue' | 'sysv' | 'file';
  /** Path (cgroup, file), queue name, or SysV kind and key (`shm key 0x4e...`). */
  what: string;
  /** The pid of the run that made it; null for a slot queue (its holder is gone, whoever it was). */
  pid: number | null;
  /** null when removed, else why not. */
  error: string | null;
}

const euid = () => process.geteuid?.() ?? -1;
/** Whether the caller may take an object: root there, or it owns it (ids as `host` sees them). */
const mine = (uid: number, host: HostIf = localHost) => host.euid === 0 || uid === host.euid;
const madeAt = (st: Stats) => Math.min(st.mtimeMs, st.ctimeMs, st.birthtimeMs > 0 ? st.birthtimeMs : Infinity);
const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
const S_IFMT = 0o170000, S_IFDIR = 0o040000;

/** The cgroup v2 directory of a process from its mountinfo and /proc/self/cgroup, or null. */
function cgroupDirFrom(mountinfo: string, cgroup: string): string | null {
  const root = cgroup2Root(mountinfo);
  if (!root) return null;
  const own = parseCgroup(cgroup).find((l) => l.id === '0')?.path ?? '/';
  return `${root}${own === '/' ? '' : own}`;
}

/** This process's cgroup v2 directory (where the cgroup probe makes its children), or null. */
export function ownCgroupDir(): string | null {
  try {
    return cgroupDirFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return null;
  }
}

/**
 * The cgroup v2 directory of `host`'s process as it sees it: where the cgroup probe makes its
 * children through that host interface (probes/cgroup.ts reads the same two files), or null.
 */
export async function hostCgroupDir(host: HostIf): Promise<string | null> {
  if (host === localHost) return ownCgroupDir();
  try {
    const [mi, cg] = await Promise.all([host.readFile('/proc/self/mountinfo'), host.readFile('/proc/self/cgroup')]);
    return mi.ok && cg.ok ? cgroupDirFrom(mi.value!, cg.value!) : null;
  } catch {
    return null; // the host interface is gone
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Temporary report files (and staging folders) in `outDir` named after a pid (this caller's to remove), with when they were made. */
function tempCandidates(outDir: string): { path: string; pid: number; ns: number; made: number }[] {
  const out: { path: string; pid: number; ns: number; made: number }[] = [];
  for (const name of list(outDir)) {
    const maker = tempMaker(name);
    if (maker === null) continue;
    const path = join(outDir, name);
    try {
      const st = lstatSync(path);
      if (!(st.isFile() || st.isDirectory()) || !mine(st.uid)) continue;
      out.push({ path, ...maker, made: madeAt(st) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Temporary report files (and staging folders) in `outDir` whose run is gone. */
export async function deadTempFiles(outDir: string): Promise<{ path: string; pid: number }[]> {
  // (A report folder may be shared with runs of other pid namespaces: only this one's makers are judged.)
  const judges = localJudgeNs();
  const all = tempCandidates(outDir).filter((f) => judges !== null && f.ns === judges);
  const runs = await Promise.all(all.map((f) => makerMayRun(f.pid, f.made)));
  return all.filter((_, i) => !runs[i]).map(({ path, pid }) => ({ path, pid }));
}

/**
 * The cgroups below `host`'s own cgroup whose maker is gone (makerMayRun asked of that host's
 * /proc): names nsprobe makes, directories the caller owns there. Locally the folder's times
 * tell a reused pid from the maker; a target's stat has none, so there every pid that runs keeps
 * its cgroups (the safe side).
 */
async function deadCgroups(host: HostIf): Promise<{ path: string; pid: number }[]> {
  const dir = await hostCgroupDir(host);
  if (!dir) return [];
  // Only makers of the pid namespace whose /proc this pass reads (its own): a run in another one
  // (unshare -pf beside this machine's runs) names its cgroups with pids this /proc knows nothing of.
  const { judges } = await hostPidNs(host).catch(() => ({ judges: null }));
  if (judges === null) return [];
  const names = await host.readdir(dir).catch(() => null);
  if (!names?.ok) return [];
  const judged = await Promise.all(
    names.value!.map(async (name) => {
      const m = CGROUP_RE.exec(name);
      if (!m) return null;
      const { pid, ns } = makerOf(m);
      if (ns !== judges) return null;
      const path = join(dir, name);
      try {
        // One stat: here node:fs's (it also gives the birth time), on a target its host interface's.
        let made: number | null = null;
        if (host === localHost) {
          const st = lstatSync(path);
          if (!st.isDirectory() || !mine(st.uid, host)) return null;
          made = madeAt(st);
        } else {
          const st = await host.stat(path, true);
          if (!st.ok || (st.value!.mode & S_IFMT) !== S_IFDIR || !mine(st.value!.uid, host)) return null;
        }
        if (await makerMayRun(pid, made, host)) return null;
        // On a target, a cgroup something still runs in is not taken (nor killed): its maker's
        // pid may be of another pid namespace than the box's (a --via command that starts the
        // agent in one, beside the controller's own runs), and a killed agent's sandboxes end by
        // their parent-death signal, so a later run finds it empty. (This machine's pass kills
        // what is left in a dead run's cgroup, as it always has.)
        if (host !== localHost && !/^populated 0$/m.test((await host.readFile(`${path}/cgroup.events`)).value ?? '')) return null;
        return { path, pid };
      } catch {
        return null; // gone meanwhile, or the host interface is
      }
    }),
  );
  return judged.filter((x) => x !== null);
}

/** This run's cgroups on this machine (for the hurried exit: synchronous). */
function runCgroupsSync(pids: readonly number[]): string[] {
  const dir = ownCgroupDir();
  if (!dir) return [];
  // (This machine's boxes are in this process's pid namespace: their names carry its inode.)
  const ns = localPidNs() ?? 0;
  const out: string[] = [];
  for (const name of list(dir)) {
    const m = CGROUP_RE.exec(name);
    if (!m || !pids.includes(makerOf(m).pid) || makerOf(m).ns !== ns) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (st.isDirectory() && mine(st.uid)) out.push(path);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The queues of the host's IPC namespace: through an mqueue mount here, or (root) a fresh one in
 * a private mount namespace read through /proc/PID/root. `close` ends that helper.
 */
async function hostQueueDir(): Promise<{ dir: string; close: () => Promise<void> } | null> {
  const m = ownMqueueMount();
  if (m) return { dir: m, close: async () => undefined };
  if (euid() !== 0) return null;
  const { enter } = await import('./sandbox.js');
  const { MS, mountPoint } = await import('../probes/mnt.js');
  let s;
  try {
    s = await enter({ namespaces: ['mnt'], mode: 'privileged', timeoutMs: 2000 });
  } catch {
    return null;
  }
  const where = await mountPoint(localHost);
  const a = await s.mount('', '/', '', MS.REC | MS.PRIVATE);
  const b = await s.mount('mqueue', where, 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC);
  const sb = s;
  if (!a.ok || !b.ok) {
    await sb.close();
    return null;
  }
  return { dir: `/proc/${sb.pid}/root${where}`, close: async () => void (await sb.close()) };
}

/** The names of the host IPC namespace's POSIX queues, or null when they cannot be listed here. */
export async function listHostQueueNames(): Promise<string[] | null> {
  const q = await hostQueueDir().catch(() => null);
  if (!q) return null;
  try {
    return readdirSync(q.dir);
  } catch {
    return null;
  } finally {
    await q.close();
  }
}

/**
 * Removes what dead nsprobe runs left (see the top of this file) on the machine of `host`: this
 * one (LocalHost, the default) or, through its host interface (a BoxHost over the agent), a
 * --via/--ssh target, where the cgroups are those below the box's own cgroup as it sees them,
 * their makers are asked of the target's /proc and "mine" is by the target's ids. Never throws;
 * returns what it found, removed or not. `queues: false` skips the host's queues (which may cost a
 * sandbox). The queues go through the transport (native()): while it is a remote one (an agent on
 * a target) they are the target's, so a pass of this machine (LocalHost) then skips them; the
 * caller runs this machine's pass before it sets such a transport (src/cli.ts).
 */
export async function collectDebris(opts: { outDir?: string; queues?: boolean; sysv?: boolean; host?: HostIf } = {}): Promise<Debris[]> {
  const host = opts.host ?? localHost;
  const remote = transportContext().remote;
  const found: Debris[] = [];
  for (const c of await deadCgroups(host)) {
    let error: string | null = null;
    try {
      // On a target only a plain rmdir: what runs there when we look (a run in another pid
      // namespace whose cgroup looked dead, entering it now) gets EBUSY, never a cgroup.kill.
      if (host === localHost) await removeCgroup(host, c.path, 500);
      else (await host.rmdir(c.path)).get();
    } catch (e) {
      error = why(e);
    }
    found.push({ kind: 'cgroup', what: c.path, pid: c.pid, error });
  }
  if (opts.queues !== false && !(remote && host === localHost)) {
    const slotNames = new Set<string>();
    let n: NativeAddon | null = null;
    let listed = false;
    try {
      n = native();
      // A remote transport's queues are the target's: no listing of this machine's stands for
      // them, only the agent user's slot names (below).
      const dir = remote ? Promise.resolve(null) : hostQueueDir();
      if (!remote) listable ??= dir.then((q) => q !== null, () => false);
      const q = await dir;
      if (q) {
        // The pid names: only makers of this pid namespace, judged by its own /proc (the IPC
        // namespace is shared with runs in other pid namespaces, unshare -pf's).
        const judges = localJudgeNs();
        try {
          for (const name of list(q.dir)) {
            // Slot queues, also other users' (root lists them all): the kernel says which are
            // dead, below.
            if (SLOT_QUEUE_RE.test(name)) {
              slotNames.add(name);
              continue;
            }
            const m = QUEUE_RE.exec(name);
            if (!m) continue;
            const { pid, ns } = makerOf(m);
            if (judges === null || ns !== judges) continue;
            let st: Stats;
            try {
              st = statSync(join(q.dir, name));
            } catch {
              continue;
            }
            if (!mine(st.uid) || (await makerMayRun(pid, madeAt(st)))) continue;
            const r = n.mqUnlink(name);
            found.push({ kind: 'queue', what: name, pid, error: r === 0 ? null : `errno ${-r}` });
          }
          listed = true;
        } finally {
          await q.close();
        }
      }
    } catch {
      // best effort: nothing else to do about queues here
    }
    // Without a listing of them, this user's slot names are tried one by one (see the top of this file).
    if (n?.mqReap) {
      if (!listed) {
        const uid = queueUid();
        for (let slot = 0; slot < HOST_QUEUE_SLOTS; slot++) slotNames.add(hostQueueName(uid, slot));
      }
      const addon = n;
      const reap = async (name: string) => addon.mqReap!(name);
      // (All asked at once: through an agent, one round trip instead of one per name.)
      const names = [...slotNames].filter((name) => !hostQueues.has(name)); // not this run's, being made
      const answers = await Promise.all(names.map((name) => reap(name).catch(() => -ENOENT)));
      names.forEach((name, i) => {
        const r = answers[i];
        if (r === 0) found.push({ kind: 'queue', what: name, pid: null, error: null });
        else if (r !== -ENOENT && r !== -EBUSY && r !== -13 /* EACCES: another user's */) found.push({ kind: 'queue', what: name, pid: null, error: `errno ${-r}` });
      });
    }
  }
  // The ipc probe's host-side SysV objects (see sysvHostKey): removed by key through the
  // transport, in its IPC namespace (this machine's addon, or the target's agent), like the queues.
  if (opts.sysv !== false && !(remote && host === localHost)) {
    try {
      const n = native();
      for (const o of n.sysvRemove ? await deadSysv(host) : []) {
        const r = n.sysvRemove!(o.kind, o.key);
        if (r === -ENOENT) continue; // another run's pass took it first
        const what = `${SYSV_KINDS[o.kind - 1][1]} key 0x${(o.key >>> 0).toString(16)}`;
        found.push({ kind: 'sysv', what, pid: o.pid, error: r === 0 ? null : `errno ${-r}` });
      }
    } catch {
      // best effort, as the queues
    }
  }
  if (opts.outDir) {
    for (const f of await deadTempFiles(opts.outDir)) {
      let error: string | null = null;
      try {
        rmSync(f.path, { recursive: true, force: true });
      } catch (e) {
        error = why(e);
      }
      found.push({ kind: 'file', what: f.path, pid: f.pid, error });
    }
  }
  return found;
}

const KIND_WORD = { cgroup: 'cgroup', queue: 'POSIX message queue', sysv: 'SysV IPC object', file: 'temporary report file' } as const;

/**
 * One report note per object found. `on`: where, for a pass that is not this machine's (the
 * target's, collected through its host interface: "on the target").
 */
export function debrisNotes(d: readonly Debris[], on?: string): string[] {
  const where = on ? ` ${on}` : '';
  const there = on ? ' there' : '';
  return d.map((x) => {
    const by = x.pid === null ? 'an nsprobe run that has ended' : `nsprobe process ${x.pid}${there}`;
    return x.error === null
      ? `removed a ${KIND_WORD[x.kind]}${where} left by ${by}${x.pid === null ? ' (no process holds it)' : ', which has ended'}: ${x.what}`
      : `could not remove a ${KIND_WORD[x.kind]}${where} left by ${by} (${x.error}): ${x.what}`;
  });
}

/**
 * The hurried exit (a second signal): synchronously kills and reaps every sandbox, removes this
 * run's cgroups and host queues and its temporary report files. Never throws.
 */
export function hurriedCleanup(outDir?: string): void {
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch {
      // best effort; the next run collects what is left
    }
  };
  const n = native();
  // Through the agent: its boxes end first, the agent stays to remove the host objects (in its
  // IPC namespace, the target's), then it ends. The addon: every box ends, Node removes them.
  attempt(() => (n.endBoxes ? n.endBoxes(500) : n.shutdown(500)));
  for (const q of [...hostQueues]) attempt(() => void (n.mqUnlink(q) === 0 && hostQueues.delete(q)));
  // Only objects in nsprobe's host mode: a key is noted before its create, which may come back
  // EEXIST (another's object). Here, the machine's /proc/sysvipc says; through an agent the
  // objects are the target's, which this process cannot read synchronously.
  const now = transportContext().remote ? null : SYSV_KINDS.map(([kind, name]) => {
    try {
      return parseSysv(kind, readFileSync(`/proc/sysvipc/${name}`, 'utf8'));
    } catch {
      return null;
    }
  });
  for (const [k, o] of [...hostSysv]) {
    const list = now?.[o.kind - 1];
    if (list && !list.some((x) => x.key === o.key && x.mode === SYSV_HOST_MODE)) continue;
    attempt(() => void (n.sysvRemove?.(o.kind, o.key) === 0 && hostSysv.delete(k)));
  }
  if (n.endBoxes) attempt(() => n.shutdown(500));
  for (const path of runCgroupsSync([process.pid, ...runPids])) {
    attempt(() => {
      const deadline = performance.now() + 300;
      for (let killed = false; ; ) {
        try {
          rmdirSync(path);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || performance.now() > deadline) throw e;
        }
        if (!killed) {
          killed = true;
          attempt(() => writeFileSync(`${path}/cgroup.kill`, '1'));
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    });
  }
  const ns = localPidNs() ?? 0;
  if (outDir) for (const f of tempCandidates(outDir).filter((x) => x.pid === process.pid && x.ns === ns)) attempt(() => rmSync(f.path, { recursive: true, force: true }));
}
