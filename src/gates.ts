// Gates: host settings that decide whether a namespace can be entered, each with the
// probes it can block, why, and what to run. Pure logic over a HostContext + HostFacts.
// Gate ids are stable: reports from different versions merge on them.
import { MODES, NS_TYPES, type Gate, type GateStatus, type HostFacts, type Mode, type NsType } from './model.js';
import type { HostContext } from './host/hostfs.js';
import { isEnabled, readKernelConfig, type KernelConfig } from './host/kconfig.js';
import { parseMountinfo } from './host/mountinfo.js';

export interface GateOptions {
  measured?: {
    userNsDepthLeft?: number | null;
    /**
     * errno code of root (with CAP_SYS_ADMIN) creating a user namespace, when the runner tried it
     * because files could not tell whether this is a chroot; null when it worked.
     */
    rootUserNs?: string | null;
  };
  needs?: { userNamespacesPerRun?: number };
  /** Use this config instead of reading the running kernel's (undefined: read it). */
  kernelConfig?: KernelConfig | null;
  /** Read the kernel config from this file instead of /proc/config.gz or /boot/config-<release>. */
  kernelConfigPath?: string;
}

/** How many namespaces of one type a suite run creates at most (nesting aside). */
export const DEFAULT_NEEDS_PER_RUN = 16;
/** Below this many user namespaces, rootless container runtimes and sandboxes run out. */
export const USERNS_COMFORT = 1024;
/**
 * Levels of user namespaces below the initial one: the kernel refuses a new one whose parent is
 * deeper than 32 (ENOSPC), so 33 exist below level 0 (measured on 6.18: the 34th fails).
 */
export const USERNS_MAX_DEPTH = 33;
/** The value nsprobe's remedies raise user.max_user_namespaces to (the one Red Hat's rootless guide uses). */
export const USERNS_REMEDY_VALUE = 28633;

// ---------- affects ----------

/** Deeper probes that belong to a namespace, beyond the basic `<ns>` probe. */
const DEEP_PROBES: Partial<Record<NsType, string[]>> = { net: ['net-veth'] };

/**
 * Namespaces a probe creates besides its own (mirrors `namespaces` in probes/*.ts): the pid
 * and mnt probes both mount a fresh /proc, so each needs the other namespace too.
 */
export const PROBE_EXTRA_NAMESPACES: Readonly<Record<string, readonly NsType[]>> = { pid: ['mnt'], mnt: ['pid'] };

/** Probe ids (in `modes`) that create a namespace of type `ns`. */
export function probeIds(ns: NsType, modes: readonly Mode[] = MODES): string[] {
  const users = Object.keys(PROBE_EXTRA_NAMESPACES).filter((p) => p !== ns && PROBE_EXTRA_NAMESPACES[p]!.includes(ns));
  return [ns, ...(DEEP_PROBES[ns] ?? []), ...users].flatMap((p) => modes.map((m) => `${p}/${m}`));
}

const ROOTLESS_ALL = NS_TYPES.flatMap((ns) => probeIds(ns, ['rootless']));
const EVERY_PROBE = NS_TYPES.flatMap((ns) => probeIds(ns));
/** Probes that create a user namespace: every rootless one, and user/privileged. */
const USERNS_CREATORS = [...ROOTLESS_ALL, ...probeIds('user', ['privileged'])];

/** Whether a gate can block a probe (matched by `<probe>/<mode>` or `<namespace>/<mode>`). */
export function gateAffects(gate: Gate, probe: string, namespace: NsType, mode: Mode): boolean {
  return gate.affects.includes(`${probe}/${mode}`) || gate.affects.includes(`${namespace}/${mode}`);
}

// ---------- shared helpers ----------

export function parseKernelRelease(release: string): number[] {
  return (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release)?.slice(1) ?? []).map((x) => Number(x ?? 0));
}

export function kernelAtLeast(release: string, want: [number, number]): boolean | null {
  const [a, b] = parseKernelRelease(release);
  if (a === undefined || b === undefined) return null;
  return a > want[0] || (a === want[0] && b >= want[1]);
}

