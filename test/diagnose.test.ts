import test from 'ava';
import { diagnose, errnoCode, type Failure } from '../src/diagnose.js';
import { evaluateGates, type GateOptions } from '../src/gates.js';
import { collectHostFacts } from '../src/host/facts.js';
import type { HostContext } from '../src/host/hostfs.js';
import { loadHost } from './helpers/hosts.js';
import type { Gate, HostFacts } from '../src/model.js';

/** A fixture host with some files replaced (path -> content, null = missing). */
function hostWith(name: string, files: Record<string, string | null>, over: Partial<Omit<HostContext, 'fs'>> = {}, opts: GateOptions = {}) {
  const h = loadHost(name, over);
  const base = h.ctx.fs;
  const ctx: HostContext = {
    ...h.ctx,
    fs: {
      ...base,
      readFile: (p) => (p in files ? files[p]! : base.readFile(p)),
      exists: (p) => (p in files ? files[p] !== null : base.exists(p)),
    },
  };
  const facts = collectHostFacts(ctx);
  return { facts, gates: evaluateGates(ctx, facts, opts) };
}

function run(name: string, f: Partial<Failure> & Pick<Failure, 'namespace' | 'mode'>, host: { facts: HostFacts; gates: Gate[] } = loadHost(name)) {
  return diagnose({ probe: f.namespace, euid: host.facts.euid, privilegedCaller: host.facts.privileged === true, ...f }, host.gates, host.facts);
}

