// ci/kernels.mjs's initramfsModules on real Debian kernel trees (unpacked into .cache/kernels by
// ci/kernels.mjs, with kmod's modprobe): a package without modules.builtin (Debian's 7.x) gets the
// modules modprobe cannot find taken as built in, and the boot decides; a package with
// modules.builtin (the 6.1 the kernels test fetches) still fails on a required module that is
// missing (the control: the same missing module is an error there, not "built in"). Skipped,
// naming the command, when the trees are not cached (they are downloads, not programs .ci/run
// installs).
import test, { type ImplementationFn } from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KERNELS_SCRIPT } from './helpers/kernels.js';
import { ROOT } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

type Mods = { name: string; data: Buffer }[] & { assumedBuiltin: string[] };
type Mod = { initramfsModules: (kern: { dir: string; release: string; modules: string }, tools: Record<string, string>, required?: string[], optional?: string[]) => Mods };

const CACHE = join(ROOT, '.cache', 'kernels');
/** An unpacked tree in the cache whose name starts with prefix: { dir, release, modules }. */
function tree(prefix: string): { dir: string; release: string; modules: string } | null {
  if (!existsSync(CACHE)) return null;
  const d = readdirSync(CACHE).filter((f) => f.startsWith(prefix)).sort().at(-1);
  if (!d) return null;
  const dir = join(CACHE, d);
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const m = join(dir, base);
    if (!existsSync(m)) continue;
    const release = readdirSync(m).find((r) => existsSync(join(m, r, 'modules.dep')));
    if (release) return { dir, release, modules: join(m, release) };
  }
  return null;
}

const k7 = tree('linux-image-7.');
const k61 = tree('linux-image-6.1.0-');
const tools = missingTools('modprobe', 'busybox');
const skip = !k7 || !k61 ? `not cached in .cache/kernels: ${[!k7 && '7.x (node ci/kernels.mjs --kernels trixie-bpo-cloud)', !k61 && '6.1 cloud (node ci/kernels.mjs --kernels 6.1-cloud)'].filter(Boolean).join(', ')}` : null;
const run = (title: string, f: ImplementationFn<[]>) => (skip ? test.skip(`${title} (skipped: ${skip})`, f) : needTools(tools)(title, f));

run('initramfs modules: without modules.builtin what modprobe cannot find is taken as built in; with it a missing required module is an error', async (t) => {
  const { initramfsModules } = (await import(pathToFileURL(KERNELS_SCRIPT).href)) as Mod;
  const bin = { modprobe: 'modprobe', busybox: 'busybox' };
  t.false(existsSync(join(k7!.modules, 'modules.builtin')), `${k7!.dir} ships no modules.builtin`);
  const m7 = initramfsModules(k7!, bin);
  t.deepEqual(m7.assumedBuiltin, ['virtio_pci', 'virtio_console']);
  // veth is a module there: found, decompressed (.ko.xz -> .ko, an ELF file)
  const veth = m7.find((m) => m.name === 'veth.ko');
  t.truthy(veth, m7.map((m) => m.name).join(' '));
  t.is(veth!.data.subarray(0, 4).toString('latin1'), '\x7fELF');
  // control: on the 6.1 tree (modules.builtin present) a module that does not exist is an error, not built in
  t.true(existsSync(join(k61!.modules, 'modules.builtin')));
  t.throws(() => initramfsModules(k61!, bin, ['virtio_pci', 'no_such_module_nsprobe']), { message: /lacks a module the guest needs \(no_such_module_nsprobe/ });
  // ... and the 7.x tree takes the same name as built in: that is the rule, made visible
  t.deepEqual(initramfsModules(k7!, bin, ['no_such_module_nsprobe'], []).assumedBuiltin, ['no_such_module_nsprobe']);
  // an optional module a kernel lacks is left out where builtins are known
  const m61 = initramfsModules(k61!, bin, ['virtio_pci'], ['no_such_module_nsprobe']);
  t.deepEqual(m61.assumedBuiltin, []);
  t.true(m61.some((m) => m.name === 'virtio_pci.ko'), m61.map((m) => m.name).join(' '));
});
