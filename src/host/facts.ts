// Host facts: what kind of host this is, read from files only (no subprocesses).
import type { HostFacts } from '../model.js';
import type { HostContext } from './hostfs.js';
import { parseMountinfo, rootMount, type MountEntry } from './mountinfo.js';

const CAP_SYS_ADMIN = 21n;

/** "Key:\tvalue" lines of /proc/<pid>/status. */
export function parseProcStatus(text: string | null): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** KEY=value / KEY="value" lines of os-release(5). */
export function parseOsRelease(text: string | null): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const r = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!r) continue;
    let v = r[2]!;
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    m.set(r[1]!, v);
  }
  return m;
}

export function hasCapability(capEffHex: string | undefined, bit: bigint): boolean | undefined {
  if (capEffHex === undefined || !/^[0-9a-fA-F]+$/.test(capEffHex)) return undefined;
  return ((BigInt('0x' + capEffHex) >> bit) & 1n) === 1n;
}

export interface IdMapLine {
  inside: number;
  outside: number;
  count: number;
}

export function parseIdMap(text: string | null): IdMapLine[] | null {
  if (text === null) return null;
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every(Number.isFinite))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

/** The initial user namespace's map: every id maps to itself. */
export function isIdentityMap(map: IdMapLine[]): boolean {
  return map.length === 1 && map[0]!.inside === 0 && map[0]!.outside === 0 && map[0]!.count === 4294967295;
}

/**
 * Files cannot tell how deep the user namespace is. A uid_map other than the full identity
 * proves at least one level (returned as 1, a lower bound); otherwise null (unknown).
 */
export function userNsLevelFromMap(map: IdMapLine[] | null): number | null {
  if (map === null || map.length === 0) return null;
  return isIdentityMap(map) ? null : 1;
}

function readMounts(ctx: HostContext, pid: string): MountEntry[] | null {
  const t = ctx.fs.readFile(`/proc/${pid}/mountinfo`);
  return t === null ? null : parseMountinfo(t);
}

type Container = NonNullable<HostFacts['container']>;

const CGROUP_HINTS: Array<[RegExp, string]> = [
  [/kubepods/, 'kubernetes'],
  [/libpod|machine\.slice\/libpod/, 'podman'],
  [/docker|containerd/, 'docker'],
  [/\/lxc(\.payload)?[/.]|lxc\.monitor/, 'lxc'],
];

export function detectContainer(ctx: HostContext, mounts: MountEntry[] | null): Container {
  const evidence: string[] = [];
  const kinds: string[] = [];
  const hit = (kind: string, why: string) => {
    kinds.push(kind);
    evidence.push(why);
  };
  const { fs, env } = ctx;
  if (env.KUBERNETES_SERVICE_HOST) hit('kubernetes', 'env KUBERNETES_SERVICE_HOST is set');
  if (fs.exists('/var/run/secrets/kubernetes.io')) hit('kubernetes', '/var/run/secrets/kubernetes.io exists');
  if (fs.exists('/run/.containerenv')) hit('podman', '/run/.containerenv exists');
  const envKind = env.container ?? fs.readFile('/run/systemd/container')?.trim();
  if (envKind) hit(envKind, `container=${envKind} (env or /run/systemd/container)`);
  for (const pid of ['1', 'self']) {
    const cg = fs.readFile(`/proc/${pid}/cgroup`) ?? '';
    for (const line of cg.split('\n')) {
      const p = line.split(':').slice(2).join(':');
      const h = CGROUP_HINTS.find(([re]) => re.test(p));
      if (h) {
        hit(h[1], `/proc/${pid}/cgroup path ${p}`);
        break;
      }
    }
  }
  const lxcfs = mounts?.find((m) => m.fsType === 'fuse.lxcfs');
  if (lxcfs) hit('lxc', `lxcfs mounted on ${lxcfs.mountPoint}`);
  const root = mounts ? rootMount(mounts) : undefined;
  const overlayRoot = root !== undefined && ['overlay', 'fuse-overlayfs', 'aufs'].includes(root.fsType);
  if (fs.exists('/.dockerenv')) {
    // Images built with docker keep an empty /.dockerenv: alone, on a block-device root, it is a leftover.
    const blockRoot = root !== undefined && root.source.startsWith('/dev/') && !root.source.includes('docker');
    if (kinds.length === 0 && blockRoot) {
      evidence.push(`/.dockerenv exists but / is ${root!.fsType} on ${root!.source}, not a container filesystem: taken as left over from an image build`);
    } else hit('docker', '/.dockerenv exists');
  }
  if (overlayRoot && kinds.length > 0) evidence.push(`/ is ${root!.fsType}`);
  if (kinds.length === 0 && fs.exists('/proc/1/environ') && fs.readFile('/proc/1/environ') === null && overlayRoot) {
    evidence.push(`/ is ${root!.fsType} and /proc/1/environ is unreadable: maybe a container, kind unknown`);
  }
  // The most specific kind wins: kubernetes runs docker/containerd/cri-o underneath.
  const order = ['kubernetes', 'podman', 'lxc', 'systemd-nspawn', 'docker'];
  const kind = kinds.length === 0 ? null : [...kinds].sort((a, b) => rank(order, a) - rank(order, b))[0]!;
  return { detected: kind !== null, kind, evidence };
}

