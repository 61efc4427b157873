// Environments a test can run a command in: root, nobody, root of a user namespace, a pid
// namespace with its own /proc, a container-like /proc, per-type namespace limits, a container's
// seccomp filter, a chroot, user namespaces nested to the limit. Each wraps an argv so that it
// runs there; everything the wrapper creates lives in namespaces that die with the command (or in
// a temporary folder that dispose() removes), so nothing is left on the host. Used by the
// differential test against util-linux unshare, and meant for the tests of consumer programs
// (bwrap, podman, ...) that should run in the same places:
//
//   for (const env of ENVS) {
//     const why = envUnavailable(env);            // 'needs root', a missing program, ... or null
//     const r = await runIn(env, ['bwrap', '--unshare-all', '--', 'true']);   // or env.wrap(argv)
//   }
//
// runIn() kills the whole process group on timeout and calls dispose(); with env.wrap() directly,
// call dispose() yourself once the command has ended.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NS_TYPES, type NsType } from '../../src/model.js';
import { USERNS_MAX_DEPTH } from '../../src/gates.js';
import { isRoot, missingTools } from './tools.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const SECCOMP_EXEC = join(ROOT, 'build', 'Release', 'nsprobe-seccomp-exec');
export const NOBODY_ID = 65534;
const NOBODY = ['setpriv', `--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, '--clear-groups'];

export interface Wrapped {
  /** The argv to run: the command inside the environment. */
  argv: string[];
  /** Removes what wrap() created outside namespaces (call once the command has ended). */
  dispose(): void;
}

export interface Env {
  /** Stable short name, e.g. "userns-root", "max-net". */
  id: string;
  /** One line: what the environment is and how it is made. */
  describe: string;
  /** The environment can only be built by root (mounts, setpriv, chroot). */
  needsRoot: boolean;
  /** Whether the command runs as uid 65534 (the checkout must be readable by it). */
  asNobody: boolean;
  /** Programs on PATH the wrapper uses. */
  tools: string[];
  /** Files the wrapper needs (e.g. the seccomp helper of the build). */
  files?: string[];
  wrap(argv: readonly string[]): Wrapped;
}

const none = (): void => undefined;

// Mount points wrap() made and dispose() has not removed yet: gone when the worker exits too. Only
// ever rmdir (never a recursive removal): they are mount points of other mount namespaces.
const mountPoints = new Set<string>();
process.on('exit', () => {
  for (const d of mountPoints) {
    try {
      rmdirSync(d);
    } catch {
      // still in use or already gone
    }
  }
});
/** An argv prefix ending in `sh -c SCRIPT sh`, so that "$@" in SCRIPT is the wrapped command. */
const shPrefix = (script: string): string[] => ['sh', '-c', script, 'sh'];
const simple = (prefix: string[]) => (argv: readonly string[]): Wrapped => ({ argv: [...prefix, ...argv], dispose: none });

/** `unshare -Ur` nested `levels` times: the command runs as uid 0 that many user namespaces down. */
export function nestedUserns(levels: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < levels; i++) out.push('unshare', '-Ur');
  return out;
}

/** The shell that sets user.max_<type>_namespaces to 0 for each type (inside a user namespace) and execs "$@". */
function limitScript(types: readonly NsType[]): string {
  return types.map((t) => `echo 0 > /proc/sys/user/max_${t}_namespaces && `).join('') + 'exec "$@"';
}

// What a container runtime's default spec masks and makes read-only in /proc (and /sys/firmware):
// files are bound over with /dev/null, folders with an empty read-only tmpfs; only those present.
const MASKED_FILES = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/latency_stats', '/proc/sched_debug', '/proc/timer_stats'];
const MASKED_DIRS = ['/proc/acpi', '/proc/scsi', '/proc/asound', '/sys/firmware'];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
function maskScript(then: string): string {
  return [
    'set -e',
    // A container sees one proc mount, its own. Any other one this mount namespace copied from
    // the host (a chroot's /proc, say) would be a fully visible proc, and the kernel would then
    // allow a fresh proc mount in a user namespace: detach them here (only in this namespace).
    `awk '{ split($0, a, " - "); split(a[1], m, " "); split(a[2], f, " "); if (f[1] == "proc" && m[5] != "/proc") print m[5] }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done`,
    `for f in ${MASKED_FILES.join(' ')}; do if [ -e "$f" ]; then mount --bind /dev/null "$f"; fi; done`,
    `for d in ${MASKED_DIRS.join(' ')}; do if [ -d "$d" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=0 nsprobe-masked "$d"; fi; done`,
    `for p in ${READONLY.join(' ')}; do if [ -e "$p" ]; then mount --bind "$p" "$p"; mount -o remount,bind,ro "$p"; fi; done`,
    `exec ${then}"$@"`,
  ].join('\n');
}

