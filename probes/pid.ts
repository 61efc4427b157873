// PID: the first process is PID 1 with PPID 0; a fresh /proc inside shows only the namespace's
// processes; the host sees the same process under another pid (NSpid links the two); orphans are
// reparented to the namespace's PID 1; when PID 1 exits the rest of the namespace is killed.
import type { ProbeDef } from '../src/probe.js';
import { MS } from '../src/errno.js';

const numeric = (names: string[]) => names.filter((n) => /^\d+$/.test(n)).map(Number).sort((x, y) => x - y);

export function nspid(status: string): number[] {
  const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
  return line ? line.slice(6).trim().split(/\s+/).map(Number) : [];
}

export const pid: ProbeDef = {
  name: 'pid',
  namespace: 'pid',
  cloneFlag: 'CLONE_NEWPID',
  since: '2.6.24',
  summary: 'process ids start at 1 and the namespace cannot see or outlive its PID 1',
  // A mount namespace too, so that mounting /proc inside never touches the host's /proc.
  namespaces: () => ['pid', 'mnt'],
  creates: () => ['pid', 'mnt'],
  uses: { procMount: true },
  async run(ctx) {
    const PROC_PRIVATE = 'the mount tree inside is made private';
    const PROC_MOUNT = 'a fresh proc mounts inside';
    const PROC_SELF = '/proc/self inside is 1';
    const PROC_ONLY = 'the fresh /proc lists only the namespace\'s processes';
    const PROC_ORPHAN = '/proc inside lists PID 1 and the grandchild';
    // The mount namespace is a helper (for the fresh /proc): under max_mnt_namespaces = 0 the pid
    // namespace is still probed, without it, and the /proc checks are skipped with that gate.
    const { sandbox: a, helper: hasMnt } = await ctx.enterWithHelper('mnt', [PROC_PRIVATE, PROC_MOUNT, PROC_SELF, PROC_ONLY, PROC_ORPHAN], 'inside');
    const id = await a.identity().get();
    ctx.expect('the first process is PID 1', id.pid, 1, 'inside');
    ctx.expect('its parent pid is 0', id.ppid, 0, 'inside');
    ctx.check('the host sees it under another pid', a.pid !== 1 && a.pid > 0, 'a pid other than 1', a.pid, 'host');
    // Environment assumption: the host side's /proc is of its own pid namespace (so a.pid names the
    // sandbox there). True with a container's /proc too; NSpid's last two entries are what we check.
    ctx.expect('NSpid in the host\'s /proc/PID/status links host pid and pid 1', nspid(await ctx.host.readFile(`/proc/${a.pid}/status`).get()).slice(-2), [a.pid, 1], 'host');

    // Helper: a fresh /proc inside (in the sandbox's own mount namespace). A container's masked
    // /proc (or no mount rights) refuses it with EPERM: the assertions that read the fresh /proc
    // are then skipped with the gate that explains it; the others still run.
    // Without a mount namespace of its own nothing is mounted: it would land on the host's /proc.
    const procOk =
      hasMnt &&
      ctx.helper(await a.mount('', '/', '', MS.REC | MS.PRIVATE), [PROC_SELF, PROC_ONLY, PROC_ORPHAN], { name: PROC_PRIVATE, side: 'inside' }) &&
      ctx.helper(await a.mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC), [PROC_SELF, PROC_ONLY, PROC_ORPHAN], { name: PROC_MOUNT, side: 'inside' });
    if (procOk) {
      ctx.expect(PROC_SELF, await a.readlink('/proc/self').get(), '1', 'inside');
      ctx.expect(PROC_ONLY, numeric(await a.listdir('/proc').get()), [1], 'inside');
    }
    const hostPids = numeric(await ctx.host.readdir('/proc').get());
    ctx.check('the host\'s /proc lists many processes, this one among them (control)', hostPids.length > 1 && hostPids.includes(a.pid), 'more than 1, including the sandbox', hostPids.length, 'control');

    // Orphan reparenting: PID 1 -> g1 -> g2; g1 exits; g2's parent becomes 1.
    const g1 = ctx.track(await a.forkServe({ noDeathSignal: true }).get());
    const g2 = ctx.track(await g1.forkServe({ noDeathSignal: true }).get());
    const before = await g2.identity().get();
    ctx.expect('before its parent exits, the grandchild\'s parent is that process (control)', before.ppid, g1.inner.pid, 'control');
    await g1.close();
    await a.wait(g1.inner.pid, 0, 2000);
    const after = await g2.identity().get();
    ctx.expect('an orphaned grandchild is reparented to PID 1', after.ppid, 1, 'inside');
    if (procOk) ctx.expect(PROC_ORPHAN, numeric(await a.listdir('/proc').get()), [1, after.pid].sort((x, y) => x - y), 'inside');

    const alive = await ctx.host.exists(`/proc/${g2.pid}`);
    ctx.check('the grandchild is alive while PID 1 runs (control)', alive, 'alive', alive ? 'alive' : 'gone', 'control');
    await a.close();
    const left = await ctx.host.exists(`/proc/${g2.pid}/status`);
    ctx.check('when PID 1 exits the rest of the namespace is killed', !left, 'gone', left ? 'alive' : 'gone', 'host');
  },
};
