// Helpers shared by every report writer: ordering, escaping, value formatting, host facts.
// Keep format-specific logic out of here; keep shared logic out of the writers.

import { MODES, NS_TYPES } from '../model.js';
import type { Gate, HostFacts, Mode, ProbeResult, ProbeStatus, Report } from '../model.js';

export const STATUSES: readonly ProbeStatus[] = ['pass', 'fail', 'unsupported', 'error'];

// ---------------------------------------------------------------- ordering

/** Splits `<probe>/<mode>`; the mode is undefined when the id does not end in a known mode. */
export function splitProbeId(id: string): { probe: string; mode: Mode | undefined } {
  const slash = id.lastIndexOf('/');
  const probe = slash < 0 ? id : id.slice(0, slash);
  const tail = slash < 0 ? '' : id.slice(slash + 1);
  const mode = (MODES as readonly string[]).includes(tail) ? (tail as Mode) : undefined;
  return { probe, mode };
}

function probeRank(probe: string): number {
  const i = (NS_TYPES as readonly string[]).indexOf(probe);
  return i < 0 ? NS_TYPES.length : i;
}

function modeRank(mode: Mode | undefined): number {
  return mode === undefined ? MODES.length : MODES.indexOf(mode);
}

/** The eight base namespace probes first (uts..time), then other probes alphabetically. */
export function compareProbeNames(a: string, b: string): number {
  return probeRank(a) - probeRank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Probe order, then privileged before rootless. */
export function compareProbeIds(a: string, b: string): number {
  const x = splitProbeId(a);
  const y = splitProbeId(b);
  return compareProbeNames(x.probe, y.probe) || modeRank(x.mode) - modeRank(y.mode) || (a < b ? -1 : a > b ? 1 : 0);
}

export function sortedProbes(probes: readonly ProbeResult[]): ProbeResult[] {
  return [...probes].sort((a, b) => compareProbeIds(a.id, b.id));
}

/** Union of ids in stable probe order, without duplicates. */
export function orderProbeIds(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort(compareProbeIds);
}

export interface GridRow {
  probe: string;
  namespace: string;
  cells: Partial<Record<Mode, ProbeResult>>;
}

/** Rows = probes (in probe order), columns = modes; the table every human-readable writer shows. */
export function probeGrid(r: Report): GridRow[] {
  const rows = new Map<string, GridRow>();
  for (const p of sortedProbes(r.probes)) {
    let row = rows.get(p.probe);
    if (!row) {
      row = { probe: p.probe, namespace: p.namespace, cells: {} };
      rows.set(p.probe, row);
    }
    row.cells[p.mode] = p;
  }
  return [...rows.values()];
}

export function nonPassProbes(r: Report): ProbeResult[] {
  return sortedProbes(r.probes).filter((p) => p.status !== 'pass');
}

export function problemGates(gates: readonly Gate[]): Gate[] {
  return gates.filter((g) => g.status !== 'ok');
}

/** The probe's own cause, else the first failed assertion, so every non-pass has something to say. */
export function causeOf(p: ProbeResult): string | undefined {
  if (p.cause) return p.cause;
  const failed = p.assertions.find((a) => a.status === 'fail');
  if (failed) return `assertion failed: ${failed.name}`;
  return undefined;
}

// ---------------------------------------------------------------- values

/** JSON text for any value (bigint as string, undefined as null); never throws. */
export function toJson(value: unknown, indent?: number): string {
  try {
    const s = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
    return s ?? 'null';
  } catch {
    return JSON.stringify(String(value));
  }
}

/** A value for a person: strings as they are, everything else as JSON. */
export function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : toJson(value);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatErrno(p: ProbeResult): string | undefined {
  if (p.errno === undefined && p.code === undefined) return undefined;
  if (p.code && p.errno !== undefined) return `${p.code} (${p.errno})`;
  return p.code ?? String(p.errno);
}

/** Collapses whitespace runs (including newlines) to single spaces. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

// ---------------------------------------------------------------- escaping

// Characters XML 1.0 does not allow at all (not even as references): C0 controls except
// tab/LF/CR, lone surrogates, U+FFFE/U+FFFF.
const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Replaces characters XML 1.0 cannot carry by a visible `\xNN` / `\uNNNN` marker. */
export function stripXmlIllegal(s: string): string {
  return s.replace(XML_ILLEGAL, (c) => {
    const code = c.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Escapes text content for XML and HTML. */
export function escapeXml(s: string): string {
  return stripXmlIllegal(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value (double-quoted); keeps tabs and newlines through attribute normalisation. */
export function escapeXmlAttr(s: string): string {
  return escapeXml(s)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

// ---------------------------------------------------------------- host facts

function yesNo(b: boolean | null | undefined): string | undefined {
  return b === undefined || b === null ? undefined : b ? 'yes' : 'no';
}

function containerFact(h: HostFacts): string | undefined {
  if (!h.container) return undefined;
  if (!h.container.detected) return 'no';
  const evidence = h.container.evidence.length ? ` (${h.container.evidence.join(', ')})` : '';
  return `${h.container.kind ?? 'yes'}${evidence}`;
}

function seccompFact(h: HostFacts): string | undefined {
  const s = h.seccomp;
  if (!s) return undefined;
  const names: Record<number, string> = { 0: 'disabled', 1: 'strict', 2: 'filter' };
  const mode = s.mode === null ? 'unknown' : `${s.mode} (${names[s.mode] ?? '?'})`;
  const parts = [`mode ${mode}`];
  if (s.filters !== null) parts.push(`${s.filters} filter${s.filters === 1 ? '' : 's'}`);
  if (s.noNewPrivs !== null) parts.push(`no_new_privs ${s.noNewPrivs ? 'on' : 'off'}`);
  return parts.join(', ');
}

export function distroLabel(h: HostFacts): string {
  return h.distro.name || `${h.distro.id} ${h.distro.versionId}`.trim();
}

/** The host facts a person reads first, as label/value pairs; absent facts are left out. */
export function hostFactRows(h: HostFacts): Array<[string, string]> {
  const rows: Array<[string, string | undefined]> = [
    ['Hostname', h.hostname],
    ['Distro', `${distroLabel(h)} (${h.distro.id} ${h.distro.versionId})`],
    ['Kernel', `${h.kernel.release} ${h.kernel.version}`.trim()],
    ['Arch', h.arch],
    ['euid', h.egid === undefined ? String(h.euid) : `${h.euid} (egid ${h.egid})`],
    ['Privileged', yesNo(h.privileged)],
    ['Container', containerFact(h)],
    ['Seccomp', seccompFact(h)],
    ['LSMs', h.lsms === undefined ? undefined : h.lsms === null ? 'unknown' : h.lsms.join(', ') || 'none'],
    ['cgroup', h.cgroupVersion],
    ['User namespace level', h.userNsLevel === undefined || h.userNsLevel === null ? undefined : String(h.userNsLevel)],
    ['Root mount shared', yesNo(h.rootMountShared)],
    ['Node', h.nodeVersion],
  ];
  return rows.filter((row): row is [string, string] => row[1] !== undefined && row[1] !== '');
}

export function summaryLine(r: Report): string {
  const s = r.summary;
  const n = s.pass + s.fail + s.unsupported + s.error;
  return `${n} probe${n === 1 ? '' : 's'}: ${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.error} error in ${formatDuration(r.durationMs)}`;
}
