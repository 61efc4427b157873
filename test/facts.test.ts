import test from 'ava';
import * as os from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { collectHostFacts, detectChroot, hasCapability, parseIdMap, parseOsRelease, userNsLevelFromMap } from '../src/host/facts.js';
import { fixtureHostContext, realHostContext, unameArch } from '../src/host/hostfs.js';
import { hasKernelOption, parseKernelConfig, pickKernelOptions, readKernelConfig } from '../src/host/kconfig.js';
import { KERNEL_OPTION_NAMES, kernelOptions } from '../src/gates.js';
import { parseMountinfo, rootMount } from '../src/host/mountinfo.js';
import { FIXTURES, loadHost } from './helpers/hosts.js';

// ---------- parsers ----------

test('os-release: quoted and unquoted values, ID_LIKE', (t) => {
  const m = parseOsRelease('NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID=7\n# comment\n');
  t.is(m.get('NAME'), 'CentOS Linux');
  t.is(m.get('ID'), 'centos');
  t.is(m.get('ID_LIKE'), 'rhel fedora');
  t.is(m.get('VERSION_ID'), '7');
});

test('CapEff bit 21 is CAP_SYS_ADMIN', (t) => {
  t.true(hasCapability('000001ffffffffff', 21n));
  t.false(hasCapability('00000000a80425fb', 21n));
  t.is(hasCapability(undefined, 21n), undefined);
});

test('uid_map: identity is the initial namespace (unknown level), anything else at least 1', (t) => {
  t.is(userNsLevelFromMap(parseIdMap('         0          0 4294967295\n')), null);
  t.is(userNsLevelFromMap(parseIdMap('         0       1000          1\n')), 1);
  t.is(userNsLevelFromMap(null), null);
});

test('mountinfo: optional fields, escapes, root mount', (t) => {
  const m = parseMountinfo('27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw\n30 27 0:5 / /mnt/with\\040space rw - tmpfs tmpfs rw\n');
  t.deepEqual(m[0]!.optional, ['shared:1', 'master:2']);
  t.is(m[0]!.fsType, 'ext4');
  t.is(m[1]!.mountPoint, '/mnt/with space');
  t.is(rootMount(m)?.id, 27);
});

test('kernel config: =y, =m, strings, "is not set"', (t) => {
  const o = parseKernelConfig('CONFIG_A=y\nCONFIG_B=m\nCONFIG_C="x y"\n# CONFIG_D is not set\n# comment\n');
  t.is(o.get('CONFIG_A'), 'y');
  t.is(o.get('CONFIG_B'), 'm');
  t.is(o.get('CONFIG_C'), 'x y');
  t.is(o.get('CONFIG_D'), 'n');
  t.false(o.has('CONFIG_E'));
});

// The one-pass reader reads what the two regular expressions it replaced read, on odd lines too
// (and on this host's own config, when it has one); the control shows the comparison can differ.
test('kernel config: the one-pass reader agrees with the line-by-line regular expressions', (t) => {
  const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
  const NOT_SET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;
  const byRegex = (text: string) => {
    const m = new Map<string, string>();
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      const set = SET.exec(line);
      if (set) m.set(set[1]!, set[2]!.length >= 2 && set[2]!.startsWith('"') && set[2]!.endsWith('"') ? set[2]!.slice(1, -1) : set[2]!);
      else if (NOT_SET.exec(line)) m.set(NOT_SET.exec(line)![1]!, 'n');
    }
    return [...m];
  };
  const odd = [
    'CONFIG_A=y', '  CONFIG_B=m  \r', 'CONFIG_C="x y"', 'CONFIG_D="', 'CONFIG_E=', 'CONFIG_F', 'CONFIG_G H=y', 'CONFIG_=y', 'CONFIG_I=a=b',
    'CONFIG_J=a\rb', 'CONFIG_K=a\u2028b', '# CONFIG_L is not set', '#CONFIG_M is not set', '# CONFIG_N is not set ', '# CONFIG_ is not set',
    '# CONFIG_O P is not set', '# CONFIG_Q is not set!', 'config_r=y', 'CONFIG_S=\t"q"\t', '', 'CONFIG_T=y',
  ].join('\n');
  t.deepEqual([...parseKernelConfig(odd)], byRegex(odd));
  t.deepEqual([...parseKernelConfig(odd + '\nCONFIG_LAST=1')], byRegex(odd + '\nCONFIG_LAST=1'), 'a last line without a newline');
  t.notDeepEqual([...parseKernelConfig(odd)], byRegex(odd.replace('CONFIG_A=y', 'CONFIG_A=n')), 'control');
  const real = readKernelConfig(realHostContext());
  if (real?.source.endsWith('.gz')) {
    const text = gunzipSync(readFileSync(real.source)).toString('utf8');
    t.deepEqual([...parseKernelConfig(text)], byRegex(text));
  }
});

