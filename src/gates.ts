// Gates: host settings that decide whether a namespace can be entered, each with the
// probes it can block, why, and what to run. Pure logic over a HostContext + HostFacts.
// Gate ids are stable: reports from different versions merge on them.
import { PROBES } from '../probes/index.js';
import { type Gate, type GateStatus, type HostFacts, type Mode, type NsType } from './model.js';
import { NAMESPACES, nsFacts } from './namespaces.js';
import { createdNamespaces, probeModes, type ProbeDef } from './probe.js';
import type { HostContext } from './host/hostfs.js';
import { isEnabled, readKernelConfig, type KernelConfig } from './host/kconfig.js';
import { parseMountinfo, type MountEntry } from './host/mountinfo.js';

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
  /** The probes whose declarations decide what each gate affects (default: every probe). */
  probes?: readonly ProbeDef[];
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
// Which probes a gate can block is derived from what each probe declares it creates and uses
// (ProbeDef.creates / uses), never kept as a hand-written list.

/** One probe mode of an evaluation, with what it creates: made once, read by every gate. */
interface PlanEntry {
  def: ProbeDef;
  mode: Mode;
  id: string;
  created: readonly NsType[];
}

function planOf(probes: readonly ProbeDef[]): PlanEntry[] {
  const out: PlanEntry[] = [];
  for (const def of probes) for (const mode of probeModes(def)) out.push({ def, mode, id: `${def.name}/${mode}`, created: createdNamespaces(def, mode) });
  return out;
}

/** Probe ids (`<probe>/<mode>`) for which `pred` holds, over the probes of this evaluation. */
function affected(i: Input, pred: (def: ProbeDef, mode: Mode, created: readonly NsType[]) => boolean): string[] {
  const out: string[] = [];
  for (const e of i.plan) if (pred(e.def, e.mode, e.created)) out.push(e.id);
  return out;
}

/**
 * The probes that create a namespace of type `ns` (max_<ns>_namespaces, kernel_config, chroot and
 * userns_nesting ask the same): worked out once per evaluation. Each caller gets its own copy.
 */
function creatorsOf(i: Input, ns: NsType): string[] {
  let ids = i.memo.get(`creates:${ns}`);
  if (ids === undefined) i.memo.set(`creates:${ns}`, (ids = affected(i, (_d, _m, created) => created.includes(ns))));
  return [...ids];
}

const anyProbe = () => true;

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
  probes: readonly ProbeDef[];
  plan: PlanEntry[];
  /** What several gates work out the same way (who creates a namespace type), once per evaluation. */
  memo: Map<string, string[]>;
  /** /proc/self/mountinfo parsed, read once for the gates that look at it (undefined: not yet). */
  mounts?: MountEntry[] | null;
}

function inputFor(ctx: HostContext, facts: HostFacts, opts: GateOptions, probes: readonly ProbeDef[]): Input {
  return { ctx, facts, opts, probes, plan: planOf(probes), memo: new Map() };
}

