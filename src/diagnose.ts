// Diagnosis: turn a failed entry (stage, syscall, errno) into a cause and a remedy, by
// finding the gate that explains it. Rules are tried in order; the first that names a
// gate wins. When none does, say so plainly and say what to collect: never guess.
import { constants } from 'node:os';
import type { Gate, HostFacts, Mode, NsType } from './model.js';
import { el7Build, gateAffects } from './gates.js';

export interface Failure {
  probe: string;
  namespace: NsType;
  mode: Mode;
  stage?: string;
  syscall?: string;
  errno?: number;
  code?: string;
  /** The runner's own message (used for timeouts and needs). */
  message?: string;
  euid: number;
  /** Whether the caller holds CAP_SYS_ADMIN as root in the initial user namespace. */
  privilegedCaller: boolean;
  /** Namespaces the failing sandbox was created in (default: the probe's namespace, plus user in rootless mode). */
  namespaces?: NsType[];
}

export interface Diagnosis {
  cause: string;
  remedy: string;
  gate: string | null;
}

const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  E2BIG: 'Argument list too long',
  EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ERANGE: 'Numerical result out of range',
  ENOSYS: 'Function not implemented',
  ENOTTY: 'Inappropriate ioctl for device',
  EUSERS: 'Too many users',
  EOPNOTSUPP: 'Operation not supported',
  ETIMEDOUT: 'Connection timed out',
};

const ERRNO = constants.errno as Record<string, number>;

export function errnoCode(f: { errno?: number; code?: string }): string | null {
  if (f.code) return f.code;
  if (f.errno === undefined) return null;
  return Object.keys(ERRNO).find((k) => ERRNO[k] === f.errno) ?? `errno ${f.errno}`;
}

export function strerror(code: string): string {
  return STRERROR[code] ?? code;
}

const COLLECT = [
  'collect and attach to a bug report:',
  'dmesg | tail -n 50   # as root: kernel messages (LSM denials, "Mount too revealing")',
  'journalctl -k -g "apparmor|audit" -n 20   # LSM audit lines, where journald runs',
  'the report (nsprobe writes report.json) with host facts and gates',
].join('\n');

interface Facts {
  f: Failure;
  code: string | null;
  stage: string;
  syscall: string;
  userns: boolean;
  namespaces: NsType[];
  gates: Map<string, Gate>;
  facts: HostFacts;
}

type Rule = (x: Facts) => Diagnosis | null;

const bad = (g: Gate | undefined): g is Gate => g !== undefined && (g.status === 'blocked' || g.status === 'warn');
const blocked = (g: Gate | undefined): g is Gate => g !== undefined && g.status === 'blocked';

/** Explain a failure by a gate: "<what failed>: <the gate's cause>". */
function byGate(x: Facts, g: Gate): Diagnosis {
  return { cause: `${what(x)}: ${g.cause}`, remedy: g.remedy, gate: g.id };
}

function what(x: Facts): string {
  return `${x.syscall} failed at stage ${x.stage} with ${x.code ?? 'an error'}`;
}

const isCode = (x: Facts, ...codes: string[]) => x.code !== null && codes.includes(x.code);
const entering = (x: Facts) => ['clone', 'unshare', 'setns'].includes(x.stage) || ['clone', 'clone3', 'unshare'].includes(x.syscall);
const mapping = (x: Facts) => ['uid_map', 'gid_map', 'setgroups'].includes(x.stage);
const mounting = (x: Facts) => x.syscall === 'mount' || x.syscall === 'fsmount' || x.syscall === 'fsconfig';

