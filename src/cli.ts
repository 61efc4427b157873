#!/usr/bin/env node
// nsprobe's command line: parse flags, run the suite, write the reports, set the exit code.
// Usage errors are one line on stderr and exit 2, never a stack trace.
import { existsSync, rmdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PROBES } from '../probes/index.js';
import { MODES, type Mode, type Report } from './model.js';
import { renderSummary } from './report/summary.js';
import { checkOutputDir, writeReports, OutputError, type Format } from './report/write.js';
import { scrubLine, scrubText } from './text.js';
import { canRunPrivileged, DEFAULT_TIMEOUT_MS, Interrupted, privilegedSkipReason, runSuite, toolVersion } from './runner.js';
import { collectHostFacts } from './host/facts.js';
import { HOST_FACTS_DEADLINE_MS, realHostContext, withDeadline } from './host/hostfs.js';
import { rootlessPlan } from './sandbox.js';
import { collectDebris, debrisNotes, hurriedCleanup } from './cleanup.js';
import { raiseNofile } from './limits.js';
import { native } from './native.js';

const FORMATS: readonly Format[] = ['tap', 'junit', 'json', 'md', 'html'];

export class UsageError extends Error {}

export interface CliOptions {
  only: string[] | null;
  mode: Mode | 'both' | null;
  out: string;
  formats: Format[];
  json: boolean;
  require: { probe: string; mode: Mode | null }[];
  timeoutMs: number;
  help: boolean;
  version: boolean;
  color: boolean | null;
  checkResidue: boolean;
}

const HELP = `nsprobe: which Linux namespaces work on this host, whether they isolate, and why not

Usage: nsprobe [options]
       nsprobe merge DIR_OR_FILE... --out DIR
       nsprobe bench [--iterations N] [--json]

Options:
  --only LIST        probes to run, comma-separated (${PROBES.map((p) => p.name).join(',')})
  --mode MODE        privileged | rootless | both (default: both; privileged mode needs CAP_SYS_ADMIN
                     in nsprobe's own user namespace and is skipped, with the reason, without it)
  --out DIR          where the reports go (default: reports)
  --format LIST      report formats: ${FORMATS.join(',')} (default: all)
  --json             print report.json on stdout and nothing else there
  --require LIST     probes that must pass, as ns[:mode],... (exit 1 otherwise)
  --timeout MS       per-probe timeout (default ${DEFAULT_TIMEOUT_MS})
  --no-color         plain output (also NO_COLOR=1 or when stdout is not a terminal)
  --check-residue    snapshot the host before and after the run; print what the run left
                     (processes, mounts, IPC objects, devices, cgroups, files), exit 1 if any
  -h, --help         this help
  -V, --version      the version

Exit codes: 0 nothing failed, 1 an assertion failed, a probe errored or a required probe did
not pass or --check-residue found residue, 2 usage error (unknown probe or flag, unwritable
output folder, too few open files allowed), 129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM
(interrupted: everything the run made is removed; a second signal hurries that).

Environment: NSPROBE_COLOCATE=0 lets the scheduler place nsprobe's children (by default a lone
sandbox and the Node thread that talks to it share one CPU; see README, Speed).
`;

