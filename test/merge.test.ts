// `nsprobe merge`: happy path on real fixtures, duplicate labels, and every way an input or
// the output can be wrong (exit 2, one line naming the file, nothing written).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MATRIX_FILES, runMerge } from '../src/merge.js';
import type { Matrix } from '../src/report/matrix.js';
import { uniqueLabels } from '../src/report/matrix.js';
import { BROKEN, REPORTS_DIR, fixturePath } from './helpers/reports.js';
import { xmllintFile } from './helpers/xml.js';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function merge(argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const code = await runMerge(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nsprobe-test-merge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readMatrix(out: string): Promise<Matrix> {
  return JSON.parse(await readFile(join(out, 'matrix.json'), 'utf8')) as Matrix;
}

const BASE_COLUMNS = ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time'].flatMap((ns) => [`${ns}/privileged`, `${ns}/rootless`]);
const ROOT_LABEL = 'ci-runner-07 (debian 12, 6.1.0-18-amd64)';
const CENTOS_LABEL = 'legacy-db-01 (centos 7, 3.10.0-1160.119.1.el7.x86_64)';

/** Exactly one stderr line of the form `nsprobe merge: <path>: <reason>`. */
function assertOneLine(t: ExecutionContext, r: Outcome, path: string, reason: RegExp): void {
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
  t.true(r.stderr.endsWith('\n'));
  t.true(r.stderr.startsWith(`nsprobe merge: ${path}: `), r.stderr);
  t.regex(r.stderr, reason);
}

test('merges three reports into matrix.json, .md, .html and a valid matrix-junit.xml', async (t) => {
  const out = join(await tempDir(t), 'matrix');
  const inputs = [fixturePath('root-debian12'), fixturePath('nobody-debian12'), fixturePath('centos7-user')];
  const r = await merge([...inputs, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.regex(r.stdout, /^merged 3 report\(s\)/);
  t.deepEqual((await readdir(out)).sort(), [...MATRIX_FILES].sort());

  const m = await readMatrix(out);
  t.is(m.schemaVersion, 1);
  t.regex(m.generatedAt, /^\d{4}-\d\d-\d\dT/);
  t.deepEqual(m.columns, BASE_COLUMNS);
  t.deepEqual(m.hosts.map((h) => h.label), [ROOT_LABEL, `${ROOT_LABEL} #2`, CENTOS_LABEL]);
  t.deepEqual(m.hosts.map((h) => h.source), inputs);
  t.deepEqual(m.hosts.map((h) => h.euid), [0, 65534, 1000]);
  t.like(m.hosts[2], { hostname: 'legacy-db-01', kernel: '3.10.0-1160.119.1.el7.x86_64', arch: 'x86_64', distro: { id: 'centos', versionId: '7' } });
  t.deepEqual(m.hosts[2].summary, { pass: 0, fail: 0, unsupported: 16, error: 0 });
  t.deepEqual(m.hosts[2].gates.map((g) => [g.id, g.status]), [['max_user_namespaces', 'blocked'], ['kernel_version', 'warn']]);
  t.deepEqual(m.hosts[0].gates, [], 'only gates that are not ok');
  t.deepEqual(m.cells[ROOT_LABEL]['user/rootless'], { status: 'pass', durationMs: 68.2 });
  t.like(m.cells[`${ROOT_LABEL} #2`]['uts/privileged'], { status: 'unsupported', cause: 'needs root (CAP_SYS_ADMIN)', gate: null });
  t.like(m.cells[CENTOS_LABEL]['user/rootless'], {
    status: 'unsupported',
    cause: 'user.max_user_namespaces is 0, so no user namespace can be created',
    gate: 'max_user_namespaces',
  });
  t.regex(m.cells[CENTOS_LABEL]['user/rootless'].remedy ?? '', /^sudo sysctl -w user\.max_user_namespaces=15000\n/);

  const check = await xmllintFile(join(out, 'matrix-junit.xml'));
  t.true(check.ok, check.output);
  const junit = await readFile(join(out, 'matrix-junit.xml'), 'utf8');
  t.is([...junit.matchAll(/<testsuite /g)].length, 3);
  t.is([...junit.matchAll(/<testcase /g)].length, 48);
  t.regex(junit, /<testsuite name="legacy-db-01 \(centos 7, 3\.10\.0-1160\.119\.1\.el7\.x86_64\)" tests="16" failures="0" errors="0" skipped="16"/);
  t.regex(junit, /<property name="gate.max_user_namespaces" value="blocked"\/>/);

  const md = await readFile(join(out, 'matrix.md'), 'utf8');
  t.regex(md, /\| Host \| uts\/privileged \| uts\/rootless \|/);
  t.regex(md, /\| ci-runner-07 \(debian 12, 6\.1\.0-18-amd64\) #2<br>euid 65534, rootless \| ⚪ unsupported: needs root \(CAP\\_SYS\\_ADMIN\) \[\d+\]/);
  t.regex(md, /## Causes and remedies[\s\S]*\*\*unsupported\*\*: user\.max\\_user\\_namespaces is 0, so no user namespace can be created \(gate `max_user_namespaces`\)/);
  t.regex(md, /```sh\n {3}sudo sysctl -w user\.max_user_namespaces=15000/);

  const html = await readFile(join(out, 'matrix.html'), 'utf8');
  t.regex(html, /<td class="s-pass">pass<\/td>/);
  t.regex(html, /<td class="s-unsupported" title="user\.max_user_namespaces is 0[^"]*">unsupported <a href="#note-\d+">/);
  t.regex(html, /<li id="note-\d+"><p><strong>unsupported<\/strong>: user\.max_user_namespaces is 0, so no user namespace can be created \(gate <code>max_user_namespaces<\/code>\)<\/p><pre><code>sudo sysctl -w/);
  t.notRegex(html, /<script|<link|\ssrc=/i);
});

test('a directory is searched recursively for report.json (other .json files are ignored)', async (t) => {
  const out = join(await tempDir(t), 'out');
  const r = await merge([REPORTS_DIR, '--out', out]);
  t.is(r.code, 0, r.stderr);
  const m = await readMatrix(out);
  t.deepEqual(
    m.hosts.map((h) => h.source),
    ['centos7-user', 'container-skips', 'nobody-debian12', 'root-debian12', 'ubuntu-docker-failing'].map((d) => join(REPORTS_DIR, d, 'report.json')),
  );
  t.like(m.cells['build-7f3c9a (ubuntu 24.04, 6.8.0-45-generic)'], {
    'net/privileged': { status: 'fail', cause: 'a veth created inside showed up on the host' },
    'mnt/rootless': { status: 'error', gate: 'seccomp' },
  });
  const check = await xmllintFile(join(out, 'matrix-junit.xml'));
  t.true(check.ok, check.output);
  const junit = await readFile(join(out, 'matrix-junit.xml'), 'utf8');
  t.regex(junit, /<testcase classname="nsprobe\.build-7f3c9a\.mnt\.rootless" name="mnt\/rootless" time="[0-9.]+" status="error">\s*<error message="setns\(CLONE_NEWNS\) was refused with EPERM" type="seccomp">/);
});

test('matrix-junit.xml: a suite per host run, a test case per probe/mode with a class name unique over the matrix, time, the gate as the type', async (t) => {
  const out = join(await tempDir(t), 'out');
  const r = await merge([REPORTS_DIR, '--out', out]);
  t.is(r.code, 0, r.stderr);
  const m = await readMatrix(out);
  const junit = await readFile(join(out, 'matrix-junit.xml'), 'utf8');
  const suites = [...junit.matchAll(/<testsuite name="([^"]*)"/g)].map((x) => x[1]);
  t.deepEqual(suites, m.hosts.map((h) => h.label));
  const cases = [...junit.matchAll(/<testcase classname="([^"]*)" name="([^"]*)" time="(\d+\.\d{3})"/g)];
  t.is(cases.length, m.hosts.length * m.columns.length, 'every test case has a time');
  const classnames = cases.map((c) => c[1]);
  t.is(new Set(classnames).size, classnames.length, 'class names are unique');
  // ci-runner-07 ran twice (root and nobody): the first run keeps the host name's prefix, the second gets its label's.
  t.true(classnames.includes('nsprobe.ci-runner-07.uts.rootless'));
  t.is(classnames.filter((c) => c.startsWith('nsprobe.ci-runner-07') && c.endsWith('.uts.rootless')).length, 2);
  t.regex(junit, /<failure message="a veth created inside showed up on the host" type="[a-z_]+"/);
  const check = await xmllintFile(join(out, 'matrix-junit.xml'));
  t.true(check.ok, check.output);
});

test('the same file given twice (directly and through its directory) is merged once', async (t) => {
  const out = join(await tempDir(t), 'out');
  const r = await merge([join(REPORTS_DIR, 'root-debian12'), fixturePath('root-debian12'), '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.is((await readMatrix(out)).hosts.length, 1);
});

test('duplicate labels get #2, #3 in input order', (t) => {
  t.deepEqual(uniqueLabels(['a', 'b', 'a', 'a', 'b']), ['a', 'b', 'a #2', 'a #3', 'b #2']);
  t.deepEqual(uniqueLabels(['a', 'a', 'a #2']), ['a', 'a #3', 'a #2']);
});

for (const [what, path, reason] of [
  ['truncated', BROKEN.truncated, /: not valid JSON \(truncated or corrupt\?\)\n$/],
  ['foreign', BROKEN.foreign, /: not an nsprobe report \(no tool\.name "nsprobe", no schemaVersion\)\n$/],
  ['newer schema', BROKEN.newer, /: schemaVersion 3 is newer than this nsprobe understands \(2\)\n$/],
] as const) {
  test(`a ${what} input fails with exit 2, one line naming it, and writes nothing`, async (t) => {
    const out = join(await tempDir(t), 'out');
    const r = await merge([fixturePath('root-debian12'), path, fixturePath('centos7-user'), '--out', out]);
    assertOneLine(t, r, path, reason);
    t.false(existsSync(out));
  });
}

test('a broken report.json found inside a directory is named by its path; existing output is untouched', async (t) => {
  const dir = await tempDir(t);
  const runs = join(dir, 'runs');
  await cp(join(REPORTS_DIR, 'root-debian12'), join(runs, 'a'), { recursive: true });
  await mkdir(join(runs, 'b'), { recursive: true });
  await cp(BROKEN.truncated, join(runs, 'b', 'report.json'));
  const out = join(dir, 'out');
  await mkdir(out);
  await writeFile(join(out, 'matrix.json'), 'previous');
  const r = await merge([runs, '--out', out]);
  assertOneLine(t, r, join(runs, 'b', 'report.json'), /not valid JSON/);
  t.deepEqual(await readdir(out), ['matrix.json']);
  t.is(await readFile(join(out, 'matrix.json'), 'utf8'), 'previous');
});

test('a missing input or a directory without report.json fails with one line', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'nope.json');
  assertOneLine(t, await merge([missing, '--out', join(dir, 'out')]), missing, /cannot read \(no such file or directory\)/);
  const empty = join(dir, 'empty');
  await mkdir(empty);
  assertOneLine(t, await merge([empty, '--out', join(dir, 'out')]), empty, /no report\.json found below this directory/);
  t.false(existsSync(join(dir, 'out')));
});

for (const [what, argv, reason] of [
  ['missing --out', ['x'], /missing --out DIR/],
  ['no inputs', ['--out', 'x'], /no input directories or report\.json files given/],
  ['an unknown flag', ['x', '--out', 'y', '--frobnicate'], /unknown flag '--frobnicate'/],
  ['--out without a value', ['x', '--out'], /--out/],
] as const) {
  test(`${what} prints one usage line and exits 2`, async (t) => {
    const r = await merge([...argv]);
    t.is(r.code, 2);
    t.is(r.stdout, '');
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    t.regex(r.stderr, /^nsprobe merge: .*; usage: nsprobe merge DIR_OR_REPORT_JSON\.\.\. --out DIR\n$/);
    t.regex(r.stderr, reason);
  });
}

test('--help prints usage and exits 0', async (t) => {
  const r = await merge(['--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^usage: nsprobe merge/);
});

test('an unwritable --out fails with one line and exit 2', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'file');
  await writeFile(file, '');
  const r = await merge([fixturePath('root-debian12'), '--out', join(file, 'out')]);
  t.is(r.code, 2);
  t.is(r.stderr, `nsprobe merge: cannot write reports to ${join(file, 'out')}: ${file} is a file, not a folder\n`);
  t.deepEqual(await readdir(dir), ['file']);
});
