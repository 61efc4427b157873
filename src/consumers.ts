// Consumer verdicts (issue 15): will bubblewrap, rootless podman, Chromium's sandbox ... work on
// this host, for the user who will run it, and if not, what to change. The consumers are data
// (CONSUMERS); one evaluator (evaluateConsumers) turns a report's probe results and gates into a
// verdict per consumer. The prediction never depends on the program being installed; when it is,
// its path and version are noted. Every prediction is checked against the real program by
// test/consumers.test.ts.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsumerVerdict, Gate, Mode, NsType, ProbeResult, Report } from './model.js';
import type { HostContext } from './host/hostfs.js';
import { parseSubid } from './gates.js';
import { dpkgVersion, packageWords, realPkgDb, type PkgDb } from './pkgversion.js';
import { scrubText } from './text.js';

/** What can stop a consumer; each consumer names the line it prints for each. */
export type Blocker =
  | 'EPERM' // creating its namespaces is refused (unprivileged_userns_clone=0, a seccomp filter, a chroot)
  | 'ENOSPC' // a namespace limit (max_*_namespaces = 0, nesting depth)
  | 'EINVAL' // the kernel lacks the namespace type (CONFIG_*_NS, el7 boot parameter)
  | 'EACCES' // an LSM refused the clone (AppArmor deny mode)
  | 'uid_map' // writing uid_map refused (Ubuntu's AppArmor restriction)
  | 'proc' // mounting a fresh proc refused: /proc is masked ("mount too revealing")
  | 'subid' // no /etc/subuid range for the user
  | 'helper' // newuidmap/newgidmap missing or not setuid
  | 'cgroup-hybrid' // crun refuses a hybrid cgroup layout (v1 controllers + v2)
  | 'nesting' // fewer user namespace levels left than it nests
  | 'not-root' // the consumer needs root
  | 'root' // the consumer refuses (or is not meant for) root
  | 'nobody' // the consumer refuses the user nobody
  | 'init-root' // needs root of the initial user namespace (not root of a container or of unshare -r)
  | 'in-sandbox' // it sees no kernel thread (a pid namespace with its own /proc) and runs CMD unsandboxed
  | 'setns-mnt'; // root of a user namespace that does not own its mount namespace (unshare -r without -m)

export interface ConsumerDef {
  /** Stable id, used by --for and --require consumer:ID. */
  id: string;
  name: string;
  /** Debian package(s) that ship it. */
  package: string;
  /** Program names looked up on PATH for the installed path and version. */
  binaries: string[];
  /** The exact invocation the verdict is about. */
  command: string;
  /** Who runs it: 'user' = a non-root user (rootless tools), 'root' = needs root, 'any'. */
  runsAs: 'user' | 'root' | 'any';
  /** Setuid root program: creates its namespaces with root's privilege whoever calls it. */
  setuid?: boolean;
  /** Namespaces it creates (user implied when an unprivileged user runs a non-setuid consumer). */
  namespaces: NsType[];
  /** Creates a user namespace even when run by root (or by a setuid program as root). */
  userNsAsRoot?: boolean;
  /** As root, creates the user namespace only if user.max_user_namespaces is not 0 (bwrap's --unshare-user-try). */
  userNsTry?: boolean;
  /** Needs root of the initial user namespace (setuid programs and systemd-nspawn). */
  needsInitialRoot?: boolean;
  /** needsInitialRoot is also met by root of a user namespace whose uid map is `0 0 N`, N >= 65536. */
  initRootOrFullMap?: boolean;
  /** Takes a /proc without kernel threads for an existing sandbox and runs unsandboxed (firejail). */
  detectsSandbox?: boolean;
  /** Mounts a fresh proc inside its user namespace (blocked by a masked /proc). */
  procMount?: boolean;
  /** Id maps: 'single' (its own uid only), 'subid' (newuidmap + /etc/subuid, required), 'subid-or-single' (falls back). */
  idmap: 'single' | 'subid' | 'subid-or-single';
  /** As root, it setns()es back into its own mount namespace (runc's stage-0 for mount sources). */
  setnsOwnMnt?: boolean;
  /** Blockers this consumer meets before the usual order (the first one decides what it prints). */
  order?: Blocker[];
  /**
   * Refusals it meets first, right after the identity checks (not-root, root, nobody), in this
   * order: a refusal of `blocker` on one of the namespaces `ns`, and the line it prints then when
   * that differs from errors[blocker].
   */
  early?: Array<{ blocker: Blocker; ns: NsType[]; error?: string }>;
  /** What it prints, per blocker, as root of a user namespace where host root is not mapped (files owned by root show as nobody). */
  errorsUnmappedRoot?: Partial<Record<Blocker, string>>;
  /** As root it maps a range of 65536 ids (systemd-nspawn -U), not just its own uid. */
  wideMapAsRoot?: boolean;
  /** Levels of user namespaces it nests (Chromium's probe: 2). */
  userNsLevels?: number;
  /** Refuses hybrid cgroup layouts (crun). */
  noHybridCgroup?: boolean;
  /** Paths for which Ubuntu's AppArmor ships an unconfined profile with `userns,`. */
  apparmorProfilePaths?: string[];
  /** A fallback it takes instead of failing, for the blockers listed: the verdict is then degraded. */
  fallbacks?: Array<{
    on: Blocker[];
    fallback: string;
    warning: string;
    /** The fallback exists only where this file is setuid root (a helper package). */
    setuidHelper?: string;
    /** Blocked by these gates as well (a seccomp filter stops the setuid helper's clone too). */
    notWithGates?: string[];
    /** What it prints when it tries the fallback and that fails too. */
    failsWith?: string;
  }>;
  /** What it prints, per blocker (the part a user can search for). */
  errors: Partial<Record<Blocker, string>>;
  /** What it prints when run by root, where that differs (no user namespace, so another message). */
  errorsAsRoot?: Partial<Record<Blocker, string>>;
  /** Remedies specific to this consumer, per blocker (gate remedies are added for the others). */
  remedies?: Partial<Record<Blocker, string>>;
  /** Needs that nsprobe cannot check and the verdict assumes (said in the verdict). */
  assumes?: string;
}

// Debian's bubblewrap 0.8.0-2+deb12u1 carries the newer wording (upstream 0.8.0 said "No permissions
// to creating new namespace ... On e.g. debian this can be enabled with 'sysctl
// kernel.unprivileged_userns_clone=1'."): seen from the real program here.
const USERNS_EPERM_BWRAP =
  'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces. See <https://deb.li/bubblewrap> or <file:///usr/share/doc/bubblewrap/README.Debian.gz>.';

const BWRAP_ERRORS: ConsumerDef['errors'] = {
  EPERM: USERNS_EPERM_BWRAP,
  ENOSPC: 'bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces exceeded (ENOSPC)',
  EINVAL: 'bwrap: Creating new namespace failed, likely because the kernel does not support user namespaces.  bwrap must be installed setuid on such systems.',
  EACCES: 'bwrap: Creating new namespace failed: Permission denied',
  uid_map: 'bwrap: setting up uid map: Permission denied',
  proc: "bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
};

const PODMAN_ERRORS: ConsumerDef['errors'] = {
  EPERM: 'cannot clone: Operation not permitted ... Error: cannot re-exec process',
  ENOSPC: 'cannot clone: No space left on device ... user namespaces are not enabled in /proc/sys/user/max_user_namespaces ... Error: cannot re-exec process',
  EINVAL: 'cannot clone: Invalid argument ... Error: cannot re-exec process',
  EACCES: 'cannot clone: Permission denied ... Error: cannot re-exec process',
  uid_map: 'newuidmap: write to uid_map failed: Operation not permitted',
  helper: 'Error: cannot set up namespace using "/usr/bin/newuidmap": should have setuid or have filecaps setuid: exit status 1',
};

const SUBID_REMEDY = (who: string) => `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${who}   # as root; pick a range no other user has (see /etc/subuid)`;