test('centos7: rootless clone ENOSPC with max_user_namespaces 0 -> max_user_namespaces, el7 remedy', (t) => {
  const d = run('centos7', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', errno: 28, code: 'ENOSPC' });
  t.is(d.gate, 'max_user_namespaces');
  t.true(d.remedy.includes('echo 28633 > /proc/sys/user/max_user_namespaces'));
  t.true(d.remedy.includes('/etc/sysctl.d/90-nsprobe-userns.conf'));
  t.regex(d.cause, /^clone failed at stage clone with ENOSPC: CentOS\/RHEL 7 ships user.max_user_namespaces = 0/);
});

test('centos7: EINVAL on the el7 kernel is still max_user_namespaces, not "invalid argument"', (t) => {
  const d = run('centos7', { namespace: 'net', mode: 'rootless', stage: 'clone', syscall: 'clone', errno: 22 });
  t.is(d.gate, 'max_user_namespaces');
  t.notRegex(d.cause, /no known host gate/);
  const user = run('centos7', { namespace: 'user', mode: 'privileged', stage: 'clone', syscall: 'clone', code: 'EINVAL' });
  t.is(user.gate, 'max_user_namespaces', 'root creating a user namespace hits the same limit');
});

test('rhel7.2: EINVAL with user_namespace.enable=N -> max_user_namespaces with the boot parameters', (t) => {
  const d = run('rhel7.2', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EINVAL' });
  t.is(d.gate, 'max_user_namespaces');
  t.true(d.remedy.includes('grubby --args="user_namespace.enable=1 namespace.unpriv_enable=1" --update-kernel=ALL'));
});

test('ENOSPC for a net namespace with max_net_namespaces 0 -> max_net_namespaces', (t) => {
  const h = hostWith('debian12', { '/proc/sys/user/max_net_namespaces': '0\n' });
  for (const mode of ['privileged', 'rootless'] as const) {
    const d = diagnose({ probe: 'net', namespace: 'net', mode, stage: 'clone', syscall: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, h.gates, h.facts);
    t.is(d.gate, 'max_net_namespaces', mode);
    t.true(d.remedy.includes('sysctl -w user.max_net_namespaces='));
  }
  const veth = diagnose({ probe: 'net-veth', namespace: 'net', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, h.gates, h.facts);
  t.is(veth.gate, 'max_net_namespaces');
});

test('ENOSPC: a probe that also creates another namespace (pid probe makes mnt too) finds that limit', (t) => {
  const h = hostWith('debian12', { '/proc/sys/user/max_mnt_namespaces': '0\n' });
  const d = diagnose({ probe: 'pid', namespace: 'pid', namespaces: ['pid', 'mnt'], mode: 'privileged', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, h.gates, h.facts);
  t.is(d.gate, 'max_mnt_namespaces');
  const implicit = diagnose({ probe: 'pid', namespace: 'pid', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, h.gates, h.facts);
  t.is(implicit.gate, 'max_mnt_namespaces', 'the gates know the pid probe creates a mount namespace');
  const mnt = hostWith('debian12', { '/proc/sys/user/max_pid_namespaces': '0\n' });
  t.is(diagnose({ probe: 'mnt', namespace: 'mnt', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, mnt.gates, mnt.facts).gate, 'max_pid_namespaces');
  const uts = diagnose({ probe: 'uts', namespace: 'uts', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, h.gates, h.facts);
  t.is(uts.gate, null, 'a limit on mount namespaces does not explain a uts probe');
});

test('ENOSPC rootless with only max_user 0 -> max_user_namespaces (generic sysctl remedy off el7)', (t) => {
  const h = hostWith('debian12', { '/proc/sys/user/max_user_namespaces': '0\n' });
  const d = diagnose({ probe: 'ipc', namespace: 'ipc', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 1000, privilegedCaller: false }, h.gates, h.facts);
  t.is(d.gate, 'max_user_namespaces');
  t.true(d.remedy.includes('sysctl -w user.max_user_namespaces=28633'));
  t.true(d.remedy.includes("echo 'user.max_user_namespaces = 28633' > /etc/sysctl.d/90-nsprobe-userns.conf"));
});

test('ENOSPC with no limit exhausted: nesting when measured, else an honest "limit reached"', (t) => {
  const nested = hostWith('debian12', {}, {}, { measured: { userNsDepthLeft: 0 } });
  const d = diagnose({ probe: 'user', namespace: 'user', mode: 'rootless', stage: 'clone', code: 'ENOSPC', euid: 0, privilegedCaller: true }, nested.gates, nested.facts);
  t.is(d.gate, 'userns_nesting');
  const plain = run('debian12', { namespace: 'user', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'ENOSPC' });
  t.is(plain.gate, null);
  t.regex(plain.cause, /limit was reached/);
  t.regex(plain.cause, /no known host gate explains it/);
});

test('debian10: EPERM creating a user namespace as an unprivileged user -> unprivileged_userns_clone', (t) => {
  const d = run('debian10', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EPERM' });
  t.is(d.gate, 'unprivileged_userns_clone');
  t.true(d.remedy.includes('sysctl -w kernel.unprivileged_userns_clone=1'));
});

test('ubuntu2404: uid_map/gid_map/setgroups EPERM or mount EACCES in rootless -> apparmor_userns', (t) => {
  for (const stage of ['uid_map', 'gid_map', 'setgroups']) {
    const d = run('ubuntu2404', { namespace: 'user', mode: 'rootless', stage, syscall: 'write', code: 'EPERM' });
    t.is(d.gate, 'apparmor_userns', stage);
    t.true(d.remedy.includes('apparmor_parser -r /etc/apparmor.d/nsprobe'));
  }
  const m = run('ubuntu2404', { namespace: 'mnt', mode: 'rootless', stage: 'request', syscall: 'mount', code: 'EACCES' });
  t.is(m.gate, 'apparmor_userns');
});

test('docker: EPERM with a seccomp filter and no other gate -> seccomp; ENOSYS at clone -> seccomp', (t) => {
  const e = run('docker', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EPERM' });
  t.is(e.gate, 'seccomp');
  t.true(e.remedy.includes('--security-opt seccomp=unconfined'));
  const n = run('docker', { namespace: 'time', mode: 'rootless', stage: 'clone', syscall: 'clone3', code: 'ENOSYS' });
  t.is(n.gate, 'seccomp');
});

test('docker: mount of proc EPERM in rootless pid -> proc_fully_visible', (t) => {
  const d = run('docker', { namespace: 'pid', mode: 'rootless', stage: 'request', syscall: 'mount', code: 'EPERM', message: 'mount proc on /proc' });
  t.is(d.gate, 'proc_fully_visible');
  t.true(d.remedy.includes('systempaths=unconfined'));
});

test('docker: EPERM entering in privileged mode under the container seccomp filter -> seccomp, not a guess about the caller', (t) => {
  const d = run('docker', { namespace: 'uts', mode: 'privileged', stage: 'clone', syscall: 'clone', code: 'EPERM' });
  t.is(d.gate, 'seccomp');
  t.regex(d.remedy, /seccomp=unconfined/);
});

test('resource limits of the caller are named, never blamed on a host gate', (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax processes             14                   14                   processes\nMax open files            30                   4096                 files\nMax address space         1000000              unlimited            bytes\n';
  const h = hostWith('debian12', { '/proc/self/limits': limits });
  const at = (code: string, stage = 'clone', syscall = 'clone') => run('debian12', { namespace: 'uts', mode: 'rootless', stage, syscall, code }, h);
  t.like(at('EAGAIN'), { gate: null });
  t.regex(at('EAGAIN').cause, /RLIMIT_NPROC is 14 .*ulimit -u/);
  t.regex(at('ENOMEM', 'request', 'mmap').cause, /RLIMIT_AS is 1000000 bytes \(ulimit -v\)/);
  t.regex(at('EMFILE', 'request', 'recvmsg').cause, /RLIMIT_NOFILE is 30 \(ulimit -n\)/);
  t.is(at('ENOMEM').gate, null);
});

test('EROFS writing a sysctl under a read-only /proc/sys -> proc_sys_readonly with the container flags', (t) => {
  const mi = '22 1 0:21 / / rw - ext4 /dev/sda1 rw\n23 22 0:22 / /proc rw,nosuid - proc proc rw\n24 23 0:22 /sys /proc/sys ro,nosuid - proc proc rw\n';
  const h = hostWith('debian12', { '/proc/self/mountinfo': mi });
  t.is(h.gates.find((g) => g.id === 'proc_sys_readonly')?.status, 'warn');
  const d = run('debian12', { probe: 'net-veth', namespace: 'net', mode: 'rootless', stage: 'request', syscall: 'write', code: 'EROFS' }, h);
  t.is(d.gate, 'proc_sys_readonly');
  t.regex(d.remedy, /systempaths=unconfined/);
  const rw = hostWith('debian12', { '/proc/self/mountinfo': mi.replace('/proc/sys ro,', '/proc/sys rw,') });
  t.is(rw.gates.find((g) => g.id === 'proc_sys_readonly')?.status, 'ok', 'control: a read-write /proc/sys is no gate');
  t.is(run('debian12', { probe: 'net-veth', namespace: 'net', mode: 'rootless', stage: 'request', syscall: 'write', code: 'EROFS' }, rw).gate, null);
});

test('debian10: root nests one user namespace, the next is EPERM (its creator is inside a user namespace) -> unprivileged_userns_clone', (t) => {
  const step = { namespace: 'user' as const, mode: 'privileged' as const, stage: 'request', syscall: 'unshare', code: 'EPERM', euid: 0, privilegedCaller: true };
  const nested = run('debian10', { probe: 'nesting', ...step, message: 'nest user namespaces below level 1 (by a process inside a new user namespace): EPERM' });
  t.is(nested.gate, 'unprivileged_userns_clone');
  // Control: root itself creating one is not stopped by the knob, so it is not blamed.
  t.not(run('debian10', { probe: 'user', ...step, message: 'unshare(CLONE_NEWUSER): EPERM' }).gate, 'unprivileged_userns_clone');
});

test('chroot: EPERM creating a user namespace -> chroot', (t) => {
  const d = run('chroot', { namespace: 'user', mode: 'privileged', stage: 'clone', syscall: 'clone', code: 'EPERM' });
  t.is(d.gate, 'chroot');
  t.regex(d.remedy, /outside the chroot/);
});

test('needs with a runner message passes the message through', (t) => {
  const d = run('debian12', { namespace: 'user', mode: 'privileged', stage: 'needs', message: 'the user probe has no privileged mode' });
  t.is(d.cause, 'the user probe has no privileged mode');
  t.is(d.gate, null);
});

test('kernel_config blocked for the namespace with EINVAL at clone -> kernel_config', (t) => {
  const d = run('centos7', { namespace: 'time', mode: 'privileged', stage: 'clone', syscall: 'clone3', code: 'EINVAL' });
  t.is(d.gate, 'kernel_config');
  t.regex(d.cause, /CONFIG_TIME_NS/);
});

test('no gate explains it: say so, name the error, say what to collect', (t) => {
  const d = run('debian12', { namespace: 'net', mode: 'rootless', stage: 'setns', syscall: 'setns', errno: 22 });
  t.is(d.gate, null);
  t.is(d.cause.split(';')[0], 'setns failed at stage setns with EINVAL (Invalid argument)');
  t.regex(d.cause, /no known host gate explains it$/);
  t.true(d.remedy.includes('dmesg | tail'));
  const eperm = run('debian12', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EPERM' });
  t.is(eperm.gate, null, 'EPERM on a clean host is not blamed on anything');
});

test('timeout passes the runner message through', (t) => {
  const d = run('debian12', { namespace: 'pid', mode: 'rootless', stage: 'timeout', message: 'timeout after 5000 ms' });
  t.is(d.cause, 'timeout after 5000 ms');
  t.is(d.gate, null);
});

test('errno numbers are named', (t) => {
  t.is(errnoCode({ errno: 28 }), 'ENOSPC');
  t.is(errnoCode({ errno: 1, code: 'EPERM' }), 'EPERM');
  t.is(errnoCode({}), null);
});

test('kernel without CONFIG_USER_NS: a rootless clone refused with EPERM is kernel_config; with USER_NS built in, EPERM stays unexplained', async (t) => {
  const { parseKernelConfig } = await import('../src/host/kconfig.js');
  const cfg = (userNs: string) => ({ source: '/proc/config.gz', options: parseKernelConfig(`CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\nCONFIG_IPC_NS=y\nCONFIG_PID_NS=y\nCONFIG_NET_NS=y\nCONFIG_CGROUPS=y\n${userNs}\nCONFIG_TIME_NS=y\nCONFIG_VETH=m\n`) });
  const f = { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EPERM' } as const;
  const without = run('debian12', f, hostWith('debian12', {}, {}, { kernelConfig: cfg('# CONFIG_USER_NS is not set') }));
  t.is(without.gate, 'kernel_config');
  t.regex(without.cause, /CONFIG_USER_NS/);
  // control: the same EPERM where the option is there is not blamed on the kernel config
  const withIt = run('debian12', f, hostWith('debian12', {}, {}, { kernelConfig: cfg('CONFIG_USER_NS=y') }));
  t.is(withIt.gate, null);
  // and privileged mode (no user namespace asked for) is never blamed on CONFIG_USER_NS
  t.not(run('debian12', { ...f, mode: 'privileged' }, hostWith('debian12', {}, {}, { kernelConfig: cfg('# CONFIG_USER_NS is not set') })).gate, 'kernel_config');
});

test('kernel without CONFIG_VETH: veth creation refused with EOPNOTSUPP is kernel_config; config unreadable: EINVAL at clone names the unknown kernel_config gate', async (t) => {
  const { parseKernelConfig } = await import('../src/host/kconfig.js');
  const cfg = (veth: string) => ({ source: '/proc/config.gz', options: parseKernelConfig(`CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\nCONFIG_IPC_NS=y\nCONFIG_PID_NS=y\nCONFIG_NET_NS=y\nCONFIG_CGROUPS=y\nCONFIG_USER_NS=y\nCONFIG_TIME_NS=y\n${veth}\n`) });
  const f = { probe: 'net-veth', namespace: 'net', mode: 'privileged', stage: 'request', syscall: 'sendmsg', code: 'EOPNOTSUPP' } as const;
  t.is(run('debian12', f, hostWith('debian12', {}, {}, { kernelConfig: cfg('# CONFIG_VETH is not set') })).gate, 'kernel_config');
  t.is(run('debian12', f, hostWith('debian12', {}, {}, { kernelConfig: cfg('CONFIG_VETH=m') })).gate, null, 'control: with veth the same error is unexplained');
  const unknown = hostWith('debian12', {}, {}, { kernelConfig: null });
  t.is(unknown.gates.find((g) => g.id === 'kernel_config')?.status, 'unknown');
  const d = run('debian12', { namespace: 'time', mode: 'privileged', stage: 'clone', syscall: 'clone3', code: 'EINVAL' }, unknown);
  t.is(d.gate, 'kernel_config');
  t.regex(d.cause, /no kernel config found/);
  t.regex(d.remedy, /config/);
  // an EPERM is never put on an unknown config (many policies give EPERM)
  t.is(run('debian12', { namespace: 'uts', mode: 'rootless', stage: 'clone', syscall: 'clone', code: 'EPERM' }, unknown).gate, null);
});