function rank(order: string[], k: string): number {
  const i = order.indexOf(k);
  return i < 0 ? order.length : i;
}

/**
 * Whether this process's root differs from its mount namespace's root.
 * 1. /proc/1/root and / both stat-able: compare dev+ino.
 * 2. No mount on "/" in /proc/self/mountinfo: the root is a plain directory, which only chroot gives.
 * 3. Our root mount's id seen in /proc/1/mountinfo (same mount namespace): chrooted unless it is on "/" there too.
 * Otherwise null: a chroot into a mount point looks, from inside, like a normal root.
 */
export function detectChroot(ctx: HostContext, mounts: MountEntry[] | null): boolean | null {
  const a = ctx.fs.stat('/proc/1/root/');
  const b = ctx.fs.stat('/');
  if (a && b) return !(a.dev === b.dev && a.ino === b.ino);
  if (mounts === null) return null;
  const root = rootMount(mounts);
  if (root === undefined) return mounts.length > 0 ? true : null;
  const seenByInit = readMounts(ctx, '1')?.find((m) => m.id === root.id);
  if (seenByInit === undefined) return null;
  return seenByInit.mountPoint !== '/';
}

/** Soft limits from /proc/self/limits ("Max processes  14  14  processes"). */
export function parseLimits(text: string | null): NonNullable<HostFacts['limits']> {
  const soft = (label: string): number | null => {
    const line = (text ?? '').split('\n').find((l) => l.startsWith(label));
    const v = line?.slice(label.length).trim().split(/\s+/)[0];
    return v === undefined || v === 'unlimited' ? null : numOrNull(v);
  };
  return { nproc: soft('Max processes'), nofile: soft('Max open files'), as: soft('Max address space') };
}