export const CONSUMERS: readonly ConsumerDef[] = [
  {
    id: 'bwrap',
    name: 'bubblewrap --unshare-all',
    package: 'bubblewrap',
    binaries: ['bwrap'],
    command: 'bwrap --unshare-all --ro-bind / / --dev /dev true',
    runsAs: 'any',
    // --unshare-all includes --unshare-cgroup-try: "try" only skips a kernel without the type;
    // a refused clone (max_cgroup_namespaces=0, seen here) still fails it with ENOSPC.
    namespaces: ['user', 'mnt', 'ipc', 'pid', 'uts', 'net', 'cgroup'],
    userNsAsRoot: true,
    userNsTry: true,
    idmap: 'single',
    errors: BWRAP_ERRORS,
  },
  {
    id: 'bwrap-proc',
    name: 'bubblewrap --unshare-all --proc /proc',
    package: 'bubblewrap',
    binaries: ['bwrap'],
    command: 'bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true',
    runsAs: 'any',
    namespaces: ['user', 'mnt', 'ipc', 'pid', 'uts', 'net', 'cgroup'],
    userNsAsRoot: true,
    userNsTry: true,
    procMount: true,
    idmap: 'single',
    errors: BWRAP_ERRORS,
  },
  {
    id: 'flatpak',
    name: "Flatpak's bwrap sandbox (flatpak run)",
    package: 'flatpak (bubblewrap)',
    binaries: ['flatpak', 'bwrap'],
    command: 'bwrap --unshare-pid --unshare-ipc --unshare-net --ro-bind / / --proc /proc --dev /dev true   # the sandbox shape flatpak 1.14 asks bwrap for',
    runsAs: 'any',
    namespaces: ['user', 'mnt', 'pid', 'ipc', 'net'],
    procMount: true,
    idmap: 'single',
    errors: { ...BWRAP_ERRORS, EPERM: `${USERNS_EPERM_BWRAP} ... then flatpak: error: ldconfig failed, exit status 256` },
    // Root's bwrap makes no user namespace without --unshare-user(-try), so the clone of the others fails.
    errorsAsRoot: { EPERM: 'bwrap: Creating new namespace failed: Operation not permitted' },
  },
  {
    id: 'podman-unshare',
    name: 'rootless podman unshare',
    package: 'podman uidmap',
    binaries: ['podman'],
    command: 'podman unshare true',
    runsAs: 'user',
    namespaces: ['user', 'mnt'],
    idmap: 'subid-or-single',
    apparmorProfilePaths: ['/usr/bin/podman'],
    fallbacks: [{ on: ['subid', 'helper'], fallback: 'single id mapping', warning: 'WARN Using rootless single mapping into the namespace. This might break some images. Check /etc/subuid and /etc/subgid for adding sub*ids if not using a network user' }],
    errors: { ...PODMAN_ERRORS, root: 'Error: please use unshare with rootless' },
    // Seen here (podman 4.3) as root of a user namespace made by a user: it does not get as far as
    // its rootless check; its runtime, owned by an unmapped host root, is not usable.
    errorsUnmappedRoot: { root: 'Error: default OCI runtime "crun" not found: invalid argument' },
  },
  {
    id: 'podman-rootless',
    name: 'rootless podman run (local rootfs, --network none)',
    package: 'podman crun uidmap',
    binaries: ['podman', 'crun'],
    command: 'podman run --rm --rootfs DIR --network none /bin/true',
    runsAs: 'user',
    namespaces: ['user', 'mnt', 'pid', 'ipc', 'uts', 'net'],
    procMount: true,
    idmap: 'subid-or-single',
    noHybridCgroup: true,
    apparmorProfilePaths: ['/usr/bin/podman', '/usr/bin/crun'],
    fallbacks: [{ on: ['subid', 'helper'], fallback: 'single id mapping', warning: 'WARN Using rootless single mapping into the namespace. This might break some images. Check /etc/subuid and /etc/subgid for adding sub*ids if not using a network user' }],
    errors: {
      ...PODMAN_ERRORS,
      proc: 'Error: OCI runtime error: crun: mount `proc` to `/proc`: Operation not permitted',
      'cgroup-hybrid': 'Error: OCI runtime error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2',
      root: '(as root podman runs rootful, not rootless: predict for the user who will run it with --as-user NAME)',
    },
    remedies: {
      'cgroup-hybrid': '# boot with the unified cgroup hierarchy (systemd.unified_cgroup_hierarchy=1 on the kernel command line), or\n# unmount the v1 controllers; crun 1.8 does not run containers on a hybrid layout',
    },
    assumes: 'the default network (slirp4netns) is not modelled: --network none',
  },
  {
    // podman's default rootless network, slirp4netns (a tap device in the container's network
    // namespace, fed from a user-mode stack outside), checked here with no port forwards so nothing
    // leaves the machine. Run with runc: Debian 12's crun refuses hybrid cgroup layouts (see
    // podman-rootless), and the network part is what this verdict is about.
    id: 'podman-slirp4netns',
    name: 'rootless podman run with its default network slirp4netns (runtime runc, local rootfs)',
    package: 'podman runc slirp4netns uidmap',
    binaries: ['podman', 'slirp4netns'],
    command: 'podman --runtime runc run --rm --network slirp4netns --rootfs DIR /bin/true',
    runsAs: 'user',
    namespaces: ['user', 'mnt', 'pid', 'ipc', 'uts', 'net'],
    procMount: true,
    idmap: 'subid-or-single',
    apparmorProfilePaths: ['/usr/bin/podman', '/usr/sbin/runc', '/usr/bin/slirp4netns'],
    fallbacks: [{ on: ['subid', 'helper'], fallback: 'single id mapping', warning: 'WARN Using rootless single mapping into the namespace. This might break some images. Check /etc/subuid and /etc/subgid for adding sub*ids if not using a network user' }],
    errors: {
      ...PODMAN_ERRORS,
      proc: 'error mounting "proc" to rootfs at "/proc": ... operation not permitted',
      root: '(as root podman runs rootful, not rootless: predict for the user who will run it with --as-user NAME)',
    },
    assumes: 'slirp4netns is installed and /dev/net/tun can be opened in the container\'s network namespace (not probed)',
  },
  {
    id: 'rootlesskit',
    name: 'rootless Docker (rootlesskit)',
    package: 'rootlesskit uidmap',
    binaries: ['rootlesskit'],
    command: 'rootlesskit true',
    runsAs: 'any',
    namespaces: ['user', 'mnt'],
    userNsAsRoot: true,
    idmap: 'subid',
    apparmorProfilePaths: ['/usr/bin/rootlesskit'],
    errors: {
      EPERM: '[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: operation not permitted',
      ENOSPC: '[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: no space left on device',
      EINVAL: '[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: invalid argument',
      EACCES: '[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: permission denied',
      uid_map: '[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: operation not permitted',
      subid: '[rootlesskit:parent] error: failed to setup UID/GID map: failed to compute uid/gid map: No subuid ranges found for user {uid} ("{user}")',
      helper: '[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap ... failed: newuidmap: write to uid_map failed: Operation not permitted',
    },
  },
  {
    id: 'runc-rootless',
    name: 'runc rootless (runc spec --rootless)',
    package: 'runc',
    binaries: ['runc'],
    command: 'runc --root DIR run ID   # bundle from runc spec --rootless',
    runsAs: 'any',
    namespaces: ['user', 'mnt', 'pid', 'ipc', 'uts'],
    userNsAsRoot: true,
    setnsOwnMnt: true,
    procMount: true,
    idmap: 'single',
    apparmorProfilePaths: ['/usr/bin/runc', '/usr/sbin/runc'],
    errors: {
      // runc 1.1.5 (Debian 12), seen here under a seccomp filter and with max_user_namespaces=0:
      // when stage-1 cannot create its namespaces, stage-0 says only this (the errno is not in it).
      EPERM: 'nsexec-0[N]: failed to sync with stage-1: next state: ',
      ENOSPC: 'nsexec-0[N]: failed to sync with stage-1: next state: ',
      EINVAL: 'nsexec-0[N]: failed to sync with stage-1: next state: ',
      EACCES: 'nsexec-0[N]: failed to sync with stage-1: next state: ',
      'setns-mnt': 'nsexec-0[N]: failed to setns to host mntns: Operation not permitted',
      uid_map: 'failed to write uid_map: Operation not permitted',
      proc: 'error mounting "proc" to rootfs at "/proc": ... operation not permitted',
      root: '(runc as root is not rootless: predict for the user who will run it with --as-user NAME)',
    },
  },
  {
    id: 'crun-rootless',
    name: 'crun rootless (crun spec --rootless)',
    package: 'crun uidmap',
    binaries: ['crun'],
    command: 'crun --root DIR run ID   # bundle from crun spec --rootless',
    runsAs: 'user',
    namespaces: ['user', 'mnt', 'pid', 'ipc', 'uts', 'net'],
    procMount: true,
    idmap: 'subid-or-single',
    noHybridCgroup: true,
    apparmorProfilePaths: ['/usr/bin/crun'],
    fallbacks: [{ on: ['subid', 'helper'], fallback: 'single id mapping', warning: 'unable to invoke newuidmap, will try creating a user namespace with single mapping as an alternative' }],
    errors: {
      EPERM: 'clone: Operation not permitted',
      ENOSPC: 'clone: No space left on device',
      EINVAL: 'clone: Invalid argument',
      EACCES: 'clone: Permission denied',
      uid_map: 'write to uid_map: Operation not permitted',
      proc: 'mount `proc` to `/proc`: Operation not permitted',
      'cgroup-hybrid': 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2',
      root: '(crun as root is not rootless: predict for the user who will run it with --as-user NAME)',
    },
  },
  {
    id: 'nspawn',
    name: 'systemd-nspawn (root)',
    package: 'systemd-container',
    binaries: ['systemd-nspawn'],
    command: 'systemd-nspawn -q --register=no --keep-unit -D DIR /bin/true',
    runsAs: 'root',
    needsInitialRoot: true,
    namespaces: ['mnt', 'pid', 'uts', 'ipc'],
    idmap: 'single',
    // Seen here: its first clone makes the mount namespace, before anything that needs initial root.
    early: [{ blocker: 'ENOSPC', ns: ['mnt'], error: 'clone() failed: No space left on device' }],
    errorsUnmappedRoot: { 'init-root': 'Failed to read resource limit RLIMIT_NPROC of PID 1: Operation not permitted' },
    errors: { 'not-root': 'Need to be root.', 'init-root': 'Failed to mount sysfs (type sysfs) on DIR/sys (MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC ""): Operation not permitted', EPERM: 'clone() failed: Operation not permitted', ENOSPC: 'Failed to fork inner child: No space left on device', EINVAL: 'Failed to fork inner child: Invalid argument' },
    remedies: { 'not-root': 'sudo systemd-nspawn ...   # systemd-nspawn runs as root only' },
  },
  {
    id: 'nspawn-userns',
    name: 'systemd-nspawn -U (root, private users)',
    package: 'systemd-container',
    binaries: ['systemd-nspawn'],
    command: 'systemd-nspawn -q --register=no --keep-unit -U -D DIR /bin/true',
    runsAs: 'root',
    needsInitialRoot: true,
    namespaces: ['user', 'mnt', 'pid', 'uts', 'ipc'],
    userNsAsRoot: true,
    procMount: true,
    idmap: 'single',
    wideMapAsRoot: true,
    // Seen here: the mount namespace comes first (clone() failed), then the user namespace for the
    // id-mapped mounts, before anything that needs initial root (max_uts/ipc/pid_namespaces=0 give
    // the init-root line); in a chroot only the user namespace is refused.
    early: [
      { blocker: 'ENOSPC', ns: ['mnt'], error: 'clone() failed: No space left on device' },
      { blocker: 'EPERM', ns: ['mnt'], error: 'clone() failed: Operation not permitted' },
      { blocker: 'ENOSPC', ns: ['user'], error: 'Failed to set up ID mapped mounts: No space left on device' },
      { blocker: 'EPERM', ns: ['user'], error: 'Failed to set up ID mapped mounts: Operation not permitted' },
    ],
    errorsUnmappedRoot: { 'init-root': 'Failed to read resource limit RLIMIT_NPROC of PID 1: Operation not permitted' },
    errors: { 'not-root': 'Need to be root.', 'init-root': 'Failed to set up ID mapped mounts: Operation not permitted', EPERM: 'clone() failed: Operation not permitted', ENOSPC: 'Failed to set up ID mapped mounts: No space left on device', EINVAL: 'Failed to fork inner child: Invalid argument', proc: 'Failed to mount proc (type proc) on /proc (MS_NOSUID|MS_NODEV|MS_NOEXEC ""): Operation not permitted' },
    remedies: { 'not-root': 'sudo systemd-nspawn -U ...   # systemd-nspawn runs as root only' },
  },
  {
    id: 'firejail',
    name: 'firejail (setuid root)',
    package: 'firejail',
    binaries: ['firejail'],
    command: 'firejail --noprofile CMD   # sandboxed: CMD sees its own pid namespace',
    runsAs: 'any',
    setuid: true,
    needsInitialRoot: true,
    // Seen here: root of a user namespace that maps host root to itself over a full range (0 0
    // 65536, as a container engine maps one) runs it sandboxed; root of unshare -r (0 0 1) does not.
    initRootOrFullMap: true,
    // Seen here: under a pid namespace with its own /proc (no kernel thread in sight) firejail says
    // it is already in a sandbox and runs CMD without one, exit 0.
    detectsSandbox: true,
    // Seen here: max_ipc_namespaces=0 stops its clone too, and a refused clone comes before the
    // checks that need initial root.
    namespaces: ['mnt', 'pid', 'uts', 'ipc'],
    early: [{ blocker: 'ENOSPC', ns: ['mnt', 'pid', 'uts', 'ipc'] }, { blocker: 'EPERM', ns: ['mnt', 'pid', 'uts', 'ipc'] }],
    errorsUnmappedRoot: { 'init-root': "firejail: util.c:NNNN: create_empty_dir_as_root: Assertion `s.st_uid == 0' failed." },
    idmap: 'single',
    errors: {
      EPERM: 'Error clone: main.c:NNNN main: Operation not permitted',
      ENOSPC: 'Error clone: main.c:NNNN main: No space left on device',
      EINVAL: 'Error clone: main.c:NNNN main: Invalid argument',
      'init-root': 'Peer N unexpectedly exited with status 1',
      nobody: 'Error: the user is not allowed to use Firejail.',
      'in-sandbox': 'Warning: an existing sandbox was detected. CMD will run without any additional sandboxing features',
    },
    remedies: { nobody: '# firejail never lets the user nobody in (firejail-users(5)): run it as a real user, listed in /etc/firejail/firejail.users if that file exists' },
  },
  {
    id: 'lxc-unprivileged',
    name: 'unprivileged LXC (lxc-usernsexec)',
    package: 'lxc uidmap',
    binaries: ['lxc-usernsexec'],
    command: 'lxc-usernsexec -- true',
    runsAs: 'user',
    namespaces: ['user', 'mnt'],
    idmap: 'subid',
    // Seen here: it looks up the user's /etc/subuid range before it unshares anything.
    order: ['subid'],
    errors: {
      EPERM: 'Operation not permitted - Failed to unshare mount and user namespace',
      ENOSPC: 'No space left on device - Failed to unshare mount and user namespace',
      EINVAL: 'Invalid argument - Failed to unshare mount and user namespace',
      subid: 'Failed to find subuid or subgid allocation',
      helper: 'Failed to write id mapping for child process',
      uid_map: 'Failed to write id mapping for child process',
      root: '(as root lxc runs privileged containers: predict for the user who will run it with --as-user NAME)',
    },
    assumes: 'a whole container is lxc-start (its own verdict, lxc-start)',
  },
  {
    // Seen here (LXC 5.0): an unprivileged container starts without any delegated cgroup (it
    // skips the hierarchies the user cannot write: no limits then) and without a bridge when its
    // config asks for no network device (lxc.net.0.type = empty: a network namespace with lo only).
    id: 'lxc-start',
    name: 'unprivileged LXC container (lxc-start -F, local rootfs, lxc.net.0.type = empty)',
    package: 'lxc uidmap',
    binaries: ['lxc-start'],
    command: 'lxc-start -F -P DIR -n NAME   # config: lxc.idmap = u 0 SUBUID 65536 (and g), lxc.net.0.type = empty, lxc.mount.auto = proc:mixed sys:ro',
    runsAs: 'user',
    namespaces: ['user', 'mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup'],
    procMount: true,
    idmap: 'subid',
    errors: {
      // Seen here (LXC 5.0.2): its first user namespace is for the id-mapped setup; the ids come from
      // the config, so without a subuid range newuidmap refuses the range written there.
      EPERM: 'Operation not permitted - Failed to unshare new user namespace',
      ENOSPC: 'No space left on device - Failed to unshare new user namespace',
      EINVAL: 'Invalid argument - Failed to unshare new user namespace',
      subid: 'newuidmap failed to write mapping "newuidmap: uid range ... not allowed"',
      helper: 'Failed to write id mapping for child process',
      uid_map: 'Failed to write id mapping for child process',
      proc: 'Operation not permitted - Failed to mount "proc" on "DIR/proc"',
      root: '(as root lxc-start runs a privileged container: predict for the user who will run it with --as-user NAME)',
    },
    assumes: 'no cgroup limits (hierarchies the user cannot write are skipped) and no network device (veth through lxc-user-nic is not modelled)',
  },
  {
    id: 'chromium',
    name: "Chromium's sandbox (namespace layer)",
    package: 'chromium (chromium-sandbox for the setuid fallback)',
    binaries: ['chromium'],
    command: "chromium --headless=new --dump-dom 'data:text/html,<p>sandboxed</p>'   # as a normal user, sandbox on",
    runsAs: 'user',
    namespaces: ['user', 'pid', 'net'],
    userNsLevels: 2,
    idmap: 'single',
    apparmorProfilePaths: ['/usr/lib/chromium/chromium', '/opt/google/chrome/chrome'],
    fallbacks: [{
      on: ['EPERM', 'ENOSPC', 'EINVAL', 'nesting'],
      fallback: 'the setuid sandbox /usr/lib/chromium/chrome-sandbox',
      warning: 'Layer 1 Sandbox: SUID',
      setuidHelper: '/usr/lib/chromium/chrome-sandbox',
      notWithGates: ['seccomp'],
      failsWith: 'Failed to move to new namespace: PID namespaces supported, Network namespace supported, but failed: errno = Operation not permitted',
    }],
    errors: {
      EPERM: 'No usable sandbox! ... you can try using --no-sandbox.',
      ENOSPC: 'No usable sandbox! ... you can try using --no-sandbox.',
      EINVAL: 'No usable sandbox! ... you can try using --no-sandbox.',
      nesting: 'No usable sandbox! ... you can try using --no-sandbox.',
      EACCES: 'FATAL:credentials.cc(127)] Check failed: . : Permission denied (13)',
      uid_map: 'FATAL:credentials.cc(127)] Check failed: . : Permission denied (13)',
      root: 'Running as root without --no-sandbox is not supported. See https://crbug.com/638180.',
    },
    remedies: { root: 'run chromium as a normal user (predict for it with --as-user NAME)' },
  },
  {
    id: 'unshare',
    name: 'util-linux unshare -Urpf --mount-proc',
    package: 'util-linux',
    binaries: ['unshare'],
    command: 'unshare -Urpf --mount-proc true',
    runsAs: 'any',
    namespaces: ['user', 'pid', 'mnt'],
    userNsAsRoot: true,
    procMount: true,
    idmap: 'single',
    errors: {
      EPERM: 'unshare: unshare failed: Operation not permitted',
      ENOSPC: 'unshare: unshare failed: No space left on device',
      EINVAL: 'unshare: unshare failed: Invalid argument',
      EACCES: 'unshare: unshare failed: Permission denied',
      uid_map: 'unshare: write failed /proc/self/uid_map: Operation not permitted',
      proc: 'unshare: mount /proc failed: Operation not permitted',
    },
  },
];

