// GitHub-flavoured Markdown: host facts, the probe x mode table, details per non-pass, gates.

import { MODES } from '../model.js';
import type { Gate, ProbeResult, Report } from '../model.js';
import {
  causeOf,
  formatDuration,
  formatErrno,
  formatValue,
  hostFactRows,
  nonPassProbes,
  oneLine,
  probeGrid,
  problemGates,
  summaryLine,
  truncate,
} from './common.js';
import { matrixFootnotes } from './matrix.js';
import type { Matrix } from './matrix.js';
import { consumerMarkdown } from './consumers.js';

// ---------------------------------------------------------------- escaping

/** Text that renders literally: no HTML, no emphasis/links, no table breaks, one line. */
export function mdText(s: string): string {
  return oneLine(s)
    .replace(/[\\`*_[\]~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|');
}

/** An inline code span; literal in GFM, except that a `|` inside a table cell must be escaped. */
export function mdCode(s: string, inTable = false): string {
  const text = inTable ? oneLine(s).replace(/\|/g, '\\|') : oneLine(s);
  if (text === '') return '(empty)';
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A fenced code block whose fence is longer than any backtick run inside. */
export function mdCodeBlock(s: string, lang = ''): string {
  const longest = Math.max(0, ...(s.match(/`{3,}/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${s.replace(/\s+$/, '')}\n${fence}`;
}

/** Several lines of commands in one table cell: a code span per line. */
function mdCodeLines(s: string): string {
  return s
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => mdCode(l, true))
    .join('<br>');
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

// ---------------------------------------------------------------- sections

const STATUS_ICON = { pass: '✅', fail: '❌', unsupported: '⚪', error: '💥' } as const;

function statusCell(p: ProbeResult | undefined): string {
  if (!p) return '—';
  return `${STATUS_ICON[p.status]} ${p.status} (${formatDuration(p.durationMs)})`;
}

function hostSection(r: Report): string[] {
  const rows = hostFactRows(r.host).map(([k, v]) => [mdText(k), mdText(v)]);
  return table(['Host fact', 'Value'], rows);
}

function resultsSection(r: Report): string[] {
  const rows = probeGrid(r).map((row) => [
    mdText(row.probe === row.namespace ? row.probe : `${row.probe} (${row.namespace})`),
    ...MODES.map((m) => statusCell(row.cells[m])),
  ]);
  return ['## Results', '', ...table(['Probe', ...MODES], rows), '', mdText(summaryLine(r))];
}

function problemSection(p: ProbeResult): string[] {
  const lines = [`### ${mdText(p.id)}: ${p.status}`, ''];
  const cause = causeOf(p);
  if (cause) lines.push(`- Cause: ${mdText(cause)}`);
  const errno = formatErrno(p);
  const where = [p.stage && `stage ${mdCode(p.stage)}`, p.syscall && `syscall ${mdCode(p.syscall)}`, errno && `errno ${mdCode(errno)}`].filter(Boolean);
  if (where.length) lines.push(`- Failed at: ${where.join(', ')}`);
  if (p.gate) lines.push(`- Gate: ${mdCode(p.gate)}`);
  for (const a of p.assertions.filter((x) => x.status === 'fail')) {
    lines.push(`- Assertion failed: ${mdText(a.name)}: expected ${mdCode(formatValue(a.expected))}, got ${mdCode(formatValue(a.actual))}`);
  }
  if (p.remedy) lines.push('', 'Remedy:', '', mdCodeBlock(p.remedy, 'sh'));
  return [...lines, ''];
}

function gatesSection(gates: Gate[]): string[] {
  const rows = gates.map((g) => [mdCode(g.id, true), g.status, mdCode(formatValue(g.value), true), mdText(g.cause), g.remedy ? mdCodeLines(g.remedy) : '']);
  return ['## Gates not ok', '', ...table(['Gate', 'Status', 'Value', 'Cause', 'Remedy'], rows), ''];
}

export function renderMarkdown(r: Report): string {
  const out = [`# nsprobe report: ${mdText(r.host.hostname)}`, '', `nsprobe ${mdText(r.tool.version)}, started ${mdText(r.startedAt)}`, ''];
  out.push(...hostSection(r), '');
  if (r.notes?.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${mdText(n)}`), '');
  out.push(...resultsSection(r), '');
  out.push(...consumerMarkdown(r, { text: mdText, code: mdCode, block: mdCodeBlock }));
  const problems = nonPassProbes(r);
  if (problems.length) out.push('## Not passing', '', ...problems.flatMap(problemSection));
  const gates = problemGates(r.gates);
  if (gates.length) out.push(...gatesSection(gates));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------- matrix

export function renderMatrixMarkdown(m: Matrix): string {
  const { notes, noteFor } = matrixFootnotes(m);
  const rows = m.hosts.map((h) => [
    mdText(h.label),
    ...m.columns.map((id) => {
      const cell = m.cells[h.label]?.[id];
      if (!cell) return '—';
      const note = noteFor(h.label, id);
      if (cell.status === 'pass' || !note) return `${STATUS_ICON[cell.status]} ${cell.status}`;
      return `${STATUS_ICON[cell.status]} ${cell.status}: ${mdText(truncate(oneLine(note.cause), 32))} [${note.n}]`;
    }),
  ]);
  const out = [`# nsprobe matrix`, '', `${m.hosts.length} host run(s), generated ${mdText(m.generatedAt)}`, ''];
  out.push(...table(['Host', ...m.columns.map(mdText)], rows), '');
  out.push('## Hosts', '', ...table(['Host', 'Distro', 'Kernel', 'Arch', 'euid', 'Source', 'Gates not ok'], m.hosts.map((h) => [
    mdText(h.label),
    mdText(h.distro.name || `${h.distro.id} ${h.distro.versionId}`),
    mdCode(h.kernel, true),
    mdText(h.arch),
    String(h.euid),
    mdCode(h.source, true),
    h.gates.map((g) => `${mdCode(g.id, true)} ${g.status}`).join(', ') || '—',
  ])), '');
  if (notes.length) {
    out.push('## Causes and remedies', '');
    for (const note of notes) {
      out.push(`${note.n}. **${note.status}**: ${mdText(note.cause)}${note.gate ? ` (gate ${mdCode(note.gate)})` : ''}`);
      out.push(...note.where.map((w) => `   - ${mdText(w.host)}: ${w.ids.map(mdText).join(', ')}`));
      if (note.remedy) out.push('', mdCodeBlock(note.remedy, 'sh').replace(/^/gm, '   '));
      out.push('');
    }
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
