// The agent's rows of `npm run bench`: enter + 1 request + close per namespace type through a
// local agent over a pipe beside the addon (interleaved in small batches, so machine noise falls
// on both alike), and the whole suite through --via env against a local run (wall-clock medians).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonLatencies, stats, type Stats } from '../bench.js';
import type { Mode, NsType } from '../model.js';
import { NS_TYPES } from '../namespaces.js';
import { agentPath, setTransport } from '../native.js';
import { packageRoot } from '../paths.js';
import { AgentClient, localLauncher } from './client.js';

export interface AgentNsRow {
  name: NsType | 'all';
  mode: Mode;
  addon: Stats;
  agent: Stats;
  /** agent p50 / addon p50 */
  ratio: number;
}
export interface AgentSuiteRow {
  runs: number;
  localMs: number;
  viaMs: number;
  ratio: number;
}

export async function benchAgentNamespaces(opts: { iterations: number; privileged: boolean }): Promise<AgentNsRow[] | null> {
  const path = agentPath();
  if (!path) return null;
  const agent = new AgentClient(localLauncher(path));
  const mode: Mode = opts.privileged ? 'privileged' : 'rootless';
  const cases: { name: NsType | 'all'; ns: NsType[] }[] = [...NS_TYPES.map((t) => ({ name: t, ns: [t] })), { name: 'all', ns: [...NS_TYPES] }];
  const rows: AgentNsRow[] = [];
  const viaAgent = async <T>(fn: () => Promise<T>): Promise<T> => {
    setTransport(agent);
    try {
      return await fn();
    } finally {
      setTransport(undefined);
    }
  };
  try {
    await viaAgent(() => addonLatencies(['uts'], mode, 50));
    for (const c of cases) {
      const batch = Math.max(1, Math.min(20, Math.floor(opts.iterations / 10)));
      const a: number[] = [], g: number[] = [];
      await addonLatencies(c.ns, mode, 5);
      await viaAgent(() => addonLatencies(c.ns, mode, 5));
      for (let done = 0; done < opts.iterations; done += batch) {
        a.push(...(await addonLatencies(c.ns, mode, batch)));
        g.push(...(await viaAgent(() => addonLatencies(c.ns, mode, batch))));
      }
      const sa = stats(a), sg = stats(g);
      rows.push({ name: c.name, mode, addon: sa, agent: sg, ratio: Math.round((sg.p50 / sa.p50) * 100) / 100 });
    }
  } finally {
    agent.shutdown();
  }
  return rows;
}

export function benchAgentSuite(runs: number): AgentSuiteRow | null {
  if (!agentPath()) return null;
  const root = packageRoot();
  const bundle = join(root, 'dist', 'bin', 'nsprobe.js');
  const cli = existsSync(bundle) ? bundle : join(root, 'dist', 'src', 'nsprobe.js');
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-bench-'));
  const time = (argv: string[]) => {
    const t = performance.now();
    const r = spawnSync(process.execPath, [cli, ...argv, '--out', out], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`the suite (${argv.join(' ') || 'local'}) exited with ${r.status}`);
    return performance.now() - t;
  };
  const local: number[] = [], via: number[] = [];
  try {
    time([]);
    time(['--via', 'env']);
    for (let i = 0; i < runs; i++) {
      local.push(time([]));
      via.push(time(['--via', 'env']));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const l = stats(local).p50, v = stats(via).p50;
  return { runs, localMs: Math.round(l), viaMs: Math.round(v), ratio: Math.round((v / l) * 100) / 100 };
}

export function renderAgentRows(ns: AgentNsRow[] | null, suite: AgentSuiteRow | null): string {
  if (!ns && !suite) return 'agent: not built (npm run build)\n';
  const lines: string[] = [];
  if (ns) {
    lines.push('', 'the agent path (a local nsprobe-agent over a pipe) beside the addon: enter + 1 request + close');
    lines.push(`${'namespace'.padEnd(10)} ${'mode'.padEnd(11)} ${'addon p50'.padEnd(10)} ${'agent p50'.padEnd(10)} ${'agent p99'.padEnd(10)} ratio`);
    for (const r of ns) lines.push(`${r.name.padEnd(10)} ${r.mode.padEnd(11)} ${`${r.addon.p50.toFixed(3)} ms`.padEnd(10)} ${`${r.agent.p50.toFixed(3)} ms`.padEnd(10)} ${`${r.agent.p99.toFixed(3)} ms`.padEnd(10)} ${r.ratio.toFixed(2)}x`);
  }
  if (suite) lines.push('', `whole suite through --via env, ${suite.runs} runs, medians: ${suite.viaMs} ms against ${suite.localMs} ms local = ${suite.ratio.toFixed(2)}x (target: within 2x)`);
  return lines.join('\n') + '\n';
}
