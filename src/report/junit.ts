// JUnit XML in the shape the Jenkins schema (junit-jenkins.xsd) accepts and the common reporters
// read (Jenkins, GitLab, GitHub test-report actions): one <testsuite> per host, named by the host;
// one <testcase> per probe/mode with a class name of its own (nsprobe.<host>.<probe>.<mode>), its
// time, and a failure or error whose `type` is the gate that explains it. A consumer verdict is a
// test case too (nsprobe.<host>.consumer.<id>). Note that schema's <skipped> is a plain string
// element: it takes text, not a message attribute. Names and class names are stable from run to
// run (probe ids, host names), so dashboards can track history; the run's values (expected,
// actual, notes) go into the messages, and the checks a probe could not make into its system-out.

import type { AssertionResult, ProbeResult, Report } from '../model.js';
import { scrubText } from '../text.js';
import { causeOf, escapeXml as xmlText, escapeXmlAttr as xmlAttr, formatErrno, formatValue, sortedProbes, toJson } from './common.js';

// Report text shown in a CI dashboard: control characters (ESC, bidi overrides, U+2028) visible, then XML-escaped.
// Most values (ids, names, numbers, host labels) hold nothing either step changes: passed as they are
// (a matrix of 10,000 hosts has millions of them).
const PLAIN = /^[A-Za-z0-9 _.,:;/()+=@#%-]*$/;
const escapeXml = (s: string): string => (PLAIN.test(s) ? s : xmlText(scrubText(s)));
const escapeXmlAttr = (s: string): string => (PLAIN.test(s) ? s : xmlAttr(scrubText(s)));
import type { Matrix, MatrixCell, MatrixHost } from './matrix.js';
import { consumerCases } from './consumers.js';

// ---------------------------------------------------------------- XML model

type Outcome =
  | { kind: 'pass' }
  | { kind: 'skipped'; message: string }
  | { kind: 'failure' | 'error'; message: string; type: string; body: string };

interface TestCase {
  classname: string;
  name: string;
  seconds?: number;
  status: string;
  outcome: Outcome;
  /** Lines for <system-out> (checks skipped), when any. */
  out?: string;
}

interface TestSuite {
  name: string;
  hostname?: string;
  timestamp?: string;
  properties: Array<[string, string]>;
  cases: TestCase[];
}

function attrs(pairs: Array<[string, string | number | undefined]>): string {
  let s = '';
  for (const [k, v] of pairs) if (v !== undefined) s += ` ${k}="${escapeXmlAttr(String(v))}"`;
  return s;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function outcomeXml(o: Outcome): string[] {
  switch (o.kind) {
    case 'pass':
      return [];
    case 'skipped':
      return [`<skipped>${escapeXml(o.message)}</skipped>`];
    case 'failure':
    case 'error':
      return [`<${o.kind}${attrs([['message', o.message], ['type', o.type]])}>${escapeXml(o.body)}</${o.kind}>`];
  }
}

// The document is made as one list of lines, each pushed with its indent (`ind`) when it is made:
// a matrix of 10,000 hosts has some 400,000 of them, which nested lists, indented again at each
// level, copied two and three times.

function caseXml(c: TestCase, ind: string, out: string[]): void {
  const open = `${ind}<testcase${attrs([
    ['classname', c.classname],
    ['name', c.name],
    ['time', c.seconds === undefined ? undefined : c.seconds.toFixed(3)],
    ['status', c.status],
  ])}`;
  const inner = outcomeXml(c.outcome);
  if (c.out) inner.push(`<system-out>${escapeXml(c.out)}</system-out>`);
  if (inner.length === 0) {
    out.push(`${open}/>`);
    return;
  }
  out.push(`${open}>`);
  for (const l of inner) out.push(`${ind}  ${l}`);
  out.push(`${ind}</testcase>`);
}

/** Counts and the summed time of some cases (summed in their order). */
interface Totals {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  seconds: number;
}

function newTotals(): Totals {
  return { tests: 0, failures: 0, errors: 0, skipped: 0, seconds: 0 };
}

function addCase(t: Totals, kind: Outcome['kind'], secs: number | undefined): void {
  t.tests++;
  if (kind === 'failure') t.failures++;
  else if (kind === 'error') t.errors++;
  else if (kind === 'skipped') t.skipped++;
  t.seconds += secs ?? 0;
}

function suiteXml(s: TestSuite, ind: string, out: string[]): void {
  const t = newTotals();
  for (const c of s.cases) addCase(t, c.outcome.kind, c.seconds);
  out.push(
    `${ind}<testsuite${attrs([
      ['name', s.name],
      ['tests', t.tests],
      ['failures', t.failures],
      ['errors', t.errors],
      ['skipped', t.skipped],
      ['time', t.seconds.toFixed(3)],
      ['timestamp', s.timestamp],
      ['hostname', s.hostname],
    ])}>`,
  );
  // The schema requires at least one <property> inside <properties>.
  if (s.properties.length) {
    out.push(`${ind}  <properties>`);
    for (const [k, v] of s.properties) out.push(`${ind}    <property${attrs([['name', k], ['value', v]])}/>`);
    out.push(`${ind}  </properties>`);
  }
  const inner = `${ind}  `;
  for (const c of s.cases) caseXml(c, inner, out);
  out.push(`${ind}</testsuite>`);
}

/**
 * The whole document (also the merged matrix): the totals over every case, then each suite as
 * `suites` hands it over (the matrix makes a host's suite only when it is written, so they are
 * not all held at once).
 */
function documentXml(name: string, t: Totals, suites: (emit: (s: TestSuite) => void) => void): string {
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs([
      ['name', name],
      ['tests', t.tests],
      ['failures', t.failures],
      ['errors', t.errors],
      ['time', t.seconds.toFixed(3)],
    ])}>`,
  ];
  suites((s) => suiteXml(s, '  ', out));
  out.push('</testsuites>', '');
  return out.join('\n');
}

/** documentXml() of suites already made. */
function suitesXml(name: string, suites: TestSuite[]): string {
  const t = newTotals();
  for (const s of suites) for (const c of s.cases) addCase(t, c.outcome.kind, c.seconds);
  return documentXml(name, t, (emit) => suites.forEach((s) => emit(s)));
}

// ---------------------------------------------------------------- properties

/** Flattens nested facts to dotted names; arrays of scalars become comma-separated lists. */
function flatten(value: unknown, prefix: string, out: Array<[string, string]>): void {
  if (value === undefined) return;
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) {
    out.push([prefix, value.map(String).join(',')]);
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value === null || typeof value !== 'object' ? String(value) : toJson(value)]);
  }
}

function reportProperties(r: Report): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  flatten(r.host, '', out);
  out.push(['nsprobe.version', r.tool.version], ['nsprobe.schemaVersion', String(r.schemaVersion)], ['startedAt', r.startedAt]);
  for (const g of r.gates) out.push([`gate.${g.id}`, g.status]);
  (r.notes ?? []).forEach((note, i) => out.push([`note.${i + 1}`, note]));
  return out;
}

// ---------------------------------------------------------------- single report

function errorBody(fields: Array<[string, string | undefined]>): string {
  return fields
    .filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '')
    .map(([k, v]) => (v.includes('\n') ? `${k}:\n${v.replace(/^/gm, '  ')}` : `${k}: ${v}`))
    .join('\n');
}

function probeErrorOutcome(p: { cause?: string; remedy?: string; gate?: string | null }, extra: Array<[string, string | undefined]>, type: string): Outcome {
  const message = p.cause ?? 'error';
  const body = errorBody([...extra, ['cause', p.cause], ['gate', p.gate ?? undefined], ['remedy', p.remedy]]);
  return { kind: 'error', message, type, body };
}

function assertionLines(a: AssertionResult): string {
  const fields = errorBody([
    ['expected', formatValue(a.expected)],
    ['actual', formatValue(a.actual)],
    ['side', a.side],
    ['note', a.note],
  ]);
  return `${a.id}: ${a.name}\n${fields.replace(/^/gm, '  ')}`;
}

/** The checks a probe could not make here, one line each, for <system-out>. */
function skippedLines(p: ProbeResult): string | undefined {
  const lines = p.assertions
    .filter((a) => a.status === 'skipped')
    .map((a) => `skipped ${a.id}: ${a.reason ?? 'could not be checked here'}${a.gate ? ` (gate ${a.gate})` : ''}`);
  return lines.length ? lines.join('\n') : undefined;
}

/** `nsprobe.<host>`: a dotted-name-safe class name prefix for a host name or label. */
export function hostClassname(name: string): string {
  return `nsprobe.${name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || 'host'}`;
}

/** One test case per probe/mode: the failed checks in a failure typed by its gate, an error typed by its gate (else its errno). */
function probeCase(p: ProbeResult, host: string): TestCase {
  const base = { classname: `${host}.${p.probe}.${p.mode}`, name: p.id, seconds: p.durationMs / 1000, status: p.status, out: skippedLines(p) };
  switch (p.status) {
    case 'pass':
      return { ...base, outcome: { kind: 'pass' } };
    case 'unsupported':
      return { ...base, outcome: { kind: 'skipped', message: `${causeOf(p) ?? 'unsupported'}${p.gate ? ` (gate ${p.gate})` : ''}` } };
    case 'error': {
      const extra: Array<[string, string | undefined]> = [['stage', p.stage], ['syscall', p.syscall], ['errno', formatErrno(p)]];
      return { ...base, outcome: probeErrorOutcome(p, extra, p.gate ?? p.code ?? p.stage ?? 'error') };
    }
    case 'fail': {
      const failed = p.assertions.filter((a) => a.status === 'fail');
      const message = causeOf(p) ?? 'probe failed';
      const body = [...(p.cause ? [`cause: ${p.cause}`] : []), ...failed.map(assertionLines), ...(p.remedy ? [`remedy: ${p.remedy}`] : [])].join('\n') || message;
      return { ...base, outcome: { kind: 'failure', message, type: p.gate ?? (failed.length ? 'assertion' : 'probe'), body } };
    }
  }
}

/** The host's suite name: `<hostname> (<distro id> <versionId>, <kernel release>)`, as in the matrix. */
function hostSuiteName(r: Report): string {
  const h = r.host;
  return `${h.hostname} (${h.distro.id} ${h.distro.versionId}, ${h.kernel.release})`;
}

export function renderJunit(r: Report): string {
  const host = hostClassname(r.host.hostname);
  const cases = sortedProbes(r.probes).map((p) => probeCase(p, host));
  cases.push(...consumerCases(r, host));
  const suite: TestSuite = { name: hostSuiteName(r), hostname: r.host.hostname, timestamp: r.startedAt, properties: reportProperties(r), cases };
  return suitesXml('nsprobe', [suite]);
}

// ---------------------------------------------------------------- matrix

function matrixOutcome(cell: MatrixCell | undefined): Outcome {
  if (!cell) return { kind: 'skipped', message: 'not run on this host' };
  switch (cell.status) {
    case 'pass':
      return { kind: 'pass' };
    case 'unsupported':
      return { kind: 'skipped', message: cell.cause ?? 'unsupported' };
    case 'fail': {
      const message = cell.cause ?? 'probe failed';
      return { kind: 'failure', message, type: cell.gate ?? 'probe', body: errorBody([['cause', message], ['gate', cell.gate ?? undefined], ['remedy', cell.remedy]]) };
    }
    case 'error':
      // The gate is the type dashboards group failures by.
      return probeErrorOutcome(cell, [], cell.gate ?? 'error');
  }
}

function matrixHostProperties(h: MatrixHost): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  flatten({ source: h.source, hostname: h.hostname, distro: h.distro, kernel: { release: h.kernel }, arch: h.arch, euid: h.euid }, '', out);
  out.push(['startedAt', h.startedAt]);
  for (const g of h.gates) out.push([`gate.${g.id}`, g.status]);
  return out;
}

/**
 * Class-name prefixes of the matrix's hosts, unique: the host name's (as in its own junit.xml),
 * else, for a host name seen in an earlier row (another run of it), the row label's, numbered if
 * need be.
 */
function matrixClassnames(hosts: readonly MatrixHost[]): string[] {
  const taken = new Set<string>();
  return hosts.map((h) => {
    let name = hostClassname(h.hostname);
    if (taken.has(name)) {
      const base = hostClassname(h.label);
      name = base;
      for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    }
    taken.add(name);
    return name;
  });
}

export function renderMatrixJunit(m: Matrix): string {
  const prefixes = matrixClassnames(m.hosts);
  const columns = m.columns.map((id) => ({ id, suffix: id.replace('/', '.') }));
  const suite = (h: MatrixHost, i: number): TestSuite => ({
    name: h.label,
    hostname: h.hostname,
    timestamp: h.startedAt,
    properties: matrixHostProperties(h),
    cases: columns.map(({ id, suffix }) => {
      const cell = m.cells[h.label]?.[id];
      return { classname: `${prefixes[i]}.${suffix}`, name: id, seconds: (cell?.durationMs ?? 0) / 1000, status: cell?.status ?? 'not-run', outcome: matrixOutcome(cell) };
    }),
  });
  // The totals first (the root element carries them), from the cells, summed in the order
  // suitesXml() would; then each host's suite, made as it is written.
  const t = newTotals();
  for (const h of m.hosts) {
    const row = m.cells[h.label];
    for (const { id } of columns) {
      const cell = row?.[id];
      addCase(t, matrixOutcomeKind(cell), (cell?.durationMs ?? 0) / 1000);
    }
  }
  return documentXml('nsprobe matrix', t, (emit) => m.hosts.forEach((h, i) => emit(suite(h, i))));
}

/** matrixOutcome(cell).kind, without making the outcome. */
function matrixOutcomeKind(cell: MatrixCell | undefined): Outcome['kind'] {
  if (!cell || cell.status === 'unsupported') return 'skipped';
  if (cell.status === 'pass') return 'pass';
  return cell.status === 'fail' ? 'failure' : 'error';
}
