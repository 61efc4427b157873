// JUnit XML in the shape the Jenkins schema (junit-jenkins.xsd) accepts.
// Note that schema's <skipped> is a plain string element: it takes text, not a message attribute.
// Test-case names and class names are stable from run to run (probe ids and assertion ids), so CI
// dashboards can track history; the run's values (expected, actual, notes) go into the messages.

import { NS_TYPES } from '../model.js';
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
import { consumerJunitSuite } from './consumers.js';

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
}

interface TestSuite {
  name: string;
  hostname?: string;
  timestamp?: string;
  properties: Array<[string, string]>;
  cases: TestCase[];
}

function attrs(pairs: Array<[string, string | number | undefined]>): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXmlAttr(String(v))}"`)
    .join('');
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

function caseXml(c: TestCase): string[] {
  const open = `<testcase${attrs([
    ['classname', c.classname],
    ['name', c.name],
    ['time', c.seconds === undefined ? undefined : c.seconds.toFixed(3)],
    ['status', c.status],
  ])}`;
  const inner = outcomeXml(c.outcome);
  if (inner.length === 0) return [`${open}/>`];
  return [`${open}>`, ...inner.map((l) => `  ${l}`), '</testcase>'];
}

function count(cases: TestCase[], kind: Outcome['kind']): number {
  return cases.filter((c) => c.outcome.kind === kind).length;
}

function totalSeconds(cases: TestCase[]): number {
  return cases.reduce((sum, c) => sum + (c.seconds ?? 0), 0);
}

function suiteXml(s: TestSuite): string[] {
  const open = `<testsuite${attrs([
    ['name', s.name],
    ['tests', s.cases.length],
    ['failures', count(s.cases, 'failure')],
    ['errors', count(s.cases, 'error')],
    ['skipped', count(s.cases, 'skipped')],
    ['time', totalSeconds(s.cases).toFixed(3)],
    ['timestamp', s.timestamp],
    ['hostname', s.hostname],
  ])}>`;
  // The schema requires at least one <property> inside <properties>.
  const props = s.properties.length
    ? ['<properties>', ...s.properties.map(([k, v]) => `  <property${attrs([['name', k], ['value', v]])}/>`), '</properties>']
    : [];
  return [open, ...[...props, ...s.cases.flatMap(caseXml)].map((l) => `  ${l}`), '</testsuite>'];
}

/** The whole document; also used for the merged matrix. */
function documentXml(name: string, suites: TestSuite[]): string {
  const cases = suites.flatMap((s) => s.cases);
  const open = `<testsuites${attrs([
    ['name', name],
    ['tests', cases.length],
    ['failures', count(cases, 'failure')],
    ['errors', count(cases, 'error')],
    ['time', totalSeconds(cases).toFixed(3)],
  ])}>`;
  const body = suites.flatMap(suiteXml).map((l) => `  ${l}`);
  return ['<?xml version="1.0" encoding="UTF-8"?>', open, ...body, '</testsuites>', ''].join('\n');
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

function assertionOutcome(a: AssertionResult): Outcome {
  if (a.status === 'pass') return { kind: 'pass' };
  if (a.status === 'skipped') {
    const reason = a.reason ?? 'could not be checked here';
    return { kind: 'skipped', message: `${a.name}: ${a.gate ? `${reason} (gate ${a.gate})` : reason}` };
  }
  const body = errorBody([
    ['expected', formatValue(a.expected)],
    ['actual', formatValue(a.actual)],
    ['side', a.side],
    ['note', a.note],
  ]);
  return { kind: 'failure', message: a.name, type: 'assertion', body };
}

/** Unsupported and errored probes are one test case; others one per assertion. */
function probeCases(p: ProbeResult): TestCase[] {
  const classname = `${p.probe}.${p.mode}`;
  const whole = (outcome: Outcome): TestCase => ({ classname, name: p.id, seconds: p.durationMs / 1000, status: p.status, outcome });
  if (p.status === 'unsupported') return [whole({ kind: 'skipped', message: causeOf(p) ?? 'unsupported' })];
  if (p.status === 'error') {
    const extra: Array<[string, string | undefined]> = [['stage', p.stage], ['syscall', p.syscall], ['errno', formatErrno(p)]];
    return [whole(probeErrorOutcome(p, extra, p.code ?? p.stage ?? 'error'))];
  }
  const share = p.durationMs / 1000 / Math.max(1, p.assertions.length);
  const cases = p.assertions.map((a): TestCase => ({ classname, name: a.id, seconds: share, status: a.status, outcome: assertionOutcome(a) }));
  // A failed probe must show as failed even when no assertion says why (or there are none).
  if (p.status === 'fail' && !p.assertions.some((a) => a.status === 'fail')) {
    const message = p.cause ?? 'probe failed';
    cases.push({ classname, name: p.id, seconds: 0, status: 'fail', outcome: { kind: 'failure', message, type: 'probe', body: message } });
  } else if (cases.length === 0) {
    cases.push(whole({ kind: 'pass' }));
  }
  return cases;
}

export function renderJunit(r: Report): string {
  const probes = sortedProbes(r.probes);
  const namespaces = NS_TYPES.filter((ns) => probes.some((p) => p.namespace === ns));
  const properties = reportProperties(r);
  const suites = namespaces.map(
    (ns): TestSuite => ({
      name: ns,
      hostname: r.host.hostname,
      timestamp: r.startedAt,
      properties,
      cases: probes.filter((p) => p.namespace === ns).flatMap(probeCases),
    }),
  );
  suites.push(...consumerJunitSuite(r, properties));
  return documentXml('nsprobe', suites);
}

// ---------------------------------------------------------------- matrix

/** A dotted-name-safe class name for a host label. */
function hostClassname(label: string): string {
  return `nsprobe.${label.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '')}`;
}

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

export function renderMatrixJunit(m: Matrix): string {
  const suites = m.hosts.map(
    (h): TestSuite => ({
      name: h.label,
      hostname: h.hostname,
      timestamp: h.startedAt,
      properties: matrixHostProperties(h),
      cases: m.columns.map((id) => {
        const cell = m.cells[h.label]?.[id];
        return { classname: hostClassname(h.label), name: id, seconds: (cell?.durationMs ?? 0) / 1000, status: cell?.status ?? 'not-run', outcome: matrixOutcome(cell) };
      }),
    }),
  );
  return documentXml('nsprobe matrix', suites);
}