/** This process's mounts, read and parsed once per evaluation; null when mountinfo cannot be read. */
function selfMounts(i: Input): MountEntry[] | null {
  if (i.mounts === undefined) {
    const text = i.ctx.fs.readFile('/proc/self/mountinfo');
    i.mounts = text === null ? null : parseMountinfo(text);
  }
  return i.mounts;
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

function maxNamespacesGate(ns: NsType, i: Input): Gate {
  const { ctx, facts, opts } = i;
  const id = `max_${ns}_namespaces`;
  const key = `user.${id}`;
  const path = `/proc/sys/user/${id}`;
  const release = facts.kernel.release;
  const affects = creatorsOf(i, ns);
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
    const backported = (el7Build(release) ?? 0) >= 693 && nsFacts(ns).limitSince[0] === 4;
    const predates = kernelAtLeast(release, nsFacts(ns).limitSince) === false && !backported;
    if (r.state === 'missing' && predates)
      return gate(id, 'ok', null, affects, `kernel ${release} predates ${key} (added in ${nsFacts(ns).limitSince.join('.')}): there is no such limit to hit`);
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

/**
 * Probes that create a user namespace without CAP_SYS_ADMIN in the initial user namespace, which
 * is what kernel.unprivileged_userns_clone and Ubuntu's AppArmor restriction judge: every rootless
 * probe, and privileged ones that create a user namespace when the caller is root only of a user
 * namespace (a container's root).
 */
function unprivilegedUserns(i: Input): string[] {
  let ids = i.memo.get('unprivileged');
  if (ids === undefined) i.memo.set('unprivileged', (ids = affected(i, (d, m, created) => m === 'rootless' || (i.facts.privileged !== true && created.includes('user')))));
  return [...ids];
}

function unprivilegedUsernsCloneGate(i: Input): Gate {
  const { ctx, facts } = i;
  const ROOTLESS_ALL = unprivilegedUserns(i);
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

function apparmorUsernsGate(i: Input): Gate {
  const { ctx } = i;
  const ROOTLESS_ALL = unprivilegedUserns(i);
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

function seccompGate(i: Input): Gate {
  const { facts } = i;
  const EVERY_PROBE = affected(i, anyProbe);
  const id = 'seccomp';
  const s = facts.seccomp ?? { mode: null, filters: null, noNewPrivs: null };
  if (s.mode === null) return gate(id, 'unknown', s, EVERY_PROBE, 'the Seccomp: line of /proc/self/status could not be read', 'grep Seccomp /proc/self/status');
  if (s.mode === 0) return gate(id, 'ok', s, EVERY_PROBE, 'no seccomp filter is installed');
  if (s.mode === 1) return gate(id, 'blocked', s, EVERY_PROBE, 'strict seccomp mode allows only read, write, exit and sigreturn', 'run nsprobe outside the strict-seccomp process');
  return gate(id, 'warn', s, EVERY_PROBE,
    `a seccomp filter is installed (${s.filters ?? '?'} filter(s)${facts.container?.kind ? `, ${facts.container.kind} container` : ''}): container default profiles make unshare/clone with namespace flags fail with EPERM without CAP_SYS_ADMIN, and clone3 with ENOSYS`,
    seccompRemedy(facts.container?.kind ?? null));
}

function chrootGate(i: Input): Gate {
  const { facts, opts } = i;
  const USERNS_CREATORS = creatorsOf(i, 'user');
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

/** Options nsprobe needs, and the probes each one's absence blocks (from the namespace table and the probes' declarations). */
export function kernelOptions(probes: readonly ProbeDef[] = PROBES): Array<{ option: string; affects: string[] }> {
  return optionsOf(inputFor(undefined as unknown as HostContext, undefined as unknown as HostFacts, {}, probes));
}

function optionsOf(i: Input): Array<{ option: string; affects: string[] }> {
  return [
    { option: 'CONFIG_NAMESPACES', affects: affected(i, (_d, _m, created) => created.some((n) => n !== 'mnt')) },
    ...NAMESPACES.filter((n) => n.kconfig !== null).map((n) => ({ option: n.kconfig!, affects: creatorsOf(i, n.type) })),
    { option: 'CONFIG_VETH', affects: affected(i, (d) => d.uses?.veth === true) },
  ];
}

/** The kernel_config gate for a given config (null: none could be read). Usable on any kernel's config file. */
export function kernelConfigGate(cfg: KernelConfig | null, probes: readonly ProbeDef[] = PROBES): Gate {
  return configGate(cfg, kernelOptions(probes));
}

function configGate(cfg: KernelConfig | null, KERNEL_OPTIONS: Array<{ option: string; affects: string[] }>): Gate {
  const id = 'kernel_config';
  const ALL_CONFIG_AFFECTS = [...new Set(KERNEL_OPTIONS.flatMap((o) => o.affects))];
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

/** The options kernelOptions names (the same whichever probes run): all a run reads of the config. */
export const KERNEL_OPTION_NAMES: readonly string[] = ['CONFIG_NAMESPACES', ...NAMESPACES.flatMap((n) => (n.kconfig === null ? [] : [n.kconfig])), 'CONFIG_VETH'];

function kernelConfigGateFor(i: Input): Gate {
  const { ctx, facts, opts } = i;
  const cfg = opts.kernelConfig !== undefined ? opts.kernelConfig : readKernelConfig(ctx, facts.kernel.release, opts.kernelConfigPath, KERNEL_OPTION_NAMES);
  return configGate(cfg, optionsOf(i));
}

// ---------- masked /proc ----------

/** Mounts on these /proc paths are on permanently empty directories and do not make /proc "not fully visible". */
const PROC_EMPTY_MOUNTPOINTS = new Set(['/proc/sys/fs/binfmt_misc']);

/**
 * Probes that mount a fresh proc in a mount namespace owned by a user namespace other than the
 * initial one, where the kernel demands a fully visible /proc: rootless ones always, privileged
 * ones when nsprobe itself runs in a user namespace (root of a container or of `unshare -r`).
 */
function procMounters(i: Input): string[] {
  const inUserNs = (i.facts.userNsLevel ?? 0) >= 1;
  return affected(i, (d, m) => d.uses?.procMount === true && (m === 'rootless' || inUserNs));
}

function procFullyVisibleGate(i: Input): Gate {
  const { facts } = i;
  const id = 'proc_fully_visible';
  const affects = procMounters(i);
  const mounts = selfMounts(i);
  if (mounts === null) return gate(id, 'unknown', null, affects, '/proc/self/mountinfo could not be read', 'cat /proc/self/mountinfo');
  const masked = mounts
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

// ---------- read-only /proc/sys ----------

/** The mount that holds `path`: the last one whose mount point is `path` or a parent of it. */
function mountOf(mounts: MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    if (path === mp || path.startsWith(mp === '/' ? '/' : `${mp}/`)) if (!best || mp.length >= best.mountPoint.length) best = m;
  }
  return best;
}

function procSysReadonlyGate(i: Input): Gate {
  const { facts } = i;
  const id = 'proc_sys_readonly';
  const affects = affected(i, (d) => d.uses?.sysctlWrite === true);
  const mounts = selfMounts(i);
  if (mounts === null) return gate(id, 'unknown', null, affects, '/proc/self/mountinfo could not be read', 'cat /proc/self/mountinfo');
  const m = mountOf(mounts, '/proc/sys/net');
  const ro = m !== undefined && m.options.includes('ro');
  if (!ro) return gate(id, 'ok', m?.mountPoint ?? null, affects, '/proc/sys is writable (mounted read-write)');
  const kind = facts.container?.kind;
  const remedy = [
    kind !== 'podman' ? 'docker run --security-opt systempaths=unconfined ...   # Docker 19.03+: /proc/sys read-write' : '',
    kind !== 'docker' ? 'podman run --security-opt unmask=/proc/sys ...   # or unmask=ALL' : '',
    '# or run the check outside the container, on the host',
  ].filter(Boolean).join('\n');
  return gate(id, 'warn', m.mountPoint, affects,
    `${m.mountPoint} is mounted read-only (as container engines do): writing a sysctl inside a new namespace, such as net.ipv4.ip_forward, fails with EROFS`,
    remedy);
}

// ---------- cgroup delegation ----------

function cgroupWritableGate(i: Input): Gate {
  const { ctx, facts } = i;
  const id = 'cgroup_writable';
  const affects = affected(i, (d) => d.uses?.cgroupWrite === true);
  const own = (ctx.fs.readFile('/proc/self/cgroup') ?? '').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
  const root = selfMounts(i)?.filter((m) => m.fsType === 'cgroup2').pop()?.mountPoint;
  if (own === undefined || root === undefined)
    return gate(id, 'unknown', null, affects, 'no cgroup v2 hierarchy with this process in it was found', 'grep cgroup2 /proc/self/mountinfo; cat /proc/self/cgroup');
  const dir = `${root}${own === '/' ? '' : own}`;
  const st = ctx.fs.stat(dir);
  if (st === null) return gate(id, 'unknown', dir, affects, `this process's cgroup ${dir} cannot be examined`, `ls -ld ${dir}`);
  // Root whose uid 0 owns the directory passes DAC checks by CAP_DAC_OVERRIDE (also the root of a
  // user namespace that maps the owner); anyone else needs to own it with the write bit.
  const mine = st.uid === facts.euid && (facts.euid === 0 || (st.mode & 0o200) !== 0);
  if (mine) return gate(id, 'ok', dir, affects, `this process's cgroup ${dir} belongs to uid ${facts.euid}: child cgroups can be made there`);
  return gate(id, 'warn', dir, affects,
    `this process's cgroup ${dir} belongs to uid ${st.uid}, not to uid ${facts.euid}: nsprobe cannot make a child cgroup to enter a cgroup namespace from, so the cgroup probe checks what it can without one`,
    facts.euid === 0
      ? 'run nsprobe where its cgroup is delegated to it (on the host, or a container with a private cgroup namespace and a writable /sys/fs/cgroup: docker run --cgroupns=private ...)'
      : 'systemd-run --user --scope -p Delegate=yes npm run probe   # run in a cgroup delegated to you');
}

// ---------- nesting ----------

function usernsNestingGate(i: Input): Gate {
  const { opts } = i;
  const USERNS_CREATORS = creatorsOf(i, 'user');
  const nesters = affected(i, (d) => d.uses?.userNsNesting === true);
  const id = 'userns_nesting';
  const left = opts.measured?.userNsDepthLeft;
  if (left === undefined || left === null)
    return gate(id, 'unknown', null, nesters, `not measured (user namespaces nest at most ${USERNS_MAX_DEPTH} levels)`, '');
  const fix = `run nsprobe in a shallower user namespace (at most ${USERNS_MAX_DEPTH} levels below the initial one; each container/sandbox layer takes one)`;
  if (left <= 0)
    return gate(id, 'blocked', left, USERNS_CREATORS, `no user namespace level is left below this one (limit ${USERNS_MAX_DEPTH}): creating one fails with ENOSPC`, fix);
  if (left < 2)
    return gate(id, 'warn', left, nesters, `only ${left} user namespace level is left below this one (limit ${USERNS_MAX_DEPTH}): nested probes fail with ENOSPC`, fix);
  return gate(id, 'ok', left, nesters, `${left} user namespace levels left below this one (at most ${USERNS_MAX_DEPTH} below the initial one)`);
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
  { id: 'proc_sys_readonly', check: procSysReadonlyGate },
  { id: 'cgroup_writable', check: cgroupWritableGate },
  { id: 'userns_nesting', check: usernsNestingGate },
];

export const GATE_IDS = GATE_RULES.map((r) => r.id);

export function evaluateGates(ctx: HostContext, facts: HostFacts, opts: GateOptions = {}): Gate[] {
  const input = inputFor(ctx, facts, opts, opts.probes ?? PROBES);
  return GATE_RULES.map((r) => r.check(input));
}
