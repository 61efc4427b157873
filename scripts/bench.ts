// npm run bench: namespace creation through the addon against the raw clone()+wait floor, and the
// whole suite as a process (median wall time of 10 runs, peak RSS), with `node -e 0` measured in
// the same run as the floor of a Node process. Results: reports/bench.json and a table.
// Same flags as `nsprobe bench` (src/cli.ts parseBenchArgs), with larger defaults.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { UsageError, runProgram } from '../src/args.js';
import { benchNamespaces, benchSuite, renderNsTable, renderSuiteLine } from '../src/bench.js';
import { benchHelp, parseBenchArgs } from '../src/cli.js';
import { benchAgentNamespaces, benchAgentSuite, renderAgentRows } from '../src/agent/bench.js';
import { packageRoot } from '../src/paths.js';
import { writeFileAtomic } from '../src/report/write.js';

const DEFAULTS = { iterations: 400, runs: 10 };

async function main(): Promise<number> {
  const a = parseBenchArgs(process.argv.slice(2), DEFAULTS);
  if (a.help) {
    process.stdout.write(benchHelp('npm run bench --', DEFAULTS));
    return 0;
  }
  const reportsDir = join(packageRoot(), 'reports');
  const file = join(reportsDir, 'bench.json');
  try {
    mkdirSync(reportsDir, { recursive: true });
    accessSync(reportsDir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write ${reportsDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const log = (s: string) => {
    if (!a.json) process.stdout.write(s);
  };
  const privileged = process.geteuid?.() === 0;
  log(`namespace creation: enter + 1 request + close, ${a.iterations} iterations each (raw = clone()+wait in C)\n`);
  const rows = await benchNamespaces({ iterations: a.iterations, warmup: 20, warmupAll: 1000, privileged });
  log(renderNsTable(rows));
  const suite = a.runs ? benchSuite(a.runs) : null;
  // The agent path beside the addon (src/agent/bench.ts): per namespace, and the suite via --via env.
  const agentNs = await benchAgentNamespaces({ iterations: Math.max(10, Math.floor(a.iterations / 4)), privileged });
  const agentSuite = a.runs ? benchAgentSuite(a.runs) : null;
  const result = {
    generatedAt: new Date().toISOString(),
    host: { kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(), cpus: cpus().length, euid: process.geteuid?.() },
    namespaces: rows,
    suite,
    agent: { namespaces: agentNs, suite: agentSuite },
  };
  if (suite) log(renderSuiteLine(suite));
  log(renderAgentRows(agentNs, agentSuite));
  try {
    await writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
  } catch (e) {
    process.stderr.write(`bench: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  if (a.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  log(`written: ${file}\n`);
  return 0;
}

runProgram('bench', main, 1);
