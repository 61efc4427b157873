// Prometheus text format (0.0.4) for node_exporter's textfile collector: nsprobe.prom in the
// collector's folder (Debian: /var/lib/prometheus/node-exporter). node_exporter skips a whole file
// that has client-side timestamps, so there are none; HELP and TYPE come before each metric's
// samples, and each metric's samples form one group. Textual facts are `_info` gauges (value 1,
// the data in labels); the 0/1 gauges beside them are what alerts use. The file is written like
// every report: a temporary name that does not end in .prom, then renamed.

import type { Report } from '../model.js';
import { sortedProbes } from './common.js';

/** A label value escaped for the text format (backslash, double quote, newline). */
export function promLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaped (backslash, newline). */
function promHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

type Labels = Record<string, string | number | null | undefined>;

function labelSet(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${promLabelValue(v === null || v === undefined ? '' : String(v))}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : 'NaN';
}

class Metrics {
  private lines: string[] = [];

  metric(name: string, help: string, samples: Array<[Labels, number]>): void {
    if (!samples.length) return;
    this.lines.push(`# HELP ${name} ${promHelp(help)}`, `# TYPE ${name} gauge`);
    const seen = new Set<string>();
    for (const [l, v] of samples) {
      const ls = labelSet(l);
      if (seen.has(ls)) continue; // one sample per name and label set
      seen.add(ls);
      this.lines.push(`${name}${ls} ${num(v)}`);
    }
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export function renderProm(r: Report): string {
  const m = new Metrics();
  const probes = sortedProbes(r.probes);
  const started = Date.parse(r.startedAt);
  m.metric('nsprobe_build_info', 'nsprobe version and the kernel it probed (value always 1).', [[{ version: r.tool.version, kernel: r.host.kernel.release, schema: r.schemaVersion }, 1]]);
  m.metric('nsprobe_probe_info', 'Verdict of each probe in each mode, with the gate and errno that explain a non-pass (value always 1).', probes.map((p) => [{ probe: p.probe, namespace: p.namespace, mode: p.mode, status: p.status, gate: p.gate ?? '', errno: p.code ?? '', stage: p.stage ?? '' }, 1]));
  m.metric('nsprobe_probe_passed', 'Whether the probe passed (1) or not (0) in the mode.', probes.map((p) => [{ probe: p.probe, namespace: p.namespace, mode: p.mode }, p.status === 'pass' ? 1 : 0]));
  m.metric('nsprobe_probe_duration_seconds', 'How long the probe took.', probes.map((p) => [{ probe: p.probe, mode: p.mode }, p.durationMs / 1000]));
  m.metric('nsprobe_gate_info', 'Status of each host gate: ok, warn, blocked or unknown (value always 1).', r.gates.map((g) => [{ gate: g.id, status: g.status }, 1]));
  m.metric('nsprobe_gate_ok', 'Whether the gate is ok (1) or warns, blocks or is unknown (0).', r.gates.map((g) => [{ gate: g.id }, g.status === 'ok' ? 1 : 0]));
  const cs = r.consumers ?? [];
  m.metric('nsprobe_consumer_info', 'Predicted verdict of each consumer (works, degraded, blocked) for the user it was judged for, and what blocks it (value always 1).', cs.map((c) => [{ consumer: c.id, status: c.status, user: c.for.user, uid: c.for.uid, blocker: c.blocker ?? '' }, 1]));
  m.metric('nsprobe_consumer_works', 'Whether the consumer works (1: works or degraded) or is blocked (0).', cs.map((c) => [{ consumer: c.id, user: c.for.user }, c.status === 'blocked' ? 0 : 1]));
  m.metric('nsprobe_probes', 'Probe results by status.', (['pass', 'fail', 'unsupported', 'error'] as const).map((s) => [{ status: s }, r.summary[s]]));
  if (Number.isFinite(started)) m.metric('nsprobe_last_run_timestamp_seconds', 'Unix time the run finished.', [[{}, (started + r.durationMs) / 1000]]);
  m.metric('nsprobe_run_duration_seconds', 'How long the run took.', [[{}, r.durationMs / 1000]]);
  return m.text();
}
