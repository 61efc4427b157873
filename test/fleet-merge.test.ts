// Merge at fleet size: the synthetic fleet generator (deterministic, valid reports), hosts grouped
// by verdicts in matrix.json, .md and .html, the merge reading one report at a time, and
// matrix.html with 10,000 hosts in headless Chromium (opens; the group filter shows only that
// group's rows). Speed and memory are measured by `npm run bench` (scripts/bench-merge.ts), not here.
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lastMergeWorkers, MIN_PARALLEL, runMerge } from '../src/merge.js';
import type { Report } from '../src/model.js';
import { renderMatrixHtml } from '../src/report/html.js';
import { renderMatrixMarkdown } from '../src/report/markdown.js';
import { buildMatrix, groupHosts, groupLine, MatrixBuilder, type Matrix } from '../src/report/matrix.js';
import { parseReport } from '../src/report/validate.js';
import { fleetHost, writeFleet } from '../scripts/fleet-gen.js';
import { CHROMIUM, openBrowser } from './helpers/browser.js';
import { missingTools, needTools } from './helpers/tools.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-fleet-merge-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function fleet(n: number, seed = 1): Array<{ source: string; report: Report; profile: string }> {
  return Array.from({ length: n }, (_, i) => {
    const h = fleetHost(seed, i);
    return { source: `${h.report.host.hostname}/report.json`, report: h.report, profile: h.profile };
  });
}

test('the generator is deterministic by seed, and every report it makes is a valid report', (t) => {
  const a = fleet(40, 7);
  const b = fleet(40, 7);
  const c = fleet(40, 8);
  t.deepEqual(a.map((x) => x.report), b.map((x) => x.report));
  t.notDeepEqual(a.map((x) => x.report), c.map((x) => x.report));
  // host i is the same whatever the fleet's size
  t.deepEqual(fleet(3, 7).map((x) => x.report), a.slice(0, 3).map((x) => x.report));
  for (const x of a) {
    const v = parseReport(JSON.stringify(x.report));
    t.true(v.ok, `${x.source}: ${v.ok ? '' : v.error}`);
  }
  t.is(new Set(a.map((x) => x.report.host.hostname)).size, a.length, 'host names are unique');
});

test('a fleet of 400: groups cover every host once, largest first, and each shares its verdicts', (t) => {
  const inputs = fleet(400);
  const m = buildMatrix(inputs, new Date('2026-12-01T09:00:00Z'));
  t.is(m.hosts.length, 400);
  t.is(m.groups.reduce((n, g) => n + g.count, 0), 400);
  t.deepEqual(m.groups.flatMap((g) => g.hosts).sort(), m.hosts.map((h) => h.label).sort());
  for (let i = 1; i < m.groups.length; i++) t.true(m.groups[i - 1].count >= m.groups[i].count);
  // every host of a group has exactly the group's non-pass cells
  for (const g of m.groups) {
    for (const label of g.hosts) {
      const nonPass = Object.entries(m.cells[label]).filter(([, c]) => c.status !== 'pass').map(([id, c]) => ({ id, status: c.status, gate: c.gate ?? null }));
      t.deepEqual(nonPass.sort((x, y) => (x.id < y.id ? -1 : 1)), [...g.verdicts].sort((x, y) => (x.id < y.id ? -1 : 1)), label);
    }
  }
  const counts = new Map<string, number>();
  for (const x of inputs) counts.set(x.profile, (counts.get(x.profile) ?? 0) + 1);
  // the all-pass root hosts form the largest group
  t.is(m.groups[0].summary, 'all pass');
  t.is(m.groups[0].count, counts.get('root-full') ?? -1);
  // the hosts where max_user_namespaces is 0 are one group that names the gate
  const zero = m.groups.find((g) => /^privileged: user unsupported \(max_user_namespaces\); rootless: \d+ probes unsupported \(max_user_namespaces\)$/.test(g.summary));
  t.truthy(zero, m.groups.map(groupLine).join('\n'));
  t.is(zero!.count, counts.get('userns-limit-zero') ?? -1);
  // control: a host whose one cell differs is not in the group
  const changed = structuredClone(inputs[0].report);
  changed.host.hostname = 'odd-one';
  changed.probes[0].status = 'fail';
  changed.summary = { ...changed.summary, pass: changed.summary.pass - 1, fail: changed.summary.fail + 1 };
  const m2 = buildMatrix([...inputs, { source: 'odd/report.json', report: changed }]);
  t.is(m2.groups.length, m.groups.length + 1);
  t.true(m2.groups.some((g) => g.count === 1 && g.hosts[0].startsWith('odd-one')));
});