/** CentOS/RHEL 7 kernel (3.10.0-<build>.el7); returns the build number or null. */
export function el7Build(release: string): number | null {
  const m = /^3\.10\.0-(\d+)[^ ]*\.el7/.exec(release);
  return m ? Number(m[1]) : null;
}

/** Commands to set a sysctl now and keep it across reboots. */
export function sysctlRemedy(key: string, value: string | number, file: string): string {
  return [
    `sysctl -w ${key}=${value}   # now, as root`,
    `echo '${key} = ${value}' > /etc/sysctl.d/${file}   # persist across reboots (applied at boot, or now by: sysctl --system)`,
  ].join('\n');
}

type Family = 'debian' | 'fedora' | 'el7' | 'alpine' | 'arch' | 'suse' | null;

export function distroFamily(facts: HostFacts): Family {
  const ids = [facts.distro.id, ...(facts.distro.idLike ?? [])];
  if (ids.some((i) => ['rhel', 'centos', 'fedora', 'rocky', 'almalinux', 'ol'].includes(i)))
    return facts.distro.versionId.split('.')[0] === '7' ? 'el7' : 'fedora';
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'debian';
  if (ids.includes('alpine')) return 'alpine';
  if (ids.includes('arch')) return 'arch';
  if (ids.some((i) => i.includes('suse'))) return 'suse';
  return null;
}

interface Input {
  ctx: HostContext;
  facts: HostFacts;
  opts: GateOptions;
}

function gate(id: string, status: GateStatus, value: unknown, affects: string[], cause: string, remedy = ''): Gate {
  return { id, status, value, affects, cause, remedy: status === 'ok' ? '' : remedy };
}

type ReadNumber = { state: 'value'; n: number } | { state: 'missing' } | { state: 'unreadable' };

function readNumber(ctx: HostContext, path: string): ReadNumber {
  const t = ctx.fs.readFile(path);
  if (t === null) return { state: ctx.fs.exists(path) ? 'unreadable' : 'missing' };
  const n = Number(t.trim());
  return Number.isFinite(n) && t.trim() !== '' ? { state: 'value', n } : { state: 'unreadable' };
}

const NESTED_NOTE =
  '# this process is inside a user namespace: the limit may have been lowered by whoever created it; raise it there, or on the host';

// ---------- max_<type>_namespaces ----------

/** Kernel that introduced each user.max_<type>_namespaces knob. */
const KNOB_SINCE: Record<NsType, [number, number]> = {
  uts: [4, 9], ipc: [4, 9], pid: [4, 9], net: [4, 9], mnt: [4, 9], user: [4, 9], cgroup: [4, 9], time: [5, 6],
};

/** RHEL/CentOS 7.0-7.3 kernels (build < 693) only allow user namespaces when booted with user_namespace.enable=1. */
function el7BootDisabled(ctx: HostContext, release: string): string | null {
  const build = el7Build(release);
  if (build === null) return null;
  const param = ctx.fs.readFile('/sys/module/user_namespace/parameters/enable')?.trim();
  if (param !== undefined) return /^[N0]/i.test(param) ? `module parameter user_namespace.enable = ${param}` : null;
  const cmdline = ctx.fs.readFile('/proc/cmdline');
  if (build < 693 && cmdline !== null && !/(^|\s)user_namespace\.enable=1(\s|$)/.test(cmdline))
    return `kernel 3.10.0-${build} (RHEL 7.0-7.3) booted without user_namespace.enable=1`;
  return null;
}

const GRUBBY =
  'grubby --args="user_namespace.enable=1 namespace.unpriv_enable=1" --update-kernel=ALL   # add the boot parameters, as root\nreboot';

