// npm run bench (second part): `nsprobe merge` at fleet size. Writes synthetic fleets
// (scripts/fleet-gen.ts, seed 1) of 1,000 and 10,000 host reports into a temporary folder, merges
// each in a child process, and records wall time, peak RSS, the growth from the smaller to the
// larger fleet and the grouped summary. Results: reports/bench-merge.json and a table. The
// temporary folder is removed afterwards, also on Ctrl-C.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram, scriptArgs, UsageError } from '../src/args.js';
import { lastMergeWorkers, runMerge } from '../src/merge.js';
import { packageRoot } from '../src/paths.js';
import { groupLine, type Matrix } from '../src/report/matrix.js';
import { writeFileAtomic } from '../src/report/write.js';
import { writeFleet } from './fleet-gen.js';

const USAGE = 'npm run bench:merge -- [--hosts 1000,10000] [--seed 1] [--json]';

interface MergeRun {
  hosts: number;
  wallMs: number;
  /** CPU time of the merge process, all its threads (user + system). */
  cpuMs: number;
  peakRssMB: number;
  workers: number;
  /** /proc/loadavg before the merge: the machine is shared, so wall time says little without it. */
  loadBefore: string;
  groups: string[];
}

/** The child: merge DIR into OUT, then print the peak RSS (kB) of this process. */
async function child(dir: string, out: string): Promise<number> {
  const quiet = { write: () => true };
  const code = await runMerge([dir, '--out', out], { stdout: quiet, stderr: process.stderr });
  const u = process.resourceUsage();
  process.stdout.write(`${JSON.stringify({ code, maxRssKB: u.maxRSS, cpuMs: Math.round((u.userCPUTime + u.systemCPUTime) / 1000), workers: lastMergeWorkers() })}\n`);
  return code;
}

async function main(): Promise<number> {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4]);
  const a = scriptArgs('bench-merge', USAGE, { hosts: { type: 'string', value: 'sizes' }, seed: { type: 'string', value: 'a number' }, json: { type: 'boolean' } }, (v) => {
    const sizes = (v.hosts ?? '1000,10000').split(',').map((s) => {
      if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100000) throw new UsageError(`--hosts takes sizes from 1 to 100000, comma-separated, not '${s}'`);
      return Number(s);
    });
    if (v.seed !== undefined && !/^\d+$/.test(v.seed)) throw new UsageError(`--seed takes a whole number, not '${v.seed}'`);
    return { sizes, seed: Number(v.seed ?? 1), json: !!v.json };
  });
  const log = (s: string) => {
    if (!a.json) process.stdout.write(s);
  };
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-bench-merge-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const runs: MergeRun[] = [];
  try {
    for (const n of a.sizes) {
      const dir = join(work, `fleet-${n}`);
      const out = join(work, `matrix-${n}`);
      log(`writing ${n} synthetic host reports (seed ${a.seed}) ...\n`);
      mkdirSync(dir); // ours, under a fresh mkdtemp: one mkdir
      writeFleet(dir, n, a.seed);
      const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
      const t0 = performance.now();
      const res = spawnSync(process.execPath, [process.argv[1], '--child', dir, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const wallMs = performance.now() - t0;
      if (res.status !== 0) throw new Error(`merge of ${n} reports exited ${res.status}`);
      const { maxRssKB, cpuMs, workers } = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { maxRssKB: number; cpuMs: number; workers: number };
      const m = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as Matrix;
      runs.push({ hosts: n, wallMs: Math.round(wallMs), cpuMs, peakRssMB: Math.round(maxRssKB / 1024), workers, loadBefore, groups: m.groups.map(groupLine) });
      log(`merge ${String(n).padStart(6)} reports: ${(wallMs / 1000).toFixed(2)} s wall, ${(cpuMs / 1000).toFixed(2)} s CPU (${workers} worker threads), ${Math.round(maxRssKB / 1024)} MB peak RSS; load average before ${loadBefore}\n`);
      rmSync(dir, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  } finally {
    cleanup();
  }
  const growth = runs.length >= 2 ? runs.at(-1)!.wallMs / runs[0].wallMs : null;
  if (growth !== null) log(`growth ${runs[0].hosts} -> ${runs.at(-1)!.hosts}: ${growth.toFixed(1)}x (linear would be ${(runs.at(-1)!.hosts / runs[0].hosts).toFixed(0)}x)\n`);
  if (runs.length) log(`groups of the ${runs.at(-1)!.hosts}-host fleet:\n${runs.at(-1)!.groups.map((g) => `  ${g}\n`).join('')}`);
  const result = { generatedAt: new Date().toISOString(), cpus: cpus().length, load: readFileSync('/proc/loadavg', 'utf8').trim(), seed: a.seed, runs, growth };
  const file = join(packageRoot(), 'reports', 'bench-merge.json');
  await writeFileAtomic(file, `${JSON.stringify(result, null, 2)}\n`);
  if (a.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  log(`written: ${file}\n`);
  return 0;
}

runProgram('bench-merge', main, 1);