// ---------- identity ----------

export interface ConsumerIdentity {
  /** The user's name (or the uid as text when it has none). */
  user: string;
  uid: number;
  /** Root with CAP_SYS_ADMIN in its user namespace: consumers run privileged. */
  root: boolean;
  home: string | null;
}

export interface ConsumerOptions {
  host: HostContext;
  /** Predict for this user (`--as-user NAME`) instead of the caller. */
  asUser?: string;
  /** Only these consumer ids. */
  only?: readonly string[];
  /** Where a consumer's program is (by consumer id), instead of looking on PATH: its AppArmor profile is per path. */
  binPaths?: Record<string, string>;
  /** Measurements to use instead of trying (tests of pure logic pass them). */
  measured?: ConsumerMeasured;
  /** Look up installed programs and measure (default true; tests of pure logic turn it off). */
  lookup?: boolean;
}

function passwdEntry(ctx: HostContext, match: (f: string[]) => boolean): string[] | null {
  for (const line of (ctx.fs.readFile('/etc/passwd') ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 6 && match(f)) return f;
  }
  return null;
}

/** Who the verdicts are for: the caller, or `asUser` (a name or a uid). Throws on an unknown user. */
export function consumerIdentity(report: Report, ctx: HostContext, asUser?: string): ConsumerIdentity {
  if (asUser !== undefined) {
    const f = passwdEntry(ctx, (x) => x[0] === asUser || (/^\d+$/.test(asUser) && x[2] === asUser));
    if (!f) throw new ConsumerUsageError(`--as-user: no user '${asUser}' in /etc/passwd`);
    const uid = Number(f[2]);
    return { user: f[0]!, uid, root: uid === 0 && report.host.capSysAdmin !== false, home: f[5] || null };
  }
  const uid = report.host.euid;
  const f = passwdEntry(ctx, (x) => Number(x[2]) === uid);
  return { user: f?.[0] ?? String(uid), uid, root: uid === 0 && (report.host.capSysAdmin ?? true), home: f?.[5] || null };
}

