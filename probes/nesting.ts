// Nesting: how many user namespaces and pid namespaces can be nested below the probe's starting
// point, measured by creating them one inside the other until the kernel refuses (OP_NEST, in a
// forked helper). The kernel's limits: create_user_ns() refuses when the parent is already deeper
// than 32 levels (so the deepest user namespace is at level 33, the initial one being 0;
// user_namespaces(7) calls this "32 levels" of nesting), create_pid_namespace() refuses beyond
// MAX_PID_NS_LEVEL = 32. The error is ENOSPC since 4.9 (EUSERS on 3.11-4.8).
import { readFileSync } from 'node:fs';
import { NsError } from '../src/errors.js';
import { kernelAtLeast } from '../src/gates.js';
import type { ProbeDef } from '../src/probe.js';

const ENOSPC = 28;
const EUSERS = 87;
/** The documented nesting limit of both user and pid namespaces. */
export const NEST_LIMIT = 32;
/** Deepest level a user namespace can be at (parent level > 32 is refused). */
export const USERNS_MAX_LEVEL = NEST_LIMIT + 1;
/** Deepest level a pid namespace can be at (MAX_PID_NS_LEVEL). */
export const PIDNS_MAX_LEVEL = NEST_LIMIT;

/** This process's pid namespace level: NSpid lists one pid per level. */
export function ownPidNsLevel(status = readFileSync('/proc/self/status', 'utf8')): number {
  const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
  return line ? line.slice(6).trim().split(/\s+/).length - 1 : 0;
}

/** This process's user namespace level, from the id maps: the initial namespace maps every id. */
export function ownUserNsLevel(): number | null {
  try {
    const full = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).map(Number);
    if (full.length === 3 && full[0] === 0 && full[1] === 0 && full[2] === 4294967295) return 0;
  } catch {
    return null;
  }
  return null;
}

const errName = (e: number) => (e === ENOSPC ? 'ENOSPC' : e === EUSERS ? 'EUSERS' : `errno ${e}`);

export const nesting: ProbeDef = {
  name: 'nesting',
  namespace: 'user',
  cloneFlag: 'CLONE_NEWUSER',
  since: '3.11',
  summary: 'user and pid namespaces nest to the kernel limit (32 levels) and the next one fails with ENOSPC',
  // The measuring sandbox is only in a user namespace (rootless); the pid namespaces it creates
  // are listed so that a max_pid_namespaces gate explains a refusal.
  namespaces: (mode) => (mode === 'rootless' ? ['user', 'pid'] : ['pid']),
  async run(ctx) {
    const a = await ctx.enter({ namespaces: [] });
    const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const wantErr = kernelAtLeast(release, [4, 9]) === false ? EUSERS : ENOSPC;
    const nodeUser = ownUserNsLevel();
    const startUser = nodeUser === null ? null : nodeUser + (ctx.mode === 'rootless' ? 1 : 0);
    const startPid = ownPidNsLevel();

    for (const kind of ['user', 'pid'] as const) {
      const r = await a.nest(kind, 64);
      const start = kind === 'user' ? startUser : startPid;
      const max = kind === 'user' ? USERNS_MAX_LEVEL : PIDNS_MAX_LEVEL;
      if (r.levels === 0) {
        // Not even one: a count limit (user.max_*_namespaces) or policy, not the depth. Let the
        // runner explain it by its gate.
        throw new NsError('request', 'unshare', r.errno, `no ${kind} namespace could be created below the starting point: ${errName(r.errno)}`);
      }
      ctx.metric(`${kind}.levels`, r.levels);
      ctx.metric(`${kind}.limit`, NEST_LIMIT);
      if (start !== null) ctx.metric(`${kind}.depth`, start + r.levels);
      ctx.expect(`${kind} namespaces: the one after the deepest fails with ${errName(wantErr)}`, errName(r.errno), errName(wantErr), 'inside');
      if (start !== null) {
        ctx.expect(`${kind} namespaces nest ${max - start} levels below the start (level ${start}), down to level ${max}`, r.levels, max - start, 'inside',
          kind === 'user' ? `the kernel refuses a user namespace whose parent is deeper than ${NEST_LIMIT}, so the deepest is level ${max}` : `MAX_PID_NS_LEVEL = ${max}`);
        ctx.check(`${kind} namespaces: the measured depth reaches the documented limit of ${NEST_LIMIT}`, start + r.levels >= NEST_LIMIT, NEST_LIMIT, start + r.levels, 'inside');
      } else {
        ctx.check(`${kind} namespaces nest below the start until the kernel refuses`, r.levels > 0, `> 0 (start level unknown)`, r.levels, 'inside');
      }
    }
    // Control: the measurement ran in a forked helper; the sandbox's own namespaces did not move.
    const before = await a.readlink('/proc/self/ns/user');
    await a.nest('user', 1);
    ctx.expect('the measuring process stays in its own user namespace (control)', await a.readlink('/proc/self/ns/user'), before, 'control');
  },
};