function numOrNull(s: string | undefined): number | null {
  if (s === undefined || s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

export function detectLsms(ctx: HostContext): string[] | null {
  const list = ctx.fs.readFile('/sys/kernel/security/lsm');
  if (list !== null) return list.trim().split(',').filter(Boolean);
  // Fallback: only what can be seen (a partial list).
  const found: string[] = [];
  if (/^Y/i.test(ctx.fs.readFile('/sys/module/apparmor/parameters/enabled') ?? '')) found.push('apparmor');
  if (ctx.fs.readFile('/sys/fs/selinux/enforce') !== null) found.push('selinux');
  return found.length > 0 ? found : null;
}

export function detectCgroupVersion(mounts: MountEntry[] | null): NonNullable<HostFacts['cgroupVersion']> {
  if (mounts === null) return 'unknown';
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const v1 = mounts.filter((m) => m.fsType === 'cgroup');
  if (v2.some((m) => m.mountPoint === '/sys/fs/cgroup') && v1.length === 0) return 'v2';
  if (v1.length > 0 && v2.length > 0) return 'hybrid';
  if (v1.length > 0) return 'v1';
  if (v2.length > 0) return 'v2';
  return 'unknown';
}

function userNsInfo(text: string | null): NonNullable<HostFacts['userNs']> {
  const map = parseIdMap(text);
  if (map === null || map.length === 0) return { initial: null, uidMap: null };
  const root = map.find((l) => l.inside === 0);
  return {
    initial: isIdentityMap(map) ? true : false,
    uidMap: map.map((l) => `${l.inside} ${l.outside} ${l.count}`).join(', '),
    rootIsParentUid: root ? root.outside : null,
  };
}

/** The user namespace privileged verdicts apply to, in words. */
export function userNsScope(facts: HostFacts): string {
  const u = facts.userNs;
  const kind = facts.container?.kind ? `, ${facts.container.kind} container` : '';
  if (!u || u.initial === null) return `an unknown user namespace (uid_map unreadable${kind})`;
  if (u.initial) return `the initial user namespace${kind}`;
  const root = u.rootIsParentUid === undefined || u.rootIsParentUid === null ? '' : `, uid 0 here is uid ${u.rootIsParentUid} of the parent`;
  return `a nested user namespace (level 1 or deeper; uid_map ${u.uidMap}${root}${kind})`;
}

export function collectHostFacts(ctx: HostContext): HostFacts {
  const { fs } = ctx;
  const line = (p: string) => fs.readFile(p)?.trim();
  const os = parseOsRelease(fs.readFile('/etc/os-release') ?? fs.readFile('/usr/lib/os-release'));
  const status = parseProcStatus(fs.readFile('/proc/self/status'));
  const mounts = readMounts(ctx, 'self');
  const root = mounts ? rootMount(mounts) : undefined;
  const capEff = status.get('CapEff');
  const uidMap = fs.readFile('/proc/self/uid_map');
  const userNsLevel = userNsLevelFromMap(parseIdMap(uidMap));
  const sysAdmin = hasCapability(capEff, CAP_SYS_ADMIN);
  const nnp = status.get('NoNewPrivs');
  const idLike = os.get('ID_LIKE')?.split(/\s+/).filter(Boolean);
  return {
    hostname: line('/proc/sys/kernel/hostname') ?? 'unknown',
    kernel: { release: line('/proc/sys/kernel/osrelease') ?? 'unknown', version: line('/proc/sys/kernel/version') ?? 'unknown' },
    distro: {
      id: os.get('ID') ?? 'linux',
      versionId: os.get('VERSION_ID') ?? '',
      ...(idLike ? { idLike } : {}),
      name: os.get('PRETTY_NAME') ?? os.get('NAME') ?? 'Linux',
    },
    arch: ctx.arch,
    euid: ctx.euid,
    egid: ctx.egid,
    ...(capEff !== undefined ? { capEff } : {}),
    privileged: ctx.euid === 0 && sysAdmin === true && userNsLevel === null,
    capSysAdmin: sysAdmin === true,
    userNsLevel,
    userNs: userNsInfo(uidMap),
    limits: parseLimits(fs.readFile('/proc/self/limits')),
    container: detectContainer(ctx, mounts),
    chroot: detectChroot(ctx, mounts),
    seccomp: {
      mode: numOrNull(status.get('Seccomp')),
      filters: numOrNull(status.get('Seccomp_filters')),
      noNewPrivs: nnp === undefined ? null : nnp === '1',
    },
    lsms: detectLsms(ctx),
    cgroupVersion: detectCgroupVersion(mounts),
    rootMountShared: root === undefined ? null : root.optional.some((o) => o.startsWith('shared:')),
    nodeVersion: ctx.nodeVersion,
  };
}
