// GitHub-flavoured Markdown: the headline, the probe x mode table, each distinct cause once with
// the probes it covers (failures apart from what could not run), skipped checks, then host facts and gates.

import { MODES } from '../model.js';
import type { Gate, ProbeResult, Report } from '../model.js';
import {
  causeGroups,
  formatDuration,
  formatValue,
  headline,
  hostFactRows,
  isCommandLine,
  otherNotes,
  remedyParts,
  skippedModes,
  probeGrid,
  probeListText,
  problemGates,
  safeLine,
  skipGroups,
  skippedChecks,
  summaryLine,
  truncate,
} from './common.js';
import type { CauseGroup } from './common.js';
import { scrubText } from '../text.js';
import { duplicateWarnings, groupLine, matrixFootnotes, runDescription } from './matrix.js';
import type { Footnote, Matrix } from './matrix.js';
import { consumerMarkdown } from './consumers.js';

// ---------------------------------------------------------------- escaping

/** Text that renders literally: no HTML, no emphasis/links, no table breaks, no controls, one line. */
export function mdText(s: string): string {
  return safeLine(s)
    .replace(/[\\`*_[\]~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    // No GFM autolinks from someone else's text: a URL stays text, not something to click.
    .replace(/:\/\//g, '\\://')
    .replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}\\.`);
}

/**
 * An inline code span; literal in GFM. Inside a table cell a `|` must be escaped, and the
 * backslashes before it too: the table splitter counts them (`\\|` would end the cell).
 */
export function mdCode(s: string, inTable = false): string {
  const line = safeLine(s);
  const text = inTable ? line.replace(/(\\*)\|/g, (_m, bs: string) => `${bs}${bs}\\|`) : line;
  if (text === '') return '(empty)';
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A fenced code block whose fence is longer than any backtick run inside; no controls but newlines and tabs. */
export function mdCodeBlock(s: string, lang = ''): string {
  const body = scrubText(s);
  const longest = Math.max(0, ...(body.match(/`{3,}/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${body.replace(/\s+$/, '')}\n${fence}`;
}

/** A remedy in one table cell: a code span per command line, prose as text. */
function mdRemedyCell(s: string): string {
  return s
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => (isCommandLine(l) ? mdCode(l, true) : mdText(l)))
    .join('<br>');
}

/** A remedy as blocks: commands in a fenced `sh` block, prose as paragraphs. */
function mdRemedy(s: string): string[] {
  return remedyParts(s).flatMap((part) => [part.kind === 'command' ? mdCodeBlock(part.text, 'sh') : part.text.split('\n').map(mdText).join('<br>\n'), '']);
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

// ---------------------------------------------------------------- sections

const STATUS_ICON = { pass: '✅', fail: '❌', unsupported: '⚪', error: '💥' } as const;

function statusCell(p: ProbeResult | undefined, modeSkipped = false): string {
  if (!p) return modeSkipped ? 'not run' : '—';
  const skipped = skippedChecks(p).length;
  const note = skipped ? `, ${skipped} check${skipped === 1 ? '' : 's'} skipped` : '';
  return `${STATUS_ICON[p.status]} ${p.status} (${formatDuration(p.durationMs)})${note}`;
}

function hostSection(r: Report): string[] {
  const rows = hostFactRows(r.host).map(([k, v]) => [mdText(k), mdText(v)]);
  return ['## Host', '', ...table(['Host fact', 'Value'], rows)];
}

function resultsSection(r: Report): string[] {
  const rows = probeGrid(r).map((row) => [
    mdText(row.probe === row.namespace ? row.probe : `${row.probe} (${row.namespace})`),
    ...MODES.map((m) => statusCell(row.cells[m], skippedModes(r).some((x) => x.mode === m))),
  ]);
  return ['## Results', '', ...table(['Probe', ...MODES], rows), '', mdText(summaryLine(r))];
}

function groupSection(g: CauseGroup, allProbes: readonly ProbeResult[]): string[] {
  const count = g.probes.length > 1 && !probeListText(g.probes, allProbes).startsWith('all ') ? ` (${g.probes.length} probes)` : '';
  const lines = [`### ${mdText(probeListText(g.probes, allProbes))}: ${g.status}${count}`, ''];
  lines.push(`- Cause: ${mdText(g.cause)}`);
  const where = [g.stage && `stage ${mdCode(g.stage)}`, g.syscall && `syscall ${mdCode(g.syscall)}`, g.errno && `errno ${mdCode(g.errno)}`].filter(Boolean);
  if (where.length) lines.push(`- Failed at: ${where.join(', ')}`);
  if (g.gate) lines.push(`- Gate: ${mdCode(g.gate)}`);
  for (const p of g.probes) {
    for (const a of p.assertions.filter((x) => x.status === 'fail')) {
      lines.push(`- Assertion failed: ${mdText(a.name)}: expected ${mdCode(formatValue(a.expected))}, got ${mdCode(formatValue(a.actual))}`);
    }
  }
  if (g.remedy) lines.push('', 'Remedy:', '', ...mdRemedy(g.remedy));
  return [...lines, ''];
}

function skippedSection(r: Report): string[] {
  const groups = skipGroups(r.probes);
  if (!groups.length) return [];
  const out = ['## Checks skipped', ''];
  for (const s of groups) {
    const probes = [...new Set(s.checks.map((c) => c.probe))];
    const statuses = [...new Set(probes.map((p) => p.status))].join('/');
    const gate = s.gate ? ` (${mdCode(s.gate)})` : '';
    const n = s.checks.length;
    out.push(`- ${mdText(probeListText(probes))}: ${statuses}, ${n} check${n === 1 ? '' : 's'} skipped: ${mdText(s.reason)}${gate}`);
    out.push(...s.checks.map((c) => `  - ${mdText(c.probe.id)}: ${mdText(c.assertion.name)}`));
  }
  return [...out, ''];
}

function gatesSection(gates: Gate[]): string[] {
  const rows = gates.map((g) => [mdCode(g.id, true), g.status, mdCode(formatValue(g.value), true), mdText(g.cause), g.remedy ? mdRemedyCell(g.remedy) : '']);
  return ['## Gates not ok', '', ...table(['Gate', 'Status', 'Value', 'Cause', 'Remedy'], rows), ''];
}

export function renderMarkdown(r: Report): string {
  const out = [`# nsprobe report: ${mdText(r.host.hostname)}`, ''];
  out.push(...headline(r).map((h) => `- **${mdText(h)}**`), '');
  out.push(`nsprobe ${mdText(r.tool.version)}, started ${mdText(r.startedAt)}`, '');
  out.push(...resultsSection(r), '');
  out.push(...consumerMarkdown(r, { text: mdText, code: mdCode, block: mdCodeBlock }));
  const groups = causeGroups(r.probes);
  const failures = groups.filter((g) => g.status !== 'unsupported');
  const notRun = groups.filter((g) => g.status === 'unsupported');
  if (failures.length) out.push('## Failures', '', ...failures.flatMap((g) => groupSection(g, r.probes)));
  const modes = skippedModes(r);
  if (notRun.length || modes.length) out.push('## Not run here', '');
  for (const m of modes) out.push(`### ${m.mode} mode: not run`, '', `- Cause: ${mdText(m.reason)}`, '');
  out.push(...notRun.flatMap((g) => groupSection(g, r.probes)));
  out.push(...skippedSection(r));
  const notes = otherNotes(r);
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => `- ${mdText(n)}`), '');
  out.push(...hostSection(r), '');
  const gates = problemGates(r.gates);
  if (gates.length) out.push(...gatesSection(gates));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------- matrix

/** f with its answers kept: a fleet's matrix repeats the same run descriptions, distros, cells thousands of times. */
function memo<K, V>(f: (k: K) => V): (k: K) => V {
  const seen = new Map<K, V>();
  return (k) => {
    let v = seen.get(k);
    if (v === undefined && !seen.has(k)) seen.set(k, (v = f(k)));
    return v as V;
  };
}

export function renderMatrixMarkdown(m: Matrix): string {
  const { notes, noteFor } = matrixFootnotes(m);
  const text = memo(mdText);
  const code = memo((s: string) => mdCode(s, true));
  const noteCell = memo((note: Footnote) => `${STATUS_ICON[note.status]} ${note.status}: ${mdText(truncate(safeLine(note.cause), 32))} [${note.n}]`);
  const rows = m.hosts.map((h) => [
    `${mdText(h.label)}<br>${text(runDescription(h))}`,
    ...m.columns.map((id) => {
      const cell = m.cells[h.label]?.[id];
      if (!cell) return '—';
      const note = noteFor(h.label, id);
      const skipped = cell.skipped ? ` (${cell.skipped} skipped)` : '';
      if (cell.status === 'pass' || !note) return `${STATUS_ICON[cell.status]} ${cell.status}${skipped}`;
      // A note's cells share its status (the note is per status, cause, remedy and gate).
      return noteCell(note);
    }),
  ]);
  const out = [`# nsprobe matrix`, '', `${m.hosts.length} host run(s), generated ${mdText(m.generatedAt)}`, ''];
  for (const w of duplicateWarnings(m)) out.push(`- warning: ${mdText(w)}`);
  if (m.duplicates.length) out.push('');
  if (m.groups.length) out.push('## Hosts with the same verdicts', '', ...m.groups.map((g) => `- ${mdText(groupLine(g))}`), '');
  out.push(...table(['Host', ...m.columns.map(mdText)], rows), '');
  out.push('## Hosts', '', ...table(['Host', 'Run', 'Distro', 'Kernel', 'Arch', 'Source', 'Gates not ok'], m.hosts.map((h) => [
    mdText(h.label),
    text(runDescription(h)),
    text(h.distro.name || `${h.distro.id} ${h.distro.versionId}`),
    code(h.kernel),
    text(h.arch),
    mdCode(h.source, true),
    h.gates.map((g) => `${code(g.id)} ${g.status}`).join(', ') || '—',
  ])), '');
  if (notes.length) {
    out.push('## Causes and remedies', '');
    for (const note of notes) {
      out.push(`${note.n}. **${note.status}**: ${mdText(note.cause)}${note.gate ? ` (gate ${mdCode(note.gate)})` : ''}`);
      out.push(...note.where.map((w) => `   - ${mdText(w.host)}: ${w.ids.map(mdText).join(', ')}`));
      if (note.remedy) out.push('', ...mdRemedy(note.remedy).map((b) => (b ? b.replace(/^/gm, '   ') : b)));
      out.push('');
    }
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