export class ConsumerUsageError extends Error {}

// ---------- evaluation ----------

interface Finding {
  blocker: Blocker;
  why: string;
  probe?: string;
  gate?: string;
  remedy?: string;
}

function errnoBlocker(p: ProbeResult): Blocker | null {
  if (p.stage === 'uid_map' || p.stage === 'gid_map' || p.stage === 'setgroups') return 'uid_map';
  switch (p.code) {
    case 'EPERM':
      return 'EPERM';
    case 'ENOSPC':
    case 'EUSERS':
      return 'ENOSPC';
    case 'EINVAL':
      return 'EINVAL';
    case 'EACCES':
      return 'EACCES';
    default:
      return null;
  }
}

function gateBlocker(g: Gate): Blocker {
  if (g.id.startsWith('max_') || g.id === 'userns_nesting') return 'ENOSPC';
  if (g.id === 'kernel_config') return 'EINVAL';
  if (g.id === 'apparmor_userns') return 'uid_map';
  return 'EPERM';
}

const VERSION_ENV = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C' };

// `podman --version` without a HOME or XDG_RUNTIME_DIR makes /tmp/podman-run-<uid> and
// /tmp/containers-user-<uid> and leaves them: a local run as a normal user changed the host. The
// programs get a private, empty home of their own for --version, removed when they are done and
// at exit.
let scratch: string | null = null;
function versionEnv(): Record<string, string> {
  try {
    if (!scratch) {
      scratch = mkdtempSync(join(tmpdir(), `nsprobe-ver-${process.pid}-`));
      process.once('exit', dropScratch);
    }
    return { ...VERSION_ENV, HOME: scratch, XDG_RUNTIME_DIR: scratch, XDG_CONFIG_HOME: scratch, XDG_DATA_HOME: scratch, XDG_CACHE_HOME: scratch, TMPDIR: scratch };
  } catch {
    return VERSION_ENV;
  }
}
function dropScratch(): void {
  if (!scratch) return;
  try {
    rmSync(scratch, { recursive: true, force: true });
  } catch {
    // best effort: it is empty but for what a program made
  }
  scratch = null;
  process.off('exit', dropScratch);
}

/** `PROG --version`'s first non-empty line (120 characters at most). */
function versionLine(out: string): string | null {
  return out.split('\n').find((l) => l.trim())?.trim().slice(0, 120) ?? null;
}

/**
 * Versions already asked, by path: a program several consumers use (bwrap, podman, crun,
 * systemd-nspawn) runs once per process, and prefetchPrograms() asks them all while the probes run.
 */
