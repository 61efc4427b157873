// Identity (nsfs): for each type, the namespace inode in /proc/PID/ns differs inside and outside;
// NS_GET_NSTYPE names the type; NS_GET_USERNS gives the owning user namespace (the new one in
// rootless mode); NS_GET_PARENT works for pid and user namespaces, is EPERM at the top of what the
// caller may see and EINVAL for a type without hierarchy; NS_GET_OWNER_UID gives the creator's uid.
import { kernelAtLeast } from '../src/gates.js';
import { currentHost } from '../src/host/hostif.js';
import type { NsType } from '../src/model.js';
import { CLONE, NS_IOCTL } from '../src/errno.js';
import { take, type ProbeDef } from '../src/probe.js';
import type { Outcome, Sandbox } from '../src/sandbox.js';

/** The types the sandbox is made in: the time namespace where the run's host kernel has it. */
function created(release = currentHost().release): NsType[] {
  const base: NsType[] = ['uts', 'ipc', 'pid', 'net', 'mnt', 'cgroup'];
  return kernelAtLeast(release, [5, 6]) ? [...base, 'time'] : base;
}

const ino = (link: string) => Number(/\[(\d+)\]/.exec(link)?.[1] ?? NaN);
/** The picked value of a successful nsfs ioctl, or the failure's sentence ("NS_GET_PARENT on ...: EPERM"). */
const errOr = <T>(r: Outcome<number[]>, pick: (n: number[]) => T) => (r.ok ? pick(r.value!) : r.sentence);

async function statNs(s: Sandbox, path: string): Promise<[number, number]> {
  const st = await s.stat(path).get();
  return [st.dev, st.ino];
}

