// One table of namespace facts. Everything that needs to know a namespace's clone flag, the
// kernel that brought it, its kernel config option, its /proc/PID/ns file or its count limit reads
// it from here: the model's type list, the sandbox and bench (flags), the gates (limits, config
// options), the residue checker (ns files) and the probes (flag name, kernel version).

export interface NamespaceFacts {
  /** The type as nsprobe names it, and the name of its /proc/PID/ns file. */
  type: 'uts' | 'ipc' | 'pid' | 'net' | 'mnt' | 'user' | 'cgroup' | 'time';
  /** CLONE_NEW* value (CLONE_NEWTIME goes through unshare() or clone3 only). */
  cloneFlag: number;
  cloneFlagName: string;
  /** Kernel version that completed the namespace type. */
  since: string;
  /** Kernel config option without which creating it fails with EINVAL (null: always built in). */
  kconfig: string | null;
  /** The count limit /proc/sys/user/max_<type>_namespaces, and the kernel that added it. */
  limitKnob: `user.max_${string}_namespaces`;
  limitSince: [number, number];
  /** What it isolates, in a few words. */
  isolates: string;
}

export const NAMESPACES = [
  { type: 'uts', cloneFlag: 0x04000000, cloneFlagName: 'CLONE_NEWUTS', since: '2.6.19', kconfig: 'CONFIG_UTS_NS', limitKnob: 'user.max_uts_namespaces', limitSince: [4, 9], isolates: 'hostname and NIS domain name' },
  { type: 'ipc', cloneFlag: 0x08000000, cloneFlagName: 'CLONE_NEWIPC', since: '2.6.19', kconfig: 'CONFIG_IPC_NS', limitKnob: 'user.max_ipc_namespaces', limitSince: [4, 9], isolates: 'System V IPC and POSIX message queues' },
  { type: 'pid', cloneFlag: 0x20000000, cloneFlagName: 'CLONE_NEWPID', since: '2.6.24', kconfig: 'CONFIG_PID_NS', limitKnob: 'user.max_pid_namespaces', limitSince: [4, 9], isolates: 'process ids' },
  { type: 'net', cloneFlag: 0x40000000, cloneFlagName: 'CLONE_NEWNET', since: '2.6.29', kconfig: 'CONFIG_NET_NS', limitKnob: 'user.max_net_namespaces', limitSince: [4, 9], isolates: 'network devices, addresses, ports, routes' },
  { type: 'mnt', cloneFlag: 0x00020000, cloneFlagName: 'CLONE_NEWNS', since: '2.4.19', kconfig: null, limitKnob: 'user.max_mnt_namespaces', limitSince: [4, 9], isolates: 'mount points' },
  { type: 'user', cloneFlag: 0x10000000, cloneFlagName: 'CLONE_NEWUSER', since: '3.8', kconfig: 'CONFIG_USER_NS', limitKnob: 'user.max_user_namespaces', limitSince: [4, 9], isolates: 'user and group ids, capabilities' },
  { type: 'cgroup', cloneFlag: 0x02000000, cloneFlagName: 'CLONE_NEWCGROUP', since: '4.6', kconfig: 'CONFIG_CGROUPS', limitKnob: 'user.max_cgroup_namespaces', limitSince: [4, 9], isolates: 'the cgroup root directory' },
  { type: 'time', cloneFlag: 0x00000080, cloneFlagName: 'CLONE_NEWTIME', since: '5.6', kconfig: 'CONFIG_TIME_NS', limitKnob: 'user.max_time_namespaces', limitSince: [5, 6], isolates: 'CLOCK_MONOTONIC and CLOCK_BOOTTIME' },
] as const satisfies readonly NamespaceFacts[];

export type NsType = (typeof NAMESPACES)[number]['type'];

export const NS_TYPES: readonly NsType[] = NAMESPACES.map((n) => n.type);

const BY_TYPE = new Map<NsType, NamespaceFacts>(NAMESPACES.map((n) => [n.type, n]));

export function nsFacts(type: NsType): NamespaceFacts {
  return BY_TYPE.get(type)!;
}

/** CLONE_NEW* flags by namespace type. */
export const CLONE = Object.fromEntries(NAMESPACES.map((n) => [n.type, n.cloneFlag])) as Record<NsType, number>;

/** Kernel config options every namespace needs besides its own. */
export const KCONFIG_COMMON = 'CONFIG_NAMESPACES';