const versions = new Map<string, string | null>();

// Where each program was found, by PATH and name: every consumer is looked up twice per run (the
// version prefetch, the evaluation), and a failed accessSync throws an Error (with its stack) per
// directory: ~600 of them made this a large part of a run's consumer cost. existsSync answers
// without throwing; only a file that exists is checked for X_OK.
const pathsFound = new Map<string, string | null>();

function programPath(names: readonly string[], env: Record<string, string | undefined>): string | null {
  const key = `${env.PATH ?? ''}\0${names.join('\0')}`;
  const known = pathsFound.get(key);
  if (known !== undefined) return known;
  // Each folder once, in PATH order (a folder seen again cannot hold what it lacked the first time).
  const dirs = [...new Set([...(env.PATH ?? '').split(':'), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].filter(Boolean))];
  let found: string | null = null;
  for (const name of names) if ((found = programIn(dirs, name))) break;
  pathsFound.set(key, found);
  return found;
}

// Where one name was found in one list of folders: consumers share programs (podman, bwrap,
// newuidmap in several), and each name is looked up in each folder once per run, not per consumer.
const nameFound = new Map<string, string | null>();

function programIn(dirs: readonly string[], name: string): string | null {
  const key = `${dirs.join(':')}\0${name}`;
  const known = nameFound.get(key);
  if (known !== undefined) return known;
  let found: string | null = null;
  for (const d of dirs) {
    const p = `${d}/${name}`;
    if (!existsSync(p)) continue;
    try {
      accessSync(p, constants.X_OK);
      found = p;
      break;
    } catch {
      continue;
    }
  }
  nameFound.set(key, found);
  return found;
}

// The package database answers for packaged programs (src/pkgversion.ts): --version is run only
// for the others. Read lazily, once per process.
let pkgdb: PkgDb | undefined;

/** Package names to look a program up in: those of the consumers that run it first, then the rest. */
const candidatesByNames = new Map<string, string[]>();
function packageCandidates(names: readonly string[]): string[] {
  const key = names.join('\0');
  let out = candidatesByNames.get(key);
  if (!out) {
    const own = CONSUMERS.filter((c) => c.binaries.some((b) => names.includes(b)));
    out = [...new Set([...own, ...CONSUMERS].flatMap((c) => packageWords(c.package)))];
    candidatesByNames.set(key, out);
  }
  return out;
}

/** Fills `versions` from the package database for the paths it can vouch for. */
function versionsFromPackages(paths: readonly string[], names: (p: string) => readonly string[]): void {
  pkgdb ??= realPkgDb(process.arch, [...new Set(CONSUMERS.flatMap((c) => packageWords(c.package)))]);
  for (const p of paths) {
    if (versions.has(p)) continue;
    const v = dpkgVersion(p, packageCandidates(names(p)), pkgdb);
    if (v) versions.set(p, v);
  }
}

/** Standard program folders of a host whose PATH is not ours to know (a remote target). */
const HOST_PROGRAM_DIRS = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * A consumer program on a host read through HostFS (a remote target): the first executable
 * regular file of that name in its standard folders. Its version is unknown (no program of the
 * target is run from here).
 */
export function programOnHost(fs: HostContext['fs'], names: readonly string[]): { path: string; version: string | null } | null {
  for (const name of names)
    for (const d of HOST_PROGRAM_DIRS) {
      const st = fs.stat(`${d}/${name}`);
      if (st?.isFile && (st.mode & 0o111) !== 0) return { path: `${d}/${name}`, version: null };
    }
  return null;
}

/** Reads what evaluating the consumers reads on a HostFS (what a settled remote HostFS must hold). */
export function lookUpProgramsOn(fs: HostContext['fs']): void {
  for (const c of CONSUMERS) {
    programOnHost(fs, c.binaries);
    for (const f of c.fallbacks ?? []) if (f.setuidHelper) fs.stat(f.setuidHelper);
  }
  for (const f of ['/etc/passwd', '/etc/subuid', '/etc/subgid']) fs.readFile(f);
  for (let pid = 2; pid <= 10; pid++) fs.readFile(`/proc/${pid}/status`);
}

function findProgram(names: string[], env: Record<string, string | undefined>): { path: string; version: string | null } | null {
  const p = programPath(names, env);
  if (!p) return null;
  versionsFromPackages([p], () => names);
  if (!versions.has(p)) {
    let version: string | null = null;
    try {
      version = versionLine(execFileSync(p, ['--version'], { timeout: 3000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: versionEnv() }));
    } catch {
      version = null;
    }
    dropScratch();
    versions.set(p, version);
  }
  return { path: p, version: versions.get(p)! };
}

// One shell runs every --version in turn: a fork of Node costs ~9 ms of CPU (its page tables), a
// fork of sh almost nothing, so 11 programs cost one fork instead of 11. Each record: RS, the path,
// a newline, what the program printed, US, its exit status.
const VERSIONS_SH = `for p do printf '\\036%s\\n' "$p"; "$p" --version </dev/null 2>/dev/null; printf '\\037%s\\n' "$?"; done`;

/**
 * Starts `--version` of every installed consumer program (or of those in `only`) without waiting:
 * they run beside the probes instead of one after another after them. Resolves when all have
 * answered (exit 0: the first line; otherwise no version), as findProgram would; after 5 s, or if
 * no shell can start, what is missing is left to findProgram. A run that ends first kills them.
 */
export function prefetchPrograms(env: Record<string, string | undefined>, only?: readonly string[] | null): Promise<void> {
  const list = only ? CONSUMERS.filter((c) => only.includes(c.id)) : CONSUMERS;
  const found = [...new Set(list.map((c) => programPath(c.binaries, env)).filter((p): p is string => !!p && !versions.has(p)))];
  versionsFromPackages(found, (p) => [p.slice(p.lastIndexOf('/') + 1)]);
  const paths = found.filter((p) => !versions.has(p));
  if (!paths.length) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let out = '';
    let child: ChildProcess;
    try {
      // detached: its own process group, so that a kill reaches the program it runs too.
      child = spawn('/bin/sh', ['-c', VERSIONS_SH, 'sh', ...paths], { stdio: ['ignore', 'pipe', 'ignore'], env: versionEnv(), detached: true });
    } catch {
      return resolve();
    }
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    // Before the addon's own exit hook (registered earlier), which reaps every child of this
    // subreaper: a run stopped while the versions were being read left this shell and the program
    // it ran to the caller as two zombies.
    process.prependOnceListener('exit', killGroup);
    const timer = setTimeout(killGroup, 5000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (out.length < 1 << 20) out += d;
    });
    const done = () => {
      clearTimeout(timer);
      process.off('exit', killGroup);
      dropScratch();
      for (const rec of out.split('\x1e').slice(1)) {
        const nl = rec.indexOf('\n');
        const us = rec.lastIndexOf('\x1f');
        if (nl < 0 || us < nl) continue;
        const p = rec.slice(0, nl);
        if (!paths.includes(p) || versions.has(p)) continue;
        versions.set(p, rec.slice(us + 1).trim() === '0' ? versionLine(rec.slice(nl + 1, us)) : null);
      }
      resolve();
    };
    child.once('error', done);
    child.once('close', done);
  });
}

function subidFor(ctx: HostContext, who: ConsumerIdentity): { subuid: boolean; subgid: boolean } {
  const owners = new Set([who.user, String(who.uid)]);
  const has = (file: string) => parseSubid(ctx.fs.readFile(file)).some((r) => owners.has(r.owner) && r.count > 0);
  return { subuid: has('/etc/subuid'), subgid: has('/etc/subgid') };
}

function helpersOk(report: Report): boolean | null {
  const g = report.gates.find((x) => x.id === 'idmap_helpers');
  if (!g) return null;
  const v = g.value as { newuidmap?: { setuidRoot?: boolean } | null; newgidmap?: { setuidRoot?: boolean } | null } | null;
  if (!v) return null;
  return !!v.newuidmap?.setuidRoot && !!v.newgidmap?.setuidRoot;
}

/** The verdict for one consumer. */
export interface ConsumerMeasured {
  /** Whether this process may setns() into its own mount namespace (null: not measured). */
  ownMntSetns?: boolean | null;
  /** A kernel thread is visible among pids 2-10 of this /proc. */
  kernelThreads?: boolean | null;
}

