// Cgroup: inside, /proc/self/cgroup shows the namespace's root while the host sees the process's
// real cgroup path. To make the difference observable the probe enters from a child cgroup that
// it creates (and removes); without the right to create one it uses a hierarchy in which this
// process already sits below the root.
import { making, type HostIf } from '../src/host/hostif.js';
import { hostPidTag } from '../src/pidns.js';
import type { ProbeContext, ProbeDef } from '../src/probe.js';
import { ProbeUnsupported } from '../src/probe.js';
import { Outcome } from '../src/sandbox.js';

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
export function cgroup2Root(mountinfo: string): string | null {
  for (const l of mountinfo.split('\n')) {
    const [pre, post] = l.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre.split(' ')[4];
  }
  return null;
}

/**
 * Creates a child cgroup under this process's own v2 cgroup; the value is its directory. Tried by
 * every caller (never decided from the euid): root of a user namespace whose /sys/fs/cgroup
 * belongs to another user gets EACCES, a normal user with a delegated cgroup succeeds.
 */
async function makeChildCgroup(ctx: ProbeContext, root: string, ownCgroup: string): Promise<Outcome<string>> {
  // Environment assumption: /proc/self/cgroup names the host side's cgroup relative to the
  // cgroup2 mount (true unless it runs in a cgroup namespace rooted elsewhere than that mount).
  const own = parseCgroup(ownCgroup).find((l) => l.id === '0')?.path ?? '/';
  const parent = `${root}${own === '/' ? '' : own}`;
  // Named after the host process and its pid namespace (src/pidns.ts), so that a later run's
  // debris pass (src/cleanup.ts) can tell whether its maker still runs, or leaves it be.
  const dir = `${parent}/nsprobe-${await hostPidTag(ctx.host)}-${ctx.token}`;
  const step = `create a cgroup directory in ${parent}`;
  // A box host killed while the mkdir is in flight (Ctrl-C) loses the answer, not the mkdir: then
  // the removal is registered all the same (src/host/hostif.ts OutcomeUnknown).
  const made = await making(ctx.host.mkdir(dir), () => ctx.deferAfterClose(() => removeCgroup(ctx.host, dir, 200).catch(() => undefined)));
  if (!made.ok) return new Outcome<string>(step, made.errno, 'mkdir', undefined);
  ctx.deferAfterClose(() => removeCgroup(ctx.host, dir));
  return Outcome.ok(step, dir);
}

/**
 * Removes a cgroup this probe made. After an interruption a process may still be on its way out
 * of it (a grandchild whose parent-death signal has not taken it yet), and rmdir then fails with
 * EBUSY: one run in 50 interruptions left such a cgroup behind. So on EBUSY everything still in
 * it is killed (cgroup.kill, Linux 5.14) and the removal retried until `populated 0`.
 */
export async function removeCgroup(host: HostIf, dir: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let killed = false; ; killed = true) {
    const r = await host.rmdir(dir);
    if (r.ok) return;
    if (r.code !== 'EBUSY' || performance.now() > deadline) throw r.error();
    // Once: a process the kill reached is on its way out; the retries wait for it.
    if (!killed && (await host.exists(`${dir}/cgroup.kill`))) await host.writeFile(`${dir}/cgroup.kill`, '1').get();
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const cgroup: ProbeDef = {
  name: 'cgroup',
  namespace: 'cgroup',
  cloneFlag: 'CLONE_NEWCGROUP',
  since: '4.6',
  summary: 'the cgroup tree is seen from the namespace\'s own root',
  creates: () => ['cgroup'],
  uses: { cgroupWrite: true },
  async run(ctx) {
    const CHILD = 'the host sees the process in the child cgroup the probe made';
    // Where Node already sits below the root of some hierarchy the sandbox does too, and the
    // child cgroup is an extra; elsewhere it is what makes the namespace observable at all.
    const ownCgroup = await ctx.host.readFile('/proc/self/cgroup').get();
    const nodeBelowRoot = parseCgroup(ownCgroup).some((l) => l.path !== '/');
    const root = cgroup2Root(await ctx.host.readFile('/proc/self/mountinfo').get());
    let dir: string | null = null;
    if (root) {
      const made = await makeChildCgroup(ctx, root, ownCgroup);
      if (made.ok) dir = made.value!;
      // Nothing observable without it: the failed step is the probe's failure (the runner names
      // the gate, cgroup_writable, when one explains it).
      else if (!nodeBelowRoot) throw made.error();
      else ctx.helper(made, [CHILD], { required: false, side: 'host' });
    } else {
      ctx.skip(CHILD, 'no cgroup2 hierarchy is mounted here', null, 'host');
    }
    const a = await ctx.enter(dir ? { cgroupProcs: [`${dir}/cgroup.procs`] } : {});
    // Environment assumption: the host side's /proc shows the sandbox by a.pid (its child).
    const hostView = parseCgroup(await ctx.host.readFile(`/proc/${a.pid}/cgroup`).get());
    const observable = hostView.filter((l) => l.path !== '/');
    if (observable.length === 0) {
      throw new ProbeUnsupported('cannot make the cgroup namespace observable: this user may create no cgroup and the process sits in the root of every hierarchy');
    }
    const inside = parseCgroup(await a.readFile('/proc/self/cgroup').get());
    // Hierarchy ids and controllers are facts of the host: in the note, not the name (ids derive
    // from names and must be the same on every host).
    const which = (l: CgroupLine) => `hierarchy ${l.id}${l.controllers ? ` (${l.controllers})` : ''}`;
    const mine = observable.map((l) => inside.find((i) => i.id === l.id)?.path ?? null);
    ctx.expect('inside, every hierarchy the process sits below the root of shows the namespace root /', mine, observable.map(() => '/'), 'inside', observable.map(which).join(', '));
    ctx.check('the host sees the real paths of those hierarchies', observable.every((l) => l.path !== '/'), 'paths below /', observable.map((l) => l.path), 'host', observable.map(which).join(', '));
    if (dir) ctx.expect(CHILD, hostView.find((l) => l.id === '0')?.path.endsWith(dir.split('/').pop()!), true, 'host');
    // A second process in the same cgroup and namespace (a joiner would sit outside the root).
    const second = ctx.track(await a.forkServe().get());
    const secondView = parseCgroup(await second.readFile('/proc/self/cgroup').get());
    ctx.expect('a second process in the namespace sees the same root (control)', secondView.filter((l) => observable.some((o) => o.id === l.id)).map((l) => l.path), observable.map(() => '/'), 'control');
    const outside = await ctx.hostSide();
    const outsideView = parseCgroup(await outside.readFile('/proc/self/cgroup').get());
    ctx.check('a process outside the namespace reads real paths with the same request (control)', outsideView.some((l) => l.path !== '/'), 'a path below /', outsideView.map((l) => l.path), 'control');
  },
};
