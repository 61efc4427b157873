// Nesting: how many user namespaces and pid namespaces can be nested below the probe's starting
// point, measured by creating them one inside the other until the kernel refuses (OP_NEST, in a
// forked helper). The kernel's limits: create_user_ns() refuses when the parent is already deeper
// than 32 levels (so the deepest user namespace is at level 33, the initial one being 0;
// user_namespaces(7) calls this "32 levels" of nesting), create_pid_namespace() refuses beyond
// MAX_PID_NS_LEVEL = 32. The error is ENOSPC since 4.9 (EUSERS on 3.11-4.8).
import { E } from '../src/errno.js';
import { kernelAtLeast } from '../src/gates.js';
import type { ProbeDef } from '../src/probe.js';
import { Outcome } from '../src/sandbox.js';

const ENOSPC = E.ENOSPC;
const EUSERS = E.EUSERS;
/** errnos of the caller's resource limits (processes, memory, descriptors). */
const RESOURCE_LIMIT_ERRNOS = new Set<number>([E.EAGAIN, E.ENOMEM, E.EMFILE, E.ENFILE]);
/** The documented nesting limit of both user and pid namespaces. */
export const NEST_LIMIT = 32;
/** Deepest level a user namespace can be at (parent level > 32 is refused). */
export const USERNS_MAX_LEVEL = NEST_LIMIT + 1;
/** Deepest level a pid namespace can be at (MAX_PID_NS_LEVEL). */
export const PIDNS_MAX_LEVEL = NEST_LIMIT;

const PF_KTHREAD = 0x00200000;

