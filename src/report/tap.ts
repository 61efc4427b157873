// TAP version 13, one test point per probe with a YAML diagnostic block (modelled on
// opencontainers/runtime-tools validation output). A probe's assertions are a subtest before its
// test point, one line each by stable id, so a skipped check reads `ok n - <id> # SKIP <reason>`.

import type { AssertionResult, ProbeResult, Report } from '../model.js';
import { distroLabel, safeLine, sortedProbes, toJson } from './common.js';
import { consumerTapLines } from './consumers.js';

// YAML only allows printable characters; JSON.stringify escapes C0 controls and lone
// surrogates but leaves DEL, C1 controls, the line/paragraph separators and the BOM raw.
const YAML_UNPRINTABLE = /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g;

/**
 * A YAML flow scalar for any value: JSON text is valid YAML 1.2 flow, and a double-quoted
 * string can never be mistaken for a number, a boolean or a YAML indicator.
 */
export function yamlValue(value: unknown): string {
  return yamlPrintable(toJson(value));
}

/** YAML_UNPRINTABLE characters as `\uXXXX`: in JSON text they only occur inside strings, where that escape means the same. */
function yamlPrintable(json: string): string {
  return json.replace(YAML_UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Words of printable ASCII other than `#` and `\`, single spaces between: what tapText leaves as it is.
const TAP_PLAIN = /^[!-"$-[\]-~]+(?: [!-"$-[\]-~]+)*$/;

/** TAP descriptions and directives are single lines where `#` and `\` must be escaped. */
export function tapText(s: string): string {
  if (TAP_PLAIN.test(s)) return s; // most ids: nothing to collapse, scrub or escape
  return safeLine(s).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

/** A comment is one line: a `\r`, U+2028 or escape sequence in a hostname must not start another. */
function comment(text: string): string[] {
  return [`# ${safeLine(text)}`.trimEnd()];
}

// The YAML block of a probe is built as one string (it is most of report.tap: ~470 assertions of
// 5 to 9 lines each in a full run), each line with its final indentation, instead of arrays of
// lines indented again at each level.
const A = '    '; // an assertion's list item, in the block of its probe's test point
function assertionYaml(a: AssertionResult): string {
  let s = `${A}- id: ${toJson(a.id)}\n${A}  name: ${toJson(a.name)}\n${A}  status: ${toJson(a.status)}`;
  s += `\n${A}  expected: ${toJson(a.expected)}\n${A}  actual: ${toJson(a.actual)}`;
  if (a.side !== undefined) s += `\n${A}  side: ${toJson(a.side)}`;
  if (a.note !== undefined) s += `\n${A}  note: ${toJson(a.note)}`;
  if (a.reason !== undefined) s += `\n${A}  reason: ${toJson(a.reason)}`;
  if (a.gate !== undefined) s += `\n${A}  gate: ${toJson(a.gate)}`;
  return s;
}

const OPTIONAL = ['errno', 'code', 'stage', 'syscall', 'cause', 'remedy', 'gate', 'metrics'] as const;

/** The test point's YAML block, its lines joined (one element of the report's lines). */
function probeYaml(p: ProbeResult): string {
  let s = `  ---\n  durationMs: ${toJson(p.durationMs)}\n  status: ${toJson(p.status)}`;
  for (const key of OPTIONAL) if (p[key] !== undefined) s += `\n  ${key}: ${toJson(p[key])}`;
  if (p.assertions.length === 0) s += '\n  assertions: []';
  else {
    s += '\n  assertions:';
    for (const a of p.assertions) s += `\n${assertionYaml(a)}`;
  }
  // One pass for the whole block instead of one per value: its keys and layout are plain ASCII.
  return yamlPrintable(`${s}\n  ...`);
}

/** The assertions as a subtest (indented four spaces), so each check has its own line and directive. */
function subtest(p: ProbeResult): string[] {
  if (p.assertions.length === 0) return [];
  const points = p.assertions.map((a, i) => {
    const name = tapText(a.id);
    if (a.status === 'skipped') {
      const reason = a.gate ? `${a.reason ?? 'skipped'} (${a.gate})` : (a.reason ?? 'skipped');
      return `ok ${i + 1} - ${name} # SKIP ${tapText(reason)}`;
    }
    return `${a.status === 'pass' ? 'ok' : 'not ok'} ${i + 1} - ${name}`;
  });
  return [`# Subtest: ${tapText(p.id)}`, ...[`1..${p.assertions.length}`, ...points].map((l) => `    ${l}`)];
}

function testPoint(p: ProbeResult, n: number): string {
  const name = tapText(p.id);
  switch (p.status) {
    case 'pass':
      return `ok ${n} - ${name}`;
    case 'unsupported':
      return `ok ${n} - ${name} # SKIP ${tapText(p.cause ?? 'unsupported')}`;
    case 'fail':
    case 'error':
      return `not ok ${n} - ${name}`;
  }
}

function header(r: Report): string[] {
  const h = r.host;
  return [
    ...comment(`nsprobe ${r.tool.version} on ${h.hostname}: ${distroLabel(h)}, kernel ${h.kernel.release}, ${h.arch}, euid ${h.euid}`),
    ...comment(`started ${r.startedAt}`),
    ...(r.notes ?? []).flatMap((note) => comment(`note: ${note}`)),
  ];
}

// A probe's subtest and YAML block depend on the probe result alone: the CLI has them made while
// the other probes run (prerenderTap, from src/report/prerender.ts), so that writing the report
// after the last probe only joins them. Keyed by the result object, which is final once the
// runner hands it over (test/report-prerender.test.ts compares with a render of a fresh copy).
const made = new WeakMap<ProbeResult, { subtest: string[]; yaml: string }>();

/** Makes (once) the parts of report.tap that belong to one probe result. */
export function prerenderTap(p: ProbeResult): { subtest: string[]; yaml: string } {
  let m = made.get(p);
  if (!m) made.set(p, (m = { subtest: subtest(p), yaml: probeYaml(p) }));
  return m;
}

export function renderTap(r: Report, prerendered = false): string {
  const probes = sortedProbes(r.probes);
  const plan = probes.length === 0 ? '1..0 # SKIP no probes were run' : `1..${probes.length}`;
  const lines = ['TAP version 13', plan, ...header(r)];
  probes.forEach((p, i) => {
    const m = prerendered ? prerenderTap(p) : { subtest: subtest(p), yaml: probeYaml(p) };
    lines.push(...m.subtest, testPoint(p, i + 1), m.yaml);
  });
  const s = r.summary;
  lines.push(...comment(`pass ${s.pass}, fail ${s.fail}, unsupported ${s.unsupported}, error ${s.error}`));
  lines.push(...consumerTapLines(r));
  return `${lines.join('\n')}\n`;
}
