// Report writers: schema validation, TAP (tap-parser), JUnit (xmllint + Jenkins XSD),
// Markdown/HTML escaping, the terminal summary, and atomic writing.
import test from 'ava';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from 'tap-parser';
import type { FinalResults, Result } from 'tap-parser';
import { summarize } from '../src/model.js';
import type { ProbeResult, Report } from '../src/model.js';
import { compareProbeIds, escapeXml, orderProbeIds } from '../src/report/common.js';
import { renderHtml } from '../src/report/html.js';
import { renderJunit } from '../src/report/junit.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { renderSummary } from '../src/report/summary.js';
import { renderTap, tapText, yamlValue } from '../src/report/tap.js';
import { safeLine } from '../src/report/common.js';
import { packageRoot, parseReport, validateReport } from '../src/report/validate.js';
import { FORMATS, OutputError, REPORT_FILES, writeFileAtomic, writeReports } from '../src/report/write.js';
import { BROKEN, GOOD, loadFixture } from './helpers/reports.js';
import { xmllint } from './helpers/xml.js';

const NASTY_CAUSE = 'blocked by <script>alert("x")</script> & friends # not a directive\nsecond line';
const NASTY_REMEDY = "echo '<b>' && sysctl -w a.b=1 | tee x\n```\nnot the end of the block";

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nsprobe-test-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The failing fixture with hostile strings in every free-text field the writers print. */
function nastyReport(): Report {
  const r = loadFixture('ubuntu-docker-failing');
  const net = r.probes.find((p) => p.id === 'net/privileged') as ProbeResult;
  net.cause = NASTY_CAUSE;
  net.assertions[1].actual = { iface: 'veth\u0001\u0000x', yaml: 'yes', colon: 'a: b', dash: '- c', nel: '\u0085\u2028', emoji: '🦀', big: 2 ** 60 };
  net.assertions[1].expected = 'null';
  const mnt = r.probes.find((p) => p.id === 'mnt/rootless') as ProbeResult;
  mnt.remedy = NASTY_REMEDY;
  mnt.cause = 'EPERM & <denied> \u001b[31mred\u001b[0m';
  r.gates[1].cause = 'gate <cause> & "quotes"';
  r.gates[1].remedy = NASTY_REMEDY;
  r.host.hostname = 'host<&>"\'';
  r.notes = ['note with <tag> & ampersand'];
  return r;
}

// ---------------------------------------------------------------- schema

for (const name of GOOD) {
  test(`fixture ${name} validates against the schema`, (t) => {
    const v = validateReport(loadFixture(name));
    t.true(v.ok, v.ok ? '' : v.error);
  });
}

test('our own JSON output of a hostile report still validates', (t) => {
  const v = validateReport(JSON.parse(JSON.stringify(nastyReport())));
  t.true(v.ok, v.ok ? '' : v.error);
});

test('broken and foreign reports are rejected with a specific reason', async (t) => {
  const foreign = validateReport(JSON.parse(await readFile(BROKEN.foreign, 'utf8')));
  t.deepEqual(foreign, { ok: false, error: 'not an nsprobe report (no tool.name "nsprobe", no schemaVersion)' });
  const newer = validateReport(JSON.parse(await readFile(BROKEN.newer, 'utf8')));
  t.deepEqual(newer, { ok: false, error: 'schemaVersion 3 is newer than this nsprobe understands (2)' });
  const truncated = await readFile(BROKEN.truncated, 'utf8');
  t.throws(() => JSON.parse(truncated), { instanceOf: SyntaxError });
  t.like(validateReport([]), { ok: false });
  t.like(validateReport(null), { ok: false });
});