function limitEnv(types: NsType[]): Env {
  const name = types.join('+');
  return {
    id: `max-${name}`,
    describe: `root of \`unshare -Ur\` with ${types.map((t) => `user.max_${t}_namespaces=0`).join(' and ')} set there`,
    needsRoot: false,
    asNobody: false,
    tools: ['unshare'],
    wrap: simple(['unshare', '-Ur', ...shPrefix(limitScript(types))]),
  };
}

/** Every environment, in the order tests report them. */
export const ENVS: readonly Env[] = [
  { id: 'root', describe: 'root on the host', needsRoot: true, asNobody: false, tools: [], wrap: simple([]) },
  // As a normal user, the caller as it is stands in for root's plain host environment.
  ...(isRoot ? [] : [{ id: 'caller', describe: `the calling user (uid ${process.geteuid?.()}) on the host`, needsRoot: false, asNobody: false, tools: [], wrap: simple([]) }]),
  { id: 'nobody', describe: 'uid/gid 65534 on the host (setpriv --reuid=65534 --regid=65534 --clear-groups)', needsRoot: true, asNobody: true, tools: ['setpriv'], wrap: simple(NOBODY) },
  { id: 'userns', describe: 'uid 0 of a user namespace the caller made (unshare -Ur), only uid 0 mapped', needsRoot: false, asNobody: false, tools: ['unshare'], wrap: simple(['unshare', '-Ur']) },
  { id: 'nobody-userns', describe: 'uid 0 of a user namespace made by uid 65534 (setpriv ... unshare -Ur)', needsRoot: true, asNobody: true, tools: ['setpriv', 'unshare'], wrap: simple([...NOBODY, 'unshare', '-Ur']) },
  {
    id: 'userns-mapped',
    describe: 'uid 0 of a user namespace with ids 0-65535 mapped, as a container engine maps one (uid 65534 exists there)',
    needsRoot: true,
    asNobody: false,
    tools: ['unshare'],
    // The child waits until the parent (root on the host) has written both maps, then execs.
    wrap: simple(
      shPrefix(
        [
          `unshare -U sh -c 'while [ -z "$(cat /proc/self/gid_map)" ]; do sleep 0.01; done; exec "$@"' sh "$@" &`,
          'p=$!',
          // Until unshare() has run, the child is still in this user namespace.
          'while [ "$(readlink /proc/$p/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done',
          'echo "0 0 65536" > /proc/$p/uid_map && echo "0 0 65536" > /proc/$p/gid_map || kill -9 $p',
          'wait $p',
        ].join('\n'),
      ),
    ),
  },
  { id: 'pidns', describe: 'root as PID 1 of a pid namespace with its own /proc (unshare -pf --mount-proc)', needsRoot: true, asNobody: false, tools: ['unshare'], wrap: simple(['unshare', '-pf', '--mount-proc']) },
  { id: 'userns-pidns', describe: 'uid 0 as PID 1 of a pid namespace with its own /proc, in a user namespace (unshare -Ur -pf --mount-proc)', needsRoot: false, asNobody: false, tools: ['unshare'], wrap: simple(['unshare', '-Ur', '-pf', '--mount-proc']) },
  {
    id: 'masked-proc',
    describe: 'root in a private mount namespace with a container-like /proc (masked files and folders, read-only /proc/sys)',
    needsRoot: true,
    asNobody: false,
    tools: ['unshare'],
    wrap: simple(['unshare', '-m', ...shPrefix(maskScript(''))]),
  },
  {
    id: 'masked-proc-nobody',
    describe: 'uid 65534 in that private mount namespace with a container-like /proc',
    needsRoot: true,
    asNobody: true,
    tools: ['unshare', 'setpriv'],
    wrap: simple(['unshare', '-m', ...shPrefix(maskScript(NOBODY.join(' ') + ' '))]),
  },
  ...NS_TYPES.map((t) => limitEnv([t])),
  limitEnv(['user', 'net']),
  limitEnv(['mnt', 'pid']),
  {
    id: 'seccomp',
    describe: 'the caller under a container-like seccomp filter (nsprobe-seccomp-exec: unshare/setns/clone with CLONE_NEW* EPERM, clone3 ENOSYS)',
    needsRoot: false,
    asNobody: false,
    tools: [],
    files: [SECCOMP_EXEC],
    wrap: simple([SECCOMP_EXEC]),
  },
  {
    id: 'seccomp-nobody',
    describe: 'uid 65534 under that seccomp filter',
    needsRoot: true,
    asNobody: true,
    tools: ['setpriv'],
    files: [SECCOMP_EXEC],
    wrap: simple([...NOBODY, SECCOMP_EXEC]),
  },
  {
    id: 'chroot',
    describe: 'root chrooted into a recursive bind of / in a private mount namespace',
    needsRoot: true,
    asNobody: false,
    tools: ['unshare', 'chroot', 'mount'],
    wrap(argv) {
      // The folder only serves as a mount point inside the command's own mount namespace; it stays
      // empty outside and dispose() removes it (named nsprobe-test-* so that the residue checks of
      // tests running meanwhile know it for another test's folder).
      const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-chroot-'));
      mountPoints.add(dir);
      return {
        // chroot(1) changes to the new /: go back to the same folder (the tree is the same).
        argv: ['unshare', '-m', 'sh', '-c', 'mount --rbind / "$0" && exec chroot "$0" sh -c \'cd "$0" && exec "$@"\' "$PWD" "$@"', dir, ...argv],
        dispose: () => {
          rmdirSync(dir);
          mountPoints.delete(dir);
        },
      };
    },
  },
  {
    id: `userns-depth-${USERNS_MAX_DEPTH - 1}`,
    describe: `uid 0 of user namespaces nested ${USERNS_MAX_DEPTH - 1} levels (one level left below)`,
    needsRoot: false,
    asNobody: false,
    tools: ['unshare'],
    wrap: simple(nestedUserns(USERNS_MAX_DEPTH - 1)),
  },
  {
    id: `userns-depth-${USERNS_MAX_DEPTH}`,
    describe: `uid 0 of user namespaces nested ${USERNS_MAX_DEPTH} levels, the limit: one more is ENOSPC`,
    needsRoot: false,
    asNobody: false,
    tools: ['unshare'],
    wrap: simple(nestedUserns(USERNS_MAX_DEPTH)),
  },
];

