import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { collectHostFacts } from '../src/host/facts.js';
import { realHostContext } from '../src/host/hostfs.js';
import { evaluateGates, gateAffects, GATE_IDS, kernelConfigGate } from '../src/gates.js';
import { parseKernelConfig } from '../src/host/kconfig.js';
import { NS_TYPES, type Gate, type NsType } from '../src/model.js';
import type { ProbeDef } from '../src/probe.js';
import { loadHost } from './helpers/hosts.js';

const EXPECTED_IDS = [
  'max_user_namespaces', 'max_mnt_namespaces', 'max_pid_namespaces', 'max_net_namespaces',
  'max_ipc_namespaces', 'max_uts_namespaces', 'max_cgroup_namespaces', 'max_time_namespaces',
  'unprivileged_userns_clone', 'apparmor_userns', 'seccomp', 'chroot', 'idmap_helpers', 'subid',
  'kernel_config', 'proc_fully_visible', 'proc_sys_readonly', 'cgroup_writable', 'userns_nesting',
];

test('gate ids are exactly the stable set', (t) => {
  t.deepEqual([...GATE_IDS].sort(), [...EXPECTED_IDS].sort());
  for (const name of ['centos7', 'rhel7.2', 'ubuntu2404', 'debian10', 'docker', 'debian12', 'noconfig', 'chroot'])
    t.deepEqual(loadHost(name).gates.map((g) => g.id), GATE_IDS, name);
});

test('every non-ok gate has a cause, and blocked/warn ones a remedy; ok ones an empty remedy', (t) => {
  for (const name of ['centos7', 'rhel7.2', 'ubuntu2404', 'debian10', 'docker', 'debian12', 'noconfig', 'chroot'])
    for (const g of loadHost(name).gates) {
      t.true(g.cause.length > 0, `${name} ${g.id}`);
      if (g.status === 'blocked' || g.status === 'warn') t.true(g.remedy.length > 0, `${name} ${g.id}`);
      if (g.status === 'ok') t.is(g.remedy, '', `${name} ${g.id}`);
    }
});

test('debian12: everything ok except unmeasured nesting and the cgroup directory a fixture cannot stat', (t) => {
  const h = loadHost('debian12');
  for (const g of h.gates) t.is(g.status, g.id === 'userns_nesting' || g.id === 'cgroup_writable' ? 'unknown' : 'ok', `${g.id}: ${g.cause}`);
  t.is(h.gate('max_user_namespaces').value, 96365);
  t.is((h.gate('kernel_config').value as { source: string }).source, '/proc/config.gz');
});

// ---------- max_*_namespaces ----------

test('centos7: max_user_namespaces 0 blocks every rootless probe and user/privileged, with the el7 remedy', (t) => {
  const g = loadHost('centos7').gate('max_user_namespaces');
  t.is(g.status, 'blocked');
  t.is(g.value, 0);
  for (const ns of NS_TYPES) t.true(g.affects.includes(`${ns}/rootless`), ns);
  t.true(g.affects.includes('user/privileged'));
  t.true(g.affects.includes('net-veth/rootless'));
  t.false(g.affects.includes('net/privileged'));
  t.regex(g.cause, /CentOS\/RHEL 7/);
  t.true(g.remedy.includes('echo 28633 > /proc/sys/user/max_user_namespaces'));
  t.true(g.remedy.includes("echo 'user.max_user_namespaces = 28633' > /etc/sysctl.d/90-nsprobe-userns.conf"));
  t.false(g.remedy.includes('grubby'), 'RHEL 7.4+ needs no boot parameter');
});