test('the schema is strict about shape, ids and enums', (t) => {
  const cases: Array<[string, (r: Report) => void, RegExp]> = [
    ['extra top-level field', (r) => Object.assign(r, { extra: 1 }), /additional properties \(extra\)/],
    ['extra probe field', (r) => Object.assign(r.probes[0], { foo: 1 }), /\/probes\/0 .*\(foo\)/],
    ['bad probe id', (r) => (r.probes[0].id = 'UTS/privileged'), /\/probes\/0\/id must match pattern/],
    ['bad status', (r) => Object.assign(r.probes[0], { status: 'skip' }), /status must be equal to one of the allowed values/],
    ['bad gate status', (r) => Object.assign(r.gates[0], { status: 'fine' }), /\/gates\/0\/status/],
    ['missing summary', (r) => delete (r as Partial<Report>).summary, /must have required property 'summary'/],
    ['id not probe/mode', (r) => (r.probes[0].id = 'ipc/privileged'), /does not match probe\/mode "uts\/privileged"/],
    ['summary inconsistent', (r) => (r.summary.pass = 3), /\/summary\/pass is 3 but 16/],
    ['older schemaVersion', (r) => (r.schemaVersion = 0), /\/schemaVersion must be equal to constant/],
  ];
  for (const [what, mutate, expected] of cases) {
    const r = loadFixture('root-debian12');
    mutate(r);
    const v = validateReport(r);
    t.false(v.ok, what);
    if (!v.ok) t.regex(v.error, expected, what);
  }
});

test('the package root (and so the schema) is found from src/ and from dist/', (t) => {
  const root = packageRoot();
  t.is(packageRoot(join(root, 'dist', 'src', 'report')), root);
  t.is(packageRoot(join(root, 'src', 'report')), root);
});

test('probe ids order base namespaces first, privileged before rootless, then others alphabetically', (t) => {
  const ids = ['zeta/rootless', 'time/rootless', 'net-veth/privileged', 'uts/rootless', 'uts/privileged', 'net-veth/rootless', 'time/privileged', 'alpha/privileged'];
  t.deepEqual(orderProbeIds(ids), ['uts/privileged', 'uts/rootless', 'time/privileged', 'time/rootless', 'alpha/privileged', 'net-veth/privileged', 'net-veth/rootless', 'zeta/rootless']);
  t.true(compareProbeIds('pid/rootless', 'net/privileged') < 0);
});

// ---------------------------------------------------------------- TAP

interface ParsedTap {
  results: FinalResults;
  points: Result[];
  extra: string[];
}

function parseTap(tap: string): Promise<ParsedTap> {
  return new Promise((resolve) => {
    const points: Result[] = [];
    const extra: string[] = [];
    const parser = new Parser({ strict: true }, (results) => resolve({ results, points, extra }));
    parser.on('assert', (r: Result) => points.push(r));
    parser.on('extra', (s: string) => extra.push(s));
    parser.end(tap);
  });
}

function checkTap(t: import('ava').ExecutionContext, r: Report, parsed: ParsedTap): void {
  const { results, points, extra } = parsed;
  // results.failures also lists our own `not ok` points; parse problems are the ones with a tapError.
  t.deepEqual(results.failures.filter((f) => f.tapError), [], 'tap-parser reports no failures of its own');
  t.is(results.failures.length, r.summary.fail + r.summary.error);
  t.deepEqual(extra, [], 'no non-TAP output (all YAML parsed)');
  t.is(results.plan.start, 1);
  t.is(results.plan.end, r.probes.length);
  t.is(results.count, r.probes.length);
  t.is(results.skip, r.summary.unsupported);
  t.is(results.fail, r.summary.fail + r.summary.error);
  t.is(results.pass, r.summary.pass + r.summary.unsupported);
  t.is(results.ok, r.summary.fail + r.summary.error === 0);
  for (const point of points) {
    const probe = r.probes.find((p) => p.id === point.name);
    if (!probe) return void t.fail(`unknown test point ${point.name}`);
    t.is(point.diag?.status, probe.status, probe.id);
    t.is(point.diag?.durationMs, probe.durationMs, probe.id);
    t.is(point.diag?.assertions?.length, probe.assertions.length, probe.id);
  }
}

for (const name of GOOD) {
  test(`TAP for ${name} parses cleanly with tap-parser`, async (t) => {
    const r = loadFixture(name);
    const tap = renderTap(r);
    t.true(tap.startsWith('TAP version 13\n1..16\n'));
    checkTap(t, r, await parseTap(tap));
  });
}