function kernelThreadsVisible(read: (p: string) => string | null = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null; // no such pid here
  }
}): boolean | null {
  for (let pid = 2; pid <= 10; pid++) {
    const st = read(`/proc/${pid}/status`);
    // "Kthread: 1" (Linux 6.x); older kernels: the kernel's thread spawner by name.
    if (st !== null && (/^Kthread:\s+1$/m.test(st) || /^Name:\s+kthreadd$/m.test(st))) return true;
  }
  return false;
}

/**
 * What files cannot tell, tried for real: root of a nested user namespace may not own its mount
 * namespace (unshare -r without -m), and then setns() into it is EPERM. Only measured there.
 */
export function measureForConsumers(report: Report, who: ConsumerIdentity, host?: HostContext): ConsumerMeasured {
  // A remote host: its /proc through its HostFS, the setns tried there beforehand (src/host/boxfs.ts).
  const remote = host?.remote === true;
  const kernelThreads = remote ? kernelThreadsVisible((p) => host!.fs.readFile(p)) : kernelThreadsVisible();
  if (!who.root || report.host.userNs?.initial !== false) return { ownMntSetns: null, kernelThreads };
  if (remote) return { ownMntSetns: host!.ownMntSetns ?? null, kernelThreads };
  const r = spawnSync('nsenter', ['--mount=/proc/self/ns/mnt', 'true'], { timeout: 3000, stdio: 'ignore' });
  return { ownMntSetns: r.error ? null : r.status === 0, kernelThreads };
}

export function evaluateConsumer(c: ConsumerDef, report: Report, who: ConsumerIdentity, ctx: HostContext, measured: ConsumerMeasured = {}, binPath?: string): Omit<ConsumerVerdict, 'installed'> {
  const findings: Finding[] = [];
  const probesUsed = new Map<string, string>();
  const gatesUsed = new Map<string, string>();
  const privileged = who.root || c.setuid === true;
  const mode: Mode = privileged ? 'privileged' : 'rootless';
  const forWhom = `${who.user} (uid ${who.uid}${who.root ? ', root' : ''})`;

  if (c.runsAs === 'root' && !who.root) findings.push({ blocker: 'not-root', why: `${c.name} runs as root only; ${forWhom} is not root` });
  if (c.runsAs === 'user' && who.root) findings.push({ blocker: 'root', why: `${c.name} is run by a non-root user; as root it is not this consumer` });
  const fullMap = /^\s*0\s+0\s+(\d+)\s*$/m.exec(report.host.userNs?.uidMap ?? '');
  const initialRoot = (who.root ? report.host.privileged !== false : report.host.userNs?.initial !== false) || (c.initRootOrFullMap === true && fullMap !== null && Number(fullMap[1]) >= 65536);
  if (c.detectsSandbox && measured.kernelThreads === false)
    findings.push({ blocker: 'in-sandbox', why: `${c.name} sees no kernel thread among pids 2-10 (a pid namespace with its own /proc), takes that for an existing sandbox and runs CMD without one`, remedy: '# run it where /proc shows the host\'s pid namespace (outside this container or pid namespace)' });
  if (c.needsInitialRoot && (who.root || c.setuid) && !initialRoot)
    findings.push({ blocker: 'init-root', why: `${c.name} needs root of the initial user namespace; this one is ${report.host.userNs?.initial === false ? 'a nested user namespace' : 'not it'} (uid map ${report.host.userNs?.uidMap ?? '?'})` });
  if (c.setnsOwnMnt && who.root && measured.ownMntSetns === false)
    findings.push({ blocker: 'setns-mnt', why: 'root here cannot setns() into its own mount namespace (it belongs to an outer user namespace: nsenter --mount=/proc/self/ns/mnt fails with EPERM)', remedy: '# give the user namespace a mount namespace of its own (unshare -Urm instead of unshare -Ur; container engines do this)' });
  if (c.id === 'firejail' && who.user === 'nobody') findings.push({ blocker: 'nobody', why: 'firejail never allows the user nobody (firejail-users(5))' });

  // Namespaces: the probe of each type in the mode the consumer creates it in.
  const nss = new Set<NsType>(c.namespaces);
  if (privileged && !c.userNsAsRoot) nss.delete('user');
  if (privileged && c.userNsTry && report.gates.find((g) => g.id === 'max_user_namespaces')?.value === 0) nss.delete('user');
  if (!privileged) nss.add('user');
  const modeRun = report.modes?.find((m) => m.mode === mode);
  for (const ns of nss) {
    const id = `${ns}/${mode}`;
    let p = report.probes.find((x) => x.id === id);
    // user/privileged maps 65536 ids; refused at the map write (as in a user namespace that maps
    // only uid 0, like unshare -r), it says nothing about a single-id map: user/rootless, which
    // maps one id, does (what an unprivileged user may do, root may do too).
    if (p && ns === 'user' && mode === 'privileged' && c.idmap === 'single' && !c.wideMapAsRoot && p.status !== 'pass' && ['uid_map', 'gid_map', 'setgroups'].includes(p.stage ?? '')) {
      const single = report.probes.find((x) => x.id === 'user/rootless');
      if (single) {
        probesUsed.set(id, p.status);
        p = { ...single };
      }
    }
    if (p) {
      const idUsed = p.id;
      probesUsed.set(idUsed, p.status);
      if (p.status === 'unsupported' || p.status === 'error') {
        const b = errnoBlocker(p);
        if (b) findings.push({ blocker: b, why: `${idUsed}: ${p.cause ?? p.code ?? p.status}`, probe: idUsed, gate: p.gate ?? undefined, remedy: p.remedy });
      }
      continue;
    }
    // Not probed: the gates decide.
    for (const g of report.gates)
      if (g.status === 'blocked' && (g.affects.includes(id) || g.affects.some((a) => a.startsWith(`${ns}/`) && a.endsWith(`/${mode}`)))) {
        gatesUsed.set(g.id, g.status);
        findings.push({ blocker: gateBlocker(g), why: `${g.id}: ${g.cause}`, gate: g.id, remedy: g.remedy });
      }
    if (modeRun?.status === 'skipped' || !modeRun) {
      probesUsed.set(id, 'not run');
      // A setuid consumer judged by a run without privileged mode: a seccomp filter that stopped the
      // rootless probe stops it as well (the filter does not care who calls).
      const rl = report.probes.find((x) => x.id === `${ns}/rootless`);
      if (mode === 'privileged' && rl && rl.gate === 'seccomp' && rl.status !== 'pass')
        findings.push({ blocker: 'EPERM', why: `${ns}/rootless: ${rl.cause ?? 'seccomp'} (privileged mode not run; a seccomp filter applies to every caller)`, probe: rl.id, gate: 'seccomp', remedy: rl.remedy });
    }
  }

  // A user namespace created by root in a user namespace that is not the initial one, or by a
  // user: the fresh proc mount needs a fully visible /proc.
  const inUserNs = !privileged || (c.userNsAsRoot === true && (nss.has('user') || (report.host.userNsLevel ?? 0) >= 1)) || report.host.userNs?.initial === false;
  if (c.procMount && inUserNs) {
    const g = report.gates.find((x) => x.id === 'proc_fully_visible');
    if (g) {
      gatesUsed.set(g.id, g.status);
      if (g.status === 'warn' || g.status === 'blocked') findings.push({ blocker: 'proc', why: g.cause, gate: g.id, remedy: g.remedy });
    }
  }

  // Id maps.
  if (c.idmap !== 'single' && !who.root) {
    const sub = subidFor(ctx, who);
    gatesUsed.set('subid', report.gates.find((x) => x.id === 'subid')?.status ?? 'unknown');
    if (!sub.subuid || !sub.subgid)
      findings.push({ blocker: 'subid', why: `${who.user} has no ${!sub.subuid ? '/etc/subuid' : '/etc/subgid'} range`, remedy: SUBID_REMEDY(who.user) });
    else {
      const h = helpersOk(report);
      gatesUsed.set('idmap_helpers', report.gates.find((x) => x.id === 'idmap_helpers')?.status ?? 'unknown');
      if (h === false) findings.push({ blocker: 'helper', why: 'newuidmap/newgidmap missing or not setuid root', gate: 'idmap_helpers', remedy: report.gates.find((x) => x.id === 'idmap_helpers')?.remedy });
    }
  } else if (c.idmap === 'subid' && who.root) {
    // rootlesskit as root still maps from root's /etc/subuid ranges.
    const sub = subidFor(ctx, who);
    if (!sub.subuid || !sub.subgid) findings.push({ blocker: 'subid', why: `${who.user} has no /etc/subuid range`, remedy: SUBID_REMEDY(who.user) });
  }

  if (c.noHybridCgroup && report.host.cgroupVersion === 'hybrid')
    findings.push({ blocker: 'cgroup-hybrid', why: 'cgroup controllers are split between v1 and v2 (hybrid layout), which crun refuses' });

  if (c.userNsLevels && c.userNsLevels > 1 && !privileged) {
    const g = report.gates.find((x) => x.id === 'userns_nesting');
    const left = typeof g?.value === 'number' ? g.value : null;
    if (g) gatesUsed.set(g.id, g.status);
    if (left !== null && left < c.userNsLevels) findings.push({ blocker: 'nesting', why: `only ${left} user namespace level(s) left; it nests ${c.userNsLevels}`, gate: 'userns_nesting', remedy: g?.remedy });
  }

  // AppArmor's restriction spares binaries with a shipped profile at their packaged path.
  const aa = report.gates.find((g) => g.id === 'apparmor_userns');
  if (aa && aa.status !== 'ok') gatesUsed.set(aa.id, aa.status);
  // The profile is per path: a copy elsewhere (in $HOME, a dev build) gets none. Not installed: the packaged path.
  const path = binPath ?? c.apparmorProfilePaths?.[0] ?? `/usr/bin/${c.binaries[0]}`;
  const spared = (f: Finding) => f.gate === 'apparmor_userns' && (c.apparmorProfilePaths ?? []).includes(path);
  const real = findings.filter((f) => !spared(f));
  const apparmorRemedy = (path: string) =>
    [`cat > /etc/apparmor.d/nsprobe-${c.id} <<'EOF'`, 'abi <abi/4.0>,', 'include <tunables/global>', `profile ${c.id} ${path} flags=(unconfined) {`, '  userns,', '}', 'EOF', `apparmor_parser -r /etc/apparmor.d/nsprobe-${c.id}`].join('\n');

  const restsOn = {
    probes: [...probesUsed].map(([id, status]) => ({ id, status })),
    gates: [...gatesUsed].map(([id, status]) => ({ id, status })),
  };
  const base = { id: c.id, name: c.name, command: c.command, for: { user: who.user, uid: who.uid, root: who.root }, restsOn };
  if (real.length === 0)
    return { ...base, status: 'works', cause: `works for ${forWhom}${c.assumes ? ` (assumes ${c.assumes})` : ''}` };

  // Fallbacks: findings a fallback covers degrade it; any other one blocks it.
  const helperOk = (path: string) => {
    const st = ctx.fs.stat(path);
    return st !== null && st.uid === 0 && (st.mode & 0o4000) !== 0;
  };
  const covers = (f: NonNullable<ConsumerDef['fallbacks']>[number], x: Finding) => f.on.includes(x.blocker) && !(x.gate && f.notWithGates?.includes(x.gate));
  const tried = c.fallbacks?.find((f) => real.some((x) => f.on.includes(x.blocker)) && (!f.setuidHelper || helperOk(f.setuidHelper)));
  const fb = tried && real.some((x) => covers(tried, x)) ? tried : undefined;
  const hard = fb ? real.filter((x) => !covers(fb, x)) : real;
  if (fb && hard.length === 0)
    return { ...base, status: 'degraded', fallback: fb.fallback, warning: fb.warning, cause: `for ${forWhom}: ${real.map((f) => f.why).join('; ')}; falls back to ${fb.fallback}`, remedy: remedyOf(c, real, apparmorRemedy, path) };
  // The first blocker in the order the consumer meets them.
  // Namespaces are created first; then the id map is computed from /etc/subuid, then written;
  // crun checks the cgroup layout before it mounts the container's proc (seen here).
  const ORDER: Blocker[] = ['not-root', 'root', 'nobody', 'in-sandbox', 'init-root', 'EINVAL', 'EPERM', 'EACCES', 'ENOSPC', 'nesting', 'subid', 'helper', 'uid_map', 'setns-mnt', 'cgroup-hybrid', 'proc'];
  const order = [...(c.order ?? []), ...ORDER.filter((b) => !c.order?.includes(b))];
  const LEAD: Blocker[] = ['not-root', 'root', 'nobody'];
  const earlyOf = (f: Finding) => c.early?.findIndex((e) => e.blocker === f.blocker && e.ns.some((ns) => f.probe?.startsWith(`${ns}/`))) ?? -1;
  const rank = (f: Finding) => (LEAD.includes(f.blocker) ? LEAD.indexOf(f.blocker) : earlyOf(f) >= 0 ? 10 + earlyOf(f) : 100 + order.indexOf(f.blocker));
  hard.sort((a, b) => rank(a) - rank(b));
  const first = hard[0]!;
  const earlyError = earlyOf(first) >= 0 ? c.early![earlyOf(first)]!.error : undefined;
  const hostRootUnmapped = who.root && report.host.userNs?.initial === false && !/^\s*0\s+0\s/m.test(report.host.userNs?.uidMap ?? '0 0 ');
  const unmappedError = hostRootUnmapped ? c.errorsUnmappedRoot?.[first.blocker] : undefined;
  const fellBack = tried && tried.on.includes(first.blocker) && tried.failsWith;
  const error = ((fellBack ? tried.failsWith : undefined) ?? earlyError ?? unmappedError ?? (privileged ? c.errorsAsRoot?.[first.blocker] : undefined) ?? c.errors[first.blocker] ?? '').replace('{uid}', String(who.uid)).replace('{user}', who.user) || undefined;
  return { ...base, status: 'blocked', blocker: first.blocker, ...(error ? { error } : {}), cause: `for ${forWhom}: ${real.map((f) => f.why).join('; ')}`, remedy: remedyOf(c, real, apparmorRemedy, path) };
}

