// The cross-host matrix `nsprobe merge` builds from several report.json files.

import { MODES } from '../model.js';
import type { Gate, Mode, ProbeStatus, Report, Summary } from '../model.js';
import { causeOf, compareProbeNames, orderProbeIds, problemGates } from './common.js';

export const MATRIX_SCHEMA_VERSION = 1;

export interface MatrixCell {
  status: ProbeStatus;
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
  const cell: MatrixCell = { status: p.status };
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

/** Drops inputs whose report is identical to an earlier input's (the same run given twice). */
export function dedupeInputs(inputs: readonly MatrixInput[]): { unique: MatrixInput[]; duplicates: Matrix['duplicates'] } {
  const seen = new Map<string, string>();
  const unique: MatrixInput[] = [];
  const duplicates: Matrix['duplicates'] = [];
  for (const input of inputs) {
    const key = JSON.stringify(input.report);
    const first = seen.get(key);
    if (first !== undefined) duplicates.push({ source: input.source, sameAs: first });
    else {
      seen.set(key, input.source);
      unique.push(input);
    }
  }
  return { unique, duplicates };
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
  const { unique: inputs, duplicates } = dedupeInputs(all);
  const labels = uniqueLabels(inputs.map((i) => hostLabel(i.report)));
  const allProbes = new Set(inputs.flatMap((i) => i.report.probes.map((p) => p.probe)));
  const hosts = inputs.map((input, i) => hostOf(input, labels[i], allProbes));
  const cells: Matrix['cells'] = {};
  inputs.forEach((input, i) => {
    const row: Record<string, MatrixCell> = {};
    for (const p of input.report.probes) row[p.id] = cellOf(p);
    cells[labels[i]] = row;
  });
  const columns = orderProbeIds(inputs.flatMap((i) => i.report.probes.map((p) => p.id)));
  return { schemaVersion: MATRIX_SCHEMA_VERSION, generatedAt: now.toISOString(), hosts, columns, cells, duplicates };
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
export function matrixFootnotes(m: Matrix): { notes: Footnote[]; noteFor: (label: string, id: string) => Footnote | undefined } {
  const byKey = new Map<string, Footnote>();
  const byCell = new Map<string, Footnote>();
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
      byCell.set(JSON.stringify([host.label, id]), note);
    }
  }
  return { notes: [...byKey.values()], noteFor: (label, id) => byCell.get(JSON.stringify([label, id])) };
}