test('centos7: the other limits are ok; max_time is absent because the kernel predates it', (t) => {
  const h = loadHost('centos7');
  for (const ns of ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup']) t.is(h.gate(`max_${ns}_namespaces`).status, 'ok', ns);
  const time = h.gate('max_time_namespaces');
  t.is(time.status, 'ok');
  t.is(time.value, null);
  t.regex(time.cause, /predates/);
});

test('rhel7.2: user_namespace.enable=N -> max_user_namespaces blocked with the boot parameters', (t) => {
  const h = loadHost('rhel7.2');
  const g = h.gate('max_user_namespaces');
  t.is(g.status, 'blocked');
  t.regex(g.cause, /user_namespace\.enable = N/);
  t.true(g.remedy.includes('grubby --args="user_namespace.enable=1 namespace.unpriv_enable=1" --update-kernel=ALL'));
  t.true(g.remedy.includes('reboot'));
  t.is(h.gate('max_net_namespaces').status, 'ok', 'RHEL 7.2 predates the per-type limits');
});

test('max_*: 0 blocked, below one run warn, below 1024 warn for user, ok above', (t) => {
  const h = loadHost('noconfig');
  const time = h.gate('max_time_namespaces');
  t.is(time.status, 'warn');
  t.is(time.value, 8);
  t.true(time.remedy.includes('sysctl -w user.max_time_namespaces='));
  t.true(time.remedy.includes('/etc/sysctl.d/'));
  t.true(time.affects.includes('time/privileged') && time.affects.includes('time/rootless'));
  t.false(time.affects.some((a) => a.startsWith('uts/')));
  const more = loadHost('noconfig', {}, { needs: { userNamespacesPerRun: 4 } });
  t.is(more.gate('max_time_namespaces').status, 'ok');
});

test('max_mnt/max_pid also affect the probe that creates the other (the pid probe mounts /proc in a mount namespace)', (t) => {
  const h = loadHost('debian12');
  for (const id of ['max_mnt_namespaces', 'max_pid_namespaces']) {
    const a = h.gate(id).affects;
    for (const p of ['mnt/privileged', 'mnt/rootless', 'pid/privileged', 'pid/rootless']) t.true(a.includes(p), `${id} ${p}`);
    t.false(a.includes('uts/privileged'), id);
  }
});

test('max_net_namespaces affects net and net-veth in both modes, not uts', (t) => {
  const g = loadHost('debian12').gate('max_net_namespaces');
  for (const p of ['net-veth/privileged', 'net-veth/rootless', 'net/privileged', 'net/rootless']) t.true(g.affects.includes(p), p);
  t.true(gateAffects(g, 'net-veth', 'net', 'rootless'));
  t.false(gateAffects(g, 'uts', 'uts', 'rootless'));
});

test('affects are derived from what probes declare they create and use, with no duplicates', (t) => {
  const probe = (name: string, namespace: NsType, extra: Partial<ProbeDef> = {}): ProbeDef =>
    ({ name, namespace, cloneFlag: 'x', since: '1', summary: '', run: async () => undefined, ...extra });
  const probes = [
    probe('a', 'uts'),
    probe('b', 'pid', { namespaces: () => ['pid', 'mnt'], uses: { procMount: true } }),
    probe('c', 'net', { creates: () => ['net', 'uts'], uses: { veth: true, sysctlWrite: true } }),
    probe('d', 'user', { needs: { modes: ['rootless'] }, uses: { userNsNesting: true } }),
  ];
  const h = loadHost('docker', {}, { probes, measured: { userNsDepthLeft: 1 } });
  const sorted = (id: string) => [...h.gate(id).affects].sort();
  t.deepEqual(sorted('max_uts_namespaces'), ['a/privileged', 'a/rootless', 'c/privileged', 'c/rootless']);
  t.deepEqual(sorted('max_mnt_namespaces'), ['b/privileged', 'b/rootless']);
  t.deepEqual(sorted('max_user_namespaces'), ['a/rootless', 'b/rootless', 'c/rootless', 'd/rootless']);
  t.deepEqual(sorted('proc_fully_visible'), ['b/rootless'], 'a masked /proc stops a fresh proc mount only in a user namespace');
  t.deepEqual(sorted('proc_sys_readonly'), ['c/privileged', 'c/rootless']);
  t.deepEqual(sorted('seccomp'), ['a/privileged', 'a/rootless', 'b/privileged', 'b/rootless', 'c/privileged', 'c/rootless', 'd/rootless']);
  t.deepEqual(sorted('userns_nesting'), ['d/rootless']);
  const kc = kernelConfigGate({ source: 's', options: parseKernelConfig('CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\nCONFIG_PID_NS=y\nCONFIG_NET_NS=y\nCONFIG_USER_NS=y\nCONFIG_CGROUPS=y\nCONFIG_TIME_NS=y\nCONFIG_IPC_NS=y\n') }, probes);
  t.deepEqual([...kc.affects].sort(), ['c/privileged', 'c/rootless'], 'CONFIG_VETH missing blocks only the probe that makes a veth pair');
  for (const g of h.gates) t.is(new Set(g.affects).size, g.affects.length, `${g.id} lists a probe twice`);
});

// ---------- switches, LSM, seccomp, chroot ----------

test('debian10: unprivileged_userns_clone 0 blocks rootless', (t) => {
  const g = loadHost('debian10').gate('unprivileged_userns_clone');
  t.is(g.status, 'blocked');
  t.is(g.value, 0);
  t.true(g.affects.includes('uts/rootless'));
  t.false(g.affects.includes('uts/privileged'));
  t.true(g.remedy.includes('sysctl -w kernel.unprivileged_userns_clone=1'));
  t.true(g.remedy.includes("echo 'kernel.unprivileged_userns_clone = 1' > /etc/sysctl.d/"));
});

test('unprivileged_userns_clone absent -> ok, knob not present', (t) => {
  const g = loadHost('debian12').gate('unprivileged_userns_clone');
  t.is(g.status, 'ok');
  t.regex(g.cause, /knob not present/);
});

test('ubuntu2404: apparmor_restrict_unprivileged_userns 1 blocks rootless; remedy is a profile or the sysctl', (t) => {
  const g = loadHost('ubuntu2404').gate('apparmor_userns');
  t.is(g.status, 'blocked');
  t.deepEqual(g.value, { restrict_unprivileged_userns: 1, restrict_unprivileged_unconfined: 0, label: 'unconfined' });
  t.true(g.affects.includes('mnt/rootless'));
  t.regex(g.cause, /uid_map fails with EPERM/);
  t.true(g.remedy.includes('/etc/apparmor.d/nsprobe'));
  t.true(g.remedy.includes('abi <abi/4.0>'));
  t.true(g.remedy.includes('include <tunables/global>'));
  t.true(g.remedy.includes('profile nsprobe /usr/bin/node flags=(unconfined) {'));
  t.true(g.remedy.includes('userns,'));
  t.true(g.remedy.includes('apparmor_parser -r /etc/apparmor.d/nsprobe'));
  t.true(g.remedy.includes('sysctl -w kernel.apparmor_restrict_unprivileged_userns=0'));
  t.true(g.remedy.includes('/etc/sysctl.d/'));
});

test('ubuntu2404 under a profile of its own: warn, not blocked', (t) => {
  const h = loadHost('ubuntu2404', { execPath: '/opt/node/bin/node' });
  const base = h.ctx.fs;
  const ctx = { ...h.ctx, fs: { ...base, readFile: (p: string) => (p === '/proc/self/attr/apparmor/current' ? 'nsprobe (unconfined)\n' : base.readFile(p)) } };
  const g = evaluateGates(ctx, h.facts).find((x) => x.id === 'apparmor_userns')!;
  t.is(g.status, 'warn');
  t.true(g.remedy.includes('profile nsprobe /opt/node/bin/node'));
});

test('docker: seccomp filter -> warn with docker remedy', (t) => {
  const g = loadHost('docker').gate('seccomp');
  t.is(g.status, 'warn');
  t.regex(g.cause, /clone3 with ENOSYS/);
  t.true(g.remedy.includes('--security-opt seccomp=unconfined'));
  t.true(g.affects.includes('uts/privileged') && g.affects.includes('uts/rootless'));
});

test('docker: masked /proc -> proc_fully_visible warn affecting pid and mnt rootless', (t) => {
  const g = loadHost('docker').gate('proc_fully_visible');
  t.is(g.status, 'warn');
  t.true((g.value as string[]).includes('/proc/kcore'));
  t.true((g.value as string[]).includes('/proc/sys'));
  t.true(g.affects.includes('pid/rootless') && g.affects.includes('mnt/rootless'));
  t.regex(g.cause, /Mount too revealing/);
  t.true(g.remedy.includes('systempaths=unconfined'));
});

test('binfmt_misc on /proc/sys/fs/binfmt_misc does not count as masking', (t) => {
  t.is(loadHost('debian12').gate('proc_fully_visible').status, 'ok');
});

test('chroot fixture: chroot gate blocked for user namespaces', (t) => {
  const g = loadHost('chroot').gate('chroot');
  t.is(g.status, 'blocked');
  t.regex(g.cause, /EPERM even for root/);
  t.true(g.affects.includes('user/privileged') && g.affects.includes('net/rootless'));
  t.regex(g.remedy, /pivot_root/);
});

// ---------- helpers and subordinate ids ----------

test('idmap_helpers: setuid root -> ok; missing -> install command by distro; not setuid -> chmod u+s', (t) => {
  t.is(loadHost('debian12').gate('idmap_helpers').status, 'ok');
  const missingDebian = loadHost('docker').gate('idmap_helpers');
  t.is(missingDebian.status, 'warn');
  t.is(missingDebian.remedy, 'apt-get install uidmap');
  t.deepEqual(missingDebian.affects, []);
  t.is(loadHost('noconfig').gate('idmap_helpers').remedy, 'apk add shadow-uidmap');
  t.is(loadHost('centos7').gate('idmap_helpers').remedy, 'yum install shadow-utils');
  const lost = loadHost('debian10').gate('idmap_helpers');
  t.is(lost.status, 'warn');
  t.regex(lost.cause, /file capabilities not checked/);
  t.true(lost.remedy.includes('chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap'));
});

test('subid: overlapping ranges warn (podman #12637)', (t) => {
  const g = loadHost('debian10').gate('subid');
  t.is(g.status, 'warn');
  t.regex(g.cause, /overlap/);
  t.deepEqual((g.value as { overlaps: string[] }).overlaps, ['subuid: alice 100000+65536 overlaps bob 165000+65536']);
});

test('subid: a range below 65536 warns with usermod starting after every used range', (t) => {
  const g = loadHost('noconfig').gate('subid');
  t.is(g.status, 'warn');
  t.is(g.remedy, 'usermod --add-subuids 165536-231071 dev');
});

test('subid: a user without entries warns; root without entries is ok', (t) => {
  const nobody = loadHost('debian12', { euid: 65534 }).gate('subid');
  t.is(nobody.status, 'warn');
  t.is(nobody.remedy, 'usermod --add-subuids 165536-231071 --add-subgids 165536-231071 65534', 'no /etc/passwd name: the uid');
  const root = loadHost('debian12').gate('subid');
  t.is(root.status, 'ok');
  t.is(loadHost('debian12', { euid: 1000 }).gate('subid').status, 'ok');
});

// ---------- kernel config ----------

test('kernel_config: config missing TIME_NS blocks only probes that create a time namespace', (t) => {
  const g = loadHost('centos7').gate('kernel_config');
  t.is(g.status, 'blocked');
  t.true(g.affects.includes('time/privileged') && g.affects.includes('time/rootless'));
  t.false(g.affects.some((a) => /^(uts|ipc|net|pid|mnt|user|cgroup)\//.test(a)));
  t.regex(g.cause, /CONFIG_TIME_NS/);
});

test('kernel_config: no config anywhere -> unknown, not blocked', (t) => {
  const g = loadHost('noconfig').gate('kernel_config');
  t.is(g.status, 'unknown');
  t.is(g.value, null);
});

test('kernel_config: "is not set" and missing options block their namespaces; usable on any config file', (t) => {
  const g = kernelConfigGate({ source: '/boot/config-x', options: parseKernelConfig('CONFIG_NAMESPACES=y\n# CONFIG_USER_NS is not set\nCONFIG_NET_NS=y\n') });
  t.is(g.status, 'blocked');
  t.true(g.affects.includes('uts/rootless') && g.affects.includes('user/privileged') && g.affects.includes('net-veth/privileged'));
  t.regex(g.cause, /CONFIG_USER_NS/);
  const ok = kernelConfigGate({ source: 's', options: parseKernelConfig(['NAMESPACES', 'UTS_NS', 'IPC_NS', 'PID_NS', 'NET_NS', 'USER_NS', 'CGROUPS', 'TIME_NS', 'VETH'].map((o) => `CONFIG_${o}=y`).join('\n')) });
  t.is(ok.status, 'ok');
});

test('kernel_config: explicit config path', (t) => {
  const h = loadHost('noconfig', {}, { kernelConfigPath: '/etc/os-release' });
  t.is(h.gate('kernel_config').status, 'unknown', 'a file without CONFIG_ lines is not a config');
  const c = loadHost('centos7', {}, { kernelConfigPath: '/boot/config-3.10.0-1160.el7.x86_64' }).gate('kernel_config');
  t.is((c.value as { source: string }).source, '/boot/config-3.10.0-1160.el7.x86_64');
});

// ---------- nesting ----------

test('userns_nesting: measured levels left', (t) => {
  const at = (left: number | null) => loadHost('debian12', {}, { measured: { userNsDepthLeft: left } }).gate('userns_nesting');
  t.is(at(null).status, 'unknown');
  t.is(at(0).status, 'blocked');
  t.true(at(0).affects.includes('uts/rootless'));
  t.is(at(1).status, 'warn');
  t.is(at(31).status, 'ok');
  t.is(at(31).value, 31);
});

// ---------- the real host ----------

const realGates = (): Gate[] => {
  const ctx = realHostContext();
  return evaluateGates(ctx, collectHostFacts(ctx));
};

test('real host: every max_* ok with a value > 0, kernel_config ok from /proc/config.gz', (t) => {
  const gates = realGates();
  for (const ns of NS_TYPES) {
    const g = gates.find((x) => x.id === `max_${ns}_namespaces`)!;
    t.is(g.status, 'ok', g.cause);
    t.true((g.value as number) > 0);
  }
  const kc = gates.find((x) => x.id === 'kernel_config')!;
  t.is(kc.status, 'ok', kc.cause);
  t.is((kc.value as { source: string }).source, '/proc/config.gz');
  t.is(gates.find((x) => x.id === 'seccomp')!.status, 'ok');
});

// In a container or a private mount namespace with extra mounts (a CI job), files may not tell
// whether this is a chroot (facts.chroot null): then the gate rests on what the kernel does when
// a user namespace is created, as the runner measures it. Assert that, not the host's layout.
test('real host: the chroot gate agrees with the kernel (a user namespace can be created, so ok)', (t) => {
  const ctx = realHostContext();
  const facts = collectHostFacts(ctx);
  const created = spawnSync('unshare', ['-U', 'true']).status === 0;
  const measured = facts.chroot === null ? { rootUserNs: created ? null : 'EPERM' } : {};
  const g = evaluateGates(ctx, facts, { measured }).find((x) => x.id === 'chroot')!;
  if (facts.chroot === true) t.is(g.status, 'blocked', g.cause);
  else if (created) t.is(g.status, 'ok', `${g.cause} (files say chroot=${String(facts.chroot)})`);
  else t.not(g.status, 'ok', g.cause);
});

// Real fault injection: lower one limit inside a user namespace (root here lacks
// CAP_SYS_RESOURCE, so not globally) and evaluate the gates from inside it.
const SCRIPT = fileURLToPath(new URL('./helpers/gates-json.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const canUnshare = spawnSync('unshare', ['-Ur', 'true']).status === 0;

for (const ns of NS_TYPES) {
  (canUnshare ? test : test.skip)(`fault injection: max_${ns}_namespaces = 0 inside unshare -Ur is blocked`, (t) => {
    const knob = `/proc/sys/user/max_${ns}_namespaces`;
    const out = execFileSync(
      'unshare',
      ['-Ur', 'sh', '-c', `echo 0 > ${knob} && exec "$0" --import tsx "$1"`, process.execPath, SCRIPT],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    const { facts, gates } = JSON.parse(out) as { facts: { userNsLevel: number | null; privileged: boolean }; gates: Gate[] };
    const g = gates.find((x) => x.id === `max_${ns}_namespaces`)!;
    t.is(g.status, 'blocked', g.cause);
    t.is(g.value, 0);
    t.true(g.affects.includes(`${ns}/rootless`));
    if (ns !== 'user') t.true(g.affects.includes(`${ns}/privileged`));
    if (ns === 'net') t.true(g.affects.includes('net-veth/rootless') && g.affects.includes('net-veth/privileged'));
    if (ns === 'user') for (const other of NS_TYPES) t.true(g.affects.includes(`${other}/rootless`));
    t.regex(g.remedy, new RegExp(`user\\.max_${ns}_namespaces`));
    t.regex(g.remedy, /inside a user namespace/, 'the remedy says where the limit was lowered');
    for (const other of gates.filter((x) => x.id.startsWith('max_') && x.id !== g.id)) t.is(other.status, 'ok', other.id);
    t.is(facts.userNsLevel, 1);
    t.false(facts.privileged);
  });
}
