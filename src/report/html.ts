// One self-contained HTML page (inline CSS, no scripts, no external assets).

import { MODES } from '../model.js';
import type { Gate, ProbeResult, ProbeStatus, Report } from '../model.js';
import {
  causeOf,
  escapeXml as esc,
  escapeXmlAttr as attr,
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
import { consumerHtml } from './consumers.js';

const CSS = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 2rem auto; max-width: 80rem; padding: 0 1rem; color: #1f2328; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.facts th { font-weight: 600; white-space: nowrap; }
td.s-pass { background: #dafbe1; color: #116329; }
td.s-fail { background: #ffebe9; color: #a40e26; font-weight: 600; }
td.s-unsupported { background: #fff8c5; color: #6e5600; }
td.s-error { background: #8b0000; color: #fff; font-weight: 600; }
td.s-error a { color: #fff; }
td.s-none { color: #8c959f; }
.dur { font-size: .85em; opacity: .8; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.problem { border-left: 4px solid #d0d7de; padding-left: .8rem; margin: 1rem 0; }
.problem.s-fail { border-color: #cf222e; } .problem.s-error { border-color: #8b0000; } .problem.s-unsupported { border-color: #bf8700; }
.matrix td, .matrix th { font-size: .85rem; white-space: nowrap; }
.muted { color: #57606a; }
`;

function page(title: string, body: string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function table(head: string[], rows: string[][], cls?: string): string {
  const th = `<tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>`;
  const trs = rows.map((r) => `<tr>${r.join('')}</tr>`);
  return [`<table${cls ? ` class="${cls}"` : ''}>`, `<thead>${th}</thead>`, '<tbody>', ...trs, '</tbody>', '</table>'].join('\n');
}

const td = (html: string): string => `<td>${html}</td>`;
const code = (s: string): string => `<code>${esc(s)}</code>`;
const pre = (s: string): string => `<pre><code>${esc(s.replace(/\s+$/, ''))}</code></pre>`;

function statusTd(status: ProbeStatus | undefined, inner: string, title?: string): string {
  const cls = status ? `s-${status}` : 's-none';
  return `<td class="${cls}"${title ? ` title="${attr(title)}"` : ''}>${inner}</td>`;
}

// ---------------------------------------------------------------- single report

function hostSection(r: Report): string {
  const rows = hostFactRows(r.host).map(([k, v]) => [`<th>${esc(k)}</th>`, td(esc(v))]);
  return `<table class="facts"><tbody>\n${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}\n</tbody></table>`;
}

function resultCell(p: ProbeResult | undefined): string {
  if (!p) return statusTd(undefined, '—');
  const link = p.status === 'pass' ? esc(p.status) : `<a href="#${attr(anchor(p.id))}">${esc(p.status)}</a>`;
  return statusTd(p.status, `${link} <span class="dur">${esc(formatDuration(p.durationMs))}</span>`, causeOf(p));
}

function anchor(id: string): string {
  return `probe-${id.replace(/[^a-z0-9-]+/gi, '-')}`;
}

function resultsSection(r: Report): string[] {
  const rows = probeGrid(r).map((row) => [
    td(row.probe === row.namespace ? esc(row.probe) : `${esc(row.probe)} <span class="muted">(${esc(row.namespace)})</span>`),
    ...MODES.map((m) => resultCell(row.cells[m])),
  ]);
  return ['<h2>Results</h2>', table(['Probe', ...MODES.map(esc)], rows), `<p>${esc(summaryLine(r))}</p>`];
}

function definitionList(items: Array<[string, string | undefined]>): string {
  const present = items.filter((i): i is [string, string] => i[1] !== undefined);
  return `<dl>${present.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function problemSection(p: ProbeResult): string {
  const cause = causeOf(p);
  const errno = formatErrno(p);
  const failed = p.assertions.filter((a) => a.status === 'fail');
  const items: Array<[string, string | undefined]> = [
    ['Cause', cause === undefined ? undefined : esc(cause)],
    ['Stage', p.stage && code(p.stage)],
    ['Syscall', p.syscall && code(p.syscall)],
    ['errno', errno && code(errno)],
    ['Gate', p.gate ? code(p.gate) : undefined],
    ...failed.map((a): [string, string] => [
      'Assertion failed',
      `${esc(a.name)}: expected ${code(formatValue(a.expected))}, got ${code(formatValue(a.actual))}`,
    ]),
    ['Remedy', p.remedy ? pre(p.remedy) : undefined],
  ];
  return `<div class="problem s-${p.status}" id="${attr(anchor(p.id))}">\n<h3>${esc(p.id)}: ${esc(p.status)}</h3>\n${definitionList(items)}\n</div>`;
}

function gatesSection(gates: Gate[]): string[] {
  const rows = gates.map((g) => [
    td(code(g.id)),
    statusTd(g.status === 'blocked' ? 'fail' : 'unsupported', esc(g.status)),
    td(code(formatValue(g.value))),
    td(esc(g.cause)),
    td(g.remedy ? pre(g.remedy) : ''),
  ]);
  return ['<h2>Gates not ok</h2>', table(['Gate', 'Status', 'Value', 'Cause', 'Remedy'], rows)];
}

export function renderHtml(r: Report): string {
  const body = [
    `<h1>nsprobe report: ${esc(r.host.hostname)}</h1>`,
    `<p class="muted">nsprobe ${esc(r.tool.version)}, started ${esc(r.startedAt)}</p>`,
    hostSection(r),
  ];
  if (r.notes?.length) body.push('<h2>Notes</h2>', `<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  body.push(...resultsSection(r));
  body.push(...consumerHtml(r, esc));
  const problems = nonPassProbes(r);
  if (problems.length) body.push('<h2>Not passing</h2>', ...problems.map(problemSection));
  const gates = problemGates(r.gates);
  if (gates.length) body.push(...gatesSection(gates));
  return page(`nsprobe report: ${r.host.hostname}`, body);
}

// ---------------------------------------------------------------- matrix

export function renderMatrixHtml(m: Matrix): string {
  const { notes, noteFor } = matrixFootnotes(m);
  const rows = m.hosts.map((h) => [
    `<th>${esc(h.label)}</th>`,
    ...m.columns.map((id) => {
      const cell = m.cells[h.label]?.[id];
      if (!cell) return statusTd(undefined, '—', 'not run on this host');
      const note = noteFor(h.label, id);
      if (cell.status === 'pass' || !note) return statusTd(cell.status, esc(cell.status));
      const short = esc(truncate(oneLine(note.cause), 32));
      return statusTd(cell.status, `${esc(cell.status)} <a href="#note-${note.n}">[${note.n}]</a><br><span class="dur">${short}</span>`, note.cause);
    }),
  ]);
  const body = [
    '<h1>nsprobe matrix</h1>',
    `<p class="muted">${m.hosts.length} host run(s), generated ${esc(m.generatedAt)}</p>`,
    table(['Host', ...m.columns.map(esc)], rows, 'matrix'),
    '<h2>Hosts</h2>',
    table(
      ['Host', 'Distro', 'Kernel', 'Arch', 'euid', 'Source', 'Gates not ok'],
      m.hosts.map((h) => [
        td(esc(h.label)),
        td(esc(h.distro.name || `${h.distro.id} ${h.distro.versionId}`)),
        td(code(h.kernel)),
        td(esc(h.arch)),
        td(String(h.euid)),
        td(code(h.source)),
        td(h.gates.map((g) => `${code(g.id)} ${esc(g.status)}`).join('<br>') || '—'),
      ]),
    ),
  ];
  if (notes.length) {
    body.push('<h2>Causes and remedies</h2>', '<ol>');
    for (const note of notes) {
      const gate = note.gate ? ` (gate ${code(note.gate)})` : '';
      const cells = note.where.reduce((n, w) => n + w.ids.length, 0);
      const hosts = note.where.map((w) => `<li>${esc(w.host)}: ${w.ids.map(esc).join(', ')}</li>`).join('');
      const seen = `<details><summary>Seen in ${cells} cell(s) on ${note.where.length} host run(s)</summary><ul>${hosts}</ul></details>`;
      body.push(`<li id="note-${note.n}"><p><strong>${esc(note.status)}</strong>: ${esc(note.cause)}${gate}</p>${note.remedy ? pre(note.remedy) : ''}${seen}</li>`);
    }
    body.push('</ol>');
  }
  return page('nsprobe matrix', body);
}