function remedyOf(c: ConsumerDef, fs: Finding[], apparmor: (path: string) => string, path: string): string {
  const out: string[] = [];
  for (const f of fs) {
    const r = c.remedies?.[f.blocker] ?? (f.blocker === 'uid_map' && f.gate === 'apparmor_userns' ? `# allow ${path} to create user namespaces (AppArmor profiles are per path):\n${apparmor(path)}` : f.remedy);
    if (r && !out.includes(r)) out.push(r);
  }
  return out.join('\n');
}

/** The same host, but each file's text read at most once (for one evaluation: the files do not change meanwhile). */
function onceEach(host: HostContext): HostContext {
  const texts = new Map<string, string | null>();
  const fs = host.fs;
  return {
    ...host,
    fs: {
      ...fs,
      readFile: (p) => {
        let t = texts.get(p);
        if (t === undefined && !texts.has(p)) texts.set(p, (t = fs.readFile(p)));
        return t ?? null;
      },
    },
  };
}

/** Every consumer's verdict (or those in opts.only), for the identity the options name. */
export function evaluateConsumers(report: Report, options: ConsumerOptions): ConsumerVerdict[] {
  // Each file is read once for all consumers (/etc/subuid and /etc/subgid were read twice per consumer).
  const opts = { ...options, host: onceEach(options.host) };
  const who = consumerIdentity(report, opts.host, opts.asUser);
  const list = opts.only ? CONSUMERS.filter((c) => opts.only!.includes(c.id)) : CONSUMERS;
  // A remote host: its programs are looked up in its files, their versions are unknown.
  const remote = opts.host.remote === true;
  const measured = opts.measured ?? (opts.lookup === false ? {} : measureForConsumers(report, who, opts.host));
  return list.map((c) => {
    const installed = opts.lookup === false ? null : remote ? programOnHost(opts.host.fs, c.binaries) : findProgram(c.binaries, opts.host.env);
    const v = evaluateConsumer(c, report, who, opts.host, measured, opts.binPaths?.[c.id] ?? installed?.path);
    return { ...v, installed };
  });
}