// A run reads only the options the gates need (pickKernelOptions): on odd lines, on this host's
// own config and on a generated one, it says of those names what the full parser says.
test('kernel config: picking the wanted options agrees with the full parser', (t) => {
  const only = (m: Map<string, string>, names: readonly string[]) => [...names].filter((n) => m.has(n)).map((n) => [n, m.get(n)]);
  const odd = [
    'CONFIG_A=y', '  CONFIG_B=m  \r', 'CONFIG_C="x y"', 'CONFIG_D="', 'CONFIG_E=', 'CONFIG_F', 'CONFIG_G H=y', 'CONFIG_=y', 'CONFIG_I=a=b',
    'CONFIG_J=a\rb', 'CONFIG_K=a\u2028b', '# CONFIG_L is not set', '#CONFIG_M is not set', '# CONFIG_N is not set ', '# CONFIG_ is not set',
    '# CONFIG_O P is not set', '# CONFIG_Q is not set!', 'config_r=y', 'CONFIG_S=\t"q"\t', '', 'CONFIG_T=y', 'CONFIG_A=m', 'CONFIG_AB=y',
    'CONFIG_U="CONFIG_T=n"', 'CONFIG_T_X=n', 'XCONFIG_B=y', '# CONFIG_B=y', 'CONFIG_V=y # CONFIG_W is not set', 'CONFIG_W=1',
  ].join('\n');
  const names = ['CONFIG_A', 'CONFIG_B', 'CONFIG_C', 'CONFIG_D', 'CONFIG_E', 'CONFIG_F', 'CONFIG_G', 'CONFIG_I', 'CONFIG_J', 'CONFIG_K', 'CONFIG_L',
    'CONFIG_M', 'CONFIG_N', 'CONFIG_O', 'CONFIG_Q', 'CONFIG_S', 'CONFIG_T', 'CONFIG_U', 'CONFIG_V', 'CONFIG_W', 'CONFIG_Z', 'CONFIG_', 'CONFIG_LAST', 'CONFIG_T_X', 'CONFIG_AB', ''];
  for (const text of [odd, odd + '\nCONFIG_LAST=1', 'CONFIG_LAST=1', '', '\n']) {
    t.deepEqual([...pickKernelOptions(text, names)].sort(), only(parseKernelConfig(text), names).sort(), JSON.stringify(text.slice(-20)));
    t.is(hasKernelOption(text), parseKernelConfig(text).size > 0);
  }
  t.is(pickKernelOptions(odd, ['CONFIG_A']).get('CONFIG_A'), 'm', 'a later line wins');
  t.false(pickKernelOptions(odd, ['CONFIG_T']).get('CONFIG_T') === 'n', 'control: a name inside a value is not that option');
  t.notDeepEqual([...pickKernelOptions(odd.replace('CONFIG_T=y', 'CONFIG_T=n'), names)].sort(), only(parseKernelConfig(odd), names).sort(), 'control');
  t.false(hasKernelOption('# comment\nCONFIG_\n#CONFIG_X is not set'));
  t.deepEqual(pickKernelOptions(odd, ['CONFIG_T', 'CONFIG_T_X']).get('CONFIG_T_X'), 'n', 'a name that starts with another wanted one');
  t.deepEqual([...pickKernelOptions('CONFIG_A=y\n', ['', 'CONFIG_A'])], [['CONFIG_A', 'y']]);
  // Every option of a generated config, and the gates' names in it and in this host's own config.
  const big = Array.from({ length: 5000 }, (_, i) => (i % 3 === 0 ? `# CONFIG_O${i} is not set` : `CONFIG_O${i}=${i % 2 ? 'y' : '"v"'}`)).join('\n');
  const bigNames = Array.from({ length: 60 }, (_, i) => `CONFIG_O${i * 83}`);
  t.deepEqual([...pickKernelOptions(big, bigNames)].sort(), only(parseKernelConfig(big), bigNames).sort());
  t.deepEqual([...KERNEL_OPTION_NAMES], kernelOptions().map((o) => o.option), 'the gate reads the options it judges');
  const full = readKernelConfig(realHostContext());
  const picked = readKernelConfig(realHostContext(), undefined, undefined, KERNEL_OPTION_NAMES);
  t.is(picked?.source, full?.source);
  if (full && picked) {
    t.deepEqual([...picked.options].sort(), only(full.options, KERNEL_OPTION_NAMES).sort());
    t.true(picked.options.size > 0, `${full.source} sets the namespace options`);
  }
});

