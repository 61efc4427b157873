// Shared by the soak, interruption and fuzz scripts and their tests: a seeded PRNG, process
// helpers, and the filter for residue that other people's work on a shared machine leaves.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { localPidNs, tagNs } from '../src/pidns.js';
import type { Residue } from '../src/residue.js';

export const ROOT = packageRoot();
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** mulberry32: small, fast, seeded; good enough to pick delays and mutate bytes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

export const SHARED_TMP = ['/tmp', '/var/tmp', '/dev/shm'];
/** Gitignored folders of the package made by builds and other tests, not by a probe run. */
export const BUILD_DIRS = ['.cache', 'build', 'dist', 'node_modules', 'reports'];

/**
 * Residue that is not ours on a machine others use at the same time: entries in the shared temp
 * folders that nsprobe would not name (compiler temp files, other tools' folders) and the temp
 * folders of the repository's other tests (nsprobe-test-*) and of the kernel matrix
 * (nsprobe-kc-*), and the interruption and soak harnesses' report folders (nsprobe-int-*,
 * nsprobe-soak-*, each removed by its own harness). Everything else (processes, mounts, IPC, devices, cgroups, files in the cwd,
 * $HOME and the package) counts.
 */
export function foreign(r: Residue): boolean {
  // Something that existed before and is gone after (another suite's transient queue or mount
  // that was there when the snapshot was taken) is not debris this run left.
  if (/^(removed|unmounted): /.test(r.what)) return true;
  if (r.kind !== 'file') return false;
  const m = /^new file (\/[^ ]+) \(uid/.exec(r.what);
  if (!m) return false;
  const path = m[1];
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const name = path.slice(path.lastIndexOf('/') + 1);
  // Build and cache folders of the package that other test files make while this one runs
  // (the kernel matrix test creates .cache/ there); a probe run never writes them.
  if (dir === packageRoot() && BUILD_DIRS.includes(name)) return true;
  if (!SHARED_TMP.includes(dir)) return false;
  // The private home of a run's consumer --version calls (nsprobe-ver-<pid>-XXXXXX) while that
  // run still goes: a concurrent test's run. Once its process is gone, it counts.
  // A test folder made by tmp() of test/helpers/run.ts (<prefix>w<pid>-XXXXXX, any prefix).
  if (/^nsprobe-[a-z0-9-]*-w\d+-[A-Za-z0-9]{6}$/.test(name)) return true;
  const ver = /^nsprobe-ver-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
  if (ver) return alive(Number(ver[1]));
  // Other test files' mkdtemp folders (nsprobe-<word>-XXXXXX): a run makes none (its only temp
  // folder is nsprobe-ver-<pid>-XXXXXX, above).
  if (/^nsprobe-[a-z-]+-[A-Za-z0-9]{6}$/.test(name)) return true;
  return !name.startsWith('nsprobe') || /^nsprobe-(test|kc|int|soak|kernels-test)-/.test(name);
}

/**
 * foreign(), and what other processes' runs made (other test files run suites at the same time):
 * cgroups a run did not name (it makes nsprobe-<node pid>-<token> only) or named after another
 * pid; host queues named after another pid (nsprobe-mqh-<pid>-<token>, older runs) or slot queues
 * (nsprobe-mqh-u<uid>-<slot>) a live process still holds (src/cleanup.ts: the kernel tells).
 * The one residue name rule of the harnesses (interrupt, soak) and the tests that use them.
 */
export function foreignTo(pids: readonly number[]): (r: Residue) => boolean {
  return (r) => {
    if (foreign(r)) return true;
    if (r.kind === 'cgroup') {
      // (Named after a pid and its pid namespace, src/pidns.ts: these runs' are of this one.)
      const m = /\/nsprobe-(\d+)(?:@(\d+))?-[a-z0-9]+$/.exec(r.what);
      return m === null || !pids.includes(Number(m[1])) || tagNs(m[2]) !== (localPidNs() ?? 0);
    }
    if (r.kind !== 'mqueue') return false;
    const m = /\/nsprobe-mqh-(\d+)(?:@(\d+))?-[a-z0-9]+$/.exec(r.what);
    if (m) return !pids.includes(Number(m[1])) || tagNs(m[2]) !== (localPidNs() ?? 0);
    const slot = /\/(nsprobe-mqh-u\d+-\d+)$/.exec(r.what);
    return slot !== null && heldByLive(slot[1]);
  };
}

/** Whether a live process holds a slot queue (EBUSY; only looking: this process holds none). */
function heldByLive(name: string): boolean {
  try {
    const r = native().mqReap?.(name, true);
    if (typeof r === 'number') return r === -16;
    void Promise.resolve(r).catch(() => undefined); // (through an agent: not answered in time here)
    return false;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Resident set size of this process in KiB (now, not the peak). */
export function rssKiB(): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** performance.now() when it exited. */
  at: number;
}

/** Spawns node with args; resolves on exit with the output. */
export function spawnNode(args: string[], opts: { cwd?: string; prefix?: string[] } = {}): { child: ChildProcess; done: Promise<Exit> } {
  const argv = [...(opts.prefix ?? []), process.execPath, ...args];
  const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd ?? ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const at = performance.now();
      // Output may still be in flight: wait for the pipes to close.
      let open = 2;
      const fin = () => --open === 0 && resolve({ code, signal, stdout, stderr, at });
      if (child.stdout!.closed) fin();
      else child.stdout!.on('close', fin);
      if (child.stderr!.closed) fin();
      else child.stderr!.on('close', fin);
    });
  });
  return { child, done };
}