test('TAP: unsupported is ok # SKIP <cause>, error and fail are not ok, diag carries the details', async (t) => {
  const centos = await parseTap(renderTap(loadFixture('centos7-user')));
  const userRootless = centos.points.find((p) => p.name === 'user/rootless');
  t.is(userRootless?.skip, 'user.max_user_namespaces is 0, so no user namespace can be created');
  t.is(userRootless?.diag?.gate, 'max_user_namespaces');
  t.regex(String(userRootless?.diag?.remedy), /sysctl -w user\.max_user_namespaces=15000\necho/);

  const failing = await parseTap(renderTap(loadFixture('ubuntu-docker-failing')));
  const mnt = failing.points.find((p) => p.name === 'mnt/rootless');
  t.false(mnt?.ok);
  t.like(mnt?.diag, { status: 'error', errno: 1, code: 'EPERM', stage: 'setns', syscall: 'setns', gate: 'seccomp' });
  const net = failing.points.find((p) => p.name === 'net/privileged');
  t.false(net?.ok);
  t.like(net?.diag?.assertions?.[1], { status: 'fail', expected: false, actual: true, side: 'host' });
});

test('TAP: hostile strings survive as exact YAML values', async (t) => {
  const r = nastyReport();
  const parsed = await parseTap(renderTap(r));
  checkTap(t, r, parsed);
  const net = parsed.points.find((p) => p.name === 'net/privileged');
  const probe = r.probes.find((p) => p.id === 'net/privileged') as ProbeResult;
  t.is(net?.diag?.cause, NASTY_CAUSE);
  t.deepEqual(net?.diag?.assertions?.[1]?.actual, probe.assertions[1].actual);
  t.is(net?.diag?.assertions?.[1]?.expected, 'null');
  const mnt = parsed.points.find((p) => p.name === 'mnt/rootless');
  t.is(mnt?.diag?.remedy, NASTY_REMEDY);
});