const RULES: Array<{ name: string; rule: Rule }> = [
  {
    name: 'timeout',
    rule: (x) =>
      x.stage === 'timeout'
        ? { cause: x.f.message ?? 'timeout', remedy: `rerun this probe alone with a longer timeout; if it hangs again:\n${COLLECT}`, gate: null }
        : null,
  },
  {
    // A resource limit of this caller, not a host setting: say which limit, never blame a gate.
    name: 'resource limit',
    rule: (x) => {
      const lim = x.facts.limits;
      const v = (n: number | null | undefined) => (n === null || n === undefined ? 'unlimited' : String(n));
      const who = x.f.euid === 0 ? 'root' : `uid ${x.f.euid}`;
      if (isCode(x, 'EAGAIN') && (entering(x) || x.syscall === 'fork'))
        return {
          cause: `${what(x)}: a process limit was hit: RLIMIT_NPROC is ${v(lim?.nproc)} for ${who} (ulimit -u; it counts every process of this user), or the cgroup's pids.max`,
          remedy: 'ulimit -u 4096   # in the shell that runs nsprobe (or raise nproc in /etc/security/limits.conf)\ncat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup | tail -n1)/pids.max   # the cgroup limit, if any',
          gate: null,
        };
      if (isCode(x, 'ENOMEM'))
        return {
          cause: `${what(x)}: out of memory for this process: RLIMIT_AS is ${v(lim?.as)} bytes (ulimit -v), or the system or its cgroup is out of memory`,
          remedy: 'ulimit -v unlimited   # in the shell that runs nsprobe\nfree -m   # memory left on the system',
          gate: null,
        };
      if (isCode(x, 'EMFILE', 'ENFILE'))
        return {
          cause: `${what(x)}: out of file descriptors: RLIMIT_NOFILE is ${v(lim?.nofile)} (ulimit -n)${x.code === 'ENFILE' ? ', or the system-wide fs.file-max' : ''}`,
          remedy: 'ulimit -n 1024   # in the shell that runs nsprobe',
          gate: null,
        };
      return null;
    },
  },
  {
    name: 'needs (other)',
    rule: (x) => (x.stage === 'needs' ? { cause: x.f.message ?? 'a prerequisite of this probe is not met', remedy: '', gate: null } : null),
  },
  {
    // ENOSPC: a max_<type>_namespaces limit (or EUSERS/ENOSPC for nesting depth).
    name: 'namespace limit',
    rule: (x) => {
      if (!isCode(x, 'ENOSPC', 'EUSERS')) return null;
      const limit = (ns: NsType) => x.gates.get(`max_${ns}_namespaces`);
      // Limits of the namespaces this sandbox creates: its own first, then the others the
      // runner named or the gates say this probe creates, then the user namespace's.
      const others = [...x.gates.values()].filter(
        (g) => /^max_\w+_namespaces$/.test(g.id) && g.id !== 'max_user_namespaces' && gateAffects(g, x.f.probe, x.f.namespace, x.f.mode),
      );
      const own = [...new Set([...x.namespaces.filter((n) => n !== 'user').map(limit), ...others])];
      const user = x.userns ? [limit('user')] : [];
      const order = [...own.filter(blocked), ...user.filter(blocked), ...own.filter(bad), ...user.filter(bad)];
      if (order[0]) return byGate(x, order[0]);
      const nest = x.gates.get('userns_nesting');
      if (x.userns && bad(nest)) return byGate(x, nest);
      return {
        cause: `${what(x)} (${strerror(x.code!)}): a namespace limit was reached, though none of the max_*_namespaces limits readable here is exhausted; a limit lowered in an ancestor user namespace, or user namespaces nested ${'>'} 32 deep, give the same error; no known host gate explains it`,
        remedy: `cat /proc/sys/user/max_*_namespaces   # here and in the enclosing namespaces/host\n${COLLECT}`,
        gate: null,
      };
    },
  },
  {
    // EINVAL at clone: an option missing from the kernel, or CentOS/RHEL 7's user namespace switches.
    name: 'EINVAL at clone',
    rule: (x) => {
      const kc = x.gates.get('kernel_config');
      // Without CONFIG_USER_NS an unprivileged caller's clone(CLONE_NEWUSER|CLONE_NEW*) is EPERM, not
      // EINVAL (seen on a 6.1 kernel built without it, ci/kernels.mjs noopts): no user namespace, so no
      // CAP_SYS_ADMIN for the other types
      const noUserNs = blocked(kc) && !['y', 'm'].includes(String((kc.value as { options?: Record<string, unknown> } | null)?.options?.CONFIG_USER_NS));
      if (isCode(x, 'EPERM') && entering(x) && x.userns && x.f.mode === 'rootless' && noUserNs && gateAffects(kc, x.f.probe, x.f.namespace, x.f.mode)) return byGate(x, kc);
      // rtnetlink without the veth driver (CONFIG_VETH off): "veth" is an unknown link kind
      const noVeth = blocked(kc) && !['y', 'm'].includes(String((kc.value as { options?: Record<string, unknown> } | null)?.options?.CONFIG_VETH));
      if (isCode(x, 'EOPNOTSUPP', 'ENOTSUP') && x.f.probe === 'net-veth' && (noVeth || kc?.status === 'unknown') && gateAffects(kc!, x.f.probe, x.f.namespace, x.f.mode)) return byGate(x, kc!);
      if (!isCode(x, 'EINVAL') || !entering(x)) return null;
      if (blocked(kc) && gateAffects(kc, x.f.probe, x.f.namespace, x.f.mode)) return byGate(x, kc);
      const mu = x.gates.get('max_user_namespaces');
      if (x.userns && el7Build(x.facts.kernel.release) !== null && blocked(mu)) return byGate(x, mu);
      // No config readable: EINVAL at clone is what a missing option gives; name the unknown gate,
      // whose remedy makes the config readable (ci/kernels.mjs noopts-hidden)
      if (kc?.status === 'unknown' && x.stage !== 'setns' && x.syscall !== 'setns' && gateAffects(kc, x.f.probe, x.f.namespace, x.f.mode)) return byGate(x, kc);
      return null;
    },
  },
  {
    // Ubuntu 23.10+: clone succeeds, then maps EPERM / mounts EACCES.
    name: 'AppArmor user namespace restriction',
    rule: (x) => {
      const g = x.gates.get('apparmor_userns');
      if (!x.userns || x.f.mode !== 'rootless' || !bad(g)) return null;
      const hit = (mapping(x) && isCode(x, 'EPERM', 'EACCES')) || (mounting(x) && isCode(x, 'EACCES', 'EPERM')) || (entering(x) && isCode(x, 'EACCES'));
      return hit ? byGate(x, g) : null;
    },
  },
  {
    name: 'Debian/linux-hardened unprivileged_userns_clone',
    rule: (x) => {
      const g = x.gates.get('unprivileged_userns_clone');
      // The creator lacks CAP_SYS_ADMIN in the initial user namespace: a rootless run, a caller
      // that is root only of a user namespace, or a process nested inside a new one.
      const unprivilegedCreator = x.f.mode === 'rootless' || !x.f.privilegedCaller || /inside a new user namespace/.test(x.f.message ?? '');
      return x.userns && unprivilegedCreator && isCode(x, 'EPERM') && entering(x) && blocked(g) ? byGate(x, g) : null;
    },
  },
  {
    name: 'chroot',
    rule: (x) => {
      const g = x.gates.get('chroot');
      return x.userns && isCode(x, 'EPERM') && entering(x) && blocked(g) ? byGate(x, g) : null;
    },
  },
  {
    // Container engines mount /proc/sys read-only: writing a sysctl (ip_forward) is EROFS.
    name: 'read-only /proc/sys',
    rule: (x) => {
      const g = x.gates.get('proc_sys_readonly');
      return isCode(x, 'EROFS') && bad(g) ? byGate(x, g) : null;
    },
  },
  {
    // No cgroup directory this caller may create children in.
    name: 'cgroup not writable',
    rule: (x) => {
      const g = x.gates.get('cgroup_writable');
      const cgroupStep = x.stage === 'cgroup' || /cgroup/.test(x.f.message ?? '');
      return cgroupStep && isCode(x, 'EACCES', 'EPERM', 'EROFS') && g !== undefined && g.status !== 'ok' ? byGate(x, g) : null;
    },
  },
  {
    name: 'masked /proc',
    rule: (x) => {
      const g = x.gates.get('proc_fully_visible');
      const proc = x.f.namespace === 'pid' || x.f.namespace === 'mnt' || /\bproc\b/.test(x.f.message ?? '');
      return mounting(x) && isCode(x, 'EPERM') && proc && bad(g) ? byGate(x, g) : null;
    },
  },
  {
    name: 'seccomp filter',
    rule: (x) => {
      const g = x.gates.get('seccomp');
      if (!bad(g)) return null;
      return isCode(x, 'EPERM') || (isCode(x, 'ENOSYS') && entering(x)) ? byGate(x, g) : null;
    },
  },
];

/** Explain one failure with the gates of this host. */
export function diagnose(f: Failure, gates: Gate[], facts: HostFacts): Diagnosis {
  const userns = f.mode === 'rootless' || f.namespace === 'user' || (f.namespaces ?? []).includes('user');
  const x: Facts = {
    f,
    code: errnoCode(f),
    stage: f.stage ?? 'unknown',
    syscall: f.syscall ?? (f.stage === 'clone' ? 'clone' : 'the call'),
    userns,
    namespaces: [...new Set([...(f.namespaces ?? [f.namespace]), ...(userns ? (['user'] as const) : [])])],
    gates: new Map(gates.map((g) => [g.id, g])),
    facts,
  };
  for (const { rule } of RULES) {
    const d = rule(x);
    if (d) return d;
  }
  const err = x.code ? `${x.code} (${strerror(x.code)})` : f.message ? `"${f.message}"` : 'an unknown error';
  return {
    cause: `${x.syscall} failed at stage ${x.stage} with ${err}; no known host gate explains it`,
    remedy: COLLECT,
    gate: null,
  };
}
