// The terminal table printed at the end of a run.

import { MODES } from '../model.js';
import type { ProbeResult, ProbeStatus, Report } from '../model.js';
import { causeOf, formatDuration, nonPassProbes, oneLine, probeGrid, summaryLine } from './common.js';

const ANSI: Record<ProbeStatus, string> = {
  pass: '\x1b[32m',
  fail: '\x1b[31m',
  unsupported: '\x1b[33m',
  error: '\x1b[1;31m',
};
const RESET = '\x1b[0m';

/** One line with no control characters, so report text cannot move the cursor or recolour the terminal. */
function plain(s: string): string {
  return oneLine(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function paint(status: ProbeStatus, text: string, color: boolean): string {
  return color ? `${ANSI[status]}${text}${RESET}` : text;
}

interface Cell {
  text: string;
  status?: ProbeStatus;
}

function cellOf(p: ProbeResult | undefined): Cell {
  if (!p) return { text: '-' };
  return { text: `${p.status.toUpperCase()} ${formatDuration(p.durationMs)}`, status: p.status };
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
  const rows: Cell[][] = probeGrid(r).map((row) => [{ text: plain(row.probe) }, ...MODES.map((m) => cellOf(row.cells[m]))]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i].text.length)));
  const lines = [
    plain(`nsprobe ${r.tool.version} on ${h.hostname} (${h.distro.id} ${h.distro.versionId}, kernel ${h.kernel.release}, ${h.arch}, euid ${h.euid})`),
    '',
    renderRow(header, widths, false),
    ...rows.map((row) => renderRow(row, widths, opts.color)),
  ];
  const problems = nonPassProbes(r);
  if (problems.length) lines.push('');
  for (const p of problems) {
    const cause = causeOf(p);
    const gate = p.gate ? ` [gate ${plain(p.gate)}]` : '';
    lines.push(`${paint(p.status, `${p.id} ${p.status.toUpperCase()}`, opts.color)}: ${cause ? plain(cause) : 'no cause recorded'}${gate}`);
  }
  for (const note of r.notes ?? []) lines.push(`note: ${plain(note)}`);
  lines.push('', summaryLine(r));
  return `${lines.join('\n')}\n`;
}