test('groups are in matrix.md and matrix.html as "N hosts: ..." lines before the rows', (t) => {
  const m = buildMatrix(fleet(120), new Date('2026-12-01T09:00:00Z'));
  const md = renderMatrixMarkdown(m);
  const html = renderMatrixHtml(m);
  for (const g of m.groups) {
    t.true(md.includes(`- ${groupLine(g)}`.replace(/_/g, '\\_')) || md.includes(`- ${groupLine(g)}`), groupLine(g));
    t.regex(html, new RegExp(`id="g-\\d+"> ${groupLine(g).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</label>`));
  }
  t.true(md.indexOf('## Hosts with the same verdicts') < md.indexOf('| Host |'));
  t.regex(groupLine({ ...m.groups[0], count: 3112 }), /^3,112 hosts: /);
});

test('nsprobe merge of a written fleet: matrix.json has the groups; the same report twice is still merged once', async (t) => {
  const d = tmp(t);
  await mkdir(join(d, 'in'));
  const counts = writeFleet(join(d, 'in'), 60, 3);
  t.is(Object.values(counts).reduce((a, b) => a + b, 0), 60);
  const first = readFileSync(join(d, 'in', fleetHost(3, 0).report.host.hostname, 'report.json'), 'utf8');
  await mkdir(join(d, 'in', 'zz-copy'));
  writeFileSync(join(d, 'in', 'zz-copy', 'report.json'), first);
  const err: string[] = [];
  const code = await runMerge([join(d, 'in'), '--out', join(d, 'out')], { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } });
  t.is(code, 0, err.join(''));
  const m = JSON.parse(readFileSync(join(d, 'out', 'matrix.json'), 'utf8')) as Matrix;
  t.is(m.hosts.length, 60);
  t.is(m.duplicates.length, 1);
  t.regex(err.join(''), /zz-copy\/report\.json is identical to/);
  t.is(m.groups.reduce((n, g) => n + g.count, 0), 60);
});

test.serial('merge in worker threads (a fleet past MIN_PARALLEL) gives the matrix the one-thread merge gives, duplicate included', async (t) => {
  const d = tmp(t);
  await mkdir(join(d, 'in'));
  const n = MIN_PARALLEL + 50;
  writeFleet(join(d, 'in'), n, 5);
  const first = readFileSync(join(d, 'in', fleetHost(5, 0).report.host.hostname, 'report.json'), 'utf8');
  await mkdir(join(d, 'in', 'zz-copy'));
  writeFileSync(join(d, 'in', 'zz-copy', 'report.json'), first);
  const merged = async (workers: string, out: string) => {
    const before = process.env.NSPROBE_MERGE_WORKERS;
    process.env.NSPROBE_MERGE_WORKERS = workers;
    const err: string[] = [];
    try {
      const code = await runMerge([join(d, 'in'), '--out', join(d, out)], { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } });
      t.is(code, 0, err.join(''));
      t.is(lastMergeWorkers(), Number(workers));
    } finally {
      if (before === undefined) delete process.env.NSPROBE_MERGE_WORKERS;
      else process.env.NSPROBE_MERGE_WORKERS = before;
    }
    const m = JSON.parse(readFileSync(join(d, out, 'matrix.json'), 'utf8')) as Matrix;
    return { ...m, generatedAt: '' };
  };
  const parallel = await merged('2', 'out-2');
  const serial = await merged('0', 'out-0');
  t.is(parallel.hosts.length, n);
  t.is(parallel.duplicates.length, 1);
  t.deepEqual(parallel, serial);
  // The control: the comparison sees a difference where there is one.
  t.notDeepEqual(parallel, { ...serial, hosts: serial.hosts.slice(1) });
});

test.serial('merge in worker threads names the first bad input by input order, writes nothing, and leaves no thread behind', async (t) => {
  const d = tmp(t);
  await mkdir(join(d, 'in'));
  writeFleet(join(d, 'in'), MIN_PARALLEL + 50, 6);
  const names = readdirSync(join(d, 'in')).sort();
  const bad = [names[MIN_PARALLEL - 10], names[40]]; // the later one broken first: the order of inputs decides
  for (const name of bad) writeFileSync(join(d, 'in', name, 'report.json'), '{"schemaVersion": 1, "tool": {"name": "nsprobe"');
  const threadCount = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const threadsBefore = threadCount();
  const before = process.env.NSPROBE_MERGE_WORKERS;
  process.env.NSPROBE_MERGE_WORKERS = '2';
  const err: string[] = [];
  try {
    const code = await runMerge([join(d, 'in'), '--out', join(d, 'out')], { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } });
    t.is(code, 2);
  } finally {
    if (before === undefined) delete process.env.NSPROBE_MERGE_WORKERS;
    else process.env.NSPROBE_MERGE_WORKERS = before;
  }
  t.is(err.length, 1);
  t.true(err[0].includes(`${bad[1]}/report.json: not valid JSON`), err[0]);
  t.false(existsSync(join(d, 'out')));
  await new Promise((r) => setTimeout(r, 300));
  t.true(threadCount() <= threadsBefore, `${threadCount()} threads after, ${threadsBefore} before`);
});

