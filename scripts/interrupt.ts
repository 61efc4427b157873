// npm run interrupt [-- --points 50 --seed N]: starts the CLI and sends SIGINT or SIGTERM after
// a seeded random delay spread over 0..(median run time), so that signals land while Node starts,
// while sandboxes are entered, during requests and while reports are written. Each point must
// end within 1 s of the signal with 130 (SIGINT) or 143 (SIGTERM), or 0/1 when the run had
// finished, leave zero residue, and leave the complete set of valid reports or none.
// The tests (test/signals.test.ts) also send SIGHUP (129) and SIGQUIT (131), a second signal 2 ms
// after the first (it hurries the exit but everything is still cleaned up), and signals to a run
// whose stderr is a closed pipe.
//
// A signal that arrives before the CLI has installed its handler (Node still loading modules)
// ends the process by the signal's default action: no child exists yet, and a shell reports that
// as 130 / 143 too, so it is accepted as such and counted separately.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_FORMATS, REPORT_FILES } from '../src/report/write.js';
import { validateReport } from '../src/report/validate.js';
import { formatResidue, residueSince, snapshot, type Residue } from '../src/residue.js';
import { intValue, scriptArgs } from '../src/args.js';
import { CLI, foreignTo, median, prng, spawnNode } from './harness.js';

export type Outcome = 'before-handler' | 'stopped' | 'stopped-after-reports' | 'finished';

export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGQUIT';
export const STOP_CODES: Record<StopSignal, number> = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 };

/** How a point is run: CLI arguments besides --out, a second signal, a closed stderr. */
export interface PointOptions {
  args?: string[];
  /** Send the same signal again this many ms after the first. */
  secondAfterMs?: number;
  /** Close our end of the CLI's stderr pipe at once (its writes then fail with EPIPE). */
  closeStderr?: boolean;
  /** Run the CLI through this command (e.g. setpriv to another user; it must exec). */
  prefix?: string[];
  /**
   * Count the delay from the moment the CLI has its first child (a sandbox: the probes are
   * running, so every handler is in place), not from the spawn: on a loaded machine most of a
   * short run is Node starting, and signals there test only the default action. (Node itself
   * catches SIGINT and SIGTERM from its start, so SigCgt cannot tell when the CLI's handlers are.)
   */
  fromFirstSandbox?: boolean;
}

/** Whether process `pid` has a child (any of its threads: sandboxes are cloned from the pool). */
export function hasChild(pid: number): boolean {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        if (readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()) return true;
      } catch {
        // the thread ended
      }
    }
  } catch {
    // gone
  }
  return false;
}

/** A report folder for one run (writable by anyone when the run is another user's). */
function outDir(opts: PointOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-int-'));
  if (opts.prefix?.length) chmodSync(dir, 0o777);
  return dir;
}

export interface Point {
  i: number;
  signal: StopSignal;
  delayMs: number;
  /** Signal to exit, ms (null when the run had ended before the signal was sent). */
  exitMs: number | null;
  code: number | null;
  exitSignal: string | null;
  reports: 'all' | 'none';
  outcome: Outcome;
  residue: Residue[];
  problems: string[];
}

const EXPECTED = DEFAULT_FORMATS.map((f) => REPORT_FILES[f]).sort();

/** Either every report, complete and valid, or no file at all. Returns problems. */
export function checkOutDir(dir: string): { reports: 'all' | 'none'; problems: string[] } {
  const names = readdirSync(dir).sort();
  if (names.length === 0) return { reports: 'none', problems: [] };
  const problems: string[] = [];
  if (JSON.stringify(names) !== JSON.stringify(EXPECTED)) problems.push(`out dir holds ${names.join(', ')}, not exactly ${EXPECTED.join(', ')}`);
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  try {
    const v = validateReport(JSON.parse(read('report.json')));
    if (!v.ok) problems.push(`report.json does not validate: ${v.error}`);
  } catch (e) {
    problems.push(`report.json does not parse: ${(e as Error).message}`);
  }
  const tap = read('report.tap');
  if (!/^TAP version 13\n/.test(tap) || !/^1\.\.\d+$/m.test(tap)) problems.push('report.tap is not complete TAP 13');
  if (!read('junit.xml').trimEnd().endsWith('</testsuites>')) problems.push('junit.xml is truncated');
  if (!read('report.html').trimEnd().endsWith('</html>')) problems.push('report.html is truncated');
  if (!read('report.md').trim()) problems.push('report.md is empty');
  return { reports: problems.length ? 'none' : 'all', problems };
}