function maxNamespacesGate(ns: NsType, { ctx, facts, opts }: Input): Gate {
  const id = `max_${ns}_namespaces`;
  const key = `user.${id}`;
  const path = `/proc/sys/user/${id}`;
  const release = facts.kernel.release;
  const affects = ns === 'user' ? USERNS_CREATORS : probeIds(ns);
  const isUser = ns === 'user';
  const el7 = el7Build(release) !== null;
  const nested = (facts.userNsLevel ?? 0) >= 1 ? `\n${NESTED_NOTE}` : '';
  const r = readNumber(ctx, path);
  const bootOff = isUser ? el7BootDisabled(ctx, release) : null;
  const value = r.state === 'value' ? r.n : null;
  if (bootOff !== null) {
    return gate(id, 'blocked', value, affects,
      `user namespaces are disabled on this CentOS/RHEL 7 kernel (${bootOff}): creating one fails with EINVAL`,
      `${GRUBBY}${value === 0 ? `\n# after the reboot also:\n${el7Remedy()}` : ''}`);
  }
  if (r.state !== 'value') {
    // RHEL 7.4 (kernel 3.10.0-693) backported the 4.9 knobs.
    const backported = (el7Build(release) ?? 0) >= 693 && KNOB_SINCE[ns][0] === 4;
    const predates = kernelAtLeast(release, KNOB_SINCE[ns]) === false && !backported;
    if (r.state === 'missing' && predates)
      return gate(id, 'ok', null, affects, `kernel ${release} predates ${key} (added in ${KNOB_SINCE[ns].join('.')}): there is no such limit to hit`);
    return gate(id, 'unknown', null, affects,
      r.state === 'missing' ? `${path} does not exist, so the limit cannot be read` : `${path} exists but could not be read as a number`,
      `cat ${path}   # check by hand`);
  }
  const n = r.n;
  const perRun = opts.needs?.userNamespacesPerRun ?? DEFAULT_NEEDS_PER_RUN;
  const want = isUser ? Math.max(perRun, USERNS_COMFORT) : perRun;
  const target = isUser ? USERNS_REMEDY_VALUE : Math.max(USERNS_REMEDY_VALUE, want);
  const fix = (isUser && el7 ? el7Remedy() : sysctlRemedy(key, target, isUser ? '90-nsprobe-userns.conf' : `90-nsprobe-${ns}ns.conf`)) + nested;
  if (n <= 0) {
    const why = isUser && el7
      ? `CentOS/RHEL 7 ships ${key} = 0: creating any user namespace fails (EINVAL on this 3.10 kernel, ENOSPC on kernels >= 4.9)`
      : `${key} = 0: creating any ${ns} namespace fails with ENOSPC${isUser ? ' (so every rootless probe fails)' : ''}`;
    return gate(id, 'blocked', n, affects, why, fix);
  }
  if (n < want) {
    const why = n < perRun
      ? `${key} = ${n} is below the ${perRun} ${ns} namespaces one nsprobe run may create; the limit counts every such namespace this user already holds, so probes may fail with ENOSPC`
      : `${key} = ${n} is enough for one nsprobe run but below ${want}: rootless containers and sandboxes (podman, flatpak, browsers) each take one and may run out (ENOSPC)`;
    return gate(id, 'warn', n, affects, why, fix);
  }
  return gate(id, 'ok', n, affects, `${key} = ${n}`);
}

function el7Remedy(): string {
  return [
    `echo ${USERNS_REMEDY_VALUE} > /proc/sys/user/max_user_namespaces   # now, as root (640 or more lets nsprobe run; rootless containers want more)`,
    `echo 'user.max_user_namespaces = ${USERNS_REMEDY_VALUE}' > /etc/sysctl.d/90-nsprobe-userns.conf   # persist across reboots`,
  ].join('\n');
}

// ---------- switches and LSMs ----------

function unprivilegedUsernsCloneGate({ ctx, facts }: Input): Gate {
  const id = 'unprivileged_userns_clone';
  const path = '/proc/sys/kernel/unprivileged_userns_clone';
  const r = readNumber(ctx, path);
  if (r.state === 'missing')
    return gate(id, 'ok', null, ROOTLESS_ALL, 'knob not present (only Debian <= 10 and linux-hardened kernels have kernel.unprivileged_userns_clone)');
  if (r.state === 'unreadable') return gate(id, 'unknown', null, ROOTLESS_ALL, `${path} could not be read`, `cat ${path}`);
  if (r.n === 0) {
    const rootNote = facts.euid === 0 ? ' (root itself is not affected; nsprobe\'s rootless mode, which runs as an unprivileged uid, is)' : '';
    return gate(id, 'blocked', 0, ROOTLESS_ALL,
      `kernel.unprivileged_userns_clone = 0: creating a user namespace without CAP_SYS_ADMIN fails with EPERM${rootNote}`,
      sysctlRemedy('kernel.unprivileged_userns_clone', 1, '90-nsprobe-userns-clone.conf'));
  }
  return gate(id, 'ok', r.n, ROOTLESS_ALL, `kernel.unprivileged_userns_clone = ${r.n}`);
}

function apparmorLabel(ctx: HostContext): string | null {
  const t = ctx.fs.readFile('/proc/self/attr/apparmor/current') ?? ctx.fs.readFile('/proc/self/attr/current');
  return t === null ? null : t.replace(/\0/g, '').trim() || null;
}

function apparmorUsernsGate({ ctx }: Input): Gate {
  const id = 'apparmor_userns';
  const restrict = readNumber(ctx, '/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  const unconfined = readNumber(ctx, '/proc/sys/kernel/apparmor_restrict_unprivileged_unconfined');
  const label = apparmorLabel(ctx);
  const value = {
    restrict_unprivileged_userns: restrict.state === 'value' ? restrict.n : null,
    restrict_unprivileged_unconfined: unconfined.state === 'value' ? unconfined.n : null,
    label,
  };
  if (restrict.state === 'missing')
    return gate(id, 'ok', value, ROOTLESS_ALL, 'knob not present (kernel.apparmor_restrict_unprivileged_userns exists on Ubuntu 23.10 and later)');
  if (restrict.state === 'unreadable')
    return gate(id, 'unknown', value, ROOTLESS_ALL, 'kernel.apparmor_restrict_unprivileged_userns could not be read', 'sysctl kernel.apparmor_restrict_unprivileged_userns');
  if (restrict.n === 0) return gate(id, 'ok', value, ROOTLESS_ALL, 'kernel.apparmor_restrict_unprivileged_userns = 0');
  if (/^N/i.test(ctx.fs.readFile('/sys/module/apparmor/parameters/enabled') ?? ''))
    return gate(id, 'ok', value, ROOTLESS_ALL, 'kernel.apparmor_restrict_unprivileged_userns = 1 but AppArmor is disabled, so it has no effect');
  const remedy = [
    '# either allow this node binary (the restriction stays for other programs):',
    "cat > /etc/apparmor.d/nsprobe <<'EOF'",
    'abi <abi/4.0>,',
    'include <tunables/global>',
    `profile nsprobe ${ctx.execPath} flags=(unconfined) {`,
    '  userns,',
    '}',
    'EOF',
    'apparmor_parser -r /etc/apparmor.d/nsprobe   # load now; profiles in /etc/apparmor.d load at every boot',
    '# or lift the restriction for every program:',
    sysctlRemedy('kernel.apparmor_restrict_unprivileged_userns', 0, '90-nsprobe-apparmor-userns.conf'),
  ].join('\n');
  if (label !== null && label !== 'unconfined')
    return gate(id, 'warn', value, ROOTLESS_ALL,
      `kernel.apparmor_restrict_unprivileged_userns = 1 and this process runs under AppArmor profile "${label}": rootless mode works only if that profile allows \`userns,\``,
      remedy);
  return gate(id, 'blocked', value, ROOTLESS_ALL,
    'kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+): an unconfined program can create a user namespace, but then writing uid_map fails with EPERM and mounts with EACCES (audit: apparmor="DENIED" profile="unprivileged_userns")',
    remedy);
}

function seccompRemedy(kind: string | null): string {
  const byKind: Record<string, string> = {
    docker: 'docker run --security-opt seccomp=unconfined ...   # or --security-opt seccomp=/path/profile.json allowing unshare, setns, clone, clone3, mount, umount2, pivot_root',
    podman: 'podman run --security-opt seccomp=unconfined ...   # or --security-opt seccomp=/path/profile.json allowing unshare, setns, clone, clone3, mount, umount2, pivot_root',
    kubernetes: 'set securityContext.seccompProfile.type: Unconfined (or a Localhost profile allowing unshare, setns, clone, clone3, mount) in the pod spec',
  };
  const generic = [
    byKind.docker,
    byKind.podman,
    '# systemd service: drop SystemCallFilter= / RestrictNamespaces= for it (systemctl edit <unit>)',
  ].join('\n');
  return (kind !== null && byKind[kind]) || generic;
}

function seccompGate({ facts }: Input): Gate {
  const id = 'seccomp';
  const s = facts.seccomp ?? { mode: null, filters: null, noNewPrivs: null };
  if (s.mode === null) return gate(id, 'unknown', s, EVERY_PROBE, 'the Seccomp: line of /proc/self/status could not be read', 'grep Seccomp /proc/self/status');
  if (s.mode === 0) return gate(id, 'ok', s, EVERY_PROBE, 'no seccomp filter is installed');
  if (s.mode === 1) return gate(id, 'blocked', s, EVERY_PROBE, 'strict seccomp mode allows only read, write, exit and sigreturn', 'run nsprobe outside the strict-seccomp process');
  return gate(id, 'warn', s, EVERY_PROBE,
    `a seccomp filter is installed (${s.filters ?? '?'} filter(s)${facts.container?.kind ? `, ${facts.container.kind} container` : ''}): container default profiles make unshare/clone with namespace flags fail with EPERM without CAP_SYS_ADMIN, and clone3 with ENOSYS`,
    seccompRemedy(facts.container?.kind ?? null));
}

function chrootGate({ facts, opts }: Input): Gate {
  const id = 'chroot';
  const remedy = 'run nsprobe outside the chroot, or replace the chroot by a container whose root is set with pivot_root (podman/docker run, systemd-nspawn -D <dir>, bwrap)';
  if (facts.chroot === true)
    return gate(id, 'blocked', true, USERNS_CREATORS, 'this process runs in a chroot: creating a user namespace inside a chroot is EPERM even for root', remedy);
  if (facts.chroot === false) return gate(id, 'ok', false, USERNS_CREATORS, 'not in a chroot');
  // Files cannot tell, but the kernel can: root with CAP_SYS_ADMIN and no seccomp filter gets
  // EPERM creating a user namespace only in a chroot (current_chrooted) or under an LSM policy.
  const tried = opts.measured?.rootUserNs;
  if (tried === 'EPERM' && facts.seccomp?.mode !== 2 && !(facts.lsms ?? []).some((l) => l === 'selinux' || l === 'bpf'))
    return gate(id, 'blocked', 'inferred', USERNS_CREATORS,
      'root with CAP_SYS_ADMIN and no seccomp filter got EPERM creating a user namespace: the kernel refuses that inside a chroot (files here cannot confirm the chroot: /proc/1/root unreadable and / is a mount point)', remedy);
  if (tried === null) return gate(id, 'ok', false, USERNS_CREATORS, 'root created a user namespace, so this is not a chroot that blocks it');
  return gate(id, 'unknown', null, USERNS_CREATORS,
    'whether this process runs in a chroot cannot be told from files here (/proc/1/root unreadable and / is a mount point)',
    'ls -id / /proc/1/root/   # as root: different inode numbers mean a chroot');
}

// ---------- id-map helpers and subordinate ids ----------

const HELPER_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

function installUidmap(facts: HostFacts): string {
  const cmd: Record<Exclude<Family, null>, string> = {
    debian: 'apt-get install uidmap',
    fedora: 'dnf install shadow-utils',
    el7: 'yum install shadow-utils',
    alpine: 'apk add shadow-uidmap',
    arch: 'pacman -S shadow',
    suse: 'zypper install shadow',
  };
  const f = distroFamily(facts);
  return f ? cmd[f] : 'apt-get install uidmap   # Debian/Ubuntu\ndnf install shadow-utils   # Fedora/RHEL\napk add shadow-uidmap   # Alpine';
}

function idmapHelpersGate({ ctx, facts }: Input): Gate {
  const id = 'idmap_helpers';
  const find = (name: string) => {
    for (const dir of HELPER_DIRS) {
      const s = ctx.fs.stat(`${dir}/${name}`);
      if (s?.isFile) return { path: `${dir}/${name}`, setuidRoot: (s.mode & 0o4000) !== 0 && s.uid === 0 };
    }
    return null;
  };
  const tools = { newuidmap: find('newuidmap'), newgidmap: find('newgidmap') };
  const note = "nsprobe's own single-id maps do not need them; rootless podman/docker (multi-id maps from /etc/subuid) do";
  const missing = Object.entries(tools).filter(([, t]) => t === null).map(([n]) => n);
  if (missing.length > 0)
    return gate(id, 'warn', tools, [], `${missing.join(' and ')} not found in ${HELPER_DIRS.join(', ')}; ${note}`, installUidmap(facts));
  const plain = Object.values(tools).filter((t) => t !== null && !t.setuidRoot).map((t) => t!.path);
  if (plain.length > 0) {
    const capsNormal = distroFamily(facts) === 'fedora';
    return gate(id, capsNormal ? 'unknown' : 'warn', tools, [],
      `${plain.join(' and ')} not setuid root (file capabilities not checked${capsNormal ? '; Fedora/RHEL ship them with cap_setuid/cap_setgid instead' : ''}); without either, rootless containers fail "write to uid_map failed: Operation not permitted"; ${note}`,
      [`getcap ${plain.join(' ')}   # file capabilities, if any`, `chmod u+s ${plain.join(' ')}   # restore setuid (or reinstall: ${installUidmap(facts).split('\n')[0]})`].join('\n'));
  }
  return gate(id, 'ok', tools, [], `newuidmap and newgidmap are setuid root; ${note}`);
}

interface SubRange {
  owner: string;
  start: number;
  count: number;
}

export function parseSubid(text: string | null): SubRange[] {
  return (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3)
    .map(([owner, start, count]) => ({ owner: owner!, start: Number(start), count: Number(count) }))
    .filter((r) => Number.isFinite(r.start) && Number.isFinite(r.count));
}

/** Pairs of ranges of different owners that overlap ("a 100000+65536 overlaps b 150000+65536"). */
export function subidOverlaps(ranges: SubRange[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.owner !== b.owner && a.start < b.start + b.count && b.start < a.start + a.count)
        out.push(`${a.owner} ${a.start}+${a.count} overlaps ${b.owner} ${b.start}+${b.count}`);
    }
  return out;
}

export function userName(ctx: HostContext, uid: number): string | null {
  for (const line of (ctx.fs.readFile('/etc/passwd') ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && Number(f[2]) === uid && f[2] !== '') return f[0]!;
  }
  return null;
}

function subidGate({ ctx, facts }: Input): Gate {
  const id = 'subid';
  const uid = facts.euid;
  const name = userName(ctx, uid);
  const owners = new Set([String(uid), ...(name ? [name] : [])]);
  const files = { subuid: parseSubid(ctx.fs.readFile('/etc/subuid')), subgid: parseSubid(ctx.fs.readFile('/etc/subgid')) };
  const mine = {
    subuid: files.subuid.filter((r) => owners.has(r.owner)),
    subgid: files.subgid.filter((r) => owners.has(r.owner)),
  };
  const overlaps = [...subidOverlaps(files.subuid).map((o) => `subuid: ${o}`), ...subidOverlaps(files.subgid).map((o) => `subgid: ${o}`)];
  const value = { user: name ?? String(uid), ...mine, overlaps };
  const who = name ?? String(uid);
  const end = Math.max(100000, ...[...files.subuid, ...files.subgid].map((r) => r.start + r.count));
  // First id after every range in use, so the new range overlaps none.
  const add = (kinds: Array<'subuid' | 'subgid'>) =>
    `usermod ${kinds.map((k) => `--add-${k}s ${end}-${end + 65535}`).join(' ')} ${who}`;
  const note = 'nsprobe itself does not need them; rootless podman/docker do';
  const problems: string[] = [];
  const remedy: string[] = [];
  if (overlaps.length > 0) {
    problems.push(`subordinate id ranges of different users overlap (${overlaps.join('; ')}), so their rootless containers can reach each other's files (podman #12637)`);
    remedy.push('# edit /etc/subuid and /etc/subgid so no two users share ids, then: podman system migrate');
  }
  const kinds = ['subuid', 'subgid'] as const;
  const small = kinds.filter((k) => mine[k].length > 0 && mine[k].every((r) => r.count < 65536));
  const lacking = kinds.filter((k) => mine[k].length === 0);
  if (small.length > 0) {
    const list = small.flatMap((k) => mine[k].map((r) => `${k} ${r.start}+${r.count}`));
    problems.push(`${who} has fewer than 65536 subordinate ids (${list.join(', ')}): images using ids up to 65535 fail to unpack`);
  }
  if (lacking.length > 0) {
    if (uid === 0 && problems.length === 0)
      return gate(id, 'ok', value, [], `root has no ${lacking.map((k) => `/etc/${k}`).join(' or ')} entries: root needs them only for containers with --userns=auto; ${note}`);
    problems.push(`${who} has no entry in ${lacking.map((k) => `/etc/${k}`).join(' and ')}`);
  }
  if (small.length + lacking.length > 0) remedy.push(add([...small, ...lacking]));
  if (problems.length > 0) return gate(id, 'warn', value, [], `${problems.join('; ')}; ${note}`, remedy.join('\n'));
  return gate(id, 'ok', value, [], `${who} has subordinate uid and gid ranges of 65536 or more, overlapping no one's`);
}

// ---------- kernel config ----------

/** Options nsprobe needs, and the probes each one's absence blocks. */
export const KERNEL_OPTIONS: Array<{ option: string; affects: string[] }> = [
  { option: 'CONFIG_NAMESPACES', affects: [...NS_TYPES.filter((n) => n !== 'mnt').flatMap((n) => probeIds(n)), ...probeIds('mnt', ['rootless'])] },
  { option: 'CONFIG_UTS_NS', affects: probeIds('uts') },
  { option: 'CONFIG_IPC_NS', affects: probeIds('ipc') },
  { option: 'CONFIG_PID_NS', affects: probeIds('pid') },
  { option: 'CONFIG_NET_NS', affects: probeIds('net') },
  { option: 'CONFIG_USER_NS', affects: USERNS_CREATORS },
  { option: 'CONFIG_CGROUPS', affects: probeIds('cgroup') },
  { option: 'CONFIG_TIME_NS', affects: probeIds('time') },
  { option: 'CONFIG_VETH', affects: ['net-veth/privileged', 'net-veth/rootless'] },
];

const ALL_CONFIG_AFFECTS = [...new Set(KERNEL_OPTIONS.flatMap((o) => o.affects))];

/** The kernel_config gate for a given config (null: none could be read). Usable on any kernel's config file. */
export function kernelConfigGate(cfg: KernelConfig | null): Gate {
  const id = 'kernel_config';
  if (cfg === null)
    return gate(id, 'unknown', null, ALL_CONFIG_AFFECTS,
      'no kernel config found (/proc/config.gz, /boot/config-<release>): which namespace options are built in is unknown',
      'modprobe configs   # provides /proc/config.gz when the kernel has CONFIG_IKCONFIG=m\n# or install the config of this kernel to /boot/config-$(uname -r) (it ships with the distribution kernel package)');
  const options = Object.fromEntries(KERNEL_OPTIONS.map(({ option }) => [option, cfg.options.get(option) ?? null]));
  const missing = KERNEL_OPTIONS.filter(({ option }) => !isEnabled(cfg.options, option));
  const value = { source: cfg.source, options };
  if (missing.length === 0) return gate(id, 'ok', value, ALL_CONFIG_AFFECTS, `every namespace option is enabled (${cfg.source})`);
  const affects = [...new Set(missing.flatMap((m) => m.affects))];
  const nss = [...new Set(affects.map((a) => a.split('/')[0]))];
  return gate(id, 'blocked', value, affects,
    `${missing.map((m) => m.option).join(', ')} not enabled in ${cfg.source}: ${nss.join(', ')} probes cannot work on this kernel (clone fails with EINVAL)`,
    `boot a kernel built with ${missing.map((m) => `${m.option}=y`).join(' ')} (the distribution's default kernel package usually is)`);
}

function kernelConfigGateFor({ ctx, facts, opts }: Input): Gate {
  const cfg = opts.kernelConfig !== undefined ? opts.kernelConfig : readKernelConfig(ctx, facts.kernel.release, opts.kernelConfigPath);
  return kernelConfigGate(cfg);
}

// ---------- masked /proc ----------

/** Mounts on these /proc paths are on permanently empty directories and do not make /proc "not fully visible". */
const PROC_EMPTY_MOUNTPOINTS = new Set(['/proc/sys/fs/binfmt_misc']);

function procFullyVisibleGate({ ctx, facts }: Input): Gate {
  const id = 'proc_fully_visible';
  // The pid and mnt probes mount a fresh /proc inside their user namespace.
  const affects = [...probeIds('pid', ['rootless']), ...probeIds('mnt', ['rootless'])];
  const text = ctx.fs.readFile('/proc/self/mountinfo');
  if (text === null) return gate(id, 'unknown', null, affects, '/proc/self/mountinfo could not be read', 'cat /proc/self/mountinfo');
  const masked = parseMountinfo(text)
    .map((m) => m.mountPoint)
    .filter((p) => p.startsWith('/proc/') && !PROC_EMPTY_MOUNTPOINTS.has(p));
  const list = [...new Set(masked)];
  if (list.length === 0) return gate(id, 'ok', [], affects, 'nothing is mounted over parts of /proc');
  const kind = facts.container?.kind;
  const remedy = [
    kind !== 'podman' ? 'docker run --security-opt systempaths=unconfined ...   # Docker 19.03+' : '',
    kind !== 'docker' ? 'podman run --security-opt unmask=ALL ...   # or unmask=/proc/*' : '',
    kind === 'kubernetes' || kind === null ? 'kubernetes: securityContext.procMount: Unmasked (needs the ProcMountType feature)' : '',
  ].filter(Boolean).join('\n');
  return gate(id, 'warn', list, affects,
    `parts of /proc are masked by mounts over them (${list.slice(0, 6).join(', ')}${list.length > 6 ? ', ...' : ''}): mounting a new proc in a pid namespace inside a user namespace fails with EPERM (dmesg: "VFS: Mount too revealing")`,
    remedy);
}

// ---------- nesting ----------

function usernsNestingGate({ opts }: Input): Gate {
  const id = 'userns_nesting';
  const left = opts.measured?.userNsDepthLeft;
  if (left === undefined || left === null)
    return gate(id, 'unknown', null, probeIds('user'), `not measured (user namespaces nest at most ${USERNS_MAX_DEPTH} levels)`, '');
  const fix = `run nsprobe in a shallower user namespace (at most ${USERNS_MAX_DEPTH} levels below the initial one; each container/sandbox layer takes one)`;
  if (left <= 0)
    return gate(id, 'blocked', left, USERNS_CREATORS, `no user namespace level is left below this one (limit ${USERNS_MAX_DEPTH}): creating one fails with ENOSPC`, fix);
  if (left < 2)
    return gate(id, 'warn', left, probeIds('user'), `only ${left} user namespace level is left below this one (limit ${USERNS_MAX_DEPTH}): nested probes fail with ENOSPC`, fix);
  return gate(id, 'ok', left, probeIds('user'), `${left} user namespace levels left below this one (at most ${USERNS_MAX_DEPTH} below the initial one)`);
}

// ---------- all gates ----------

/** Every gate, in report order. */
export const GATE_RULES: Array<{ id: string; check: (i: Input) => Gate }> = [
  ...(['user', 'mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup', 'time'] as const).map((ns) => ({
    id: `max_${ns}_namespaces`,
    check: (i: Input) => maxNamespacesGate(ns, i),
  })),
  { id: 'unprivileged_userns_clone', check: unprivilegedUsernsCloneGate },
  { id: 'apparmor_userns', check: apparmorUsernsGate },
  { id: 'seccomp', check: seccompGate },
  { id: 'chroot', check: chrootGate },
  { id: 'idmap_helpers', check: idmapHelpersGate },
  { id: 'subid', check: subidGate },
  { id: 'kernel_config', check: kernelConfigGateFor },
  { id: 'proc_fully_visible', check: procFullyVisibleGate },
  { id: 'userns_nesting', check: usernsNestingGate },
];

export const GATE_IDS = GATE_RULES.map((r) => r.id);

export function evaluateGates(ctx: HostContext, facts: HostFacts, opts: GateOptions = {}): Gate[] {
  const input = { ctx, facts, opts };
  return GATE_RULES.map((r) => r.check(input));
}
