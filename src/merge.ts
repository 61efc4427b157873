// `nsprobe merge DIR_OR_FILES... --out DIR`: combine report.json files from several hosts
// into one matrix (json, md, html, JUnit). Every input is validated before anything is written.

import { existsSync, rmdirSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseCommand, UsageError, type FlagSpecs } from './args.js';
import type { Report } from './model.js';
import { jsonLayout, oneLine } from './report/common.js';
import { renderMatrixHtml } from './report/html.js';
import { renderMatrixJunit } from './report/junit.js';
import { renderMatrixMarkdown } from './report/markdown.js';
import { duplicateWarnings, MatrixBuilder, matrixRow, type MatrixRow } from './report/matrix.js';
import { parseReport } from './report/validate.js';
import { checkOutputDir, OutputError, writeFilesAtomic } from './report/write.js';
import { readCapped } from './host/hostfs.js';
import { packageRoot } from './paths.js';
import { scrubLine } from './text.js';

export interface MergeIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export const MERGE_USAGE = 'usage: nsprobe merge DIR_OR_REPORT_JSON... --out DIR';

export const MATRIX_FILES = ['matrix.json', 'matrix.md', 'matrix.html', 'matrix-junit.xml'] as const;

const REPORT_NAME = 'report.json';

/** An input problem: reported as `nsprobe merge: <path>: <reason>`. */
class InputError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

type Args = { ok: true; inputs: string[]; out: string; help: boolean } | { ok: false; error: string };

const MERGE_FLAGS = {
  out: { type: 'string', short: 'o', value: 'a folder' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpecs;

function parse(argv: string[]): Args {
  try {
    const { values, positionals } = parseCommand(MERGE_FLAGS, argv, { positionals: true });
    if (values.help) return { ok: true, inputs: [], out: '', help: true };
    if (!values.out) return { ok: false, error: 'missing --out DIR' };
    if (positionals.length === 0) return { ok: false, error: 'no input directories or report.json files given' };
    return { ok: true, inputs: positionals, out: values.out, help: false };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return { ok: false, error: oneLine(e.message.replace(/ \(see --help\)$/, '')) };
  }
}

/** Largest report.json read (real ones are well under 1 MB). */
export const REPORT_MAX_BYTES = 32 << 20;

function errnoReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const messages: Record<string, string> = { ENOENT: 'no such file or directory', EACCES: 'permission denied', EISDIR: 'is a directory' };
  return code ? `cannot read (${messages[code] ?? code})` : 'cannot read';
}

/**
 * Every file named report.json below `dir`, in sorted order. Links are not followed (a link named
 * report.json is reported by load(), which refuses it); a folder that cannot be read is skipped
 * with a warning.
 */
async function findReports(dir: string, warn: (path: string, why: string) => void): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    warn(dir, `skipped: ${errnoReason(e)}`);
    return [];
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const found: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) found.push(...(await findReports(path, warn)));
    else if (e.name === REPORT_NAME) found.push(path);
  }
  return found;
}

/** Expands the arguments to report paths, without duplicates. */
async function collect(args: string[], warn: (path: string, why: string) => void): Promise<string[]> {
  const paths: string[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    let found: string[];
    try {
      const st = await lstat(arg);
      found = st.isDirectory() ? await findReports(arg, warn) : [arg];
    } catch (e) {
      throw new InputError(arg, errnoReason(e));
    }
    if (found.length === 0) throw new InputError(arg, `no ${REPORT_NAME} found below this directory`);
    for (const path of found) {
      const key = resolve(path);
      if (!seen.has(key)) paths.push(path);
      seen.add(key);
    }
  }
  return paths;
}

/** Reads and validates one report: a regular file, not through a link, never blocking, bounded in size and depth. */
function load(path: string): Report {
  const r = readCapped(path, { follow: false, maxBytes: REPORT_MAX_BYTES });
  if (!r.ok) throw new InputError(path, r.code === 'ENOENT' || r.code === 'EACCES' ? `cannot read (${r.reason})` : `cannot read: ${r.reason}`);
  // Not expanded: a row needs neither the ids nor the expected values v2 leaves out.
  const v = parseReport(r.data.toString('utf8'), { expand: false });
  if (!v.ok) throw new InputError(path, v.error);
  return v.report;
}

/** One input read in a worker: its row, or why it cannot be merged. */
type Loaded = { ok: true; row: MatrixRow } | { ok: false; path: string; reason: string };

function loadRow(source: string): Loaded {
  try {
    return { ok: true, row: matrixRow({ source, report: load(source) }) };
  } catch (e) {
    if (e instanceof InputError) return { ok: false, path: e.path, reason: e.message };
    throw e;
  }
}

const WORKER_TAG = 'nsprobe-merge-worker';
/** Inputs a worker is given at a time (two batches in flight per worker). */
const BATCH = 32;
/** Below this many inputs the workers' start (each loads this module) costs more than it saves. */
export const MIN_PARALLEL = 200;

// A merge worker: this same module started by readRows(); it reads, parses and validates the
// reports it is sent and answers with their rows only, so the reports never cross threads.
if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG) {
  parentPort!.on('message', (msg: { batch: number; paths: string[] }) => {
    parentPort!.postMessage({ batch: msg.batch, results: msg.paths.map(loadRow) });
  });
}

/**
 * The module a worker starts: this one. Run from source (the tests, through tsx, whose loader
 * worker threads do not get), tsc's copy of it in dist/src, when there is one; none otherwise.
 */
function workerModule(): URL | undefined {
  const self = new URL(import.meta.url);
  if (!self.pathname.endsWith('.ts')) return self;
  const compiled = join(packageRoot(), 'dist', 'src', 'merge.js');
  return existsSync(compiled) ? pathToFileURL(compiled) : undefined;
}