// tapText leaves plain ids as they are without the scrubbing passes, and a YAML block is made
// printable in one pass: both say what the per-string definitions say.
test('TAP: descriptions and YAML values as the one-string definitions make them', (t) => {
  const samples = ['uts.hostname-isolated', 'a b c', 'a#b', 'a\\b', ' lead', 'trail ', 'two  spaces', 'tab\tx', 'nl\nx', 'cr\rx', '\u2028x', 'del\x7f',
    '\u0085', '\ufeff', 'é', '\x1b[31m', '\u202e', '', ' ', 'a\u00a0b', '~!"$%&\'()*+,-./09:;<=>?@AZ[]^_`az{|}', '#', '\\'];
  for (const s of samples) {
    t.is(tapText(s), safeLine(s).replace(/\\/g, '\\\\').replace(/#/g, '\\#'), JSON.stringify(s));
  }
  t.is(tapText('a#b'), 'a\\#b', 'control: # is escaped');
  const r = loadFixture(GOOD[0]!);
  const p = r.probes[0]!;
  p.cause = 'c\u2028d\x7f\u0085\ufeff';
  p.assertions[0]!.actual = { k: '\u2029', n: ['\ufffe'] };
  const tap = renderTap(r);
  t.true(tap.includes(`  cause: ${yamlValue(p.cause)}`));
  t.true(tap.includes(`      actual: ${yamlValue(p.assertions[0]!.actual)}`));
  t.false(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/.test(tap), 'nothing unprintable is left in the YAML');
});

test('TAP: an empty run is a valid skip-all plan', async (t) => {
  const r = loadFixture('root-debian12');
  r.probes = [];
  r.summary = summarize([]);
  const parsed = await parseTap(renderTap(r));
  t.deepEqual(parsed.results.failures, []);
  t.deepEqual(parsed.extra, []);
  t.is(parsed.results.count, 0);
  t.true(parsed.results.ok);
});

// ---------------------------------------------------------------- JUnit

function attr(xml: string, element: string, name: string): string[] {
  const re = new RegExp(`<${element}\\b[^>]*\\s${name}="([^"]*)"`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]);
}

for (const name of GOOD) {
  test(`JUnit for ${name} validates against the Jenkins XSD`, async (t) => {
    const xml = renderJunit(loadFixture(name));
    const check = await xmllint(xml);
    t.true(check.ok, check.output);
  });
}

test('JUnit: one suite named by the host, a test case per probe/mode with its own class name and time, the gate as the type', (t) => {
  const r = loadFixture('ubuntu-docker-failing');
  const xml = renderJunit(r);
  t.deepEqual(attr(xml, 'testsuite', 'name'), ['build-7f3c9a (ubuntu 24.04, 6.8.0-45-generic)']);
  t.regex(xml, /<testsuites name="nsprobe" tests="16" failures="1" errors="1"/);
  t.regex(xml, /<testsuite name="build-7f3c9a \(ubuntu 24\.04, 6\.8\.0-45-generic\)" tests="16" failures="1" errors="1" skipped="0" time="[0-9.]+" timestamp="[^"]+" hostname="build-7f3c9a"/);
  const classnames = attr(xml, 'testcase', 'classname');
  t.is(classnames.length, r.probes.length);
  t.is(new Set(classnames).size, classnames.length, 'class names are unique');
  t.true(classnames.every((c) => /^nsprobe\.build-7f3c9a\.[a-z0-9-]+\.(privileged|rootless)$/.test(c)), classnames.join(' '));
  t.deepEqual(attr(xml, 'testcase', 'name').sort(), r.probes.map((p) => p.id).sort());
  t.true(attr(xml, 'testcase', 'time').every((v) => /^\d+\.\d{3}$/.test(v)));
  t.regex(xml, /<failure message="a veth created inside showed up on the host" type="assertion">cause: a veth created inside showed up on the host\nnet\.a-veth-created-inside-does-not-appear-on-the-host: a veth created inside does not appear on the host\n  expected: false\n  actual: true/);
  t.regex(xml, /<testcase classname="nsprobe\.build-7f3c9a\.mnt\.rootless" name="mnt\/rootless"[^>]*>\s*<error message="setns\(CLONE_NEWNS\) was refused with EPERM" type="seccomp">stage: setns\nsyscall: setns\nerrno: EPERM \(1\)/);
  t.regex(xml, /<property name="kernel.release" value="6.8.0-45-generic"\/>/);
  t.regex(xml, /<property name="seccomp.mode" value="2"\/>/);
  t.regex(xml, /<property name="gate.seccomp" value="blocked"\/>/);
  // The control: a failure without a gate is typed by what failed, with the gate it is the gate.
  const gated = structuredClone(r);
  const net = gated.probes.find((p) => p.id === 'net/privileged')!;
  net.gate = 'seccomp';
  t.regex(renderJunit(gated), /<failure message="a veth created inside showed up on the host" type="seccomp">/);
});

test('JUnit: unsupported probes are skipped with the cause as text; checks not made are in system-out', (t) => {
  const xml = renderJunit(loadFixture('centos7-user'));
  t.regex(xml, /<testsuite name="legacy-db-01 \(centos 7, [^)]+\)" tests="16" failures="0" errors="0" skipped="16"/);
  t.regex(xml, /<testcase classname="nsprobe\.legacy-db-01\.user\.rootless" name="user\/rootless"[^>]*>\s*<skipped>user.max_user_namespaces is 0, so no user namespace can be created \(gate max_user_namespaces\)<\/skipped>/);
  const skips = renderJunit(loadFixture('container-skips'));
  t.regex(skips, /<testcase classname="[^"]*\.pid\.rootless" name="pid\/rootless"[^>]*status="pass">\s*<system-out>skipped pid\.host-processes-are-not-visible-in-proc-inside: a fresh \/proc cannot be mounted here \(gate proc_fully_visible\)/);
});

test('JUnit: hostile strings are escaped and control characters removed, still valid', async (t) => {
  const xml = renderJunit(nastyReport());
  t.false(xml.includes('<script>'));
  t.false(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml));
  t.true(xml.includes('EPERM &amp; &lt;denied&gt; \\x1b[31mred\\x1b[0m'), 'raw control characters become visible \\xNN');
  t.true(xml.includes('"iface":"veth\\u0001\\u0000x"'), 'values are shown as JSON');
  const check = await xmllint(xml);
  t.true(check.ok, check.output);
});

test('escapeXml drops what XML 1.0 cannot carry and keeps the rest', (t) => {
  t.is(escapeXml('a\u0000b\u001fc\ud800d\ufffee<&>🦀\t\n'), 'a\\x00b\\x1fc\\ud800d\\ufffee&lt;&amp;&gt;🦀\t\n');
});

// ---------------------------------------------------------------- Markdown / HTML