function splitList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { only: null, mode: null, out: 'reports', formats: [...FORMATS], json: false, require: [], timeoutMs: DEFAULT_TIMEOUT_MS, help: false, version: false, color: null, checkResidue: false };
  const names = new Set(PROBES.map((p) => p.name));
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i];
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--only': {
        const list = splitList(value());
        const bad = list.filter((n) => !names.has(n));
        if (bad.length) throw new UsageError(`unknown probe ${bad.map((b) => `'${b}'`).join(', ')} (known: ${[...names].join(', ')})`);
        if (!list.length) throw new UsageError('--only needs at least one probe');
        o.only = list;
        break;
      }
      case '--mode': {
        const m = value();
        if (m !== 'both' && !(MODES as readonly string[]).includes(m)) throw new UsageError(`unknown mode '${m}' (privileged, rootless or both)`);
        o.mode = m as CliOptions['mode'];
        break;
      }
      case '--out':
        o.out = value();
        if (!o.out) throw new UsageError('--out needs a folder');
        break;
      case '--format': {
        const list = splitList(value());
        const bad = list.filter((f) => !(FORMATS as readonly string[]).includes(f));
        if (bad.length || !list.length) throw new UsageError(`unknown format '${bad[0] ?? ''}' (known: ${FORMATS.join(', ')})`);
        o.formats = list as Format[];
        break;
      }
      case '--json':
        o.json = true;
        break;
      case '--require':
        for (const item of splitList(value())) {
          const [probe, mode] = item.split(':');
          if (!names.has(probe)) throw new UsageError(`--require names unknown probe '${probe}'`);
          if (mode !== undefined && !(MODES as readonly string[]).includes(mode)) throw new UsageError(`--require names unknown mode '${mode}' in '${item}'`);
          o.require.push({ probe, mode: (mode as Mode) ?? null });
        }
        break;
      case '--timeout': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 100 || n > 600000) throw new UsageError(`--timeout takes milliseconds from 100 to 600000, not '${v}'`);
        o.timeoutMs = n;
        break;
      }
      case '--no-color':
        o.color = false;
        break;
      case '--check-residue':
        o.checkResidue = true;
        break;
      case '--color':
        o.color = true;
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '-V':
      case '--version':
        o.version = true;
        break;
      default:
        throw new UsageError(raw.startsWith('-') ? `unknown flag '${raw}' (see --help)` : `unexpected argument '${raw}' (see --help)`);
    }
  }
  return o;
}

/**
 * `nsprobe bench [--iterations N] [--json]`: what creating each namespace type costs on this
 * host (enter + one request + close through the addon, next to a raw clone()+wait loop). Network
 * namespaces are usually the dearest, and their cost bounds container density.
 */
async function bench(argv: readonly string[]): Promise<number> {
  let iterations = 100;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') json = true;
    else if (argv[i] === '--iterations' && /^\d+$/.test(argv[i + 1] ?? '') && Number(argv[i + 1]) > 0) iterations = Number(argv[++i]);
    else throw new UsageError(`bench: unknown or incomplete argument '${argv[i]}' (bench [--iterations N] [--json])`);
  }
  const { benchNamespaces, renderNsTable } = await import('./bench.js');
  const rows = await benchNamespaces({ iterations, warmup: Math.min(20, iterations), warmupAll: Math.min(1000, 10 * iterations), privileged: process.geteuid?.() === 0 });
  process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : renderNsTable(rows));
  return 0;
}

/** The signals that stop a run, with the exit code each gives (128 + its number, as a shell). */
export const STOP_SIGNALS = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

/** Writes to stderr and never throws (a closed pipe or a hung-up terminal must not end a cleanup). */
function say(s: string): void {
  try {
    if (!process.stderr.listenerCount('error')) process.stderr.on('error', () => undefined);
    process.stderr.write(s);
  } catch {
    // nowhere to say it
  }
}

/** The folders `dir` needs that do not exist yet (deepest first), so an interrupted run can remove them. */
function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    out.push(d);
    if (dirname(d) === d) break;
  }
  return out;
}

