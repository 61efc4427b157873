// The cross-host matrix `nsprobe merge` builds from several report.json files.

import { MODES } from '../model.js';
import type { Gate, Mode, ProbeStatus, Report, Summary } from '../model.js';
import { causeOf, compareProbeNames, orderProbeIds, problemGates, splitProbeId } from './common.js';

export const MATRIX_SCHEMA_VERSION = 1;

export interface MatrixCell {
  status: ProbeStatus;
  /** How long the probe took on this host (JUnit `time`). */
  durationMs?: number;
  /** Checks of this probe that were skipped (absent when none). */
  skipped?: number;
  cause?: string;
  remedy?: string;
  gate?: string | null;
}

export interface MatrixHost {
  /** `<hostname> (<distro id> <versionId>, <kernel release>)`, with ` #2`... when repeated. */
  label: string;
  hostname: string;
  distro: { id: string; versionId: string; name: string };
  kernel: string;
  arch: string;
  euid: number;
  /** Modes this run tried (a normal user's run tries rootless only). */
  modes: Mode[];
  /**
   * The probes this run was limited to, when it ran fewer than the other runs of the matrix
   * (a `--only` run); absent for a full run. Inferred: the report does not record its arguments.
   */
  only?: string[];
  /** Checks that could not be made here (skipped assertions), over all probes. */
  skippedChecks: number;
  /** Path of the report.json this host came from. */
  source: string;
  startedAt: string;
  summary: Summary;
  /** Gates that are not ok. */
  gates: Gate[];
}

export interface Matrix {
  schemaVersion: typeof MATRIX_SCHEMA_VERSION;
  generatedAt: string;
  hosts: MatrixHost[];
  /** Every probe id seen, base namespaces first, privileged before rootless. */
  columns: string[];
  /** host label -> probe id -> cell; a probe a host did not run has no cell. */
  cells: Record<string, Record<string, MatrixCell>>;
  /** Inputs left out because they are identical to an earlier one (the same run given twice). */
  duplicates: Array<{ source: string; sameAs: string }>;
  /** Hosts with the same verdicts, largest group first: what a fleet looks like before its rows. */
  groups: MatrixGroup[];
}

/** Hosts whose runs gave the same verdicts: the same modes, and the same status and gate in every cell that did not pass. */
export interface MatrixGroup {
  count: number;
  /** "all pass", "rootless: 15 probes unsupported (max_user_namespaces)", ... */
  summary: string;
  modes: Mode[];
  /** The cells that did not pass, shared by every host of the group. */
  verdicts: Array<{ id: string; status: Exclude<ProbeStatus, 'pass'>; gate: string | null }>;
  /** Host labels, in matrix order. */
  hosts: string[];
}

export interface MatrixInput {
  source: string;
  report: Report;
}

export function hostLabel(r: Report): string {
  const h = r.host;
  return `${h.hostname} (${h.distro.id} ${h.distro.versionId}, ${h.kernel.release})`;
}

/** Labels in input order; the second report with the same label gets ` #2`, the third ` #3`. */
export function uniqueLabels(labels: readonly string[]): string[] {
  const seen = new Map<string, number>();
  const taken = new Set(labels);
  return labels.map((label) => {
    const n = (seen.get(label) ?? 0) + 1;
    seen.set(label, n);
    if (n === 1) return label;
    let k = n;
    while (taken.has(`${label} #${k}`)) k++;
    const unique = `${label} #${k}`;
    taken.add(unique);
    return unique;
  });
}

function cellOf(p: Report['probes'][number]): MatrixCell {
  const cell: MatrixCell = { status: p.status, durationMs: p.durationMs };
  const skipped = p.assertions.filter((a) => a.status === 'skipped').length;
  if (skipped) cell.skipped = skipped;
  if (p.status === 'pass') return cell;
  const cause = causeOf(p);
  if (cause !== undefined) cell.cause = cause;
  if (p.remedy) cell.remedy = p.remedy;
  if (p.gate !== undefined) cell.gate = p.gate;
  return cell;
}

