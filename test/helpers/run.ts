// Runs commands for tests: the compiled CLI, as another user, inside disposable namespaces.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const isRoot = process.geteuid?.() === 0;
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

const made = new Set<string>();
// The safety net: whatever a test file made with tmp() goes when its worker process exits, also
// when a test failed before its teardown ran.
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/**
 * A fresh folder under the system tmp dir. With `t`, it is removed when the test ends
 * (t.teardown); without, when the test file's worker exits. Nothing is left in /tmp either way.
 */
type Teardown = { teardown(fn: () => void): void };
export function tmp(prefixOrT: string | Teardown = 'nsprobe-test-', t?: Teardown): string {
  const prefix = typeof prefixOrT === 'string' ? prefixOrT : 'nsprobe-test-';
  if (typeof prefixOrT !== 'string') t = prefixOrT;
  const d = mkdtempSync(join(tmpdir(), prefix));
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
