// The consumer verdicts (report.consumers, src/consumers.ts) in every report format: one
// function per writer, which the writer calls, so the writers stay about probes.
import type { ConsumerVerdict, Report } from '../model.js';
import { safeLine as oneLine } from './common.js';

function installedText(v: ConsumerVerdict): string {
  return v.installed ? `${v.installed.path}${v.installed.version ? ` (${v.installed.version})` : ''}` : 'not installed';
}

function restsOnText(v: ConsumerVerdict): string {
  return [...v.restsOn.probes.map((p) => `${p.id} ${p.status}`), ...v.restsOn.gates.map((g) => `gate ${g.id} ${g.status}`)].join(', ');
}

/** TAP comment lines (the plan counts probes only, so consumers do not change it). */
export function consumerTapLines(r: Report): string[] {
  const vs = r.consumers ?? [];
  if (!vs.length) return [];
  const who = vs[0]!.for;
  const out = [`# consumers (for ${who.user}, uid ${who.uid}):`];
  for (const v of vs) {
    out.push(`# consumer ${v.id}: ${v.status}${v.fallback ? ` (fallback: ${oneLine(v.fallback)})` : ''} - ${oneLine(v.cause)}`);
    if (v.error) out.push(`#   it prints: ${oneLine(v.error)}`);
    if (v.warning && v.status === 'degraded') out.push(`#   it prints: ${oneLine(v.warning)}`);
  }
  return out;
}

/** JUnit test cases, one per consumer, in the host's suite: works/degraded pass, blocked is skipped with its cause (--require consumer:ID is the gate that fails a build). */
export function consumerCases(r: Report, host: string) {
  return (r.consumers ?? []).map((v) => ({
    classname: `${host}.consumer.${v.id}`,
    name: `consumer/${v.id}`,
    status: v.status,
    outcome:
      v.status === 'blocked'
        ? { kind: 'skipped' as const, message: `blocked for ${v.for.user}: ${oneLine(v.cause)}${v.error ? ` | it prints: ${oneLine(v.error)}` : ''}` }
        : { kind: 'pass' as const },
  }));
}

/** Markdown section: a table of verdicts, then the remedies of those not working. */
export function consumerMarkdown(r: Report, md: { text: (s: string) => string; code: (s: string, inTable?: boolean) => string; block: (s: string, lang?: string) => string }): string[] {
  const vs = r.consumers ?? [];
  if (!vs.length) return [];
  const who = vs[0]!.for;
  const out = [`## Consumers (for ${md.text(who.user)}, uid ${who.uid})`, '', '| Consumer | Verdict | Why | Installed |', '|---|---|---|---|'];
  for (const v of vs)
    out.push(`| ${md.code(v.id, true)} | ${v.status}${v.fallback ? ` (${md.text(v.fallback)})` : ''} | ${md.text(oneLine(v.cause))} | ${md.text(installedText(v))} |`);
  out.push('');
  for (const v of vs.filter((x) => x.status !== 'works')) {
    out.push(`### ${md.text(v.name)}: ${v.status}`, '', `- Command: ${md.code(v.command)}`, `- Rests on: ${md.text(restsOnText(v))}`);
    if (v.error) out.push(`- It prints: ${md.code(v.error)}`);
    if (v.warning && v.status === 'degraded') out.push(`- It prints: ${md.code(v.warning)}`);
    if (v.remedy) out.push('', 'Remedy:', '', md.block(v.remedy, 'sh'));
    out.push('');
  }
  return out;
}

/** HTML section, built with the writer's escaper. */
export function consumerHtml(r: Report, esc: (s: string) => string): string[] {
  const vs = r.consumers ?? [];
  if (!vs.length) return [];
  const who = vs[0]!.for;
  const rows = vs.map((v) =>
    `<tr class="consumer-${esc(v.status)}"><td><code>${esc(v.id)}</code></td><td>${esc(v.status)}${v.fallback ? ` (${esc(v.fallback)})` : ''}</td><td>${esc(v.cause)}${v.error ? `<br><code>${esc(v.error)}</code>` : ''}${v.remedy ? `<pre>${esc(v.remedy)}</pre>` : ''}</td><td>${esc(installedText(v))}</td></tr>`);
  return [`<h2>Consumers (for ${esc(who.user)}, uid ${who.uid})</h2>`, `<table><thead><tr><th>Consumer</th><th>Verdict</th><th>Why</th><th>Installed</th></tr></thead><tbody>${rows.join('')}</tbody></table>`];
}
