// Join: a second process setns()es into the first one's uts, ipc, net, mnt and pid namespaces
// (and its user namespace in rootless mode), once through /proc/PID/ns/* paths and once through a
// pidfd with all the types in one call (kernel >= 5.8), and sees the same hostname, IPC objects,
// interfaces, mounts and pid view; setns into a user namespace that is not an ancestor's is EPERM.
import { CLONE, IFF_UP, IPC, MS, PR_SET_DUMPABLE } from '../src/errno.js';
import type { ProbeDef, ProbeContext } from '../src/probe.js';
import type { Sandbox } from '../src/sandbox.js';
import type { NsType } from '../src/model.js';
import { mountPoint } from './mnt.js';

const IPC_CREAT = IPC.CREAT;
const IPC_EXCL = IPC.EXCL;
const JOINED: NsType[] = ['uts', 'ipc', 'net', 'mnt', 'pid'];
const numeric = (names: string[]) => names.filter((n) => /^\d+$/.test(n)).map(Number).sort((x, y) => x - y);

async function nsLinks(s: Sandbox, types: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of types) out.push(await s.readlink(`/proc/self/ns/${t}`).get());
  return out;
}

const procName = (via: string) => `joined by ${via}: in the pid namespace with a pid other than 1, its fresh /proc lists PID 1 and itself`;

async function compare(ctx: ProbeContext, a: Sandbox, j: Sandbox, via: string, key: number, msgId: number | null, source: string, procOk: boolean) {
  const types = ctx.mode === 'rootless' ? ['user', ...JOINED] : JOINED;
  ctx.expect(`joined by ${via}: the namespace links (${types.join(', ')}) equal the first process's`, await nsLinks(j, types), await nsLinks(a, types), 'inside');
  ctx.expect(`joined by ${via}: same hostname`, (await j.uname().get()).hostname, (await a.uname().get()).hostname, 'inside');
  const q = await j.msgget(key, 0);
  if (msgId !== null) ctx.expect(`joined by ${via}: the SysV message queue key K resolves to the same id`, q.ok ? q.value : q.sentence, msgId, 'inside');
  ctx.expect(`joined by ${via}: same interfaces and flags`, await j.links().get(), await a.links().get(), 'inside');
  // By mount id: a joiner's root is the namespace's root, so in a chroot it sees more (and other
  // paths) than the first process; every mount the first one sees must be there.
  const mi = await j.readFile('/proc/self/mountinfo').get();
  const ids = (t: string) => t.split('\n').filter(Boolean).map((l) => Number(l.split(' ')[0]));
  const jIds = new Set(ids(mi));
  const missing = ids(await a.readFile('/proc/self/mountinfo').get()).filter((id) => !jIds.has(id));
  ctx.expect(`joined by ${via}: every mount of the first process is in its mount table (by mount id)`, missing, [], 'inside');
  ctx.check(`joined by ${via}: the tmpfs the first process mounted is there`, mi.includes(source), source, mi.includes(source) ? source : 'absent', 'inside');
  if (!procOk) return;
  const id = await j.identity().get();
  const procs = numeric(await j.listdir('/proc').get());
  ctx.check(procName(via), id.pid > 1 && procs.includes(1) && procs.includes(id.pid), `pid > 1, /proc has 1 and it`, { pid: id.pid, proc: procs }, 'inside');
}