/** Wall time of complete CLI runs (spawn to exit), ms. */
export async function measureRuns(n: number, args: readonly string[] = [], opts: PointOptions = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const dir = outDir(opts);
    const t = performance.now();
    const { done } = spawnNode([CLI, ...args, '--out', dir], { prefix: opts.prefix });
    const e = await done;
    out.push(e.at - t);
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export async function interruptOnce(i: number, signal: StopSignal, delayMs: number, opts: PointOptions = {}): Promise<Point> {
  const dir = outDir(opts);
  try {
    const before = await snapshot({ exclude: [dir] });
    const { child, done } = spawnNode([CLI, ...(opts.args ?? []), '--out', dir], { prefix: opts.prefix });
    if (opts.closeStderr) child.stderr!.destroy();
    let second: NodeJS.Timeout | undefined;
    let sentAt: number | null = null;
    let exited = false;
    let hung = false;
    let watchdog: NodeJS.Timeout | undefined;
    let timer: NodeJS.Timeout | undefined;
    const fire = () => {
      if (exited) return;
      sentAt = performance.now();
      child.kill(signal);
      if (opts.secondAfterMs !== undefined) second = setTimeout(() => exited || child.kill(signal), opts.secondAfterMs);
      // A run that outlives the signal by 5 s is killed and counted as a failure, so that one
      // hang cannot stall the whole series.
      watchdog = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, 5000);
    };
    let poll: NodeJS.Timeout | undefined;
    if (opts.fromFirstSandbox) {
      poll = setInterval(() => {
        if (exited || !hasChild(child.pid ?? -1)) return;
        clearInterval(poll);
        timer = setTimeout(fire, delayMs);
      }, 1);
    } else {
      timer = setTimeout(fire, delayMs);
    }
    const e = await done;
    exited = true;
    clearInterval(poll);
    clearTimeout(timer);
    clearTimeout(watchdog);
    clearTimeout(second);
    const problems: string[] = [];
    if (hung) problems.push('still running 5 s after the signal: killed');
    const want = STOP_CODES[signal];
    const out = checkOutDir(dir);
    problems.push(...out.problems);
    let outcome: Outcome;
    if (e.signal === signal) outcome = out.reports === 'all' ? 'finished' : 'before-handler';
    else if (e.code === want) outcome = out.reports === 'all' ? 'stopped-after-reports' : 'stopped';
    else if (e.code === 0 || e.code === 1) outcome = 'finished';
    else {
      outcome = 'finished';
      problems.push(`exit code ${e.code} signal ${e.signal} (want ${want}, or 0/1 after finishing): ${e.stderr.slice(-500)}`);
    }
    if (outcome === 'finished' && out.reports !== 'all') problems.push('the run finished but wrote no reports');
    if (outcome === 'before-handler' && e.stderr.includes('stopping')) problems.push('the handler ran but the process died by the signal');
    if (/EPIPE|internal error|\n    at /.test(e.stderr)) problems.push(`stderr: ${e.stderr.slice(-300)}`);
    const exitMs = sentAt === null ? null : e.at - sentAt;
    const { residue } = await residueSince(before, { ignore: foreignTo([child.pid ?? -1]), settleMs: 2000 });
    return { i, signal, delayMs, exitMs, code: e.code, exitSignal: e.signal, reports: out.reports, outcome, residue, problems };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Summary {
  seed: number;
  medianRunMs: number;
  points: Point[];
  outcomes: Record<Outcome, number>;
  maxExitMs: number;
  failures: string[];
}

/** `points` interruptions with delays stratified over 0..median run time (one per slice). */
export async function runInterruptions(
  opts: {
    points: number;
    seed: number;
    boundMs?: number;
    log?: (s: string) => void;
    signals?: readonly StopSignal[];
    /** Spread the delays over [startFraction, 1] x median run time (default 0: from the start). */
    startFraction?: number;
    /** With fromFirstSandbox: spread the delays over [0, this] x median run time (default 0.5). */
    spanFraction?: number;
  } & PointOptions,
): Promise<Summary> {
  const rand = prng(opts.seed);
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const medianRunMs = median(await measureRuns(3, opts.args, opts));
  const order = Array.from({ length: opts.points }, (_, k) => k).sort(() => rand() - 0.5);
  const points: Point[] = [];
  const outcomes: Record<Outcome, number> = { 'before-handler': 0, stopped: 0, 'stopped-after-reports': 0, finished: 0 };
  const failures: string[] = [];
  const bound = opts.boundMs ?? 1000;
  for (let i = 0; i < opts.points; i++) {
    const slice = order[i];
    const from = opts.fromFirstSandbox ? 0 : (opts.startFraction ?? 0);
    const to = opts.fromFirstSandbox ? (opts.spanFraction ?? 0.5) : 1;
    const delayMs = Math.round((from + (to - from) * ((slice + rand()) / opts.points)) * medianRunMs);
    const signal = signals[Math.floor(rand() * signals.length)];
    const p = await interruptOnce(i, signal, delayMs, opts);
    points.push(p);
    outcomes[p.outcome]++;
    const bad = [...p.problems];
    if (p.exitMs !== null && p.exitMs > bound) bad.push(`ended ${Math.round(p.exitMs)} ms after the signal (bound ${bound} ms)`);
    if (p.residue.length) bad.push(`residue:\n${formatResidue(p.residue)}`);
    if (bad.length) failures.push(`point ${i} (${signal} at ${delayMs} ms): ${bad.join('; ')}`);
    opts.log?.(`${String(i).padStart(3)} ${signal.padEnd(7)} at ${String(delayMs).padStart(4)} ms -> ${p.outcome.padEnd(21)} code ${p.code ?? p.exitSignal} exit ${p.exitMs === null ? '-' : Math.round(p.exitMs) + ' ms'} reports ${p.reports}${bad.length ? ' FAIL' : ''}`);
  }
  const maxExitMs = Math.max(0, ...points.map((p) => p.exitMs ?? 0));
  return { seed: opts.seed, medianRunMs, points, outcomes, maxExitMs, failures };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { seed, n } = scriptArgs('interrupt', 'npm run interrupt -- [--seed N] [--points N]', { seed: { type: 'string', value: 'a number' }, points: { type: 'string', value: 'a number' } }, (v) => ({
    seed: intValue('--seed', v.seed, Date.now() % 2 ** 31, 0, 2 ** 31 - 1),
    n: intValue('--points', v.points, 50, 1, 100000),
  }));
  const t0 = performance.now();
  const s = await runInterruptions({ points: n, seed, log: (l) => console.log(l) });
  const exits = s.points.map((p) => p.exitMs).filter((x): x is number => x !== null);
  console.log(`\nseed ${seed}; ${n} points in ${((performance.now() - t0) / 1000).toFixed(1)} s; median run ${Math.round(s.medianRunMs)} ms`);
  console.log(`outcomes: ${Object.entries(s.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`signal to exit: median ${Math.round(median(exits))} ms, max ${Math.round(s.maxExitMs)} ms`);
  console.log(s.failures.length ? `FAILURES (${s.failures.length}):\n${s.failures.join('\n')}` : 'all points clean: no residue, reports complete or absent');
  process.exitCode = s.failures.length ? 1 : 0;
}