function hostOf(input: MatrixInput, label: string, allProbes: ReadonlySet<string>): MatrixHost {
  const { report: r, source } = input;
  const h = r.host;
  const names = new Set(r.probes.map((p) => p.probe));
  const partial = [...allProbes].some((n) => !names.has(n));
  return {
    label,
    hostname: h.hostname,
    distro: { id: h.distro.id, versionId: h.distro.versionId, name: h.distro.name },
    kernel: h.kernel.release,
    arch: h.arch,
    euid: h.euid,
    // A mode whose every probe was refused before trying (stage `needs`, e.g. privileged as a normal user) was not run.
    modes: r.modes
      ? r.modes.filter((m) => m.status === 'run').map((m) => m.mode)
      : MODES.filter((m) => r.probes.some((p) => p.mode === m && p.stage !== 'needs')),
    ...(partial ? { only: [...names].sort(compareProbeNames) } : {}),
    skippedChecks: r.probes.reduce((n, p) => n + p.assertions.filter((a) => a.status === 'skipped').length, 0),
    source,
    startedAt: r.startedAt,
    summary: r.summary,
    gates: problemGates(r.gates),
  };
}

/** Cheap identity of a run: two reports that differ here are different runs. */
export function fingerprint(r: Report): string {
  return JSON.stringify([r.host.hostname, r.startedAt, r.durationMs, r.summary, r.probes.length]);
}

/** Drops inputs whose report is identical to an earlier input's (the same run given twice). */
export function dedupeInputs(inputs: readonly MatrixInput[]): { unique: MatrixInput[]; duplicates: Matrix['duplicates'] } {
  const seen = new Duplicates((source) => inputs.find((i) => i.source === source)!.report);
  const unique: MatrixInput[] = [];
  const duplicates: Matrix['duplicates'] = [];
  for (const input of inputs) {
    const first = seen.check(input.source, fingerprint(input.report), () => input.report);
    if (first !== undefined) duplicates.push({ source: input.source, sameAs: first });
    else unique.push(input);
  }
  return { unique, duplicates };
}

/**
 * Finds a report identical to an earlier one without keeping the earlier reports: only runs
 * with the same host, start, duration and summary are compared whole, the earlier one got back
 * through `recall` (merge reads its file again; that happens for duplicates only), the later one
 * through `report` (called only then).
 */
export class Duplicates {
  private bySig = new Map<string, string[]>();
  constructor(private recall: (source: string) => Report) {}

  /** The source of an earlier identical report, or undefined (and the input is remembered). */
  check(source: string, sig: string, report: () => Report): string | undefined {
    const earlier = this.bySig.get(sig);
    if (earlier) {
      const text = JSON.stringify(report());
      const same = earlier.find((s) => JSON.stringify(this.recall(s)) === text);
      if (same !== undefined) return same;
      earlier.push(source);
    } else this.bySig.set(sig, [source]);
    return undefined;
  }
}

/** The warning `nsprobe merge` prints for each duplicate. */
export function duplicateWarnings(m: Matrix): string[] {
  return m.duplicates.map((d) => `${d.source} is identical to ${d.sameAs}: merged once`);
}

/** Who ran a row: "euid 0, privileged + rootless" or "euid 1000, rootless, --only uts, net". */
export function runDescription(h: MatrixHost): string {
  const parts = [`euid ${h.euid}`, h.modes.length ? h.modes.join(' + ') : 'no modes'];
  if (h.only) parts.push(`--only ${h.only.join(',')}`);
  if (h.skippedChecks) parts.push(`${h.skippedChecks} check${h.skippedChecks === 1 ? '' : 's'} skipped`);
  return parts.join(', ');
}

export function buildMatrix(all: readonly MatrixInput[], now: Date = new Date()): Matrix {
  const b = new MatrixBuilder((source) => all.find((i) => i.source === source)!.report);
  for (const input of all) b.add(input);
  return b.finish(now);
}

/**
 * What the matrix keeps of one report: its row, its cells and its fingerprint. Small (a few
 * hundred bytes per probe), plain data (it crosses from merge's worker threads by structured
 * clone), made as soon as the report is parsed so the report itself can go.
 */
export interface MatrixRow {
  source: string;
  fingerprint: string;
  /** The host's row, `only` not yet set (it depends on the other rows). */
  host: MatrixHost;
  /** Probe names this run has. */
  names: string[];
  cells: Record<string, MatrixCell>;
}

export function matrixRow(input: MatrixInput): MatrixRow {
  const r = input.report;
  const cells: Record<string, MatrixCell> = {};
  const names = new Set<string>();
  for (const p of r.probes) {
    cells[p.id] = cellOf(p);
    names.add(p.probe);
  }
  const { only: _, ...host } = hostOf(input, hostLabel(r), new Set());
  return { source: input.source, fingerprint: fingerprint(r), host, names: [...names], cells };
}

