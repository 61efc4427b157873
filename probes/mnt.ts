// Mount: after making the tree private, a tmpfs mounted inside is seen inside and by a second
// process in the namespace (control), not by the host nor a sibling; pivot_root into a fresh
// tmpfs root with /proc works and the old root is gone afterwards.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { ProbeDef } from '../src/probe.js';

export const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, BIND: 4096, REC: 16384, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20 } as const;
const MNT_DETACH = 2;

/** A directory that exists on every host, to mount over inside the namespace only. */
export function mountPoint(): string {
  return ['/tmp', '/mnt', '/run', '/srv'].find((p) => existsSync(p)) ?? '/tmp';
}

export const mnt: ProbeDef = {
  name: 'mnt',
  namespace: 'mnt',
  cloneFlag: 'CLONE_NEWNS',
  since: '2.4.19',
  summary: 'mounts are private to the namespace; pivot_root gives a new root',
  // A pid namespace too: mounting a fresh /proc in rootless mode needs one owned by the user namespace.
  namespaces: () => ['mnt', 'pid'],
  async run(ctx) {
    const source = `nsprobe-${ctx.token}`;
    const where = mountPoint();
    const a = await ctx.enter();
    const priv = await a.mount('', '/', '', MS.REC | MS.PRIVATE);
    ctx.expect('the mount tree is made private first', priv.err, 0, 'inside');
    const m = await a.mount(source, where, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0700');
    ctx.expect(`a tmpfs mounts on ${where} inside`, m.err, 0, 'inside');
    const has = (text: string) => text.split('\n').some((l) => l.includes(` ${source} `) || l.endsWith(` ${source}`) || l.includes(` - tmpfs ${source} `));
    const insideHas = has(await a.readFile('/proc/self/mountinfo'));
    ctx.check('the tmpfs is in the mountinfo inside', insideHas, 'present', insideHas ? 'present' : 'absent', 'inside');
    const second = await ctx.join(a, ['mnt']);
    const secondHas = has(await second.readFile('/proc/self/mountinfo'));
    ctx.check('a second process in the namespace sees the tmpfs (control)', secondHas, 'present', secondHas ? 'present' : 'absent', 'control');
    const hostInfo = readFileSync('/proc/self/mountinfo', 'utf8');
    ctx.check('the host\'s mountinfo does not show the tmpfs', !has(hostInfo), 'absent', has(hostInfo) ? 'present' : 'absent', 'host');
    const sibling = await ctx.enter();
    const sibInfo = await sibling.readFile('/proc/self/mountinfo');
    ctx.check('a sibling mount namespace does not show the tmpfs', !has(sibInfo), 'absent', has(sibInfo) ? 'present' : 'absent', 'sibling');

    // pivot_root into a fresh tmpfs root with /proc.
    const newRoot = `${where}/root`;
    const before = await a.listdir('/');
    ctx.check('before pivot_root the host\'s root is visible inside (control)', before.includes('proc') && before.length > 3, 'the host\'s / entries', before.slice(0, 8), 'control');
    await a.mkdir(newRoot, 0o755);
    const steps = [
      await a.mount(`${source}-root`, newRoot, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0755'),
      await a.mkdir(`${newRoot}/proc`, 0o555).then(() => ({ err: 0 })),
      await a.mkdir(`${newRoot}/oldroot`, 0o700).then(() => ({ err: 0 })),
      await a.mount('proc', `${newRoot}/proc`, 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC),
      await a.chdir(newRoot),
      await a.pivotRoot('.', 'oldroot'),
      await a.umount('/oldroot', MNT_DETACH),
    ];
    ctx.expect('pivot_root into a fresh tmpfs root with /proc mounted works', steps.map((s) => s.err), steps.map(() => 0), 'inside');
    await a.unlink('/oldroot', true);
    ctx.expect('after pivot_root the old root is gone: / holds only proc', await a.listdir('/'), ['proc'], 'inside');
    ctx.expect('/proc works in the new root', await a.readlink('/proc/self'), '1', 'inside');
    const hostRoot = readdirSync('/');
    ctx.check('the host\'s / is unchanged', hostRoot.includes('proc') && hostRoot.length > 3, 'the host\'s entries', hostRoot.length, 'host');
  },
};
