// Runs commands for tests: the compiled CLI, as another user, inside disposable namespaces.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const isRoot = process.geteuid?.() === 0;
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

const made = new Set<string>();
const removeMade = () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
  made.clear();
};
// The safety net: whatever a test file made with tmp() goes when its worker process exits, also
// when a test failed before its teardown ran, and when the worker is stopped by a signal (ava's
// timeout and Ctrl-C end workers with SIGTERM/SIGINT): the folders go, then the signal is raised
// again with its default action, so the worker still ends the way it was told to.
process.on('exit', removeMade);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    removeMade();
    process.kill(process.pid, sig);
  });
}

// A SIGKILLed worker runs no handler: its folders carry its pid (`<prefix>w<pid>-XXXXXX`), and the
// next test process removes those of workers that no longer run (this user's only; a pid that
// answers kill(pid, 0), or one of another user, is left alone).
const OWNED = /^nsprobe-test-.*w(\d+)-[A-Za-z0-9]{6}$/;
export function sweepDeadWorkers(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  const uid = process.geteuid?.();
  for (const n of names) {
    const m = OWNED.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // it runs (or is another user's: EPERM)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    const p = join(dir, n);
    try {
      const st = lstatSync(p);
      if (!st.isDirectory() || st.uid !== uid) continue;
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    } catch {}
  }
  return removed;
}
sweepDeadWorkers();

/**
 * A fresh folder under the system tmp dir. With `t`, it is removed when the test ends
 * (t.teardown); without, when the test file's worker exits. Nothing is left in /tmp either way.
 */
type Teardown = { teardown(fn: () => void): void };
export function tmp(prefixOrT: string | Teardown = 'nsprobe-test-', t?: Teardown): string {
  const prefix = typeof prefixOrT === 'string' ? prefixOrT : 'nsprobe-test-';
  if (typeof prefixOrT !== 'string') t = prefixOrT;
  const d = mkdtempSync(join(tmpdir(), `${prefix}w${process.pid}-`));
  made.add(d);
  t?.teardown(() => {
    rmSync(d, { recursive: true, force: true });
    made.delete(d);
  });
  return d;
}

export function run(argv: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 60000, input: opts.input, env: { ...process.env, NO_COLOR: '1', ...opts.env }, cwd: ROOT });
}

export function cli(args: string[], prefix: string[] = []): SpawnSyncReturns<string> {
  return run([...prefix, process.execPath, CLI, ...args]);
}

/** Runs a TypeScript helper through tsx (for code that must run in another process). */
export function tsxArgv(script: string, ...args: string[]): string[] {
  return [process.execPath, '--import', 'tsx', join(ROOT, script), ...args];
}