// ---------- CLI hooks ----------

/** Consumer ids a `--for` name stands for: an exact id, or every id that starts with it ("podman"). */
export function resolveConsumers(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const hits = CONSUMERS.filter((c) => c.id === n || c.id.startsWith(`${n}-`) || c.id.startsWith(n)).map((c) => c.id);
    if (!hits.length) throw new ConsumerUsageError(`unknown consumer '${n}' (known: ${CONSUMERS.map((c) => c.id).join(', ')})`);
    for (const h of hits) if (!out.includes(h)) out.push(h);
  }
  return out;
}

/** The probes (by name) that the given consumers rest on. */
export function probesFor(ids: readonly string[]): string[] {
  const names = new Set<string>();
  for (const c of CONSUMERS.filter((x) => ids.includes(x.id))) {
    for (const ns of c.namespaces) names.add(ns);
    names.add('user');
    if (c.procMount) names.add('pid');
    if (c.userNsLevels && c.userNsLevels > 1) names.add('nesting');
  }
  return [...names];
}

export interface ConsumerArgs {
  /** --for LIST, resolved to consumer ids. */
  for: string[] | null;
  asUser: string | undefined;
  /** --require consumer:ID entries (ids). */
  require: string[];
}

/**
 * Checks and resolves the consumer flags the main parser (src/cli.ts parseArgs) read: `--for
 * LIST`, `--as-user NAME`, and the `consumer:ID` items of `--require`.
 */
export function consumerArgs(v: { for?: readonly string[]; asUser?: string; require?: readonly string[] }): ConsumerArgs {
  const o: ConsumerArgs = { for: null, asUser: v.asUser, require: [] };
  if (v.for !== undefined) {
    if (!v.for.length) throw new ConsumerUsageError('--for needs at least one consumer');
    o.for = resolveConsumers([...v.for]);
  }
  if (o.asUser === '') throw new ConsumerUsageError('--as-user needs a user name');
  for (const id of v.require ?? []) {
    if (!CONSUMERS.some((c) => c.id === id)) throw new ConsumerUsageError(`--require names unknown consumer '${id}' (known: ${CONSUMERS.map((c) => c.id).join(', ')})`);
    if (!o.require.includes(id)) o.require.push(id);
  }
  if (o.asUser !== undefined && process.geteuid?.() !== 0) {
    // Only root can read another user's view (its subuid ranges, its binaries); a user predicts for itself.
    const me = process.geteuid?.();
    if (!/^\d+$/.test(o.asUser) || Number(o.asUser) !== me) throw new ConsumerUsageError('--as-user needs root (a normal user gets predictions for itself)');
  }
  return o;
}

/** 1 when a required consumer is blocked or missing from the verdicts (degraded still runs: 0). */
export function consumerExitCode(verdicts: readonly ConsumerVerdict[] | undefined, require: readonly string[]): number {
  for (const id of require) {
    const v = verdicts?.find((x) => x.id === id);
    if (!v || v.status === 'blocked') return 1;
  }
  return 0;
}

/** Lines for nsprobe --help. */
export const CONSUMER_HELP = `
Consumers (will bwrap, rootless podman, Chromium's sandbox ... work here, for whom, and what to change):
  nsprobe consumers  the consumers nsprobe predicts and what each needs
  --for LIST         run only the probes these consumers rest on and print their verdicts first
                     (ids or prefixes: ${CONSUMERS.map((c) => c.id).join(',')})
  --as-user NAME     as root: predict for this user (its /etc/subuid ranges, its identity)
  --require consumer:ID[,...]  exit 1 when that consumer is blocked here (degraded still runs)
`;

/** `nsprobe consumers`: the known consumers and what each needs. */
export function renderConsumerList(): string {
  const lines: string[] = ['Consumers nsprobe predicts (nsprobe --for ID; --require consumer:ID):', ''];
  for (const c of CONSUMERS) {
    const needs = [
      `namespaces ${c.namespaces.join(',')}`,
      c.setuid ? 'setuid root (creates them as root)' : c.runsAs === 'root' ? 'runs as root' : c.runsAs === 'user' ? 'a non-root user' : '',
      c.procMount ? 'a fresh proc mount (unmasked /proc)' : '',
      c.idmap === 'subid' ? '/etc/subuid+subgid ranges and setuid newuidmap/newgidmap' : c.idmap === 'subid-or-single' ? '/etc/subuid ranges + newuidmap (else a single-id fallback)' : '',
      c.userNsLevels && c.userNsLevels > 1 ? `${c.userNsLevels} levels of user namespaces` : '',
      c.noHybridCgroup ? 'no hybrid cgroup layout' : '',
    ].filter(Boolean);
    lines.push(`${c.id.padEnd(17)} ${c.name}  [${c.package}]`, `${''.padEnd(17)} ${c.command}`, `${''.padEnd(17)} needs: ${needs.join('; ')}`);
    for (const f of c.fallbacks ?? []) lines.push(`${''.padEnd(17)} fallback: ${f.fallback} (on ${f.on.join('/')})`);
    lines.push('');
  }
  return lines.join('\n');
}

/** The verdicts as terminal lines (printed first with --for); outside text scrubbed. */
export function renderConsumerVerdicts(vs: readonly ConsumerVerdict[]): string {
  return scrubText(renderVerdictLines(vs));
}

function renderVerdictLines(vs: readonly ConsumerVerdict[]): string {
  const out: string[] = [];
  for (const v of vs) {
    const inst = v.installed ? ` [${v.installed.path}${v.installed.version ? `, ${v.installed.version}` : ''}]` : ' [not installed]';
    out.push(`${v.status.padEnd(8)} ${v.id}: ${v.name}${inst}`, `         ${v.cause}`);
    if (v.warning) out.push(`         it prints: ${v.warning}`);
    if (v.error) out.push(`         it prints: ${v.error}`);
    if (v.remedy) out.push(...v.remedy.split('\n').map((l) => `         ${l}`));
  }
  return `${out.join('\n')}\n`;
}

/**
 * What cli.ts main() calls, in four places: before parsing (takes the consumer flags out; lists
 * the consumers for `nsprobe consumers`), after the run (adds report.consumers), before the
 * summary (with --for, the verdicts first) and for the exit code (--require consumer:ID).
 */
/** `nsprobe consumers`: the known consumers and what each needs. */
export function listConsumers(args: readonly string[]): number {
  if (args.length > 0) throw new ConsumerUsageError(`consumers takes no arguments, not '${args[0]}'`);
  process.stdout.write(renderConsumerList());
  return 0;
}

export function consumerRun(a: ConsumerArgs): {
  probes: string[] | null;
  /** Starts the programs' --version runs (call before the probes; await before evaluate). */
  prefetch(host: HostContext): Promise<void>;
  evaluate(report: Report, host: HostContext): void;
  verdictsFirst(report: Report): string;
  exitCode(report: Report): number;
} {
  // An unknown --as-user is a usage error before any probe runs.
  if (a.asUser !== undefined) {
    const passwd = (() => {
      try {
        return readFileSync('/etc/passwd', 'utf8');
      } catch {
        return '';
      }
    })();
    const known = passwd.split('\n').some((l) => {
      const f = l.split(':');
      return f.length >= 6 && (f[0] === a.asUser || (/^\d+$/.test(a.asUser!) && f[2] === a.asUser));
    });
    if (!known) throw new ConsumerUsageError(`--as-user: no user '${a.asUser}' in /etc/passwd`);
  }
  const wanted = a.for ?? (a.require.length ? a.require : null);
  return {
    probes: a.for ? probesFor(a.for) : null,
    prefetch: (host) => (host.remote ? Promise.resolve() : prefetchPrograms(host.env, wanted ? [...new Set([...(a.for ?? []), ...a.require])] : null)),
    evaluate(report, host) {
      report.consumers = evaluateConsumers(report, { host, asUser: a.asUser, ...(wanted ? { only: [...new Set([...(a.for ?? []), ...a.require])] } : {}) });
    },
    verdictsFirst: (report) => (a.for && report.consumers ? renderConsumerVerdicts(report.consumers) : ''),
    exitCode: (report) => consumerExitCode(report.consumers, a.require),
  };
}