test('kernel config: empty or corrupt config is unknown (null), not "everything missing"', (t) => {
  const dir = mkdtempSync(join(os.tmpdir(), 'nsprobe-kc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'proc/sys/kernel'), { recursive: true });
  mkdirSync(join(dir, 'boot'));
  writeFileSync(join(dir, 'proc/sys/kernel/osrelease'), '6.1.0-1\n');
  writeFileSync(join(dir, 'proc/config.gz'), 'not gzip');
  writeFileSync(join(dir, 'boot/config-6.1.0-1'), '');
  t.is(readKernelConfig(fixtureHostContext(dir)), null);
  writeFileSync(join(dir, 'boot/config-6.1.0-1'), 'CONFIG_USER_NS=y\n');
  t.is(readKernelConfig(fixtureHostContext(dir))?.source, '/boot/config-6.1.0-1');
  writeFileSync(join(dir, 'proc/config.gz'), gzipSync('CONFIG_NET_NS=y\n'));
  t.is(readKernelConfig(fixtureHostContext(dir))?.source, '/proc/config.gz');
  t.is(readKernelConfig(fixtureHostContext(dir), undefined, '/boot/config-6.1.0-1')?.options.get('CONFIG_USER_NS'), 'y');
  // Picking names: a config that sets other options only is still a config (every wanted one missing).
  t.is(readKernelConfig(fixtureHostContext(dir), undefined, undefined, ['CONFIG_USER_NS'])?.options.size, 0);
  t.is(readKernelConfig(fixtureHostContext(dir), undefined, undefined, ['CONFIG_USER_NS'])?.source, '/proc/config.gz');
  writeFileSync(join(dir, 'proc/config.gz'), gzipSync('# nothing\n'));
  t.is(readKernelConfig(fixtureHostContext(dir), undefined, undefined, ['CONFIG_USER_NS'])?.source, '/boot/config-6.1.0-1', 'control: no option at all is no config');
});

test('unameArch maps node arch names', (t) => {
  t.is(unameArch('x64'), 'x86_64');
  t.is(unameArch('arm64'), 'aarch64');
});

// ---------- fixture hosts ----------

test('centos7 facts', (t) => {
  const { facts } = loadHost('centos7');
  t.is(facts.kernel.release, '3.10.0-1160.el7.x86_64');
  t.is(facts.distro.id, 'centos');
  t.is(facts.distro.versionId, '7');
  t.deepEqual(facts.distro.idLike, ['rhel', 'fedora']);
  t.is(facts.distro.name, 'CentOS Linux 7 (Core)');
  t.is(facts.cgroupVersion, 'v1');
  t.deepEqual(facts.lsms, ['selinux']);
  t.true(facts.privileged);
});

test('debian12 facts: root, init user ns, cgroup v2, shared root, no container', (t) => {
  const { facts } = loadHost('debian12');
  t.is(facts.hostname, 'bookworm');
  t.is(facts.euid, 0);
  t.true(facts.privileged);
  t.is(facts.capEff, '000001ffffffffff');
  t.is(facts.cgroupVersion, 'v2');
  t.true(facts.rootMountShared);
  t.false(facts.chroot);
  t.deepEqual(facts.container, { detected: false, kind: null, evidence: [] });
  t.deepEqual(facts.seccomp, { mode: 0, filters: 0, noNewPrivs: false });
  t.deepEqual(facts.lsms, ['lockdown', 'capability', 'landlock', 'yama', 'apparmor']);
});

test('docker facts: container kind docker with evidence, seccomp filter, not privileged', (t) => {
  const { facts } = loadHost('docker');
  t.true(facts.container?.detected);
  t.is(facts.container?.kind, 'docker');
  t.true(facts.container!.evidence.includes('/.dockerenv exists'));
  t.true(facts.container!.evidence.some((e) => e.includes('/docker/3f2a')));
  t.deepEqual(facts.seccomp, { mode: 2, filters: 1, noNewPrivs: false });
  t.false(facts.privileged);
  t.false(facts.rootMountShared);
});

test('kubernetes env wins over docker', (t) => {
  const { facts } = loadHost('docker', { env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' } });
  t.is(facts.container?.kind, 'kubernetes');
});

test('systemd-nspawn / lxc via container= env', (t) => {
  t.is(loadHost('debian12', { env: { container: 'systemd-nspawn' } }).facts.container?.kind, 'systemd-nspawn');
  t.is(loadHost('debian12', { env: { container: 'lxc' } }).facts.container?.kind, 'lxc');
});

test('ubuntu2404 facts: non-root user from the manifest', (t) => {
  const { facts } = loadHost('ubuntu2404');
  t.is(facts.euid, 1000);
  t.false(facts.privileged);
  t.is(facts.distro.id, 'ubuntu');
  t.deepEqual(facts.distro.idLike, ['debian']);
});

test('noconfig facts: arch from the manifest', (t) => {
  t.is(loadHost('noconfig').facts.arch, 'aarch64');
});

test('chroot: no mount on / in our own mountinfo means a chroot', (t) => {
  t.true(loadHost('chroot').facts.chroot);
  t.is(loadHost('chroot').facts.rootMountShared, null);
});

test('chroot: / mount seen by pid 1 elsewhere means a chroot into a mount point; unknown when pid 1 is elsewhere', (t) => {
  const ctx = fixtureHostContext(FIXTURES + 'debian12');
  const mine = parseMountinfo('21 1 254:1 / / rw - ext4 /dev/vda1 rw\n');
  const fsWith = (init: string | null) => ({ ...ctx, fs: { ...ctx.fs, readFile: (p: string) => (p === '/proc/1/mountinfo' ? init : ctx.fs.readFile(p)) } });
  t.true(detectChroot(fsWith('21 1 254:1 / /srv/jail rw - ext4 /dev/vda1 rw\n'), mine));
  t.false(detectChroot(fsWith('21 1 254:1 / / rw - ext4 /dev/vda1 rw\n'), mine));
  t.is(detectChroot(fsWith('99 1 254:1 / / rw - ext4 /dev/vda1 rw\n'), mine), null);
});

test('fixture manifest: setuid mode and uid overrides, unreadable paths', (t) => {
  const { ctx } = loadHost('debian12');
  const s = ctx.fs.stat('/usr/bin/newuidmap')!;
  t.is(s.mode & 0o7777, 0o4755);
  t.is(s.uid, 0);
  const d = loadHost('docker').ctx;
  t.true(d.fs.exists('/proc/1/environ'));
  t.is(d.fs.readFile('/proc/1/environ'), null);
});

// ---------- the real host (Debian 12 VM) ----------

test('real host: kernel release equals os.release(), debian, no seccomp', (t) => {
  const facts = collectHostFacts(realHostContext());
  t.is(facts.kernel.release, os.release());
  t.is(facts.distro.id, 'debian');
  t.is(facts.seccomp?.mode, 0);
  t.is(facts.euid, process.geteuid!());
  t.is(facts.hostname, os.hostname());
  t.is(facts.nodeVersion, process.versions.node);
  t.not(facts.cgroupVersion, 'unknown');
});
