// Cgroup: inside, /proc/self/cgroup shows the namespace's root while the host sees the process's
// real cgroup path. To make the difference observable the probe enters from a child cgroup that
// it creates (and removes); without the right to create one it uses a hierarchy in which this
// process already sits below the root.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import type { ProbeContext, ProbeDef } from '../src/probe.js';
import { ProbeUnsupported } from '../src/probe.js';

export interface CgroupLine {
  id: string;
  controllers: string;
  path: string;
}

export function parseCgroup(text: string): CgroupLine[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const [id, controllers, ...rest] = l.split(':');
    return { id, controllers, path: rest.join(':') };
  });
}

/** The cgroup2 mount point (unified or hybrid), from mountinfo. */
export function cgroup2Root(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | null {
  for (const l of mountinfo.split('\n')) {
    const [pre, post] = l.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre.split(' ')[4];
  }
  return null;
}

/** Creates a child cgroup under this process's own v2 cgroup; returns its directory or null. */
function makeChildCgroup(ctx: ProbeContext): string | null {
  const root = cgroup2Root();
  if (!root || process.geteuid?.() !== 0) return null;
  const own = parseCgroup(readFileSync('/proc/self/cgroup', 'utf8')).find((l) => l.id === '0')?.path ?? '/';
  const dir = `${root}${own === '/' ? '' : own}/nsprobe-${process.pid}-${ctx.token}`;
  try {
    mkdirSync(dir);
  } catch {
    return null;
  }
  ctx.deferAfterClose(() => removeCgroup(dir));
  return dir;
}

/**
 * Removes a cgroup this probe made. After an interruption a process may still be on its way out
 * of it (a grandchild whose parent-death signal has not taken it yet), and rmdir then fails with
 * EBUSY: one run in 50 interruptions left such a cgroup behind. So on EBUSY everything still in
 * it is killed (cgroup.kill, Linux 5.14) and the removal retried until `populated 0`.
 */
export async function removeCgroup(dir: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let killed = false; ; killed = true) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || performance.now() > deadline) throw e;
    }
    // Once: a process the kill reached is on its way out; the retries wait for it.
    if (!killed && existsSync(`${dir}/cgroup.kill`)) writeFileSync(`${dir}/cgroup.kill`, '1');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const cgroup: ProbeDef = {
  name: 'cgroup',
  namespace: 'cgroup',
  cloneFlag: 'CLONE_NEWCGROUP',
  since: '4.6',
  summary: 'the cgroup tree is seen from the namespace\'s own root',
  async run(ctx) {
    const dir = makeChildCgroup(ctx);
    const a = await ctx.enter(dir ? { cgroupProcs: [`${dir}/cgroup.procs`] } : {});
    const hostView = parseCgroup(readFileSync(`/proc/${a.pid}/cgroup`, 'utf8'));
    const observable = hostView.filter((l) => l.path !== '/');
    if (observable.length === 0) {
      throw new ProbeUnsupported('cannot make the cgroup namespace observable: this user may create no cgroup and the process sits in the root of every hierarchy');
    }
    const inside = parseCgroup(await a.readFile('/proc/self/cgroup'));
    for (const l of observable) {
      const mine = inside.find((i) => i.id === l.id);
      ctx.expect(`inside, hierarchy ${l.id}${l.controllers ? ` (${l.controllers})` : ''} shows the namespace root /`, mine?.path, '/', 'inside');
      ctx.check(`the host sees the real path of hierarchy ${l.id}`, l.path !== '/', 'a path below /', l.path, 'host');
    }
    if (dir) ctx.expect('the host sees the process in the child cgroup the probe made', hostView.find((l) => l.id === '0')?.path.endsWith(dir.split('/').pop()!), true, 'host');
    // A second process in the same cgroup and namespace (a joiner would sit outside the root).
    const second = ctx.track(await a.forkServe());
    const secondView = parseCgroup(await second.readFile('/proc/self/cgroup'));
    ctx.expect('a second process in the namespace sees the same root (control)', secondView.filter((l) => observable.some((o) => o.id === l.id)).map((l) => l.path), observable.map(() => '/'), 'control');
    const outside = await ctx.hostSide();
    const outsideView = parseCgroup(await outside.readFile('/proc/self/cgroup'));
    ctx.check('a process outside the namespace reads real paths with the same request (control)', outsideView.some((l) => l.path !== '/'), 'a path below /', outsideView.map((l) => l.path), 'control');
  },
};
