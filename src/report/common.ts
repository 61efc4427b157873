// Helpers shared by every report writer: ordering, escaping, value formatting, host facts.
// Keep format-specific logic out of here; keep shared logic out of the writers.

import { MODES, NS_TYPES } from '../model.js';
import type { AssertionResult, Gate, HostFacts, Mode, ProbeResult, ProbeStatus, Report } from '../model.js';
import { scrubLine } from '../text.js';
import { reportDocument } from './v2.js';

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

/**
 * The probes in report order. Each id is split once (compareProbeIds split both ids at every
 * comparison), and while writeReports renders one report's files (sharedLayout) every writer gets
 * the one sorted list of that report: not to be changed by the caller.
 */
export function sortedProbes(probes: readonly ProbeResult[]): ProbeResult[] {
  if (shared !== undefined && shared.probes === probes) return (shared.sorted ??= sortProbes(probes));
  return sortProbes(probes);
}

function sortProbes(probes: readonly ProbeResult[]): ProbeResult[] {
  const keyed = probes.map((p) => {
    const { probe, mode } = splitProbeId(p.id);
    return { p, rank: probeRank(probe), probe, mode: modeRank(mode), id: p.id };
  });
  keyed.sort((x, y) => x.rank - y.rank || (x.probe < y.probe ? -1 : x.probe > y.probe ? 1 : 0) || x.mode - y.mode || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return keyed.map((k) => k.p);
}

// What every writer of one report works out the same way, kept while writeReports renders it.
let shared:
  | {
      report: Report;
      probes: readonly ProbeResult[];
      sorted?: ProbeResult[];
      skipped: WeakMap<ProbeResult, AssertionResult[]>;
      /** The report's probeGrid, causeGroups, skipGroups and headline, each made by the first writer that asks. */
      made: Map<string, unknown>;
    }
  | undefined;

/**
 * What `make` gives for the report being written (`of` is that report or its probe list), made
 * once for all its writers and not to be changed by them; for anything else (another list, or
 * outside sharedLayout) made every time.
 */
function once<T>(of: unknown, what: string, make: () => T): T {
  if (shared === undefined || (of !== shared.report && of !== shared.probes)) return make();
  const key = `${of === shared.report ? 'report' : 'probes'}:${what}`;
  let v = shared.made.get(key) as T | undefined;
  if (v === undefined) shared.made.set(key, (v = make()));
  return v;
}

/**
 * Runs `render` with one sorted probe list and one list of skipped checks per probe for the
 * report `r`, shared by the writers it calls (the report must not change meanwhile: it is
 * rendered synchronously). Outside it every call works them out again.
 */
export function sharedLayout<T>(r: Report, render: () => T): T {
  const outer = shared;
  shared = { report: r, probes: r.probes, skipped: new WeakMap(), made: new Map() };
  try {
    return render();
  } finally {
    shared = outer;
  }
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
  return once(r, 'grid', () => makeGrid(r));
}

function makeGrid(r: Report): GridRow[] {
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

/** The assertions a probe could not check here. */
export function skippedChecks(p: ProbeResult): AssertionResult[] {
  if (shared === undefined) return p.assertions.filter((a) => a.status === 'skipped');
  let list = shared.skipped.get(p);
  if (list === undefined) shared.skipped.set(p, (list = p.assertions.filter((a) => a.status === 'skipped')));
  return list;
}

function reasonWithGate(reason: string, gate: string | null | undefined): string {
  return gate ? `${reason} (${gate})` : reason;
}

/** "2 checks skipped: a fresh /proc cannot be mounted here (proc_fully_visible)", or undefined. */
export function skipNote(p: ProbeResult): string | undefined {
  const skipped = skippedChecks(p);
  if (!skipped.length) return undefined;
  const reasons = [...new Set(skipped.map((a) => reasonWithGate(a.reason ?? 'no reason recorded', a.gate)))];
  return `${skipped.length} check${skipped.length === 1 ? '' : 's'} skipped: ${reasons.join('; ')}`;
}

/** The status as a person reads it: "pass", or "pass, 2 checks skipped: <reason> (<gate>)". */
export function statusPhrase(p: ProbeResult): string {
  const note = skipNote(p);
  return note ? `${p.status}, ${note}` : p.status;
}

/** Whether errno/stage describe a syscall that really failed (stage `needs` means nothing was tried). */
export function attempted(p: ProbeResult): boolean {
  return p.stage !== 'needs';
}

/** Non-pass probes that share status, cause, remedy and gate: shown once, with the probes they cover. */
export interface CauseGroup {
  status: Exclude<ProbeStatus, 'pass'>;
  cause: string;
  remedy?: string;
  gate?: string | null;
  /** Where it failed, when every probe of the group failed at the same stage/syscall/errno. */
  stage?: string;
  syscall?: string;
  errno?: string;
  probes: ProbeResult[];
}

const GROUP_ORDER: Record<Exclude<ProbeStatus, 'pass'>, number> = { fail: 0, error: 1, unsupported: 2 };

/** Real failures (fail, error) first, then what could not run (unsupported); probe order within. */
export function causeGroups(probes: readonly ProbeResult[]): CauseGroup[] {
  return once(probes, 'causes', () => makeCauseGroups(probes));
}

function makeCauseGroups(probes: readonly ProbeResult[]): CauseGroup[] {
  const groups = new Map<string, CauseGroup>();
  for (const p of sortedProbes(probes)) {
    if (p.status === 'pass') continue;
    const cause = causeOf(p) ?? 'no cause recorded';
    const where = attempted(p) ? { stage: p.stage, syscall: p.syscall, errno: formatErrno(p) } : {};
    // Failed assertions are the probe's own; a fail is never merged with another probe's.
    const key = JSON.stringify([p.status, cause, p.remedy ?? '', p.gate ?? '', where, p.status === 'fail' ? p.id : '']);
    const g = groups.get(key);
    if (g) g.probes.push(p);
    else groups.set(key, { status: p.status, cause, remedy: p.remedy, gate: p.gate, ...where, probes: [p] });
  }
  return [...groups.values()].sort((a, b) => GROUP_ORDER[a.status] - GROUP_ORDER[b.status]);
}

/** Skipped checks that share a reason and gate, across probes. */
export interface SkipGroup {
  reason: string;
  gate?: string | null;
  checks: Array<{ probe: ProbeResult; assertion: AssertionResult }>;
}

export function skipGroups(probes: readonly ProbeResult[]): SkipGroup[] {
  return once(probes, 'skips', () => makeSkipGroups(probes));
}

function makeSkipGroups(probes: readonly ProbeResult[]): SkipGroup[] {
  const groups = new Map<string, SkipGroup>();
  for (const p of sortedProbes(probes)) {
    for (const a of skippedChecks(p)) {
      const reason = a.reason ?? 'no reason recorded';
      const key = JSON.stringify([reason, a.gate ?? '']);
      const g = groups.get(key) ?? { reason, gate: a.gate, checks: [] };
      g.checks.push({ probe: p, assertion: a });
      groups.set(key, g);
    }
  }
  return [...groups.values()];
}

/**
 * "net/privileged" for one probe; "uts, ipc (privileged, rootless); pid (rootless)" for several;
 * "all 14 probes (privileged)" when they are every probe of that mode in `all`.
 */
export function probeListText(probes: readonly ProbeResult[], all?: readonly ProbeResult[]): string {
  if (probes.length === 1) return probes[0].id;
  const modes = [...new Set(probes.map((p) => p.mode))];
  if (all && probes.length > 2 && modes.length === 1 && all.filter((p) => p.mode === modes[0]).length === probes.length) {
    return `all ${probes.length} probes (${modes[0]})`;
  }
  const modesOf = new Map<string, string[]>();
  for (const p of sortedProbes(probes)) modesOf.set(p.probe, [...new Set([...(modesOf.get(p.probe) ?? []), p.mode])]);
  const byModes = new Map<string, string[]>();
  for (const [probe, modes] of modesOf) byModes.set(modes.join(', '), [...(byModes.get(modes.join(', ')) ?? []), probe]);
  return [...byModes].map(([modes, names]) => `${names.join(', ')} (${modes})`).join('; ');
}

/** What to run first: the first command line of a remedy, else its first line unless that only introduces a list. */
function firstLine(s: string | undefined): string | undefined {
  const lines = (s ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const command = lines.find(isCommandLine);
  if (command) return command.replace(/\s+#.*$/, '');
  return lines[0] && !lines[0].endsWith(':') ? lines[0] : undefined;
}

const VERB: Record<Exclude<ProbeStatus, 'pass'>, [string, string]> = {
  fail: ['fails', 'fail'],
  error: ['errors', 'error'],
  unsupported: ['is unsupported', 'are unsupported'],
};

/** The headline's view of the cause groups: those blamed on one gate merge into one clause. */
function headlineClauses(groups: readonly CauseGroup[], gates: readonly Gate[]): string[] {
  const merged = new Map<string, { g: CauseGroup; names: string[]; gate?: Gate }>();
  for (const g of groups) {
    const gate = g.gate ? gates.find((x) => x.id === g.gate) : undefined;
    const key = gate && g.status === 'unsupported' ? `gate:${gate.id}` : JSON.stringify([g.status, g.cause]);
    const entry = merged.get(key) ?? { g, names: [], gate: key.startsWith('gate:') ? gate : undefined };
    entry.names.push(...g.probes.map((p) => p.probe));
    merged.set(key, entry);
  }
  return [...merged.values()].map(({ g, names: all, gate }) => {
    const names = [...new Set(all)];
    const fix = firstLine(gate?.remedy || g.remedy);
    const fixText = fix && g.status === 'unsupported' ? `; fix: ${truncate(fix, 80)}` : '';
    if (gate?.status === 'blocked') return `${names.join(', ')} blocked by ${gate.id} (${truncate(oneLine(gate.cause || g.cause), 80)}${fixText})`;
    if (gate) return `${names.join(', ')} ${VERB[g.status][names.length === 1 ? 0 : 1]} (${truncate(oneLine(gate.cause || g.cause), 80)}; gate ${gate.id}${fixText})`;
    return `${names.join(', ')} ${VERB[g.status][names.length === 1 ? 0 : 1]} (${truncate(oneLine(g.cause), 80)}${fixText})`;
  });
}

/**
 * One sentence per mode, e.g. "rootless: all 8 namespaces work" or
 * "privileged: not run: needs root (CAP_SYS_ADMIN)"; every writer puts it first.
 */
/** The first clause of a reason ("needs CAP_SYS_ADMIN in its own user namespace, which ... lacks"). */
export function shortReason(reason: string): string {
  return truncate(oneLine(reason).split(/: |; /)[0], 120);
}

/** "privileged" or, when its verdicts apply to a nested user namespace, "privileged (in <scope>)". */
function modeLabel(r: Report, mode: Mode): string {
  // Rootless always makes a user namespace of its own; where privileged verdicts apply is the news.
  const scope = mode === 'privileged' ? r.modes?.find((m) => m.mode === mode)?.scope : undefined;
  return scope && !/\bthe initial user namespace$/.test(scope) ? `${mode} (in ${scope})` : mode;
}

/** Modes the run left out entirely (e.g. privileged without CAP_SYS_ADMIN), with the reason. */
export function skippedModes(r: Report): Array<{ mode: Mode; reason: string }> {
  return (r.modes ?? []).filter((m) => m.status === 'skipped').map((m) => ({ mode: m.mode, reason: m.reason ?? 'not run' }));
}

/** Notes, without the ones that only repeat why a mode was skipped (that is shown with the mode). */
export function otherNotes(r: Report): string[] {
  const skipped = skippedModes(r);
  return (r.notes ?? []).filter((n) => !skipped.some((m) => n === `${m.mode} mode not run: ${m.reason}`));
}

export function headline(r: Report): string[] {
  return once(r, 'headline', () => makeHeadline(r));
}

function makeHeadline(r: Report): string[] {
  return MODES.map((mode) => {
    const label = modeLabel(r, mode);
    const probes = r.probes.filter((p) => p.mode === mode);
    if (probes.length === 0) {
      const run = r.modes?.find((m) => m.mode === mode);
      if (run?.status === 'skipped') return `${label}: not run (${shortReason(run.reason ?? 'skipped')})`;
      if (r.modes && !run) return `${label}: not run (not asked for)`;
      const note = (r.notes ?? []).find((n) => n.includes(mode));
      return `${label}: not run${note ? ` (${truncate(oneLine(note), 120)})` : ''}`;
    }
    const namespaces = [...new Set(sortedProbes(probes).map((p) => p.namespace))];
    const working = namespaces.filter((ns) => probes.every((p) => p.namespace !== ns || p.status === 'pass'));
    const skipped = probes.reduce((n, p) => n + skippedChecks(p).length, 0);
    const reasons = skipGroups(probes).map((g) => reasonWithGate(g.reason, g.gate));
    const more = reasons.length > 2 ? `; and ${reasons.length - 2} more` : '';
    const skippedText = skipped ? `, ${skipped} check${skipped === 1 ? '' : 's'} skipped: ${reasons.slice(0, 2).join('; ')}${more}` : '';
    if (working.length === namespaces.length) {
      const extra = probes.length === namespaces.length ? '' : ` (${probes.length} probes)`;
      const what = namespaces.length === 1 ? `the ${namespaces[0]} namespace works` : `all ${namespaces.length} namespaces work`;
      return `${label}: ${what}${extra}${skippedText}`;
    }
    const groups = causeGroups(probes);
    if (working.length === 0 && groups.length === 1) {
      const g = groups[0];
      const gate = g.gate ? r.gates.find((x) => x.id === g.gate) : undefined;
      const fix = firstLine(g.remedy);
      const fixText = fix ? ` (fix: ${truncate(fix, 90)})` : '';
      if (g.status === 'unsupported' && gate?.status === 'blocked') return `${label}: blocked by ${gate.id}: ${truncate(oneLine(g.cause), 120)}${fixText}`;
      if (g.status === 'unsupported') return `${label}: not run: ${truncate(oneLine(g.cause), 120)}${fixText}`;
    }
    const clauses = headlineClauses(groups, r.gates);
    return `${label}: ${working.length} of ${namespaces.length} namespaces work${skippedText}; ${clauses.join('; ')}`;
  });
}

/** The probe's own cause, else the first failed assertion, so every non-pass has something to say. */
export function causeOf(p: ProbeResult): string | undefined {
  if (p.cause) return p.cause;
  const failed = p.assertions.find((a) => a.status === 'fail');
  if (failed) return `assertion failed: ${failed.name}`;
  return undefined;
}

// ---------------------------------------------------------------- remedies

// First words of lines that are commands to run (as opposed to advice in prose).
const COMMANDS = new Set(
  ('sudo sysctl echo printf cat tee grep ls dmesg journalctl docker podman kubectl lxc mount umount unshare nsenter setpriv bwrap ' +
    'systemd-nspawn apt apt-get dnf yum zypper modprobe setenforce setsebool aa-complain aa-disable apparmor_parser grubby ' +
    'update-grub systemctl nsprobe npm npx node ip chmod chown export ulimit usermod sh bash').split(' '),
);

/** Whether one line of a remedy is a command (or a comment among commands) rather than prose. */
export function isCommandLine(line: string): boolean {
  const t = line.trim();
  if (t.startsWith('#') || t.startsWith('$ ')) return true;
  const first = t.split(/\s+/)[0] ?? '';
  return COMMANDS.has(first) || first.startsWith('/') || first.startsWith('./');
}

/** A remedy split into runs of commands and runs of prose, in order. */
export function remedyParts(remedy: string): Array<{ kind: 'command' | 'prose'; text: string }> {
  const parts: Array<{ kind: 'command' | 'prose'; text: string }> = [];
  for (const line of remedy.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const kind = isCommandLine(line) ? 'command' : 'prose';
    const last = parts.at(-1);
    if (last?.kind === kind) last.text += `\n${line}`;
    else parts.push({ kind, text: line });
  }
  return parts;
}

// ---------------------------------------------------------------- values

/** JSON text for any value (bigint as string, undefined as null); never throws. */
export function toJson(value: unknown, indent?: number): string {
  // Without a replacer first: calling one per key made this the report writers' largest cost. Only
  // a bigint makes JSON.stringify throw, and then the replacer turns it into a string.
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return JSON.stringify(value);
  try {
    const s = JSON.stringify(value, null, indent);
    return s ?? 'null';
  } catch {
    // a bigint somewhere (or a cycle, which the replacer cannot help either)
  }
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
const XML_ILLEGAL_ANY = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Replaces characters XML 1.0 cannot carry by a visible `\xNN` / `\uNNNN` marker. */
export function stripXmlIllegal(s: string): string {
  if (!XML_ILLEGAL_ANY.test(s)) return s;
  return s.replace(XML_ILLEGAL, (c) => {
    const code = c.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Escapes text content for XML and HTML. */
// One pass over the text, each special character to its reference (the markers stripXmlIllegal
// writes contain none of them).
const XML_REFS: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };
const XML_TEXT_SPECIAL = /[&<>]/g;
const XML_ATTR_SPECIAL = /[&<>"'\t\n\r]/g;
const xmlRef = (c: string) => XML_REFS[c]!;

export function escapeXml(s: string): string {
  return stripXmlIllegal(s).replace(XML_TEXT_SPECIAL, xmlRef);
}

/** Escapes an attribute value (double-quoted); keeps tabs and newlines through attribute normalisation. */
export function escapeXmlAttr(s: string): string {
  return stripXmlIllegal(s).replace(XML_ATTR_SPECIAL, xmlRef);
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
  const skipped = r.probes.reduce((k, p) => k + skippedChecks(p).length, 0);
  const checks = skipped ? `, ${skipped} check${skipped === 1 ? '' : 's'} skipped` : '';
  return `${n} probe${n === 1 ? '' : 's'}: ${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.error} error${checks} in ${formatDuration(r.durationMs)}`;
}

/** One line of outside text made harmless for every writer: whitespace collapsed, controls visible. */
export function safeLine(s: string): string {
  return scrubLine(oneLine(s));
}

// ---------------------------------------------------------------- report.json layout

/**
 * report.json as indented JSON down to each assertion, gate evidence and consumer detail, which
 * are one line each (as are lists of plain values): a quarter smaller than indenting everything
 * (a full run has ~470 assertions; a fleet merge reads thousands of reports), one line per check
 * to grep. Written as schemaVersion 2 (src/report/v2.ts: derivable ids and expected values left
 * out); parseReport() gives the same model back.
 */
export function reportJson(r: Report, prerendered = false): string {
  if (!prerendered) return `${jsonLayout(reportDocument(r), 4)}\n`;
  // The document without its probes, then each probe's text (made while the other probes ran,
  // prerenderJson) where the layout of the probes list would be.
  const doc = reportDocument({ ...r, probes: [] });
  const items = r.probes.map((p) => `    ${prerenderJson(p)}`);
  return `${layout(doc, '', 0, 4, (v) => (v === doc.probes && items.length ? `[\n${items.join(',\n')}\n  ]` : undefined)) ?? 'null'}\n`;
}

const jsonMade = new WeakMap<ProbeResult, string>();

/** Makes (once) one probe result's text in report.json: as the layout of the whole report has it. */
export function prerenderJson(p: ProbeResult): string {
  let text = jsonMade.get(p);
  if (text === undefined) jsonMade.set(p, (text = layout(reportDocument({ probes: [p] } as Report).probes[0], '    ', 2, 4) ?? 'null'));
  return text;
}

/** JSON indented by two spaces down to `depth` levels, each value below that on one line (lists of plain values too). */
export function jsonLayout(v: unknown, depth: number): string {
  return layout(v, '', 0, depth) ?? 'null';
}

function layout(v: unknown, indent: string, depth: number, flat: number, given?: (v: unknown) => string | undefined): string | undefined {
  const text = given?.(v);
  if (text !== undefined) return text;
  if (v === null || typeof v !== 'object' || typeof (v as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(v);
  const list = Array.isArray(v);
  if (depth >= flat || (list && v.every((x) => x === null || typeof x !== 'object'))) return JSON.stringify(v);
  const inner = `${indent}  `;
  const parts: string[] = [];
  if (list) for (const x of v) parts.push(`${inner}${layout(x, inner, depth + 1, flat, given) ?? 'null'}`);
  else
    for (const [k, x] of Object.entries(v)) {
      const text = layout(x, inner, depth + 1, flat, given);
      if (text !== undefined) parts.push(`${inner}${JSON.stringify(k)}: ${text}`);
    }
  if (parts.length === 0) return list ? '[]' : '{}';
  return `${list ? '[' : '{'}\n${parts.join(',\n')}\n${indent}${list ? ']' : '}'}`;
}
