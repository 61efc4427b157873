// Mount: after making the tree private, a tmpfs mounted inside is seen inside and by a second
// process in the namespace (control), not by the host nor a sibling; pivot_root into a fresh
// tmpfs root with /proc works and the old root is gone afterwards.
import type { HostIf } from '../src/host/hostif.js';
import { take, type ProbeDef } from '../src/probe.js';

import { MNT_DETACH, MS } from '../src/errno.js';

/** Kept for importers of the old location; the constants live in src/errno.ts. */
export { MS };

const MOUNT_POINTS = ['/tmp', '/mnt', '/run', '/srv'];

/** A directory that exists on every host, to mount over inside the namespace only. */
export async function mountPoint(host: HostIf): Promise<string> {
  for (const p of MOUNT_POINTS) if (await host.exists(p)) return p;
  return '/tmp';
}

export const mnt: ProbeDef = {
  name: 'mnt',
  namespace: 'mnt',
  cloneFlag: 'CLONE_NEWNS',
  since: '2.4.19',
  summary: 'mounts are private to the namespace; pivot_root gives a new root',
  // A pid namespace too: mounting a fresh /proc in rootless mode needs one owned by the user namespace.
  namespaces: () => ['mnt', 'pid'],
  creates: () => ['mnt', 'pid'],
  uses: { procMount: true },
  async run(ctx) {
    const source = `nsprobe-${ctx.token}`;
    const where = await mountPoint(ctx.host);
    const PROC_MOUNT = 'a fresh proc mounts in the new root';
    const PROC_WORKS = '/proc works in the new root';
    // The pid namespace is a helper (a fresh /proc in the new root): under max_pid_namespaces = 0
    // the mount namespace is still probed, and the /proc checks are skipped with that gate.
    const { sandbox: a, helper: hasPid } = await ctx.enterWithHelper('pid', [PROC_MOUNT, PROC_WORKS], 'inside');
    ctx.expectOk('the mount tree is made private first', await a.mount('', '/', '', MS.REC | MS.PRIVATE), 'inside');
    // The mount point's path is a fact of the host (/tmp almost everywhere): in the note, not the name.
    ctx.expectOk('a tmpfs mounts on the mount point inside', await a.mount(source, where, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0700'), 'inside', `mount point ${where}`);
    const has = (text: string) => text.split('\n').some((l) => l.includes(` ${source} `) || l.endsWith(` ${source}`) || l.includes(` - tmpfs ${source} `));
    const insideHas = has(await a.readFile('/proc/self/mountinfo').get());
    ctx.check('the tmpfs is in the mountinfo inside', insideHas, 'present', insideHas ? 'present' : 'absent', 'inside');
    // The joiner and the sibling (both made after the tmpfs is mounted) are entered and read side by side.
    // Each is taken where it is recorded: a failed step keeps the assertions before it and is the
    // error, as when they were made one after another.
    const made = await Promise.allSettled([ctx.join(a, ['mnt']), ctx.enter()]);
    const info = await Promise.allSettled(made.map(async (m) => take(m).readFile('/proc/self/mountinfo').get()));
    const secondHas = has(take(info[0]));
    ctx.check('a second process in the namespace sees the tmpfs (control)', secondHas, 'present', secondHas ? 'present' : 'absent', 'control');
    // Environment assumption: the host side's /proc/self/mountinfo is readable (it is, also in containers).
    const hostInfo = await ctx.host.readFile('/proc/self/mountinfo').get();
    ctx.check('the host\'s mountinfo does not show the tmpfs', !has(hostInfo), 'absent', has(hostInfo) ? 'present' : 'absent', 'host');
    const sibInfo = take(info[1]);
    ctx.check('a sibling mount namespace does not show the tmpfs', !has(sibInfo), 'absent', has(sibInfo) ? 'present' : 'absent', 'sibling');

    // pivot_root into a fresh tmpfs root. The fresh /proc in it is a helper: a container's masked
    // /proc refuses it (EPERM), and then only "/proc works in the new root" is skipped.
    const newRoot = `${where}/root`;
    const before = await a.listdir('/').get();
    ctx.check('before pivot_root the host\'s root is visible inside (control)', before.includes('proc') && before.length > 3, 'the host\'s / entries', before.slice(0, 8), 'control');
    await a.mkdir(newRoot, 0o755).get();
    const steps = [
      await a.mount(`${source}-root`, newRoot, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0755'),
      await a.mkdir(`${newRoot}/proc`, 0o555),
      await a.mkdir(`${newRoot}/oldroot`, 0o700),
    ];
    const procOk = hasPid && steps.every((x) => x.ok) && ctx.helper(await a.mount('proc', `${newRoot}/proc`, 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC), [PROC_WORKS], { name: PROC_MOUNT, side: 'inside' });
    steps.push(await a.chdir(newRoot), await a.pivotRoot('.', 'oldroot'), await a.umount('/oldroot', MNT_DETACH));
    const failed = steps.find((x) => !x.ok);
    ctx.check('pivot_root into a fresh tmpfs root works', !failed, 'every step ok', failed ? failed.sentence : 'every step ok', 'inside');
    if (!failed) {
      await a.unlink('/oldroot', true).get();
      ctx.expect('after pivot_root the old root is gone: / holds only proc', await a.listdir('/').get(), ['proc'], 'inside');
      if (procOk) ctx.expect(PROC_WORKS, await a.readlink('/proc/self').get(), '1', 'inside');
    }
    const hostRoot = await ctx.host.readdir('/').get();
    ctx.check('the host\'s / is unchanged', hostRoot.includes('proc') && hostRoot.length > 3, 'the host\'s entries', hostRoot.length, 'host');
  },
};
