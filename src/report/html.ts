// One self-contained HTML page (inline CSS, no scripts, no external assets).
// Report: the headline and the results table first, then each distinct cause once (failures apart
// from what could not run), skipped checks, notes, and only then the host facts and gates.
// Matrix: namespaces as columns with the modes side by side, the host column sticky.

import { MODES } from '../model.js';
import type { Gate, ProbeResult, ProbeStatus, Report } from '../model.js';
import { scrubText } from '../text.js';
import {
  causeGroups,
  escapeXml,
  escapeXmlAttr,
  formatDuration,
  formatValue,
  headline,
  hostFactRows,
  otherNotes,
  probeGrid,
  probeListText,
  problemGates,
  remedyParts,
  safeLine,
  skipGroups,
  skippedChecks,
  skippedModes,
  summaryLine,
} from './common.js';
import type { CauseGroup } from './common.js';
import { duplicateWarnings, groupLine, matrixFootnotes, runDescription } from './matrix.js';
import type { Matrix } from './matrix.js';
import { consumerHtml } from './consumers.js';

const CSS = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 1.2rem auto; max-width: 72rem; padding: 0 1rem; color: #1f2328; background: #fff; line-height: 1.45; }
body.wide { max-width: none; }
h1 { font-size: 1.5rem; margin: 0 0 .4rem; } h2 { font-size: 1.2rem; margin-top: 1.6rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1rem; margin: .2rem 0 .4rem; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.facts th { font-weight: 600; white-space: nowrap; }
.facts td { overflow-wrap: anywhere; }
td.s-pass { background: #dafbe1; color: #116329; }
td.s-fail { background: #ffebe9; color: #a40e26; font-weight: 600; }
td.s-unsupported { background: #fff8c5; color: #6e5600; }
td.s-error { background: #8b0000; color: #fff; font-weight: 600; }
td.s-error a { color: #fff; }
td.s-none { color: #8c959f; }
.dur, .skips { font-size: .85em; opacity: .8; }
.headline { list-style: none; padding: .6rem .9rem; margin: .6rem 0 1rem; background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; font-weight: 600; }
.headline li { margin: .15rem 0; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .5rem .7rem; margin: .3rem 0; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
.problem { border-left: 4px solid #d0d7de; padding: .1rem 0 .1rem .8rem; margin: 1rem 0; max-width: 60rem; }
.problem.s-fail { border-color: #cf222e; } .problem.s-error { border-color: #8b0000; } .problem.s-unsupported { border-color: #bf8700; }
.problem.g-blocked { border-color: #cf222e; } .problem.g-warn, .problem.g-unknown { border-color: #bf8700; }
.problem dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .2rem .8rem; margin: .3rem 0; }
.problem dt { font-weight: 600; } .problem dd { margin: 0; min-width: 0; }
.problem p { margin: .2rem 0; }
.muted { color: #57606a; }
.warning { color: #9a6700; font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; border: 1px solid #d0d7de; }
.matrix { margin: 0; border-collapse: separate; border-spacing: 0; }
.matrix td, .matrix th { font-size: .85rem; white-space: nowrap; border-width: 0 1px 1px 0; padding: .25rem .4rem; }
.matrix th.host { position: sticky; left: 0; z-index: 2; background: #f6f8fa; min-width: 15rem; max-width: 20rem; white-space: normal; box-shadow: 2px 0 0 #d0d7de; }
.matrix thead th { position: sticky; top: 0; z-index: 1; text-align: center; }
.matrix thead th.host { z-index: 3; text-align: left; }
.matrix td.mode-first { border-left: 2px solid #8c959f; }
.matrix .run { font-weight: 400; font-size: .8rem; color: #57606a; }
`;

/** Text from a report, escaped for HTML; control characters shown as escapes. */
const esc = (s: string): string => escapeXml(scrubText(s));
const attr = (s: string): string => escapeXmlAttr(scrubText(s));

function page(title: string, body: string[], cls?: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(safeLine(title))}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    `<body${cls ? ` class="${cls}"` : ''}>`,
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

/** A remedy: commands as a code block, prose as paragraphs. */
function remedyHtml(remedy: string): string {
  return remedyParts(remedy)
    .map((part) => (part.kind === 'command' ? pre(part.text) : part.text.split('\n').map((l) => `<p>${esc(l.trim())}</p>`).join('')))
    .join('');
}

function statusTd(status: ProbeStatus | undefined, inner: string, title?: string, cls = ''): string {
  const c = `${status ? `s-${status}` : 's-none'}${cls ? ` ${cls}` : ''}`;
  return `<td class="${c}"${title ? ` title="${attr(title)}"` : ''}>${inner}</td>`;
}

function headlineHtml(lines: string[]): string {
  return `<ul class="headline">${lines.map((l) => `<li>${esc(safeLine(l))}</li>`).join('')}</ul>`;
}

// ---------------------------------------------------------------- single report

function hostSection(r: Report): string[] {
  const rows = hostFactRows(r.host).map(([k, v]) => [`<th>${esc(k)}</th>`, td(esc(v))]);
  return ['<h2>Host</h2>', `<table class="facts"><tbody>\n${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}\n</tbody></table>`];
}

function anchor(id: string): string {
  return `probe-${id.replace(/[^a-z0-9-]+/gi, '-')}`;
}

function resultCell(p: ProbeResult | undefined, modeSkipped = false): string {
  if (!p) return statusTd(undefined, modeSkipped ? 'not run' : '—');
  const skipped = skippedChecks(p).length;
  const target = p.status !== 'pass' || skipped ? anchor(p.id) : undefined;
  const link = target ? `<a href="#${attr(target)}">${esc(p.status)}</a>` : esc(p.status);
  const skips = skipped ? ` <span class="skips">${skipped} check${skipped === 1 ? '' : 's'} skipped</span>` : '';
  const groups = causeGroups([p]);
  const title = groups[0]?.cause ?? skipGroups([p]).map((g) => g.reason).join('; ');
  return statusTd(p.status, `${link} <span class="dur">${esc(formatDuration(p.durationMs))}</span>${skips}`, title || undefined);
}

function resultsSection(r: Report): string[] {
  const rows = probeGrid(r).map((row) => [
    td(row.probe === row.namespace ? esc(row.probe) : `${esc(row.probe)} <span class="muted">(${esc(row.namespace)})</span>`),
    ...MODES.map((m) => resultCell(row.cells[m], skippedModes(r).some((x) => x.mode === m))),
  ]);
  return ['<h2>Results</h2>', table(['Probe', ...MODES.map(esc)], rows, 'results'), `<p>${esc(summaryLine(r))}</p>`];
}

function definitionList(items: Array<[string, string | undefined]>): string {
  const present = items.filter((i): i is [string, string] => i[1] !== undefined);
  return `<dl>${present.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/** Empty anchors so a link from the results table lands on the group that covers the probe. */
function anchors(probes: readonly ProbeResult[]): string {
  return probes.map((p) => `<span id="${attr(anchor(p.id))}"></span>`).join('');
}

function groupSection(g: CauseGroup, allProbes: readonly ProbeResult[]): string {
  const items: Array<[string, string | undefined]> = [
    ['Cause', esc(g.cause)],
    ['Stage', g.stage && code(g.stage)],
    ['Syscall', g.syscall && code(g.syscall)],
    ['errno', g.errno && code(g.errno)],
    ['Gate', g.gate ? code(g.gate) : undefined],
    ...g.probes.flatMap((p) =>
      p.assertions
        .filter((a) => a.status === 'fail')
        .map((a): [string, string] => ['Assertion failed', `${esc(a.name)}: expected ${code(formatValue(a.expected))}, got ${code(formatValue(a.actual))}`]),
    ),
    ['Remedy', g.remedy ? remedyHtml(g.remedy) : undefined],
  ];
  const count = g.probes.length > 1 && !probeListText(g.probes, allProbes).startsWith('all ') ? ` <span class="muted">(${g.probes.length} probes)</span>` : '';
  return `<div class="problem s-${g.status}">${anchors(g.probes)}\n<h3>${esc(probeListText(g.probes, allProbes))}: ${esc(g.status)}${count}</h3>\n${definitionList(items)}\n</div>`;
}

function skippedSection(r: Report): string[] {
  const groups = skipGroups(r.probes);
  if (!groups.length) return [];
  const out = ['<h2>Checks skipped</h2>'];
  const placed = new Set<string>();
  for (const s of groups) {
    const probes = [...new Set(s.checks.map((c) => c.probe))];
    const fresh = probes.filter((p) => !placed.has(p.id));
    fresh.forEach((p) => placed.add(p.id));
    const statuses = [...new Set(probes.map((p) => p.status))].join('/');
    const n = s.checks.length;
    const gate = s.gate ? ` (gate ${code(s.gate)})` : '';
    const checks = s.checks.map((c) => `<li>${esc(c.probe.id)}: ${esc(c.assertion.name)}</li>`).join('');
    out.push(`<div class="problem s-unsupported">${anchors(fresh)}<h3>${esc(probeListText(probes))}: ${esc(statuses)}, ${n} check${n === 1 ? '' : 's'} skipped</h3><p>${esc(s.reason)}${gate}</p><ul>${checks}</ul></div>`);
  }
  return out;
}

function gatesSection(gates: Gate[]): string[] {
  return [
    '<h2>Gates not ok</h2>',
    ...gates.map((g) => {
      const items: Array<[string, string | undefined]> = [
        ['Value', code(formatValue(g.value))],
        ['Cause', esc(g.cause)],
        ['Remedy', g.remedy ? remedyHtml(g.remedy) : undefined],
      ];
      return `<div class="problem g-${g.status}"><h3>${code(g.id)}: ${esc(g.status)}</h3>${definitionList(items)}</div>`;
    }),
  ];
}

export function renderHtml(r: Report): string {
  const body = [
    `<h1>nsprobe report: ${esc(safeLine(r.host.hostname))}</h1>`,
    headlineHtml(headline(r)),
    ...resultsSection(r),
    `<p class="muted">nsprobe ${esc(r.tool.version)}, started ${esc(r.startedAt)}</p>`,
  ];
  body.push(...consumerHtml(r, esc));
  const groups = causeGroups(r.probes);
  const failures = groups.filter((g) => g.status !== 'unsupported');
  const notRun = groups.filter((g) => g.status === 'unsupported');
  if (failures.length) body.push('<h2>Failures</h2>', ...failures.map((g) => groupSection(g, r.probes)));
  const modes = skippedModes(r);
  if (notRun.length || modes.length) body.push('<h2>Not run here</h2>');
  for (const m of modes) body.push(`<div class="problem s-unsupported"><h3>${esc(m.mode)} mode: not run</h3>${definitionList([['Cause', esc(m.reason)]])}</div>`);
  body.push(...notRun.map((g) => groupSection(g, r.probes)));
  body.push(...skippedSection(r));
  const notes = otherNotes(r);
  if (notes.length) body.push('<h2>Notes</h2>', `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  body.push(...hostSection(r));
  const gates = problemGates(r.gates);
  if (gates.length) body.push(...gatesSection(gates));
  return page(`nsprobe report: ${r.host.hostname}`, body);
}

// ---------------------------------------------------------------- matrix

/** Column groups: one per probe (in column order), with the modes it has side by side. */
function columnGroups(columns: readonly string[]): Array<{ probe: string; ids: Array<{ id: string; mode: string }> }> {
  const groups: Array<{ probe: string; ids: Array<{ id: string; mode: string }> }> = [];
  for (const id of columns) {
    const slash = id.lastIndexOf('/');
    const probe = slash < 0 ? id : id.slice(0, slash);
    const mode = slash < 0 ? '' : id.slice(slash + 1);
    const last = groups.at(-1);
    if (last?.probe === probe) last.ids.push({ id, mode });
    else groups.push({ probe, ids: [{ id, mode }] });
  }
  return groups;
}

const MODE_SHORT: Record<string, string> = { privileged: 'priv', rootless: 'rootless' };
/** Above this many host runs the matrix has a row per group of hosts with the same verdicts, not per host. */
export const GROUPED_FROM = 500;
/** Host runs listed under a cause (the rest counted). */
const WHERE_MAX = 50;

/** The groups as radio buttons ("3,112 hosts: all pass"); choosing one shows only its rows (CSS :has, no script). */
function groupFilter(m: Matrix): string[] {
  if (m.groups.length < 2) return m.groups.map((g) => `<p class="groups">${esc(groupLine(g))}</p>`);
  const rules = m.groups.map((_, i) => `body:has(#g-${i + 1}:checked) :is(.matrix tbody tr, .bygroup > details):not(.g-${i + 1}) { display: none; }`);
  const items = [
    `<li><label><input type="radio" name="group" id="g-0" checked> all ${m.hosts.length.toLocaleString('en-US')} host runs</label></li>`,
    ...m.groups.map((g, i) => `<li><label><input type="radio" name="group" id="g-${i + 1}"> ${esc(groupLine(g))}</label></li>`),
  ];
  return [`<style>${rules.join('\n')}</style>`, '<h2>Hosts with the same verdicts</h2>', `<ul class="groups">${items.join('')}</ul>`];
}

export function renderMatrixHtml(m: Matrix): string {
  const { notes, noteFor } = matrixFootnotes(m);
  const groups = columnGroups(m.columns);
  const head1 = `<tr><th class="host" rowspan="2">Host</th>${groups.map((g) => `<th colspan="${g.ids.length}">${esc(g.probe)}</th>`).join('')}</tr>`;
  const head2 = `<tr>${groups.flatMap((g) => g.ids.map((c) => `<th title="${attr(c.id)}">${esc(MODE_SHORT[c.mode] ?? c.mode)}</th>`)).join('')}</tr>`;
  // Groups of hosts with the same verdicts, each a radio button that filters the rows by CSS alone (no script).
  const groupOf = new Map<string, number>();
  m.groups.forEach((g, i) => g.hosts.forEach((label) => groupOf.set(label, i + 1)));
  // A big fleet is one row per group (its first host's cells stand for all), the hosts listed by group below.
  const grouped = m.hosts.length > GROUPED_FROM;
  const rowHosts = grouped ? m.groups.map((g) => m.hosts.find((h) => h.label === g.hosts[0])!) : m.hosts;
  const rows = rowHosts.map((h, gi) => {
    if (grouped) {
      const cells = groups.flatMap((g) => g.ids.map(({ id }, i) => statusTd(m.cells[h.label]?.[id]?.status, esc(m.cells[h.label]?.[id]?.status ?? '—'), undefined, i === 0 ? 'mode-first' : '')));
      return `<tr class="g-${gi + 1}"><th class="host"><a href="#hosts-${gi + 1}">${esc(groupLine(m.groups[gi]))}</a></th>${cells.join('')}</tr>`;
    }
    // The label is "<hostname> (<distro>, <kernel>)[ #n]": show the hostname bold, then who ran it and on what.
    const repeat = h.label.match(/ #\d+$/)?.[0] ?? '';
    const system = `${h.distro.id} ${h.distro.versionId} · ${h.kernel} · ${h.arch}`;
    const who = `<div class="run">${esc(runDescription(h))}<br>${esc(system)}</div>`;
    const cells = groups.flatMap((g) =>
      g.ids.map(({ id }, i) => {
        const first = i === 0 ? 'mode-first' : '';
        const cell = m.cells[h.label]?.[id];
        if (!cell) return statusTd(undefined, '—', 'not run on this host', first);
        const skipped = cell.skipped ? ` <span class="skips">(${cell.skipped} skipped)</span>` : '';
        const note = noteFor(h.label, id);
        if (cell.status === 'pass' || !note) return statusTd(cell.status, `${esc(cell.status)}${skipped}`, undefined, first);
        return statusTd(cell.status, `${esc(cell.status)} <a href="#note-${note.n}">[${note.n}]</a>${skipped}`, note.cause, first);
      }),
    );
    return `<tr class="g-${groupOf.get(h.label) ?? 0}"><th class="host" title="${attr(h.label)}">${esc(h.hostname)}${esc(repeat)}${who}</th>${cells.join('')}</tr>`;
  });
  const matrixTable = ['<div class="scroll">', '<table class="matrix">', `<thead>${head1}${head2}</thead>`, '<tbody>', ...rows, '</tbody>', '</table>', '</div>'].join('\n');
  const body = [
    '<h1>nsprobe matrix</h1>',
    `<p class="muted">${m.hosts.length} host run(s), generated ${esc(m.generatedAt)}</p>`,
    ...duplicateWarnings(m).map((w) => `<p class="warning">warning: ${esc(w)}</p>`),
    ...groupFilter(m),
    matrixTable,
  ];
  if (grouped) {
    body.push('<h2>Hosts by group</h2>', '<div class="bygroup">');
    m.groups.forEach((g, i) => {
      const items = g.hosts.map((label) => `<li>${esc(label)}</li>`).join('');
      body.push(`<details class="g-${i + 1}" id="hosts-${i + 1}"><summary>${esc(groupLine(g))}</summary><ul>${items}</ul></details>`);
    });
    body.push('</div>');
  }
  if (notes.length) {
    body.push('<h2>Causes and remedies</h2>', '<ol>');
    for (const note of notes) {
      const gate = note.gate ? ` (gate ${code(note.gate)})` : '';
      const cells = note.where.reduce((n, w) => n + w.ids.length, 0);
      const more = note.where.length > WHERE_MAX ? `<li>… and ${(note.where.length - WHERE_MAX).toLocaleString('en-US')} more host runs</li>` : '';
      const hosts = note.where.slice(0, WHERE_MAX).map((w) => `<li>${esc(w.host)}: ${w.ids.map(esc).join(', ')}</li>`).join('') + more;
      const seen = `<details><summary>Seen in ${cells} cell(s) on ${note.where.length} host run(s)</summary><ul>${hosts}</ul></details>`;
      body.push(`<li id="note-${note.n}"><p><strong>${esc(note.status)}</strong>: ${esc(note.cause)}${gate}</p>${note.remedy ? remedyHtml(note.remedy) : ''}${seen}</li>`);
    }
    body.push('</ol>');
  }
  body.push(
    grouped ? `<details><summary><h2>Hosts (${m.hosts.length.toLocaleString('en-US')} host runs)</h2></summary>` : '<h2>Hosts</h2>',
    table(
      ['Host', 'Run', 'Distro', 'Kernel', 'Arch', 'Source', 'Gates not ok'],
      m.hosts.map((h) => [
        td(esc(h.label)),
        td(esc(runDescription(h))),
        td(esc(h.distro.name || `${h.distro.id} ${h.distro.versionId}`)),
        td(code(h.kernel)),
        td(esc(h.arch)),
        td(code(h.source)),
        td(h.gates.map((g) => `${code(g.id)} ${esc(g.status)}`).join('<br>') || '—'),
      ]),
      'facts',
    ),
    grouped ? '</details>' : '',
  );
  return page('nsprobe matrix', body, 'wide');
}
