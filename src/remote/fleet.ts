// Many hosts in one run: `--ssh h1,h2`, `--hosts FILE`, `--jobs N`. Each host is probed by a child
// nsprobe of its own (`nsprobe --ssh HOST --out OUT/HOST ...`, the same flags otherwise), at most N
// at a time, so one host that hangs, crashes or is refused never stops the others; each child
// writes its host's report folder (a host not reached gets a report saying why, see unreached.ts);
// then the folders are merged once into OUT/matrix.* (src/merge.ts).
//
// Stopping: SIGINT/SIGTERM/SIGHUP/SIGQUIT to this process is passed to every running child (each
// removes what it made on its target and its unfinished folder), no new host starts, and no matrix
// is written. If this process is killed outright, each child sees its stdin (a pipe from here)
// close and stops the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MATRIX_FILES, runMerge } from '../merge.js';
import type { Report } from '../model.js';
import { scrubLine } from '../text.js';
import type { Target } from './targets.js';

export interface FleetOptions {
  targets: Target[];
  jobs: number;
  out: string;
  /** The person's arguments without --ssh, --hosts, --jobs, --out and --json (each child gets them). */
  childArgs: string[];
  /** The nsprobe entry to run as the child (process.argv[1]). */
  entry: string;
  signal: AbortSignal;
  say: (s: string) => void;
}

export interface HostOutcome {
  target: Target;
  dir: string;
  exit: number | null;
  /** "14 pass, 2 unsupported" or "host unreachable: ssh: ..." */
  line: string;
  reached: boolean;
}

/** Exit code when some host could not be probed at all (unreachable, refused, no agent for its arch). */
export const EXIT_NOT_PROBED = 4;

function outcomeOf(t: Target, dir: string, exit: number | null, stderr: string): HostOutcome {
  let r: Report | null = null;
  try {
    r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  } catch {
    // no report: the child said why on stderr
  }
  if (r && exit === EXIT_NOT_PROBED) {
    const note = (r.notes ?? []).find((n) => n.includes('was not probed')) ?? 'not probed';
    return { target: t, dir, exit, reached: false, line: scrubLine(note.replace(/^.*? was not probed: /, '')) };
  }
  if (r) {
    const s = r.summary;
    const parts = (['pass', 'fail', 'unsupported', 'error'] as const).filter((k) => s[k]).map((k) => `${s[k]} ${k}`);
    return { target: t, dir, exit, reached: true, line: parts.join(', ') || 'no probe ran' };
  }
  const last = stderr.trim().split('\n').filter(Boolean).at(-1) ?? `exit ${exit}`;
  return { target: t, dir, exit, reached: false, line: scrubLine(last) };
}

/** Runs every target, at most `jobs` at a time; resolves with one outcome per target, in order. */
export async function runFleet(o: FleetOptions): Promise<{ outcomes: HostOutcome[]; stopped: boolean }> {
  const outcomes: HostOutcome[] = new Array(o.targets.length);
  const running = new Set<ChildProcess>();
  let next = 0;
  const forward = () => {
    for (const c of running) c.kill('SIGTERM');
  };
  o.signal.addEventListener('abort', forward, { once: true });
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const t = o.targets[i];
      const dir = join(o.out, t.slug);
      const argv = [...process.execArgv, o.entry, ...o.childArgs, '--ssh', t.spec, '--out', dir];
      const child = spawn(process.execPath, argv, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, NSPROBE_FLEET_CHILD: '1', NO_COLOR: '1' } });
      running.add(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-8192)));
      child.stdin!.on('error', () => undefined);
      child.on('error', (e) => (err += `cannot start nsprobe: ${e.message}\n`));
      child.on('close', (code, sig) => {
        running.delete(child);
        const exit = code ?? (sig ? 128 : null);
        outcomes[i] = outcomeOf(t, dir, exit, err);
        o.say(`nsprobe: ${t.spec}: ${outcomes[i].line}\n`);
        resolve();
      });
    });
  const worker = async () => {
    while (next < o.targets.length && !o.signal.aborted) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, o.targets.length) }, worker));
  o.signal.removeEventListener('abort', forward);
  return { outcomes, stopped: o.signal.aborted };
}

/** Merges the host folders that hold a report into OUT/matrix.*; returns merge's exit code. */
export async function mergeFleet(out: string, outcomes: readonly HostOutcome[], say: (s: string) => void): Promise<number> {
  const dirs = outcomes.filter((x) => existsSync(join(x.dir, 'report.json'))).map((x) => x.dir);
  if (!dirs.length) {
    say('nsprobe: no host report to merge\n');
    return 1;
  }
  let text = '';
  const code = await runMerge([...dirs, '--out', out], { stdout: { write: (s: string) => (text += s) }, stderr: { write: (s: string) => say(s) } });
  if (code === 0) say(`nsprobe: matrix of ${dirs.length} host(s): ${MATRIX_FILES.map((f) => join(out, f)).join(', ')}\n`);
  return code;
}

/** The table printed at the end: one line per host. */
export function renderOutcomes(outcomes: readonly HostOutcome[]): string {
  const w = Math.max(...outcomes.map((x) => x.target.spec.length), 4);
  return `${outcomes.map((x) => `${x.target.spec.padEnd(w)}  ${(x.reached ? 'probed' : 'NOT PROBED').padEnd(10)}  ${x.line}`).join('\n')}\n`;
}

