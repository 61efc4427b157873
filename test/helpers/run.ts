// Runs commands for tests: the compiled CLI, as another user, inside disposable namespaces.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const isRoot = process.geteuid?.() === 0;
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

export function tmp(prefix = 'nsprobe-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
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
