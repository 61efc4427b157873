// Which pid namespace a pid belongs to, for the names of what a run makes and for the debris pass
// that judges them (src/cleanup.ts).
//
// A pid means something only in one pid namespace: a run inside `unshare -pf` names its objects
// with small pids of its own namespace, and a pass there asks its /proc about a host run's pid.
// So a name says its maker's namespace: nothing more for a maker in the initial pid namespace
// (its nsfs inode is the kernel's fixed PROC_PID_INIT_INO, so today's names and old debris keep
// their meaning), `<pid>@<inode>` for any other, and `<pid>@0` where the maker could not read its
// own /proc/self/ns/pid (no nsfs inode is 0: a pass never judges it). A pass judges a name only
// when the procfs it reads is of its own pid namespace and that namespace is the maker's. An
// inode that a later namespace reuses is fine: every maker of the earlier one has ended.
import { readFileSync, readlinkSync } from 'node:fs';
import type { HostIf } from './host/hostif.js';

/** The nsfs inode of the initial pid namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
export const PID_INIT_INO = 0xeffffffc;

/** The inode of a namespace link's text (`pid:[4026531836]`), or null. */
export function nsLinkIno(link: string | null | undefined): number | null {
  const m = /^pid:\[(\d+)\]$/.exec(link ?? '');
  const n = m ? Number(m[1]) : 0;
  return n > 0 ? n : null;
}

/** The NSpid line of a /proc/PID/status text (the pid from the procfs's namespace down to the process's own), or null (Linux < 4.1). */
export function nsPids(status: string | null | undefined): number[] | null {
  const m = /^NSpid:\s*([\d\s]+)$/m.exec(status ?? '');
  return m ? m[1].trim().split(/\s+/).map(Number) : null;
}

/** A maker's pid as its names carry it: `<pid>` in the initial pid namespace, `<pid>@<inode>` in another, `<pid>@0` when not known. */
export function pidTag(pid: number, ns: number | null): string {
  return ns === PID_INIT_INO ? `${pid}` : `${pid}@${ns ?? 0}`;
}

/** The regular-expression text of a pid tag: group 1 the pid, group 2 the inode (absent: the initial namespace). */
export const PID_TAG_RE = String.raw`(\d+)(?:@(\d+))?`;

/** The maker's namespace of a parsed tag (PID_TAG_RE's group 2): the initial one when absent; 0 (never judged) for the marker. */
export function tagNs(group: string | undefined): number {
  return group === undefined ? PID_INIT_INO : Number(group);
}

let own: { ns: number | null; judges: number | null } | undefined;

function readOwn(): { ns: number | null; judges: number | null } {
  let ns: number | null = null;
  try {
    ns = nsLinkIno(readlinkSync('/proc/self/ns/pid'));
  } catch {
    // no procfs, or no nsfs: the marker
  }
  let judges: number | null = null;
  try {
    // The procfs is of this process's own pid namespace when /proc/self is this process's pid as
    // the kernel gives it, and (Linux 4.1+) its NSpid has one entry (the procfs's namespace down to
    // the process's own: one level).
    const self = readlinkSync('/proc/self');
    const pids = nsPids(readFileSync('/proc/self/status', 'utf8'));
    if (self === String(process.pid) && (pids === null || pids.length === 1)) judges = ns;
  } catch {
    // not known: judges nothing
  }
  return { ns, judges };
}

/** The nsfs inode of this process's pid namespace, or null when /proc/self/ns/pid cannot be read. */
export function localPidNs(): number | null {
  return (own ??= readOwn()).ns;
}

/** The pid namespace whose makers this process's debris pass may judge by its /proc (its own, when that procfs is its own), or null. */
export function localJudgeNs(): number | null {
  return (own ??= readOwn()).judges;
}

/** This process's pid as the names it makes carry it. */
export function localPidTag(): string {
  return pidTag(process.pid, localPidNs());
}

const hostNs = new WeakMap<HostIf, Promise<{ ns: number | null; judges: number | null }>>();

/**
 * The pid namespace of `host`'s process (`ns`: the one its pid, host.pid, is a pid of; null when
 * not known) and the one whose makers a pass through it may judge (`judges`: that namespace when
 * the procfs it reads is its own, /proc/self being host.pid there with one NSpid level; else
 * null). Locally from this process; through a target's host interface from its box's /proc/self.
 */
export async function hostPidNs(host: HostIf): Promise<{ ns: number | null; judges: number | null }> {
  if (host.kind === 'local') return { ns: localPidNs(), judges: localJudgeNs() };
  let p = hostNs.get(host);
  if (!p) {
    p = (async () => {
      const opt = async (r: Promise<{ ok: boolean; value?: string }>) => r.then((x) => (x.ok ? x.value! : null), () => null);
      const [link, self, status] = await Promise.all([opt(host.readlink('/proc/self/ns/pid')), opt(host.readlink('/proc/self')), opt(host.readFile('/proc/self/status'))]);
      const ns = nsLinkIno(link);
      const pids = nsPids(status);
      // host.pid is a pid of the box's own namespace when it is the last NSpid entry (the box's own pid).
      const ownPid = pids ? pids[pids.length - 1] === host.pid : self === String(host.pid);
      const judges = self === String(host.pid) && (pids === null || pids.length === 1) ? ns : null;
      return { ns: ownPid ? ns : null, judges };
    })();
    hostNs.set(host, p);
  }
  return p;
}

/** `host`'s pid as the names it makes carry it (src/pidns.ts): the cgroup probe's folder names. */
export async function hostPidTag(host: HostIf): Promise<string> {
  return pidTag(host.pid, (await hostPidNs(host)).ns);
}