export function envById(id: string): Env {
  const e = ENVS.find((x) => x.id === id);
  if (!e) throw new Error(`no environment '${id}'`);
  return e;
}

let nobodyVerdict: string | null | undefined;
/** Null when uid 65534 can run this checkout's Node; else why not (checked once). */
export function nobodyCannotRun(): string | null {
  if (nobodyVerdict !== undefined) return nobodyVerdict;
  if (!isRoot || missingTools('setpriv')) return (nobodyVerdict = null); // decided by needsRoot / tools
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  const r = spawnSync(NOBODY[0], [...NOBODY.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(cli)}, 4)`], { encoding: 'utf8', timeout: 10000 });
  nobodyVerdict = r.status === 0 ? null : `uid ${NOBODY_ID} cannot read ${cli} (chmod -R o+rX the checkout and o+x its parents)`;
  return nobodyVerdict;
}

/** Why `env` cannot be built here (not root, a missing program or file, an unreadable checkout), or null. */
export function envUnavailable(env: Env): string | null {
  if (env.needsRoot && !isRoot) return 'needs root';
  const tools = missingTools(...env.tools);
  if (tools) return tools;
  for (const f of env.files ?? []) if (!existsSync(f)) return `${f} is not built`;
  if (env.asNobody) {
    const why = nobodyCannotRun();
    if (why) return why;
  }
  return buildError(env);
}

const built = new Map<string, string | null>();
/**
 * Whether the environment can be built on this host at all (`true` run in it exits 0): a host
 * whose policy forbids what the wrapper does (user namespaces, mounts) cannot have it. Checked once.
 */
function buildError(env: Env): string | null {
  if (built.has(env.id)) return built.get(env.id)!;
  const w = env.wrap(['true']);
  let why: string | null = null;
  try {
    const r = spawnSync(w.argv[0], w.argv.slice(1), { encoding: 'utf8', timeout: 10000, cwd: ROOT });
    if (r.status !== 0) why = `${env.id} cannot be built here: ${(r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n')[0]}`;
  } finally {
    w.dispose();
  }
  built.set(env.id, why);
  return why;
}

export interface EnvRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `argv` in `env` (asynchronously, so several environments can run side by side), kills the
 * whole process group on timeout, and disposes of the wrapper's leftovers.
 */
export function runIn(env: Env, argv: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<EnvRun> {
  const w = env.wrap(argv);
  return new Promise((resolvePromise) => {
    const child = spawn(w.argv[0], w.argv.slice(1), { cwd: opts.cwd ?? ROOT, env: { ...process.env, NO_COLOR: '1', ...opts.env }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs ?? 30000);
    const finish = (status: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      try {
        w.dispose();
      } catch (e) {
        stderr += `\n[envs] dispose failed: ${(e as Error).message}`;
      }
      resolvePromise({ status, signal, stdout, stderr, timedOut });
    };
    child.on('error', (e) => {
      stderr += String(e);
      finish(null, null);
    });
    child.on('close', finish);
  });
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of the results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