/** Removes the folders a run made and never filled (rmdir: only empty ones). */
function removeEmpty(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** The exit code a report earns (1 for failures, errors and unmet --require). */
export function exitCode(report: Report, require: CliOptions['require']): number {
  if (report.summary.fail || report.summary.error) return 1;
  for (const r of require) {
    const hits = report.probes.filter((p) => p.probe === r.probe && (!r.mode || p.mode === r.mode));
    if (!hits.length || hits.some((p) => p.status !== 'pass')) return 1;
  }
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'merge') {
    const { runMerge } = await import('./merge.js');
    return runMerge(argv.slice(1));
  }
  if (argv[0] === 'bench') return bench(argv.slice(1));
  const o = parseArgs(argv);
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (o.version) {
    process.stdout.write(`nsprobe ${toolVersion()}\n`);
    return 0;
  }
  const out = resolve(o.out);
  const nofile = raiseNofile();
  if (nofile) throw new UsageError(nofile);
  const tty = process.stderr.isTTY && !o.json;
  let made: string[] = [];
  const ac = new AbortController();
  let caught: StopSignal | undefined;
  const interrupted = () => STOP_SIGNALS[caught ?? 'SIGINT'];
  // SIGINT, SIGTERM, SIGHUP (terminal closed, ssh dropped) and SIGQUIT all stop the run the same
  // way: kill the sandboxes, let every probe clean up, write no report, remove a report folder
  // this run made. Installed before anything is made. A second signal hurries: no waiting for
  // the probes, but the children are still killed and reaped and this run's cgroups, host
  // queues and temporary files removed (synchronously).
  let writing = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (!caught) {
      caught = sig as StopSignal;
      say(`${tty ? '\r\x1b[K' : '\n'}nsprobe: ${sig}, stopping\n`);
      ac.abort();
    } else if (!writing) {
      // (While the reports are written, a few ms, the second signal waits for them: the folder
      // then holds the whole set, never a part of it.)
      hurriedCleanup(out);
      removeEmpty(made);
      process.exit(interrupted());
    }
  };
  const signals = Object.keys(STOP_SIGNALS) as StopSignal[];
  for (const s of signals) process.on(s, onSignal);
  // What SIGKILLed runs left (cgroups, host queues, temporary report files) goes first, while the
  // host facts are read (before a --check-residue snapshot, which would count it as a change).
  const debris = collectDebris({ outDir: out });
  if (o.checkResidue) await debris;
  const residue = o.checkResidue ? await import('./residue.js') : null;
  const before = residue ? await residue.snapshot({ exclude: [out] }) : null;
  made = missingDirs(out);
  checkOutputDir(out); // before any probe: one mkdir per component, no link another user planted
  const host = realHostContext();
  const facts = collectHostFacts(withDeadline(host, HOST_FACTS_DEADLINE_MS)); // every read is bounded; all of them together too
  const notes: string[] = [];
  // Both modes unless one is asked for; the runner skips privileged mode once, with the reason,
  // when this process lacks CAP_SYS_ADMIN in its user namespace (report.modes).
  const modes: Mode[] = o.mode === 'privileged' ? ['privileged'] : o.mode === 'rootless' ? ['rootless'] : ['privileged', 'rootless'];
  if (!canRunPrivileged(facts) && modes.includes('privileged')) notes.push(`privileged mode not run: ${privilegedSkipReason(facts)}`);
  const nested = rootlessPlan().note;
  if (nested && modes.includes('rootless')) notes.push(nested);
  // Orphaned grandchildren of killed sandboxes come to us and are reaped at exit, not left to init.
  try {
    native().setSubreaper(true);
  } catch {
    // no addon: every probe says so
  }
  const probes = o.only ? PROBES.filter((p) => o.only!.includes(p.name)) : PROBES;
  const color = o.color ?? (tty && !process.env.NO_COLOR);
  notes.push(...debrisNotes(await debris));
  if (caught) {
    removeEmpty(made);
    return interrupted();
  }
  let report: Report;
  try {
    let done = 0;
    const total = probes.length * modes.length;
    report = await runSuite({
      probes,
      modes,
      timeoutMs: o.timeoutMs,
      signal: ac.signal,
      host,
      facts,
      notes,
      onResult: (r) => {
        done++;
        // After a stop the probes that end are not shown (a killed probe is no verdict).
        if (tty && !caught) say(`\r\x1b[K[${done}/${total}] ${r.id} ${r.status}`);
      },
    });
    if (tty && !caught) say('\r\x1b[K');
  } catch (e) {
    if (e instanceof Interrupted) {
      removeEmpty(made);
      return interrupted();
    }
    throw e;
  }
  // The handlers stay while the reports are written: a signal then lets the writing finish (a
  // few ms), so the folder holds every report or none, never a temporary file.
  let files: string[];
  try {
    writing = true;
    files = await writeReports(report, out, o.formats);
  } finally {
    writing = false;
    for (const s of signals) process.off(s, onSignal);
  }
  if (caught) return interrupted();
  if (o.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    process.stdout.write(renderSummary(report, { color }));
    process.stdout.write(`reports: ${scrubLine(files.join(', '))}\n`);
  }
  if (residue && before) {
    const left = (await residue.residueSince(before)).residue;
    process.stderr.write(residue.formatResidue(left) || 'residue: none\n');
    if (left.length) return 1;
  }
  return exitCode(report, o.require);
}

/** Runs the command line and sets the exit code (the nsprobe entry, src/nsprobe.ts, calls it). */
export function runCli(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      if (e instanceof UsageError || e instanceof OutputError) {
        process.stderr.write(`nsprobe: ${scrubLine(e.message)}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`nsprobe: internal error: ${scrubText(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
        process.exitCode = 3;
      }
    },
  );
}

const invoked = process.argv[1] && /(^|\/)cli\.(js|ts)$/.test(process.argv[1]);
if (invoked) runCli(process.argv.slice(2));