test('Markdown: facts, table, causes, remedies and gates are present', (t) => {
  const md = renderMarkdown(loadFixture('centos7-user'));
  t.regex(md, /\| Hostname \| legacy-db-01 \|/);
  t.regex(md, /\| Kernel \| 3\.10\.0-1160\.119\.1\.el7\.x86\\_64/);
  t.regex(md, /\| cgroup \| v1 \|/);
  t.regex(md, /\| Probe \| privileged \| rootless \|/);
  t.regex(md, /\| user \| ⚪ unsupported \(\d+ ms\) \| ⚪ unsupported \(\d+ ms\) \|/);
  t.regex(md, /### uts, ipc, pid, net, mnt, user \(rootless\): unsupported \(6 probes\)\n\n- Cause: user\.max\\_user\\_namespaces is 0/);
  t.regex(md, /```sh\nsudo sysctl -w user\.max_user_namespaces=15000\necho 'user\.max_user_namespaces = 15000' \| sudo tee/);
  t.regex(md, /## Gates not ok[\s\S]*\| `max_user_namespaces` \| blocked \| `0` \|/);
  t.regex(md, /## Notes\n\n- privileged mode not run: needs root \(CAP\\_SYS\\_ADMIN\)/);
});

test('Markdown: hostile text is escaped, remedies stay literal in a longer fence', (t) => {
  const md = renderMarkdown(nastyReport());
  t.false(md.includes('<script>'));
  t.true(md.includes('blocked by &lt;script&gt;alert("x")&lt;/script&gt; &amp; friends'));
  t.true(md.includes('host&lt;&amp;&gt;"\''));
  t.true(md.includes('note with &lt;tag&gt; &amp; ampersand'));
  // The command line is a code block; the lines after it are prose, so their backticks are escaped.
  t.true(md.includes("```sh\necho '<b>' && sysctl -w a.b=1 | tee x\n```\n\n\\`\\`\\`<br>\nnot the end of the block"));
});

test('HTML: one self-contained page with coloured cells, causes, remedies and notes', (t) => {
  const html = renderHtml(loadFixture('ubuntu-docker-failing'));
  t.true(html.startsWith('<!DOCTYPE html>'));
  t.regex(html, /<style>[\s\S]*td\.s-pass \{ background: #dafbe1/);
  t.regex(html, /<td class="s-fail" title="a veth created inside showed up on the host"><a href="#probe-net-privileged">fail<\/a>/);
  t.regex(html, /<td class="s-error"[^>]*><a href="#probe-mnt-rootless">error<\/a>/);
  t.regex(html, /<pre><code>docker run --security-opt seccomp=unconfined \.\.\.\n# or add "unshare"/);
  t.regex(html, /<h2>Gates not ok<\/h2>[\s\S]*<code>seccomp<\/code>/);
  t.notRegex(html, /<script|<link|<img|\ssrc=|href="(https?:)?\/\//i);
  const centos = renderHtml(loadFixture('centos7-user'));
  t.regex(centos, /<h2>Notes<\/h2>\n<ul><li>privileged mode not run: needs root \(CAP_SYS_ADMIN\)<\/li><\/ul>/);
  t.regex(centos, /<th>LSMs<\/th><td>unknown<\/td>/);
});

test('HTML: hostile text is escaped everywhere', (t) => {
  const html = renderHtml(nastyReport());
  t.false(html.includes('<script>'));
  t.true(html.includes('blocked by &lt;script&gt;alert("x")&lt;/script&gt; &amp; friends'));
  t.true(html.includes('title="blocked by &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; friends # not a directive&#10;second line"'));
  t.true(html.includes('<pre><code>echo \'&lt;b&gt;\' &amp;&amp; sysctl'));
  t.true(html.includes('<title>nsprobe report: host&lt;&amp;&gt;"\'</title>'));
  t.false(html.includes('\u001b'));
});

// ---------------------------------------------------------------- terminal summary

test('summary: plain table without colour, one line per non-pass, counts last', (t) => {
  const out = renderSummary(loadFixture('ubuntu-docker-failing'), { color: false });
  const lines = out.trimEnd().split('\n');
  t.false(out.includes('\u001b'));
  t.regex(out, /^NAMESPACE +PRIVILEGED +ROOTLESS$/m);
  t.regex(out, /^net +FAIL \d+ ms +PASS \d+ ms$/m);
  t.regex(out, /^net\/privileged FAIL: a veth created inside showed up on the host$/m);
  t.regex(out, /^mnt\/rootless ERROR: setns\(CLONE_NEWNS\) was refused with EPERM \[gate seccomp\]$/m);
  t.is(lines.at(-1), '16 probes: 14 pass, 1 fail, 0 unsupported, 1 error in 1.0 s');
});

test('summary: ANSI colours when asked, columns still aligned; report text cannot inject escapes', (t) => {
  const out = renderSummary(nastyReport(), { color: true });
  t.true(out.includes('\u001b[31mFAIL'));
  t.true(out.includes('\u001b[32mPASS'));
  t.true(out.includes('\u001b[1;31mERROR'));
  t.false(out.includes('\u001b[31mred'));
  const plain = out.replace(/\u001b\[[0-9;]*m/g, '');
  const header = plain.split('\n').find((l) => l.startsWith('NAMESPACE')) ?? '';
  const row = plain.split('\n').find((l) => l.startsWith('net ')) ?? '';
  t.is(row.indexOf('PASS'), header.indexOf('ROOTLESS'));
});

// ---------------------------------------------------------------- writing

test('writeReports writes every format completely and leaves no temp files', async (t) => {
  const dir = join(await tempDir(t), 'nested', 'out');
  const r = loadFixture('ubuntu-docker-failing');
  const written = await writeReports(r, dir, [...FORMATS]);
  t.deepEqual(written, FORMATS.map((f) => join(dir, REPORT_FILES[f])));
  t.deepEqual((await readdir(dir)).sort(), ['junit.xml', 'nsprobe.features', 'nsprobe.prom', 'report.html', 'report.json', 'report.md', 'report.tap']);
  const json = await readFile(join(dir, 'report.json'), 'utf8');
  const back = parseReport(json);
  t.true(back.ok, back.ok ? '' : back.error);
  if (back.ok) t.deepEqual(back.report, { ...r, schemaVersion: 2 }, 'read back (v2, expanded), the same report');
  t.true(json.startsWith('{\n  "schemaVersion": 2,'));
  t.is(await readFile(join(dir, 'report.tap'), 'utf8'), renderTap(r));
  t.is(await readFile(join(dir, 'junit.xml'), 'utf8'), renderJunit(r));
  t.is(await readFile(join(dir, 'report.md'), 'utf8'), renderMarkdown(r));
  t.is(await readFile(join(dir, 'report.html'), 'utf8'), renderHtml(r));
  // Only the requested formats, and rewriting replaces.
  const other = join(dir, 'json-only');
  t.deepEqual(await writeReports(r, other, ['json', 'json']), [join(other, 'report.json')]);
  t.deepEqual(await readdir(other), ['report.json']);
});

test('a reader never sees a partly written file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'report.json');
  const big = loadFixture('root-debian12');
  big.notes = Array.from({ length: 2000 }, (_, i) => `note ${i} ${'x'.repeat(200)}`);
  const data = `${JSON.stringify(big, null, 2)}\n`;
  let writing = true;
  let reads = 0;
  const reader = (async () => {
    while (writing) {
      try {
        JSON.parse(await readFile(path, 'utf8'));
        reads++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  })();
  for (let i = 0; i < 20; i++) await writeFileAtomic(path, data);
  writing = false;
  await t.notThrowsAsync(reader);
  t.true(reads > 0);
  t.deepEqual(await readdir(dir), ['report.json']);
});

test('an outDir that cannot be created throws OutputError', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'a-file');
  await writeFile(file, 'x');
  const err = await t.throwsAsync(writeReports(loadFixture('root-debian12'), join(file, 'reports'), ['json']), { instanceOf: OutputError });
  t.is(err?.message, `cannot write reports to ${join(file, 'reports')}: ${file} is a file, not a folder`);
  t.deepEqual(await readdir(dir), ['a-file']);
});

test('a failure while writing removes the temp files and throws OutputError', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'report.md'));
  await t.throwsAsync(writeReports(loadFixture('root-debian12'), dir, ['md']), { instanceOf: OutputError, message: /^cannot write reports to .*: / });
  t.deepEqual(await readdir(dir), ['report.md']);
});

test('our copy of the JUnit schema is the shared one, byte for byte (where shared/ is beside the checkout)', async (t) => {
  const { existsSync } = await import('node:fs');
  const { OWN_JUNIT_XSD, SHARED_JUNIT_XSD } = await import('./helpers/xml.js');
  if (!existsSync(SHARED_JUNIT_XSD)) return t.pass('no shared/ beside this checkout: our copy is the schema');
  t.is(await readFile(OWN_JUNIT_XSD, 'utf8'), await readFile(SHARED_JUNIT_XSD, 'utf8'));
});