let workersUsed = 0;
/** How many worker threads the last merge of this process started (for the tests). */
export function lastMergeWorkers(): number {
  return workersUsed;
}

/** How many worker threads: one per CPU this process may use, at most 8; none for a few inputs. */
function workerCount(inputs: number): number {
  const env = process.env.NSPROBE_MERGE_WORKERS;
  const cpus = env !== undefined && /^\d+$/.test(env) ? Number(env) : availableParallelism();
  return inputs < MIN_PARALLEL ? 0 : Math.max(0, Math.min(cpus, 8, Math.ceil(inputs / BATCH)));
}

/**
 * Every input's row, in input order, read by worker threads (the parse and the schema check
 * are most of a merge's time). Stops at the first input that cannot be merged (by input order).
 */
async function readRows(paths: readonly string[], onRow: (row: MatrixRow) => void): Promise<void> {
  const module = workerModule();
  const n = module ? workerCount(paths.length) : 0;
  workersUsed = n;
  const serial = (from: number) => {
    for (const p of paths.slice(from)) {
      const r = loadRow(p);
      if (!r.ok) throw new InputError(r.path, r.reason);
      onRow(r.row);
    }
  };
  if (n === 0 || !module) return serial(0);
  let passed = 0; // rows handed to onRow
  try {
    await readRowsInWorkers(paths, n, module, (row) => {
      passed++;
      onRow(row);
    });
  } catch (e) {
    // No thread to be had (a low RLIMIT_NPROC, a container's pids limit): the rest in this one.
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!/^ERR_WORKER_|^EAGAIN$/.test(code)) throw e;
    workersUsed = 0;
    serial(passed);
  }
}

async function readRowsInWorkers(paths: readonly string[], n: number, module: URL, onRow: (row: MatrixRow) => void): Promise<void> {
  const batches = Math.ceil(paths.length / BATCH);
  const done = new Map<number, Loaded[]>();
  let next = 0; // next batch to hand out
  let emit = 0; // next batch to pass on, in order
  let failed: InputError | undefined;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const give = (w: Worker) => {
        if (failed || next >= batches) return;
        const b = next++;
        w.postMessage({ batch: b, paths: paths.slice(b * BATCH, (b + 1) * BATCH) });
      };
      const drain = () => {
        while (done.has(emit)) {
          for (const r of done.get(emit)!) {
            if (!r.ok) {
              failed = new InputError(r.path, r.reason);
              return resolvePromise();
            }
            onRow(r.row);
          }
          done.delete(emit++);
        }
        if (emit >= batches) resolvePromise();
      };
      for (let i = 0; i < n; i++) {
        const w = new Worker(module, { workerData: { tag: WORKER_TAG } });
        workers.push(w);
        w.on('message', (msg: { batch: number; results: Loaded[] }) => {
          done.set(msg.batch, msg.results);
          give(w);
          drain();
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (emit < batches && !failed) reject(new Error(`merge worker exited (${code})`));
        });
        give(w);
        give(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (failed) throw failed;
}

/** Removes the folders checkOutputDir created (innermost first), where still empty. */
function removeEmpty(created: readonly string[]): void {
  for (const d of [...created].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

export async function runMerge(argv: string[], io: MergeIo = process): Promise<number> {
  const args = parse(argv);
  if (!args.ok) {
    io.stderr.write(`nsprobe merge: ${scrubLine(args.error)}; ${MERGE_USAGE}\n`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(`${MERGE_USAGE}\n`);
    return 0;
  }
  let created: string[];
  try {
    created = checkOutputDir(args.out); // before reading anything: one mkdir per component, no planted link
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    io.stderr.write(`nsprobe merge: ${scrubLine(e.message)}\n`);
    return 2;
  }
  const warn = (path: string, why: string) => io.stderr.write(`nsprobe merge: warning: ${scrubLine(path)}: ${scrubLine(why)}\n`);
  // The builder keeps each report's row, not the report (fleets of 10,000); the reports are read in worker threads.
  const builder = new MatrixBuilder(load);
  let count = 0;
  try {
    const paths = await collect(args.inputs, warn);
    await readRows(paths, (row) => {
      builder.addRow(row, () => load(row.source));
      count++;
    });
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    removeEmpty(created); // nothing is written on bad input, not even the folder
    io.stderr.write(`nsprobe merge: ${scrubLine(e.path)}: ${scrubLine(e.message)}\n`);
    return 2;
  }
  const m = builder.finish();
  for (const w of duplicateWarnings(m)) io.stderr.write(`nsprobe merge: warning: ${scrubLine(w)}\n`);
  // Each file made when it is written, so only one of them is in memory at a time (tens of MB each at 10,000 hosts).
  // matrix.json: indented down to each host, cell and group, each of those on one line.
  const data: Record<(typeof MATRIX_FILES)[number], () => string> = {
    'matrix.json': () => `${jsonLayout(m, 3)}\n`,
    'matrix.md': () => renderMatrixMarkdown(m),
    'matrix.html': () => renderMatrixHtml(m),
    'matrix-junit.xml': () => renderMatrixJunit(m),
  };
  try {
    const written = await writeFilesAtomic(args.out, MATRIX_FILES.map((name) => ({ name, data: data[name] })));
    io.stdout.write(`merged ${count} report(s) from ${m.hosts.length} host run(s):\n${written.map((p) => `  ${scrubLine(p)}\n`).join('')}`);
    return 0;
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    io.stderr.write(`nsprobe merge: ${scrubLine(e.message)}\n`);
    return 2;
  }
}