/**
 * Builds the matrix one report (or one row) at a time, keeping only what the matrix shows of
 * each, so a fleet of reports is merged without holding them all.
 */
export class MatrixBuilder {
  private rows: MatrixRow[] = [];
  private duplicates: Matrix['duplicates'] = [];
  private seen: Duplicates;
  private ids = new Set<string>();
  private probeNames = new Set<string>();

  constructor(recall: (source: string) => Report) {
    this.seen = new Duplicates(recall);
  }

  add(input: MatrixInput): void {
    this.addRow(matrixRow(input), () => input.report);
  }

  /** Adds a row made by matrixRow(); `report` gets its whole report back, asked only when its fingerprint is seen twice. */
  addRow(row: MatrixRow, report: () => Report): void {
    const first = this.seen.check(row.source, row.fingerprint, report);
    if (first !== undefined) {
      this.duplicates.push({ source: row.source, sameAs: first });
      return;
    }
    for (const id of Object.keys(row.cells)) this.ids.add(id);
    for (const n of row.names) this.probeNames.add(n);
    this.rows.push(this.shared(row));
  }

  private strings = new Map<string, string>();
  private objects = new Map<string, unknown>();

  private str<T extends string | undefined | null>(v: T): T {
    if (typeof v !== 'string') return v;
    const seen = this.strings.get(v);
    if (seen !== undefined) return seen as T;
    this.strings.set(v, v);
    return v;
  }

  private obj<T>(v: T): T {
    const key = JSON.stringify(v);
    const seen = this.objects.get(key);
    if (seen !== undefined) return seen as T;
    this.objects.set(key, v);
    return v;
  }

  /**
   * The row with its repeated values shared: a row that came from a worker thread is a fresh
   * copy, so the same cause, remedy, distro and not-ok gate of thousands of hosts would each be
   * held thousands of times (10,000 hosts: hundreds of MB).
   */
  private shared(row: MatrixRow): MatrixRow {
    for (const id in row.cells) {
      const c = row.cells[id];
      if (c.status === 'pass') continue;
      if (c.cause !== undefined) c.cause = this.str(c.cause);
      if (c.remedy !== undefined) c.remedy = this.str(c.remedy);
      if (c.gate !== undefined) c.gate = this.str(c.gate);
    }
    const h = row.host;
    h.distro = this.obj(h.distro);
    h.kernel = this.str(h.kernel);
    h.arch = this.str(h.arch);
    h.modes = this.obj(h.modes);
    h.gates = h.gates.map((g) => this.obj(g));
    row.names = this.obj(row.names);
    return row;
  }

  get size(): number {
    return this.rows.length;
  }

