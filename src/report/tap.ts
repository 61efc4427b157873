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
  return toJson(value).replace(YAML_UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** TAP descriptions and directives are single lines where `#` and `\` must be escaped. */
function tapText(s: string): string {
  return safeLine(s).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

/** A comment is one line: a `\r`, U+2028 or escape sequence in a hostname must not start another. */
function comment(text: string): string[] {
  return [`# ${safeLine(text)}`.trimEnd()];
}

function assertionYaml(a: AssertionResult): string[] {
  const lines = [`- id: ${yamlValue(a.id)}`, `  name: ${yamlValue(a.name)}`, `  status: ${yamlValue(a.status)}`];
  lines.push(`  expected: ${yamlValue(a.expected)}`, `  actual: ${yamlValue(a.actual)}`);
  if (a.side !== undefined) lines.push(`  side: ${yamlValue(a.side)}`);
  if (a.note !== undefined) lines.push(`  note: ${yamlValue(a.note)}`);
  if (a.reason !== undefined) lines.push(`  reason: ${yamlValue(a.reason)}`);
  if (a.gate !== undefined) lines.push(`  gate: ${yamlValue(a.gate)}`);
  return lines;
}

function probeYaml(p: ProbeResult): string[] {
  const lines = [`durationMs: ${yamlValue(p.durationMs)}`, `status: ${yamlValue(p.status)}`];
  const optional: Array<[string, unknown]> = [
    ['errno', p.errno],
    ['code', p.code],
    ['stage', p.stage],
    ['syscall', p.syscall],
    ['cause', p.cause],
    ['remedy', p.remedy],
    ['gate', p.gate],
    ['metrics', p.metrics],
  ];
  for (const [key, value] of optional) if (value !== undefined) lines.push(`${key}: ${yamlValue(value)}`);
  if (p.assertions.length === 0) lines.push('assertions: []');
  else lines.push('assertions:', ...p.assertions.flatMap(assertionYaml).map((l) => `  ${l}`));
  return ['---', ...lines, '...'].map((l) => `  ${l}`);
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

export function renderTap(r: Report): string {
  const probes = sortedProbes(r.probes);
  const plan = probes.length === 0 ? '1..0 # SKIP no probes were run' : `1..${probes.length}`;
  const lines = ['TAP version 13', plan, ...header(r)];
  probes.forEach((p, i) => lines.push(...subtest(p), testPoint(p, i + 1), ...probeYaml(p)));
  const s = r.summary;
  lines.push(...comment(`pass ${s.pass}, fail ${s.fail}, unsupported ${s.unsupported}, error ${s.error}`));
  lines.push(...consumerTapLines(r));
  return `${lines.join('\n')}\n`;
}
