// --format nfd (Node Feature Discovery feature file) and --format prom (node_exporter textfile):
// names and values by the Kubernetes label rules, the expiry directive as NFD reads it, the text
// format checked by promtool, the atomic write, and the verdicts of a real run (with a control
// run where user namespaces are blocked).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Report } from '../src/model.js';
import { isLabelName, isLabelValue, labelValue, NFD_DEFAULT_TTL_MS, NFD_MAX_BYTES, NFD_PREFIX, renderNfd } from '../src/report/nfd.js';
import { renderProm } from '../src/report/prom.js';
import { REPORT_FILES, writeReports } from '../src/report/write.js';
import { GOOD, loadFixture } from './helpers/reports.js';
import { missingTools, needTools } from './helpers/tools.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-fleet-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

// The Kubernetes label rules, written out from the docs (labels.md), independent of src/report/nfd.ts.
const SEGMENT = /^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
function k8sLabelProblem(key: string, value: string): string | null {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? '' : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix && (prefix.length > 253 || !prefix.split('.').every((l) => DNS_LABEL.test(l)))) return `prefix ${prefix} is no DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !SEGMENT.test(name)) return `name ${name} breaks the rules`;
  if (value.length > 63 || (value !== '' && !SEGMENT.test(value))) return `value ${value} breaks the rules`;
  return null;
}

/** The feature lines as NFD's local source reads them: trimmed, comments skipped, split at the first '='. */
function nfdRead(text: string): { labels: Map<string, string>; expiry: string[]; directives: string[] } {
  const labels = new Map<string, string>();
  const expiry: string[] = [];
  const directives: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const d = /^#\s*\+(\S+?)(?:=(.*))?$/.exec(line);
      if (d) {
        directives.push(d[1]);
        if (d[1] === 'expiry-time') expiry.push(d[2] ?? '');
      }
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    labels.set(key, eq < 0 ? 'true' : line.slice(eq + 1));
  }
  return { labels, expiry, directives };
}

/** A report whose free text and ids are hostile to label rules and the text format. */
function hostileReport(): Report {
  const r = loadFixture('ubuntu-docker-failing');
  r.host.hostname = 'evil\nfeature.node.kubernetes.io/injected=true';
  r.host.kernel.release = '6.1 "quoted" \\ back\nslash';
  const bad = r.probes.find((p) => p.status !== 'pass')!;
  bad.gate = 'EPERM/uid_map -- weird gate!';
  bad.code = 'E"\\\n';
  r.gates[0].id = 'gate "with" \\ quotes\nand newline';
  r.consumers = [
    { id: 'podman-rootless', name: 'p', command: 'podman run', status: 'blocked', for: { user: 'a"b\\c\nd', uid: 1000, root: false }, restsOn: { probes: [], gates: [] }, cause: 'x', blocker: 'EPERM/uid_map', installed: null },
    { id: '-x'.repeat(60), name: 'long', command: 'x', status: 'works', for: { user: 'u', uid: 1, root: false }, restsOn: { probes: [], gates: [] }, cause: 'x', installed: null },
    { id: '///', name: 'nothing valid', command: 'x', status: 'degraded', for: { user: 'u', uid: 1, root: false }, restsOn: { probes: [], gates: [] }, cause: 'x', installed: null },
  ];
  return r;
}

// ---------------------------------------------------------------- label rules

test('the label rule check rejects what Kubernetes rejects (control for every NFD test)', (t) => {
  t.is(k8sLabelProblem('feature.node.kubernetes.io/nsprobe-userns.rootless', 'true'), null);
  t.is(k8sLabelProblem('feature.node.kubernetes.io/x', ''), null);
  t.truthy(k8sLabelProblem('feature.node.kubernetes.io/x', 'EPERM/uid_map'));
  t.truthy(k8sLabelProblem('feature.node.kubernetes.io/-x', 'a'));
  t.truthy(k8sLabelProblem('feature.node.kubernetes.io/x.', 'a'));
  t.truthy(k8sLabelProblem(`feature.node.kubernetes.io/${'a'.repeat(64)}`, 'a'));
  t.truthy(k8sLabelProblem('feature.node.kubernetes.io/x', 'a'.repeat(64)));
  t.truthy(k8sLabelProblem('Feature_Node/x', 'a'));
  t.truthy(k8sLabelProblem('feature.node.kubernetes.io/', 'a'));
  // and nfd.ts's own checks agree
  t.false(isLabelValue('EPERM/uid_map'));
  t.false(isLabelName(''));
  t.false(isLabelName('a'.repeat(64)));
  t.true(isLabelName('a'.repeat(63)));
  t.true(isLabelValue(''));
});

test('labelValue makes any string valid: EPERM/uid_map -> EPERM_uid_map, ends trimmed, 63 chars', (t) => {
  t.is(labelValue('EPERM/uid_map'), 'EPERM_uid_map');
  t.is(labelValue('--a b--'), 'a_b');
  t.is(labelValue('///'), '');
  t.is(labelValue('x'.repeat(100)).length, 63);
  t.is(labelValue(`${'a'.repeat(62)}-b`), 'a'.repeat(62));
  for (const s of ['', 'ä', '-_.', 'a\nb', `${'a'.repeat(62)}.`, '1.2.3-rc1', '"\'\\']) t.true(isLabelValue(labelValue(s)), JSON.stringify(s));
});

// ---------------------------------------------------------------- nfd

for (const name of GOOD) {
  test(`nfd: every label of ${name} is valid, once, under the expiry directive`, (t) => {
    const r = loadFixture(name);
    const text = renderNfd(r);
    t.true(Buffer.byteLength(text) < NFD_MAX_BYTES);
    t.true(text.endsWith('\n'));
    const { labels, expiry, directives } = nfdRead(text);
    t.deepEqual(directives, ['expiry-time']);
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    t.is(lines.length, labels.size, 'no label is set twice');
    for (const [k, v] of labels) {
      t.is(k8sLabelProblem(k, v), null, `${k}=${v}`);
      t.true(k.startsWith(NFD_PREFIX));
    }
    // the directive comes before every label
    t.true(text.indexOf('# +expiry-time=') < text.indexOf(`\n${NFD_PREFIX}`));
    // RFC 3339 as Go parses it, 24 h after the run finished
    t.regex(expiry[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    t.is(Date.parse(expiry[0]), Math.floor((Date.parse(r.startedAt) + r.durationMs + NFD_DEFAULT_TTL_MS) / 1000) * 1000);
    // one label per namespace probe and mode, true exactly when it passed
    for (const p of r.probes.filter((p) => p.probe === p.namespace)) {
      t.is(labels.get(`${NFD_PREFIX}nsprobe-${p.namespace}ns.${p.mode}`), p.status === 'pass' ? 'true' : 'false', p.id);
      if (p.status !== 'pass' && p.gate) t.is(labels.get(`${NFD_PREFIX}nsprobe-${p.namespace}ns.${p.mode}.gate`), labelValue(p.gate));
    }
  });
}

test('nfd: a failing host says false with its gate; consumers get their verdict', (t) => {
  const r = loadFixture('ubuntu-docker-failing');
  const { labels } = nfdRead(renderNfd(r));
  const notPass = r.probes.filter((p) => p.probe === p.namespace && p.status !== 'pass');
  t.true(notPass.length > 0, 'the fixture has a namespace probe that did not pass');
  for (const p of notPass) t.is(labels.get(`${NFD_PREFIX}nsprobe-${p.namespace}ns.${p.mode}.status`), p.status);
  r.consumers = [{ id: 'podman-rootless', name: 'p', command: 'podman', status: 'blocked', for: { user: 'u', uid: 1000, root: false }, restsOn: { probes: [], gates: [] }, cause: 'c', blocker: 'uid_map', installed: null }];
  const again = nfdRead(renderNfd(r)).labels;
  t.is(again.get(`${NFD_PREFIX}nsprobe-consumer.podman-rootless`), 'blocked');
  t.is(again.get(`${NFD_PREFIX}nsprobe-consumer.podman-rootless.blocker`), 'uid_map');
});

test('nfd: hostile ids and host names give valid labels and no injected line', (t) => {
  const text = renderNfd(hostileReport());
  const { labels, directives } = nfdRead(text);
  t.deepEqual(directives, ['expiry-time']);
  t.false(labels.has('feature.node.kubernetes.io/injected'));
  for (const [k, v] of labels) t.is(k8sLabelProblem(k, v), null, `${k}=${v}`);
  t.is(labels.get(`${NFD_PREFIX}nsprobe-consumer.podman-rootless.blocker`), 'EPERM_uid_map');
});

// ---------------------------------------------------------------- prom

/** Checks of the text format promtool does not make: no timestamps, HELP+TYPE first, one group each. */
function promProblems(text: string): string[] {
  const problems: string[] = [];
  if (!text.endsWith('\n')) problems.push('no final newline');
  const typed = new Set<string>();
  const done = new Set<string>();
  const seen = new Set<string>();
  let current = '';
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_][a-zA-Z0-9_]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') typed.add(meta[2]);
      continue;
    }
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/.exec(line);
    if (!m) {
      problems.push(`not a sample without timestamp: ${line}`);
      continue;
    }
    if (!m[1].startsWith('nsprobe_')) problems.push(`${m[1]} lacks the nsprobe_ prefix`);
    if (!typed.has(m[1])) problems.push(`${m[1]} has no TYPE before its samples`);
    if (m[1] !== current) {
      if (done.has(m[1])) problems.push(`${m[1]} is not one group`);
      if (current) done.add(current);
      current = m[1];
    }
    if (seen.has(m[1] + (m[2] ?? ''))) problems.push(`duplicate sample ${line}`);
    seen.add(m[1] + (m[2] ?? ''));
  }
  return problems;
}

test('the prom format check catches timestamps, missing TYPE and split groups (control)', (t) => {
  t.deepEqual(promProblems('# HELP nsprobe_a a\n# TYPE nsprobe_a gauge\nnsprobe_a 1\n'), []);
  t.true(promProblems('# TYPE nsprobe_a gauge\nnsprobe_a 1 1700000000000\n').length > 0);
  t.true(promProblems('nsprobe_a 1\n').length > 0);
  t.true(promProblems('# TYPE nsprobe_a gauge\n# TYPE nsprobe_b gauge\nnsprobe_a 1\nnsprobe_b 1\nnsprobe_a{x="1"} 1\n').length > 0);
  t.true(promProblems('# TYPE nsprobe_a gauge\nnsprobe_a 1\nnsprobe_a 1\n').length > 0);
});

for (const name of GOOD) {
  test(`prom: ${name} has every series, no timestamps, HELP and TYPE first`, (t) => {
    const r = loadFixture(name);
    const text = renderProm(r);
    t.deepEqual(promProblems(text), []);
    for (const p of r.probes) {
      t.true(text.includes(`nsprobe_probe_passed{probe="${p.probe}",namespace="${p.namespace}",mode="${p.mode}"} ${p.status === 'pass' ? 1 : 0}\n`), p.id);
      t.true(text.includes(`nsprobe_probe_info{probe="${p.probe}",namespace="${p.namespace}",mode="${p.mode}",status="${p.status}",`), p.id);
    }
    for (const g of r.gates) t.true(text.includes(`nsprobe_gate_info{gate="${g.id}",status="${g.status}"} 1\n`), g.id);
    t.regex(text, /^nsprobe_last_run_timestamp_seconds \d+(\.\d+)?$/m);
    t.regex(text, /^nsprobe_run_duration_seconds \d+(\.\d+)?$/m);
  });
}

test('prom: hostile label values are escaped', (t) => {
  const text = renderProm(hostileReport());
  t.deepEqual(promProblems(text), []);
  t.true(text.includes('user="a\\"b\\\\c\\nd"'));
  t.true(text.includes('nsprobe_consumer_works{consumer="podman-rootless",user="a\\"b\\\\c\\nd"} 0\n'));
});

const promtool = needTools(missingTools('promtool'));

function promtoolCheck(text: string): { status: number | null; out: string } {
  const res = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

promtool('promtool check metrics accepts every fixture and the hostile report, and rejects a broken file (control)', (t) => {
  for (const name of GOOD) {
    const res = promtoolCheck(renderProm(loadFixture(name)));
    t.is(res.status, 0, `${name}: ${res.out}`);
    t.is(res.out.trim(), '', `${name}: promtool has lint remarks: ${res.out}`);
  }
  const hostile = promtoolCheck(renderProm(hostileReport()));
  t.is(hostile.status, 0, hostile.out);
  const broken = promtoolCheck('# TYPE nsprobe_a gauge\nnsprobe_a{x="1} 1\n');
  t.not(broken.status, 0, 'promtool rejects a broken label');
  const lint = promtoolCheck('# TYPE nsprobe_a_total gauge\nnsprobe_a_total 1\n');
  t.not(lint.status, 0, 'promtool lints a gauge named _total');
});

// ---------------------------------------------------------------- writing and a real run

test('--format nfd,prom write only nsprobe.features and nsprobe.prom, no temporary file left', async (t) => {
  const d = tmp(t);
  const written = await writeReports(loadFixture('root-debian12'), d, ['nfd', 'prom']);
  t.deepEqual(written, [join(d, REPORT_FILES.nfd), join(d, REPORT_FILES.prom)]);
  t.deepEqual(readdirSync(d).sort(), ['nsprobe.features', 'nsprobe.prom']);
  // rewriting over the old files leaves no dotfile behind (NFD skips dotfiles; node_exporter reads *.prom only)
  writeFileSync(join(d, 'nsprobe.prom'), 'old\n');
  await writeReports(loadFixture('nobody-debian12'), d, ['nfd', 'prom']);
  t.deepEqual(readdirSync(d).sort(), ['nsprobe.features', 'nsprobe.prom']);
  t.not(readFileSync(join(d, 'nsprobe.prom'), 'utf8'), 'old\n');
});

function runCli(args: string[], wrap: string[] = []): { status: number | null; stderr: string } {
  const cmd = [...wrap, process.execPath, CLI, ...args];
  const res = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 120000 });
  return { status: res.status, stderr: res.stderr };
}

test('a real run: userns.rootless=true here; with max_user_namespaces=0 it is false with the gate (control)', (t) => {
  const d = tmp(t);
  const ok = runCli(['--only', 'user', '--mode', 'rootless', '--format', 'nfd,prom', '--out', d]);
  t.is(ok.status, 0, ok.stderr);
  const here = nfdRead(readFileSync(join(d, 'nsprobe.features'), 'utf8')).labels;
  t.is(here.get(`${NFD_PREFIX}nsprobe-userns.rootless`), 'true');
  t.true(readFileSync(join(d, 'nsprobe.prom'), 'utf8').includes('nsprobe_probe_passed{probe="user",namespace="user",mode="rootless"} 1\n'));

  const blocked = join(d, 'blocked');
  // A host whose limit is 0: a user namespace of our own where nested user namespaces are limited to none.
  const script = `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`;
  const res = runCli(['--only', 'user', '--mode', 'rootless', '--format', 'nfd', '--out', blocked], ['unshare', '-Ur', 'sh', '-c', script, 'sh']);
  t.not(res.status, 2, res.stderr);
  const there = nfdRead(readFileSync(join(blocked, 'nsprobe.features'), 'utf8')).labels;
  t.is(there.get(`${NFD_PREFIX}nsprobe-userns.rootless`), 'false');
  t.is(there.get(`${NFD_PREFIX}nsprobe-userns.rootless.gate`), 'max_user_namespaces');
});

test('--format with an unknown name still says which are known, including nfd and prom', (t) => {
  const res = runCli(['--format', 'nfd,yaml', '--out', tmp(t)]);
  t.is(res.status, 2);
  t.regex(res.stderr, /unknown format 'yaml' \(known: .*nfd, prom\)/);
  t.notRegex(res.stderr, /\n.+\n/);
});

// ---------------------------------------------------------------- the systemd timer

const systemdAnalyze = needTools(missingTools('systemd-analyze'));
const UNITS = resolve(import.meta.dirname, '..', 'deploy', 'systemd');

function verify(dir: string, units: string[]): { status: number | null; out: string } {
  const res = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], { encoding: 'utf8', timeout: 60000 });
  return { status: res.status, out: `${res.stdout}${res.stderr}`.trim() };
}

systemdAnalyze('deploy/systemd: the service and timer pass systemd-analyze verify without a remark; a bad key is seen (control)', (t) => {
  const d = tmp(t);
  // verify checks that ExecStart's program is executable: stand in for the installed nsprobe
  const service = readFileSync(join(UNITS, 'nsprobe-prom.service'), 'utf8');
  t.regex(service, /^ExecStart=\/usr\/local\/bin\/nsprobe --out \/var\/lib\/prometheus\/node-exporter --format prom /m);
  writeFileSync(join(d, 'nsprobe-prom.service'), service.replace('/usr/local/bin/nsprobe', process.execPath));
  writeFileSync(join(d, 'nsprobe-prom.timer'), readFileSync(join(UNITS, 'nsprobe-prom.timer'), 'utf8'));
  const ok = verify(d, ['nsprobe-prom.service', 'nsprobe-prom.timer']);
  t.is(ok.status, 0, ok.out);
  t.is(ok.out, '');
  writeFileSync(join(d, 'bad.service'), `${service.replace('/usr/local/bin/nsprobe', process.execPath)}\nBogusKey=1\n`);
  t.regex(verify(d, ['bad.service']).out, /Unknown key 'BogusKey'/);
});