test('the builder keeps rows, not reports: a report changed after add() does not change the matrix', (t) => {
  const inputs = fleet(5);
  const b = new MatrixBuilder((s) => inputs.find((i) => i.source === s)!.report);
  for (const i of inputs) b.add(i);
  for (const i of inputs) {
    i.report.probes.length = 0;
    i.report.host.hostname = 'gone';
  }
  const m = b.finish();
  t.false(m.hosts.some((h) => h.hostname === 'gone'));
  t.true(Object.values(m.cells).every((row) => Object.keys(row).length > 0));
});

// ---------------------------------------------------------------- 10,000 hosts in Chromium

declare const document: {
  querySelectorAll(selector: string): { length: number } & Iterable<{ offsetParent: unknown; className: string }>;
};

/** A 10,000-host matrix: 100 generated hosts, each row repeated under new names (building 10,000 real rows is the bench's job). */
function bigMatrix(): Matrix {
  const base = buildMatrix(fleet(100), new Date('2026-12-01T09:00:00Z'));
  const hosts = [];
  const cells: Matrix['cells'] = {};
  for (let i = 0; i < 10000; i++) {
    const h = base.hosts[i % base.hosts.length];
    const label = `${h.hostname.replace(/^[a-z-]+-\d+/, (s) => `${s}-${i}`)} (${h.distro.id} ${h.distro.versionId}, ${h.kernel})`;
    hosts.push({ ...h, label, hostname: label.split(' ')[0] });
    cells[label] = base.cells[h.label];
  }
  return { ...base, hosts, cells, groups: groupHosts(hosts, base.columns, cells) };
}

needTools(missingTools(CHROMIUM) && 'chromium is not installed (apt-get install -y chromium)')('matrix.html with 10,000 hosts opens in Chromium: a row per group, and the group filter shows only that group and its hosts', async (t) => {
  const m = bigMatrix();
  t.is(m.hosts.length, 10000);
  const d = tmp(t);
  const file = join(d, 'matrix.html');
  writeFileSync(file, renderMatrixHtml(m));
  const browser = await openBrowser();
  t.teardown(() => browser.close());
  const p = await browser.context.newPage();
  const t0 = Date.now();
  await p.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 120_000 });
  const opened = Date.now() - t0;
  const visible = (sel: string) => p.evaluate((q) => [...document.querySelectorAll(q)].filter((r) => r.offsetParent !== null).length, sel);
  // a row per group of hosts with the same verdicts; every host listed under its group
  t.is(await visible('.matrix tbody tr'), m.groups.length);
  t.is(await visible('.bygroup > details'), m.groups.length);
  const small = m.groups.findIndex((g) => g.summary.includes('max_user_namespaces'));
  t.true(small >= 0);
  const t1 = Date.now();
  await p.click(`#g-${small + 1}`);
  t.is(await visible('.matrix tbody tr'), 1, 'only the chosen group is shown');
  t.is(await visible('.bygroup > details'), 1);
  const filtered = Date.now() - t1;
  await p.click(`#hosts-${small + 1} > summary`);
  t.is(await visible(`#hosts-${small + 1} li`), m.groups[small].count, 'its hosts are listed');
  t.is(await visible('.bygroup li'), m.groups[small].count, 'control: the other groups stay hidden');
  await p.click('#g-0');
  t.is(await visible('.matrix tbody tr'), m.groups.length, 'all again');
  // The table of all 10,000 host runs is there, folded: opened, every row shows; no script on the page.
  // (rows in a closed <details> keep an offsetParent in Chromium: checkVisibility() sees the fold)
  const shown = (sel: string) => p.evaluate((q) => [...(document.querySelectorAll(q) as unknown as Iterable<{ checkVisibility(): boolean }>)].filter((r) => r.checkVisibility()).length, sel);
  t.is(await shown('table.facts tbody tr'), 0, 'folded at first');
  const t2 = Date.now();
  await p.click('details:has(> summary > h2) > summary');
  t.is(await shown('table.facts tbody tr'), 10000);
  const unfolded = Date.now() - t2;
  t.is(await p.evaluate(() => (document as unknown as { scripts: { length: number } }).scripts.length), 0);
  t.log(`10,000 hosts: ${(Buffer.byteLength(readFileSync(file)) / 1e6).toFixed(1)} MB, opened in ${opened} ms, filtered in ${filtered} ms, all rows unfolded in ${unfolded} ms (under load from other jobs; not asserted: speed is the bench's)`);
});


test('a group summary names each mode once, its verdicts after it', (t) => {
  const inputs = fleet(400, 2);
  const m = buildMatrix(inputs);
  const twice = (s: string) => ['privileged', 'rootless'].some((mode) => s.split(`${mode}: `).length > 2);
  t.true(m.groups.some((g) => /privileged: [^;]+, [^;]+\(kernel_version\)/.test(g.summary)), m.groups.map((g) => g.summary).join('\n'));
  for (const g of m.groups) t.false(twice(g.summary), g.summary);
  // The control: the check sees a mode named twice.
  t.true(twice('privileged: 6 probes unsupported; privileged: cgroup, time unsupported (kernel_version)'));
});
