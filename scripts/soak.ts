// npm run soak [-- --runs 1000 --parallel 16]: N full suites one after another through the library
// API in this one long-lived process, then M CLI suites at once as separate processes. Checks:
// every suite passes, no sandbox stays open, zero residue at the end, and no growth of this
// process's open fds or RSS after the warm-up (the first 10% of the runs).
//
// Tolerances: fds may not grow at all (median of the last 10% against the 10% after the warm-up;
// a leaked fd per run is 1000 after 1000 runs); RSS is
// measured after a forced GC, as the median of the last 10% of runs against the median of the
// 10% right after the warm-up, and may grow by at most RSS_TOLERANCE_KIB (V8 sizes its heap
// lazily; a leak of 8 KiB per run would show as 8 MiB over 1000 runs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PROBES } from '../probes/index.js';
import type { Mode } from '../src/model.js';
import { native } from '../src/native.js';
import { formatResidue, residueSince, snapshot, type Residue } from '../src/residue.js';
import { runSuite } from '../src/runner.js';
import { intValue, scriptArgs } from '../src/args.js';
import { CLI, fdCount, foreignTo, median, rssKiB, spawnNode } from './harness.js';

export const RSS_TOLERANCE_KIB = 8 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface SoakResult {
  runs: number;
  parallel: number;
  seqMs: number;
  parMs: number;
  failedRuns: string[];
  fd: { start: number; afterWarmup: number; end: number; max: number };
  rss: { startKiB: number; afterWarmupKiB: number; endKiB: number; maxKiB: number };
  parallelExits: (number | null)[];
  residue: Residue[];
  problems: string[];
}

export async function runSoak(opts: { runs: number; parallel: number; log?: (s: string) => void }): Promise<SoakResult> {
  const problems: string[] = [];
  const failedRuns: string[] = [];
  const modes: Mode[] = process.geteuid?.() === 0 ? ['privileged', 'rootless'] : ['rootless'];
  const before = await snapshot();
  const warm = Math.max(1, Math.floor(opts.runs / 10));
  const fds: number[] = [];
  const rss: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < opts.runs; i++) {
    const r = await runSuite({ probes: PROBES, modes });
    if (r.summary.fail || r.summary.error) {
      const bad = r.probes.filter((p) => p.status === 'fail' || p.status === 'error').map((p) => `${p.id}: ${p.cause}`);
      failedRuns.push(`run ${i}: ${bad.join('; ')}`);
    }
    const open = native().openCount();
    if (open) problems.push(`run ${i}: ${open} sandboxes still open`);
    gc();
    fds.push(fdCount());
    rss.push(rssKiB());
    if (opts.log && (i + 1) % Math.max(1, Math.floor(opts.runs / 10)) === 0) {
      opts.log(`${i + 1}/${opts.runs} runs, ${((performance.now() - t0) / (i + 1)).toFixed(0)} ms/run, fds ${fds[i]}, rss ${(rss[i] / 1024).toFixed(1)} MiB, failed runs ${failedRuns.length}`);
    }
  }
  const seqMs = performance.now() - t0;
  const tenth = Math.max(1, Math.floor(opts.runs / 10));
  const fd = { start: fds[0], afterWarmup: median(fds.slice(warm, warm + tenth)), end: median(fds.slice(-tenth)), max: Math.max(...fds.slice(warm)) };
  const rssStats = {
    startKiB: rss[0],
    afterWarmupKiB: median(rss.slice(warm, warm + tenth)),
    endKiB: median(rss.slice(-tenth)),
    maxKiB: Math.max(...rss),
  };
  // A request or close in flight may hold a descriptor for a moment (max), but the typical count
  // (median of the last 10%) may not exceed the one after the warm-up.
  if (fd.end > fd.afterWarmup) problems.push(`open fds grew after the warm-up: ${fd.afterWarmup} -> ${fd.end} (max ${fd.max})`);
  if (opts.runs >= 20 && rssStats.endKiB - rssStats.afterWarmupKiB > RSS_TOLERANCE_KIB) {
    problems.push(`RSS grew by ${rssStats.endKiB - rssStats.afterWarmupKiB} KiB after the warm-up (tolerance ${RSS_TOLERANCE_KIB} KiB)`);
  }

  const t1 = performance.now();
  const dirs = Array.from({ length: opts.parallel }, () => mkdtempSync(join(tmpdir(), 'nsprobe-soak-')));
  const spawned = dirs.map((d) => spawnNode([CLI, '--out', d]));
  const exits = await Promise.all(spawned.map((p) => p.done));
  const parMs = performance.now() - t1;
  exits.forEach((e, i) => {
    if (e.code !== 0) problems.push(`parallel CLI ${i} exited ${e.code ?? e.signal}: ${e.stderr.slice(-300)}${e.stdout.slice(-600)}`);
  });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  opts.log?.(`${opts.parallel} parallel CLI suites in ${(parMs / 1000).toFixed(1)} s`);

  const ours = [process.pid, ...spawned.map((p) => p.child.pid ?? -1)];
  const { residue } = await residueSince(before, { ignore: foreignTo(ours), settleMs: 3000 });
  return { runs: opts.runs, parallel: opts.parallel, seqMs, parMs, failedRuns, fd, rss: rssStats, parallelExits: exits.map((e) => e.code), residue, problems };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { runs, parallel } = scriptArgs('soak', 'npm run soak -- [--runs N] [--parallel N]', { runs: { type: 'string', value: 'a number' }, parallel: { type: 'string', value: 'a number' } }, (v) => ({
    runs: intValue('--runs', v.runs, 1000, 1, 1000000),
    parallel: intValue('--parallel', v.parallel, 16, 1, 1024),
  }));
  const r = await runSoak({ runs, parallel, log: (l) => console.log(l) });
  const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  console.log(`\n${runs} consecutive suites in ${(r.seqMs / 1000).toFixed(1)} s (${(r.seqMs / runs).toFixed(1)} ms each); ${r.failedRuns.length} with a failed or errored probe`);
  console.log(`open fds: start ${r.fd.start}, after warm-up ${r.fd.afterWarmup}, max after warm-up ${r.fd.max}, end ${r.fd.end}`);
  console.log(`RSS after GC: start ${mib(r.rss.startKiB)}, after warm-up ${mib(r.rss.afterWarmupKiB)}, last 10% ${mib(r.rss.endKiB)}, max ${mib(r.rss.maxKiB)} (tolerance +${mib(RSS_TOLERANCE_KIB)})`);
  console.log(`${parallel} parallel CLI suites in ${(r.parMs / 1000).toFixed(1)} s, exit codes ${[...new Set(r.parallelExits)].join(',')}`);
  console.log(r.residue.length ? `RESIDUE:\n${formatResidue(r.residue)}` : 'residue: none');
  for (const f of r.failedRuns.slice(0, 10)) console.log(`failed: ${f}`);
  for (const p of r.problems) console.log(`PROBLEM: ${p}`);
  process.exitCode = r.residue.length || r.problems.length || r.failedRuns.length ? 1 : 0;
}