/** Whether /proc/2 is kthreadd, a kernel thread: kernel threads live only in the initial pid namespace. */
export function procIsInitialPidNs(stat2: string | null): boolean {
  if (!stat2) return false;
  const f = stat2.slice(stat2.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags ...
  const ppid = Number(f[1]);
  const flags = Number(f[6]);
  return ppid === 0 && Number.isFinite(flags) && (flags & PF_KTHREAD) !== 0;
}

/**
 * This process's pid namespace level, or null when it cannot be known from here. NSpid lists one
 * pid per level, but only from the pid namespace of the /proc it is read through down: under a
 * container's /proc (or `unshare -pf --mount-proc`) it has one entry at any depth. Environment
 * assumption made explicit: the count is the level only when /proc is the initial pid
 * namespace's, which shows because kernel threads (kthreadd, pid 2, PPid 0) are visible there
 * and nowhere else (hidepid hiding them makes the level unknown, never wrong).
 */
export function ownPidNsLevel(status: string, initialProc: boolean): number | null {
  const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
  if (!line || !initialProc) return null;
  return line.slice(6).trim().split(/\s+/).length - 1;
}

/** A process's user namespace level from its uid_map text (null: unreadable): the initial namespace maps every id. */
export function ownUserNsLevel(uidMap: string | null): number | null {
  if (uidMap === null) return null;
  const full = uidMap.trim().split(/\s+/).map(Number);
  return full.length === 3 && full[0] === 0 && full[1] === 0 && full[2] === 4294967295 ? 0 : null;
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
  // Both modes nest user and pid namespaces below the measuring sandbox.
  creates: () => ['user', 'pid'],
  uses: { userNsNesting: true, pidNsNesting: true },
  async run(ctx) {
    const a = await ctx.enter({ namespaces: [] });
    const wantErr = kernelAtLeast(ctx.host.release, [4, 9]) === false ? EUSERS : ENOSPC;
    const text = async (p: string) => {
      const r = await ctx.host.readFile(p);
      return r.ok ? r.value! : null;
    };
    const nodeUser = ownUserNsLevel(await text('/proc/self/uid_map'));
    const startUser = nodeUser === null ? null : nodeUser + (ctx.mode === 'rootless' ? 1 : 0);
    const startPid = ownPidNsLevel(await ctx.host.readFile('/proc/self/status').get(), procIsInitialPidNs(await text('/proc/2/stat')));

    let blocked: Outcome<void> | null = null;
    for (const kind of ['user', 'pid'] as const) {
      const r = await a.nest(kind, 64).get();
      // Nesting forks a process per pid level: a process or memory limit of the caller
      // (RLIMIT_NPROC, RLIMIT_AS) stops it before the kernel's depth limit. That is an error that
      // names the limit (the runner says which), never a failed depth assertion.
      if (RESOURCE_LIMIT_ERRNOS.has(r.errno))
        throw new Outcome<void>(`nest ${kind} namespaces (stopped after ${r.levels} levels)`, r.errno, 'fork', undefined).error();
      const start = kind === 'user' ? startUser : startPid;
      const max = kind === 'user' ? USERNS_MAX_LEVEL : PIDNS_MAX_LEVEL;
      const names = [
        `${kind} namespaces: the one after the deepest fails with ENOSPC (EUSERS before 4.9)`,
        `${kind} namespaces nest below the start until the kernel refuses`,
        `${kind} namespaces nest down to the deepest level the kernel allows`,
        `${kind} namespaces: the measured depth reaches the documented limit of ${NEST_LIMIT}`,
      ];
      if (r.levels === 0) {
        // Not even one: a count limit (user.max_*_namespaces) or policy, not the depth. The other
        // kind may still nest: its measurement stands, this one is skipped with the gate the
        // runner names. When neither nests, the probe could show nothing: the runner explains it.
        const refused = new Outcome<void>(`create a ${kind} namespace below the start`, r.errno, 'unshare', undefined);
        if (blocked) throw refused.error();
        blocked = refused;
        ctx.helper(refused, names.filter((_, i) => i !== 1), { name: names[1], side: 'inside' });
        continue;
      }
      ctx.metric(`${kind}.levels`, r.levels);
      ctx.metric(`${kind}.limit`, NEST_LIMIT);
      if (start !== null) ctx.metric(`${kind}.depth`, start + r.levels);
      // The error name depends on the kernel, the levels on where nsprobe starts: both in the
      // expected values and notes, never in the names (ids derive from names).
      const [REFUSAL, SOME, EXACT, REACH] = names;
      ctx.check(SOME, r.levels > 0, '> 0', r.levels, 'inside');
      if (r.errno !== ENOSPC && r.errno !== EUSERS) {
        // Refused partway for another reason: a policy that judges the creator, who below the
        // first level is a process inside a new user namespace without CAP_SYS_ADMIN in the
        // initial one (kernel.unprivileged_userns_clone=0 lets root make one level, then EPERM).
        // With a gate that explains it the depth is not measurable here; without one it fails.
        const partway = new Outcome<void>(`nest ${kind} namespaces below level ${r.levels} (by a process inside a new user namespace)`, r.errno, 'unshare', undefined);
        ctx.helper(partway, [REFUSAL, EXACT, REACH], { name: `${kind} namespaces nest with no refusal but the depth limit`, side: 'inside' });
        continue;
      }
      ctx.expect(REFUSAL, errName(r.errno), errName(wantErr), 'inside');
      if (start !== null) {
        ctx.expect(EXACT, r.levels, max - start, 'inside',
          `${max - start} levels below the start (level ${start}), down to level ${max}: ${kind === 'user' ? `the kernel refuses a user namespace whose parent is deeper than ${NEST_LIMIT}` : `MAX_PID_NS_LEVEL = ${max}`}`);
        ctx.check(REACH, start + r.levels >= NEST_LIMIT, NEST_LIMIT, start + r.levels, 'inside');
      } else {
        const why = kind === 'user'
          ? 'the starting user namespace level is unknown here (nsprobe runs in a user namespace, whose depth its id maps do not tell)'
          : 'the starting pid namespace level is unknown here (/proc is not the initial pid namespace\'s, so NSpid counts levels only from that /proc down)';
        ctx.skip(EXACT, why, null, 'inside');
        ctx.skip(REACH, why, null, 'inside');
      }
    }
    // Control: the measurement ran in a forked helper; the sandbox's own namespaces did not move.
    const CONTROL = 'the measuring process stays in its own user namespace (control)';
    const own = await a.readlink('/proc/self/ns/user');
    // No /proc/self/ns/user (a kernel without CONFIG_USER_NS): the same refusal that stopped the
    // user nesting above explains why the control cannot run either
    if (!own.ok && blocked) return void ctx.helper(blocked, [CONTROL], { side: 'control' });
    const before = own.get();
    await a.nest('user', 1).get();
    ctx.expect(CONTROL, await a.readlink('/proc/self/ns/user').get(), before, 'control');
  },
};