  finish(now: Date = new Date()): Matrix {
    const labels = uniqueLabels(this.rows.map((row) => row.host.label));
    const all = [...this.probeNames];
    const cells: Matrix['cells'] = {};
    const hosts = this.rows.map((row, i) => {
      const names = new Set(row.names);
      const partial = all.some((n) => !names.has(n));
      const host: MatrixHost = { ...row.host, label: labels[i], ...(partial ? { only: [...names].sort(compareProbeNames) } : {}) };
      cells[labels[i]] = row.cells;
      return host;
    });
    this.rows = [];
    const columns = orderProbeIds(this.ids);
    return { schemaVersion: MATRIX_SCHEMA_VERSION, generatedAt: now.toISOString(), hosts, columns, cells, duplicates: this.duplicates, groups: groupHosts(hosts, columns, cells) };
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "rootless: user, net unsupported (max_user_namespaces)", per mode, status and gate. */
function groupSummary(modes: readonly Mode[], verdicts: MatrixGroup['verdicts'], only: boolean): string {
  const parts: string[] = [];
  const byKey = new Map<string, { mode: string; status: string; gate: string | null; probes: string[] }>();
  for (const v of verdicts) {
    const { probe, mode } = splitProbeId(v.id);
    const key = JSON.stringify([mode ?? '', v.status, v.gate ?? '']);
    let g = byKey.get(key);
    if (!g) byKey.set(key, (g = { mode: mode ?? 'other', status: v.status, gate: v.gate, probes: [] }));
    g.probes.push(probe);
  }
  // Per mode, privileged first, then by how many probes.
  const sorted = [...byKey.values()].sort((a, b) => MODES.indexOf(a.mode as Mode) - MODES.indexOf(b.mode as Mode) || b.probes.length - a.probes.length);
  // One "mode: ..." per mode: "privileged: 6 probes unsupported, cgroup, time unsupported (kernel_version)".
  for (const g of sorted) {
    const what = g.probes.length <= 3 ? g.probes.join(', ') : plural(g.probes.length, 'probe');
    const item = `${what} ${g.status}${g.gate ? ` (${g.gate})` : ''}`;
    const last = parts.at(-1);
    if (last !== undefined && last.startsWith(`${g.mode}: `)) parts[parts.length - 1] = `${last}, ${item}`;
    else parts.push(`${g.mode}: ${item}`);
  }
  const runs = MODES.filter((m) => !modes.includes(m));
  const prefix = [...(runs.length ? [`${runs.join(' + ')} not run`] : []), ...(only ? ['some probes only'] : [])];
  return [...prefix, parts.length ? parts.join('; ') : 'all pass'].join(', ');
}

/** Hosts grouped by their verdicts, largest group first (then by summary). */
export function groupHosts(hosts: readonly MatrixHost[], columns: readonly string[], cells: Matrix['cells']): MatrixGroup[] {
  const groups = new Map<string, MatrixGroup>();
  for (const h of hosts) {
    const row = cells[h.label] ?? {};
    const verdicts: MatrixGroup['verdicts'] = [];
    for (const id of columns) {
      const c = row[id];
      if (c && c.status !== 'pass') verdicts.push({ id, status: c.status, gate: c.gate ?? null });
    }
    const key = JSON.stringify([h.modes, h.only ?? null, verdicts]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { count: 0, summary: groupSummary(h.modes, verdicts, !!h.only), modes: h.modes, verdicts, hosts: [] }));
    g.count++;
    g.hosts.push(h.label);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || (a.summary < b.summary ? -1 : a.summary > b.summary ? 1 : 0));
}

/** "3,112 hosts: all pass" */
export function groupLine(g: MatrixGroup): string {
  return `${g.count.toLocaleString('en-US')} host${g.count === 1 ? '' : 's'}: ${g.summary}`;
}

export interface Footnote {
  n: number;
  status: ProbeStatus;
  cause: string;
  remedy?: string;
  gate?: string | null;
  /** The cells that share this note, grouped by host (in matrix order). */
  where: Array<{ host: string; ids: string[] }>;
}

/**
 * One numbered note per distinct (status, cause, remedy, gate) among the non-pass cells, so a
 * cause that hits many hosts is explained once. Returns the notes and a lookup per cell.
 */
export function matrixFootnotes(m: Matrix): MatrixFootnotes {
  // md and html both ask: made once per matrix (a fleet's has hundreds of thousands of cells).
  let f = footnotesOf.get(m);
  if (!f) footnotesOf.set(m, (f = makeFootnotes(m)));
  return f;
}

type MatrixFootnotes = { notes: Footnote[]; noteFor: (label: string, id: string) => Footnote | undefined };
const footnotesOf = new WeakMap<Matrix, MatrixFootnotes>();

function makeFootnotes(m: Matrix): MatrixFootnotes {
  const byKey = new Map<string, Footnote>();
  const byCell = new Map<string, Map<string, Footnote>>();
  for (const host of m.hosts) {
    for (const id of m.columns) {
      const cell = m.cells[host.label]?.[id];
      if (!cell || cell.status === 'pass') continue;
      const cause = cell.cause ?? cell.status;
      const key = JSON.stringify([cell.status, cause, cell.remedy ?? '', cell.gate ?? '']);
      let note = byKey.get(key);
      if (!note) {
        note = { n: byKey.size + 1, status: cell.status, cause, remedy: cell.remedy, gate: cell.gate, where: [] };
        byKey.set(key, note);
      }
      const last = note.where.at(-1);
      if (last?.host === host.label) last.ids.push(id);
      else note.where.push({ host: host.label, ids: [id] });
      let row = byCell.get(host.label);
      if (!row) byCell.set(host.label, (row = new Map()));
      row.set(id, note);
    }
  }
  return { notes: [...byKey.values()], noteFor: (label, id) => byCell.get(label)?.get(id) };
}
