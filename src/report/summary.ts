// The terminal summary printed at the end of a run: the headline first, then the table, then each
// distinct cause once with the probes it covers (real failures apart from what could not run).

import { MODES } from '../model.js';
import type { ProbeResult, ProbeStatus, Report } from '../model.js';
import { causeGroups, formatDuration, headline, otherNotes, probeGrid, probeListText, safeLine, skipGroups, skippedChecks, skippedModes, summaryLine } from './common.js';

const ANSI: Record<ProbeStatus, string> = {
  pass: '\x1b[32m',
  fail: '\x1b[31m',
  unsupported: '\x1b[33m',
  error: '\x1b[1;31m',
};
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';

/** One line with no control characters, so report text cannot move the cursor or recolour the terminal. */
const plain = safeLine;

function paint(status: ProbeStatus, text: string, color: boolean): string {
  return color ? `${ANSI[status]}${text}${RESET}` : text;
}

interface Cell {
  text: string;
  status?: ProbeStatus;
}

function cellOf(p: ProbeResult | undefined, modeSkipped: boolean): Cell {
  if (!p) return { text: modeSkipped ? 'not run' : '-' };
  const skipped = skippedChecks(p).length;
  const note = skipped ? ` (${skipped} skipped)` : '';
  return { text: `${p.status.toUpperCase()} ${formatDuration(p.durationMs)}${note}`, status: p.status };
}

/** Pads on the plain text so colour codes do not disturb the alignment. */
function renderRow(cells: Cell[], widths: number[], color: boolean): string {
  return cells
    .map((c, i) => {
      const padding = i === cells.length - 1 ? '' : ' '.repeat(Math.max(0, widths[i] - c.text.length));
      return `${c.status ? paint(c.status, c.text, color) : c.text}${padding}`;
    })
    .join('  ')
    .trimEnd();
}

export function renderSummary(r: Report, opts: { color: boolean }): string {
  const h = r.host;
  const header: Cell[] = [{ text: 'NAMESPACE' }, ...MODES.map((m) => ({ text: m.toUpperCase() }))];
  const skippedModeList = skippedModes(r);
  const rows: Cell[][] = probeGrid(r).map((row) => [{ text: plain(row.probe) }, ...MODES.map((m) => cellOf(row.cells[m], skippedModeList.some((x) => x.mode === m)))]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i].text.length)));
  const lines = [
    plain(`nsprobe ${r.tool.version} on ${h.hostname} (${h.distro.id} ${h.distro.versionId}, kernel ${h.kernel.release}, ${h.arch}, euid ${h.euid})`),
    ...headline(r).map((s) => (opts.color ? `${BOLD}${plain(s)}${RESET}` : plain(s))),
    '',
    renderRow(header, widths, false),
    ...rows.map((row) => renderRow(row, widths, opts.color)),
  ];
  const groups = causeGroups(r.probes);
  const allProbes = r.probes;
  const failures = groups.filter((g) => g.status !== 'unsupported');
  const notRun = groups.filter((g) => g.status === 'unsupported');
  const line = (g: (typeof groups)[number]): string => {
    const gate = g.gate ? ` [gate ${plain(g.gate)}]` : '';
    const list = probeListText(g.probes, allProbes);
    const count = g.probes.length > 1 && !list.startsWith('all ') ? ` (${g.probes.length} probes)` : '';
    return `${paint(g.status, `${plain(list)} ${g.status.toUpperCase()}`, opts.color)}: ${plain(g.cause)}${gate}${count}`;
  };
  if (failures.length) lines.push('', 'Failures:', ...failures.map(line));
  if (notRun.length || skippedModeList.length) lines.push('', 'Not run here:');
  for (const m of skippedModeList) lines.push(`${paint('unsupported', `${m.mode} mode NOT RUN`, opts.color)}: ${plain(m.reason)}`);
  lines.push(...notRun.map(line));
  const skips = skipGroups(r.probes);
  if (skips.length) {
    lines.push('', 'Checks skipped:');
    for (const s of skips) {
      const gate = s.gate ? ` (${plain(s.gate)})` : '';
      const probes = [...new Set(s.checks.map((c) => c.probe))];
      const statuses = [...new Set(probes.map((p) => p.status))].join('/');
      lines.push(`${plain(probeListText(probes))}: ${statuses}, ${s.checks.length} check${s.checks.length === 1 ? '' : 's'} skipped: ${plain(s.reason)}${gate}`);
    }
  }
  const notes = otherNotes(r);
  if (notes.length) lines.push('');
  for (const note of notes) lines.push(`note: ${plain(note)}`);
  lines.push('', summaryLine(r));
  return `${lines.join('\n')}\n`;
}
