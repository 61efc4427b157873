// What test/kernels.test.ts and test/kernels-noopts.test.ts share: whether ci/kernels.mjs can run
// here, running it in its own process group (a timeout kills QEMU and the controllers with it),
// and the script's own exports (its scenario check, the node check).
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Report } from '../../src/model.js';
import { ROOT } from './run.js';

export const KERNELS_SCRIPT = join(ROOT, 'ci', 'kernels.mjs');

/** Why QEMU cannot run here at all (null: it can). As root `--check` installs missing tools, like the script. */
export function kernelsCannotRun(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `needs x86_64 Linux (this is ${process.platform}/${process.arch})`;
  const r = spawnSync(process.execPath, [KERNELS_SCRIPT, '--check'], { encoding: 'utf8', timeout: 300_000 });
  return r.status === 0 ? null : `ci/kernels.mjs --check: ${(r.stderr || r.stdout).trim().split('\n').pop()}`;
}

/** Runs ci/kernels.mjs; the timer is only a backstop that kills a hung run (its output is in `out`). */
export function runKernels(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KERNELS_SCRIPT, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
}

export type Check = { mismatches: string[]; summary: string };
export type Stage = { stage: string; uptime: number; arg: string };
export type KernelsModule = {
  checkScenario: (sid: string, mode: string, report: Report) => Check;
  NOOPTS_MISSING: string[];
  NODE_CHECK: string;
};

export const kernelsModule = async (): Promise<KernelsModule> => (await import(pathToFileURL(KERNELS_SCRIPT).href)) as KernelsModule;