export const identity: ProbeDef = {
  name: 'identity',
  namespace: 'user',
  cloneFlag: 'CLONE_NEWUSER',
  since: '4.11',
  summary: 'namespace files (nsfs) identify each namespace, its type, owner, parent and owner uid',
  // 'user' too: children nest a user namespace in both modes, so a gate on user namespaces
  // (chroot, max_user_namespaces) explains a refusal. The sandbox itself is entered in created().
  namespaces: () => [...created(), 'user'],
  creates: () => [...created(), 'user'],
  uses: { userNsNesting: true, pidNsNesting: true },
  async run(ctx) {
    const types: NsType[] = ctx.mode === 'rootless' ? [...created(ctx.host.release), 'user'] : created(ctx.host.release);
    // Own memory: a CLONE_VM child shares Node's mm, whose dumpable flag another probe's uid
    // change can clear, and then an unprivileged host process could not open /proc/PID/ns. With a
    // time namespace the server has its own anyway (it execs nsprobe-serve, or forks where it
    // cannot); without one, noVm (which forks Node's memory, ~3 ms and copy-on-write faults after).
    const made = created(ctx.host.release);
    // The sandbox, the host-side process and (rootless) the plain child outside are entered side
    // by side; an enter that fails is thrown where its process is first used, as before.
    const outsideP = ctx.mode === 'rootless' ? ctx.enter({ namespaces: [], mode: 'privileged' }) : undefined;
    outsideP?.catch(() => undefined);
    const entered = await Promise.allSettled([ctx.enter({ noVm: !made.includes('time'), namespaces: made }), ctx.hostSide()]);
    const a = take(entered[0]);
    const host = take(entered[1]);
    // Environment assumptions: Node's /proc shows its own namespaces and the sandbox by a.pid
    // (true under a container's /proc too); "the host's" user namespace below is Node's, the
    // initial one or the one nsprobe runs in, never assumed to be the initial one.

    // Every type's looks are asked for at once (the sandbox, the host-side process and the host
    // answer side by side, each its own in turn) and recorded type by type, as before.
    const looks = await Promise.all(types.map((t) => Promise.allSettled([
      ctx.host.readlink(`/proc/self/ns/${t}`).get(),
      a.readlink(`/proc/self/ns/${t}`).get(),
      ctx.host.readlink(`/proc/${a.pid}/ns/${t}`).get(),
      t !== 'user' || ctx.mode === 'privileged' ? host.readlink(`/proc/self/ns/${t}`).get() : undefined,
      a.nsIoctl(`/proc/self/ns/${t}`, NS_IOCTL.GET_NSTYPE),
    ])));
    // Taken in the order they are recorded: a failed look keeps the assertions before it and is
    // the error, as when they were asked one after another.
    types.forEach((t, i) => {
      const [mine, inside, seen, hostMine, ty] = looks[i];
      ctx.check(`${t}: the namespace inode inside differs from the host's`, ino(take(inside)) !== ino(take(mine)), `not ${take(mine)}`, take(inside), 'inside');
      ctx.expect(`${t}: the host sees the same inode at /proc/PID/ns/${t}`, take(seen), take(inside), 'host');
      const hm = take(hostMine);
      if (hm !== undefined) {
        ctx.expect(`${t}: a host process reads the host's inode with the same request (control)`, hm, take(mine), 'control');
      }
      ctx.expect(`${t}: NS_GET_NSTYPE names CLONE_NEW${t.toUpperCase()}`, errOr(take(ty), (n) => n[0]), CLONE[t], 'inside');
    });

    // NS_GET_USERNS: the owner of every namespace the sandbox made is its user namespace (the new
    // one in rootless mode, the host's in privileged mode).
    const ownUser = await statNs(a, '/proc/self/ns/user');
    const hostUser = await ctx.host.stat('/proc/self/ns/user').get();
    for (const t of types.filter((x) => x !== 'user')) {
      const r = await a.nsIoctl(`/proc/self/ns/${t}`, NS_IOCTL.GET_USERNS);
      ctx.expect(`${t}: NS_GET_USERNS is the ${ctx.mode === 'rootless' ? 'new' : 'host\'s'} user namespace (dev, ino)`, errOr(r, (n) => [n[1], n[2]]), ownUser, 'inside');
    }
    if (ctx.mode === 'rootless') {
      ctx.check('the new user namespace is not the host\'s', ownUser[1] !== hostUser.ino, `not ${hostUser.ino}`, ownUser[1], 'host');
      ctx.expect('the host sees that user namespace at /proc/PID/ns/user', (await ctx.host.stat(`/proc/${a.pid}/ns/user`).get()).ino, ownUser[1], 'host');
    } else {
      ctx.expect('the owner is the host\'s user namespace', ownUser[1], hostUser.ino, 'host');
    }

    // NS_GET_PARENT. Children of the sandbox nest one more user and pid namespace; the sandbox
    // (their ancestor) opens them through the host's /proc by host pid.
    // Environment assumption: one more user namespace level and one more pid namespace level can
    // be created below the sandbox. Where one cannot (a count limit, the nesting limit), the
    // assertions on it are skipped with the gate that explains the refusal.
    const cu = ctx.track(await a.forkServe().get());
    const cp = ctx.track(await a.forkServe().get());
    const USER_PARENT = 'user: NS_GET_PARENT of the nested user namespace is the sandbox\'s';
    const PID_PARENT = 'pid: NS_GET_PARENT of the nested pid namespace is the sandbox\'s';
    const OWNER0 = 'NS_GET_OWNER_UID of a user namespace root created is 0';
    const [cuUnshared, cpUnshared] = await Promise.all([cu.unshare(CLONE.user), cp.unshare(CLONE.pid)]);
    const userNested = ctx.helper(cuUnshared, ctx.mode === 'privileged' ? [USER_PARENT, OWNER0] : [USER_PARENT], { name: 'a child unshares a user namespace', side: 'inside' });
    const pidNested = ctx.helper(cpUnshared, [PID_PARENT], { name: 'a child unshares a pid namespace', side: 'inside' });
    if (userNested) {
      const pu = await a.nsIoctl(`/proc/${cu.pid}/ns/user`, NS_IOCTL.GET_PARENT);
      ctx.expect(USER_PARENT, errOr(pu, (n) => [n[1], n[2]]), ownUser, 'inside');
    }
    if (pidNested) {
      // pid_for_children can be opened once the new pid namespace has its PID 1.
      await cp.forkPause().get();
      const ownPid = await statNs(a, '/proc/self/ns/pid');
      const pp = await a.nsIoctl(`/proc/${cp.pid}/ns/pid_for_children`, NS_IOCTL.GET_PARENT);
      ctx.expect(PID_PARENT, errOr(pp, (n) => [n[1], n[2]]), ownPid, 'inside');
    }
    ctx.expectErrno('pid: NS_GET_PARENT of the sandbox\'s own pid namespace is EPERM (top of what it may see)', await a.nsIoctl('/proc/self/ns/pid', NS_IOCTL.GET_PARENT), 'EPERM', 'inside');
    ctx.expectErrno('user: NS_GET_PARENT of the sandbox\'s own user namespace is EPERM (top of what it may see)', await a.nsIoctl('/proc/self/ns/user', NS_IOCTL.GET_PARENT), 'EPERM', 'inside');
    // Outside: in rootless mode a plain child in the host's user namespace (the sibling user
    // namespace of hostSide() may not open the sandbox's /proc files: its caps are elsewhere).
    const outside = outsideP ? await outsideP : host;
    const hp = await outside.nsIoctl(`/proc/${a.pid}/ns/pid`, NS_IOCTL.GET_PARENT);
    ctx.expect('pid: a host process gets the host\'s pid namespace as the parent of the sandbox\'s', errOr(hp, (n) => n[2]), (await ctx.host.stat('/proc/self/ns/pid').get()).ino, 'host');
    ctx.expectErrno('uts: NS_GET_PARENT of a namespace without hierarchy is EINVAL', await a.nsIoctl('/proc/self/ns/uts', NS_IOCTL.GET_PARENT), 'EINVAL', 'inside');
    ctx.expectErrno('an nsfs ioctl on a file that is not a namespace is ENOTTY (control)', await a.nsIoctl('/proc/self/status', NS_IOCTL.GET_NSTYPE), 'ENOTTY', 'control');

    // NS_GET_OWNER_UID: the creator's uid, as the caller's user namespace maps it.
    if (ctx.mode === 'rootless') {
      const uid = a.plan!.hostUid;
      const o = await outside.nsIoctl(`/proc/${a.pid}/ns/user`, NS_IOCTL.GET_OWNER_UID);
      ctx.expect('NS_GET_OWNER_UID read from the host is the unprivileged uid', errOr(o, (n) => n[0]), uid, 'host', `uid ${uid}`);
      const i = await a.nsIoctl('/proc/self/ns/user', NS_IOCTL.GET_OWNER_UID);
      ctx.expect('NS_GET_OWNER_UID read inside is 0 (the owner maps to root there)', errOr(i, (n) => n[0]), 0, 'inside');
    } else if (userNested) {
      const o = await a.nsIoctl(`/proc/${cu.pid}/ns/user`, NS_IOCTL.GET_OWNER_UID);
      ctx.expect(OWNER0, errOr(o, (n) => n[0]), 0, 'inside');
    }
  },
};
