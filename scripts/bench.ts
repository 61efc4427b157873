// npm run bench: namespace creation through the addon against the raw clone()+wait floor, and the
// whole suite as a process (median wall time of 10 runs, peak RSS), with `node -e 0` measured in
// the same run as the floor of a Node process. Results: reports/bench.json and a table.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchNamespaces, renderNsTable, stats } from '../src/bench.js';
import { packageRoot } from '../src/paths.js';
import { writeFileAtomic } from '../src/report/write.js';

// Bad input gets one line and exit 2, as everywhere in nsprobe.
function die(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
const usage = (msg: string): never => die(`${msg} (npm run bench -- [--iterations N] [--runs N])`);
const cannotWrite = (path: string, e: unknown): never => die(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
const known = new Set(['--iterations', '--runs']);
for (let i = 2; i < process.argv.length; i += 2) {
  if (!known.has(process.argv[i])) usage(`unknown argument '${process.argv[i]}'`);
  if (!/^[1-9]\d*$/.test(process.argv[i + 1] ?? '')) usage(`${process.argv[i]} needs a positive whole number`);
}
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const iterations = arg('--iterations', 400);
const suiteRuns = arg('--runs', 10);
const root = packageRoot();
const reportsDir = join(root, 'reports');
try {
  mkdirSync(reportsDir, { recursive: true });
  accessSync(reportsDir, constants.W_OK);
} catch (e) {
  cannotWrite(reportsDir, e);
}
const cli = join(root, 'dist', 'src', 'cli.js');
// Prints the peak RSS of the child when it exits (KiB), without touching the CLI itself.
const RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('nsprobe-maxrss='+process.resourceUsage().maxRSS+'\\n'))`;

function timeProcess(argv: string[]): { ms: number; rssKiB: number; status: number | null } {
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--import', RSS_HOOK, ...argv], { encoding: 'utf8', cwd: root });
  const ms = performance.now() - t;
  const m = /nsprobe-maxrss=(\d+)/.exec(r.stderr);
  return { ms, rssKiB: m ? Number(m[1]) : 0, status: r.status };
}

const privileged = process.geteuid?.() === 0;
console.log(`namespace creation: enter + 1 request + close, ${iterations} iterations each (raw = clone()+wait in C)`);
const rows = await benchNamespaces({ iterations, warmup: 20, warmupAll: 1000, privileged });
process.stdout.write(renderNsTable(rows));

const out = mkdtempSync(join(tmpdir(), 'nsprobe-bench-'));
const suite: { ms: number; rssKiB: number }[] = [];
const floor: { ms: number; rssKiB: number }[] = [];
let probes = 0;
try {
  timeProcess([cli, '--out', out]); // warm the page cache
  for (let i = 0; i < suiteRuns; i++) {
    floor.push(timeProcess(['-e', '0']));
    const s = timeProcess([cli, '--out', out]);
    if (s.status !== 0) throw new Error(`the suite exited with ${s.status}`);
    suite.push(s);
  }
  probes = (JSON.parse(spawnSync('cat', [join(out, 'report.json')], { encoding: 'utf8' }).stdout) as { probes: unknown[] }).probes.length;
} finally {
  rmSync(out, { recursive: true, force: true });
}
const median = (xs: number[]) => stats(xs).p50;
const result = {
  generatedAt: new Date().toISOString(),
  host: { kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(), cpus: (await import('node:os')).cpus().length, euid: process.geteuid?.() },
  namespaces: rows,
  suite: {
    runs: suiteRuns,
    probes,
    medianMs: Math.round(median(suite.map((s) => s.ms))),
    peakRssMiB: Math.round(Math.max(...suite.map((s) => s.rssKiB)) / 1024),
    nodeFloorMedianMs: Math.round(median(floor.map((s) => s.ms))),
    nodeFloorRssMiB: Math.round(Math.max(...floor.map((s) => s.rssKiB)) / 1024),
  },
};
console.log(
  `\nwhole suite as a process (${probes} probes, all reports), ${suiteRuns} runs: median ${result.suite.medianMs} ms, peak RSS ${result.suite.peakRssMiB} MiB` +
    ` (node -e 0 in the same run: median ${result.suite.nodeFloorMedianMs} ms, ${result.suite.nodeFloorRssMiB} MiB)`,
);
const file = join(reportsDir, 'bench.json');
try {
  await writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
} catch (e) {
  cannotWrite(file, e);
}
console.log(`written: ${file}`);