export const joinProbe: ProbeDef = {
  name: 'join',
  namespace: 'pid',
  cloneFlag: 'setns',
  since: '3.8',
  summary: 'a second process joins uts, ipc, net, mnt and pid namespaces by path and by pidfd; a non-ancestor user namespace is refused',
  // 'user' too: the refusal case nests user namespaces in both modes, so a gate on user
  // namespaces (chroot, max_user_namespaces) explains a refusal. The sandbox is entered in JOINED.
  namespaces: () => ['pid', 'uts', 'ipc', 'net', 'mnt', 'user'],
  needs: { kernel: '5.8' },
  creates: () => ['pid', 'uts', 'ipc', 'net', 'mnt', 'user'],
  uses: { procMount: true, userNsNesting: true },
  async run(ctx) {
    // setns into a user namespace that is not an ancestor's: EPERM. A host-side process H makes
    // a user namespace U1 in a child; a second child of H opens U1's /proc file (allowed: H's user
    // namespace owns U1), then unshares its own user namespace U2 (a sibling of U1) and setns()es
    // into U1 with the fd it already holds: refused for the relationship alone, not for opening
    // the file. A third child does the same without moving to U2 and joins (control). H has its
    // own memory and is dumpable, so its children's /proc files open for the owner uid.
    // Environment assumption: one more user namespace level can be created below H (in rootless
    // mode that is a second level below Node). Where it cannot (max_user_namespaces, the nesting
    // limit), the refusal case is skipped with the gate that explains it.
    // H is a child of a host-side sandbox (forkServe: nsprobe-serve exec'd, memory of its own
    // without a fork of Node's, which noVm made).
    // It shares nothing with the first part and runs beside it (its processes are made and asked
    // while the first part waits on its own); its checks are recorded after the first part's, as
    // they always were.
    const SIBLING = 'the subject is in a sibling user namespace U2';
    const REFUSED = 'setns into U1, not an ancestor\'s of U2, is refused with EPERM';
    const CONTROL = 'the same setns from the parent user namespace (an ancestor of U1) works (control)';
    const IN_U1 = 'after it, that process is in U1 (control)';
    const refusal = (async () => {
      const h = ctx.track(await (await ctx.enter({ namespaces: [] })).forkServe().get());
      await h.prctl(PR_SET_DUMPABLE, 1).get();
      const owner = ctx.track(await h.forkServe().get());
      const unshared = await owner.unshare(CLONE.user);
      if (!unshared.ok) return { unshared };
      const u1 = await owner.readlink('/proc/self/ns/user').get();
      const subject = ctx.track(await h.forkServe().get());
      const control = ctx.track(await h.forkServe().get());
      const [refused, joined, hostU] = await Promise.all([
        subject.setns(`/proc/${owner.pid}/ns/user`, CLONE.user, CLONE.user),
        control.setns(`/proc/${owner.pid}/ns/user`, CLONE.user),
        h.readlink('/proc/self/ns/user').get(),
      ]);
      const [u2, inU1] = await Promise.all([subject.readlink('/proc/self/ns/user').get(), control.readlink('/proc/self/ns/user').get()]);
      return { unshared, seen: { u1, u2, hostU, refused, joined, inU1 } };
    })();
    // Awaited once the first part is done; if that part throws first, the run fails with its error.
    refusal.catch(() => undefined);

    const key = (0x4a000000 | (parseInt(ctx.token.slice(0, 6), 36) & 0xffffff)) | 0;
    const source = `nsprobe-join-${ctx.token}`;
    const a = await ctx.enter({ namespaces: JOINED });
    ctx.expectOk('the first process sets the hostname', await a.sethostname(`nsprobe-${ctx.token}`), 'inside');
    const q = await a.msgget(key, IPC_CREAT | IPC_EXCL | 0o600);
    ctx.expectOk('the first process creates a SysV message queue with key K', q, 'inside');
    const msgId = q.ok ? q.value! : null;
    if (msgId !== null) ctx.defer(() => a.ipcrm('msg', msgId));
    ctx.expectOk('the first process sets lo UP', await a.linkSet('lo', IFF_UP), 'inside');
    const mounts = [await a.mount('', '/', '', MS.REC | MS.PRIVATE), await a.mount(source, await mountPoint(ctx.host), 'tmpfs', MS.NOSUID | MS.NODEV, 'size=64k')];
    const bad = mounts.find((m) => !m.ok);
    ctx.check('the first process makes / private and mounts a tmpfs', !bad, 'every step ok', bad ? bad.sentence : 'every step ok', 'inside');
    // Helper: a fresh /proc (a container's masked /proc refuses it with EPERM); only the joiners'
    // look at it depends on it.
    const procOk = ctx.helper(await a.mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC), [procName('/proc/PID/ns paths'), procName('one pidfd with all types at once')],
      { name: 'the first process mounts a fresh /proc', side: 'inside' });

    // Environment assumption: the host side's /proc/self/ns shows its namespaces ("the host's" here).
    const hostNs: string[] = [];
    for (const t of JOINED) hostNs.push(await ctx.host.readlink(`/proc/self/ns/${t}`).get());
    const inside = await nsLinks(a, JOINED);
    ctx.check('every namespace of the first process differs from the host\'s (control)', inside.every((l, i) => l !== hostNs[i]), 'all different', inside, 'control');

    const byPath = await ctx.join(a, JOINED, 'path');
    await compare(ctx, a, byPath, '/proc/PID/ns paths', key, msgId, source, procOk);
    const byPidfd = await ctx.join(a, JOINED, 'pidfd');
    await compare(ctx, a, byPidfd, 'one pidfd with all types at once', key, msgId, source, procOk);
    if (msgId !== null) ctx.expectOk('the queue is removed', await a.ipcrm('msg', msgId), 'inside');

    const r = await refusal;
    if (!ctx.helper(r.unshared, [SIBLING, REFUSED, CONTROL, IN_U1], { name: 'a child of a host-side process creates user namespace U1', side: 'sibling' }) || !r.seen) return;
    const { u1, u2, hostU, refused, joined, inU1 } = r.seen;
    ctx.check(SIBLING, u2 !== u1 && u2 !== hostU, 'neither U1 nor its parent', u2, 'sibling');
    ctx.check(REFUSED, !refused.ok && refused.syscall === 'setns' && refused.code === 'EPERM', `setns into /proc/PID/ns/user: EPERM`, refused.ok ? 'joined' : `${refused.syscall}: ${refused.code}`, 'sibling');
    ctx.expectOk(CONTROL, joined, 'control');
    ctx.expect(IN_U1, inU1, u1, 'control');
  },
};
