// The reports a person reads: the headline first, identical causes once, skipped checks in every
// writer, stable JUnit names, the matrix rows that say who ran them, and hostile strings that
// must not reach a terminal, a Markdown table or a TAP parser alive.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { marked } from 'marked';
import { Parser } from 'tap-parser';
import type { Result } from 'tap-parser';
import { runMerge } from '../src/merge.js';
import type { ProbeResult, Report } from '../src/model.js';
import { causeGroups, headline, remedyParts } from '../src/report/common.js';
import { renderHtml, renderMatrixHtml } from '../src/report/html.js';
import { renderJunit, renderMatrixJunit } from '../src/report/junit.js';
import { mdCode, renderMarkdown, renderMatrixMarkdown } from '../src/report/markdown.js';
import { buildMatrix } from '../src/report/matrix.js';
import type { Matrix } from '../src/report/matrix.js';
import { renderSummary } from '../src/report/summary.js';
import { renderTap } from '../src/report/tap.js';
import { validateReport } from '../src/report/validate.js';
import { fixturePath, loadFixture } from './helpers/reports.js';
import { xmllint } from './helpers/xml.js';

const SKIP_REASON = 'a fresh /proc cannot be mounted here';
/** Controls that must never reach a person raw (newline and tab aside). */
const LIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

interface Tap {
  count: number;
  ok: boolean;
  extra: string[];
  points: Result[];
  children: Map<string, Result[]>;
}

/** Parses TAP with tap-parser, keeping the subtests' points by the parent's name. */
function parseTap(text: string): Promise<Tap> {
  return new Promise((resolve) => {
    const points: Result[] = [];
    const extra: string[] = [];
    const children = new Map<string, Result[]>();
    const parser = new Parser({ strict: true }, (results) => resolve({ count: results.count, ok: results.ok, extra, points, children }));
    parser.on('assert', (r: Result) => points.push(r));
    parser.on('extra', (s: string) => extra.push(s));
    parser.on('child', (child: Parser) => {
      const mine: Result[] = [];
      child.on('assert', (r: Result) => mine.push(r));
      child.on('complete', () => children.set(child.name, mine));
    });
    parser.end(text);
  });
}

// ---------------------------------------------------------------- skipped checks in every writer

test('TAP: a skipped check is its own line in the probe subtest, ok # SKIP <reason> (<gate>)', async (t) => {
  const r = loadFixture('container-skips');
  const tap = await parseTap(renderTap(r));
  t.deepEqual(tap.extra, []);
  t.is(tap.count, 16);
  t.true(tap.ok);
  const pid = tap.children.get('pid/rootless') ?? [];
  t.is(pid.length, 3);
  t.deepEqual(pid.map((p) => [p.ok, p.skip]), [[true, false], [true, `${SKIP_REASON} (proc_fully_visible)`], [true, `${SKIP_REASON} (proc_fully_visible)`]]);
  t.is(pid[1].name, 'pid.host-processes-are-not-visible-in-proc-inside');
  const point = tap.points.find((p) => p.name === 'pid/rootless');
  t.like(point?.diag?.assertions?.[1], { status: 'skipped', reason: SKIP_REASON, gate: 'proc_fully_visible' });
});

test('JUnit: a skipped check is listed with its reason and gate in its probe\'s system-out, still valid', async (t) => {
  const xml = renderJunit(loadFixture('container-skips'));
  t.regex(xml, /<testsuite name="[^"]+" tests="16" failures="0" errors="0" skipped="0"/);
  t.regex(
    xml,
    /<testcase classname="[^"]*\.pid\.rootless" name="pid\/rootless"[^>]*status="pass">\s*<system-out>skipped pid\.host-processes-are-not-visible-in-proc-inside: a fresh \/proc cannot be mounted here \(gate proc_fully_visible\)/,
  );
  const check = await xmllint(xml);
  t.true(check.ok, check.output);
});

test('Markdown, HTML and the summary say "pass, N checks skipped: <reason> (<gate>)"', (t) => {
  const r = loadFixture('container-skips');
  const phrase = `pass, 4 checks skipped: ${SKIP_REASON}`;
  const md = renderMarkdown(r);
  t.true(md.includes(`- pid (privileged, rootless): ${phrase} (\`proc_fully_visible\`)`), md);
  t.regex(md, /\| pid \| ✅ pass \(\d+ ms\), 2 checks skipped \| ✅ pass \(\d+ ms\), 2 checks skipped \|/);
  const html = renderHtml(r);
  t.true(html.includes(`pid (privileged, rootless): pass, 4 checks skipped</h3><p>${SKIP_REASON} (gate <code>proc_fully_visible</code>)</p>`));
  t.regex(html, /<td class="s-pass" title="a fresh \/proc cannot be mounted here"><a href="#probe-pid-rootless">pass<\/a> <span class="dur">\d+ ms<\/span> <span class="skips">2 checks skipped<\/span>/);
  const out = renderSummary(r, { color: false });
  t.regex(out, new RegExp(`^pid \\(privileged, rootless\\): ${phrase.replace(/[()/]/g, '\\$&')} \\(proc_fully_visible\\)$`, 'm'));
  t.regex(out, /^user\/rootless: pass, 1 check skipped: a file's real owner cannot be seen from inside a user namespace$/m);
  t.regex(out, /^16 probes: 16 pass, 0 fail, 0 unsupported, 0 error, 5 checks skipped in /m);
});

// ---------------------------------------------------------------- headline

test('headline: one sentence per mode, from the report alone', (t) => {
  t.deepEqual(headline(loadFixture('root-debian12')), ['privileged: all 8 namespaces work', 'rootless: all 8 namespaces work']);
  t.deepEqual(headline(loadFixture('nobody-debian12')), [
    'privileged: not run: needs root (CAP_SYS_ADMIN) (fix: sudo nsprobe run --mode privileged)',
    'rootless: all 8 namespaces work',
  ]);
  t.deepEqual(headline(loadFixture('ubuntu-docker-failing')), [
    'privileged: 7 of 8 namespaces work; net fails (a veth created inside showed up on the host)',
    'rootless: 7 of 8 namespaces work; mnt errors (setns(CLONE_NEWNS) was refused with EPERM)',
  ]);
  const centos = headline(loadFixture('centos7-user'));
  t.regex(centos[1], /^rootless: 0 of 8 namespaces work; uts, ipc, pid, net, mnt, user blocked by max_user_namespaces \(user\.max_user_namespaces is 0, so no user namespace can be created; fix: sudo sysctl -w user\.max_user_namespaces=15000\); cgroup, time are unsupported \(kernel 3\.10 predates/);
  t.deepEqual(headline(loadFixture('container-skips')), [
    `privileged: all 8 namespaces work, 2 checks skipped: ${SKIP_REASON} (proc_fully_visible)`,
    `rootless: all 8 namespaces work, 3 checks skipped: ${SKIP_REASON} (proc_fully_visible); a file's real owner cannot be seen from inside a user namespace`,
  ]);
  // A whole mode blocked by one gate, and a mode that was not run at all.
  const blocked = loadFixture('centos7-user');
  blocked.probes = blocked.probes.filter((p) => p.mode === 'rootless' && !['cgroup', 'time'].includes(p.probe));
  blocked.notes = ['privileged mode not run: needs root (CAP_SYS_ADMIN)'];
  t.deepEqual(headline(blocked), [
    'privileged: not run (privileged mode not run: needs root (CAP_SYS_ADMIN))',
    'rootless: blocked by max_user_namespaces: user.max_user_namespaces is 0, so no user namespace can be created (fix: sudo sysctl -w user.max_user_namespaces=15000)',
  ]);
  const one = loadFixture('root-debian12');
  one.probes = one.probes.filter((p) => p.probe === 'uts');
  t.deepEqual(headline(one), ['privileged: the uts namespace works', 'rootless: the uts namespace works']);
});

test('the headline comes first in the terminal, report.md and report.html', (t) => {
  const r = loadFixture('nobody-debian12');
  const [priv, rootless] = headline(r);
  const out = renderSummary(r, { color: false }).split('\n');
  t.deepEqual(out.slice(1, 3), [priv, rootless]);
  t.is(out[4].trim(), 'NAMESPACE  PRIVILEGED         ROOTLESS');
  const md = renderMarkdown(r);
  t.true(md.startsWith(`# nsprobe report: ci-runner-07\n\n- **privileged: not run: needs root (CAP\\_SYS\\_ADMIN) (fix: sudo nsprobe run --mode privileged)**\n- **rootless: all 8 namespaces work**\n`));
  t.true(md.indexOf('## Results') < md.indexOf('## Host'));
  const html = renderHtml(r);
  const at = (s: string): number => html.indexOf(s);
  t.true(at('<ul class="headline">') > 0);
  t.true(at('<ul class="headline">') < at('<table class="results">'));
  t.true(at('<table class="results">') < at('<table class="facts">'));
  t.true(html.includes('<li>rootless: all 8 namespaces work</li>'));
});

// ---------------------------------------------------------------- identical causes once

test('identical causes are shown once with the probes they cover, failures apart from what could not run', (t) => {
  const r = loadFixture('nobody-debian12');
  // What the runner records for a probe it did not try: no syscall failed, whatever errno says.
  for (const p of r.probes) if (p.status === 'unsupported') Object.assign(p, { errno: 1, code: 'EPERM' });
  const groups = causeGroups(r.probes);
  t.is(groups.length, 1);
  t.is(groups[0].probes.length, 8);
  t.is(groups[0].errno, undefined, 'stage needs: nothing was attempted, so no errno is shown');
  const out = renderSummary(r, { color: false });
  t.is(out.match(/needs root/g)?.length, 3, 'headline, one group line, the note');
  t.regex(out, /^Not run here:\nall 8 probes \(privileged\) UNSUPPORTED: needs root \(CAP_SYS_ADMIN\)$/m);
  t.false(out.includes('Failures:'));
  const md = renderMarkdown(r);
  t.is(md.match(/^### /gm)?.length, 1);
  t.false(md.includes('EPERM'));
  const html = renderHtml(r);
  t.is(html.match(/<div class="problem s-unsupported">/g)?.length, 1);
  t.false(html.includes('EPERM'));
  for (const p of r.probes.filter((x) => x.status !== 'pass')) t.true(html.includes(`<span id="probe-${p.probe}-privileged"></span>`), p.id);

  const failing = renderSummary(loadFixture('ubuntu-docker-failing'), { color: false });
  t.regex(failing, /\nFailures:\nnet\/privileged FAIL: a veth created inside showed up on the host\nmnt\/rootless ERROR: setns\(CLONE_NEWNS\) was refused with EPERM \[gate seccomp\]\n/);
  const mixed = renderMarkdown(loadFixture('ubuntu-docker-failing'));
  t.true(mixed.indexOf('## Failures') > 0);
  t.false(mixed.includes('## Not run here'));
});

test('remedies: a command is shown as one, prose as prose', (t) => {
  t.deepEqual(remedyParts('collect and attach to a bug report:\ndmesg | tail -n 50\n# as root\nsudo sysctl -w a=1\nor run it outside the container'), [
    { kind: 'prose', text: 'collect and attach to a bug report:' },
    { kind: 'command', text: 'dmesg | tail -n 50\n# as root\nsudo sysctl -w a=1' },
    { kind: 'prose', text: 'or run it outside the container' },
  ]);
  const r = loadFixture('centos7-user');
  const html = renderHtml(r);
  t.true(html.includes('<dt>Remedy</dt><dd><p>upgrade to a kernel &gt;= 5.6</p></dd>'));
  t.true(html.includes('<dt>Remedy</dt><dd><pre><code>sudo sysctl -w user.max_user_namespaces=15000\necho'));
  t.false(html.includes('<th>Remedy</th>'), 'gates are blocks, not a table with a squeezed Remedy column');
  const md = renderMarkdown(r);
  t.true(md.includes('Remedy:\n\nupgrade to a kernel &gt;= 5.6\n'));
});

// ---------------------------------------------------------------- stable JUnit names

function caseNames(xml: string): string[] {
  return [...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
}

test('JUnit test-case names and class names are stable ids: the run\'s values are not in them', (t) => {
  const a = loadFixture('root-debian12');
  const b = loadFixture('root-debian12');
  // Another run: other pids, other random names, another duration.
  for (const p of b.probes) {
    p.durationMs += 17;
    for (const x of p.assertions) {
      x.actual = { pid: 48213, name: 'nsprobe-mq-9f2c1a' };
      x.expected = 'nsprobe-7f00a1';
    }
  }
  const names = caseNames(renderJunit(a));
  t.deepEqual(caseNames(renderJunit(b)), names);
  t.is(names.length, a.probes.length + (a.consumers?.length ?? 0));
  const host = a.host.hostname.replace(/[^A-Za-z0-9_-]+/g, '_');
  const ids = new Set([...a.probes.map((p) => `nsprobe.${host}.${p.probe}.${p.mode} ${p.id}`), ...(a.consumers ?? []).map((v) => `nsprobe.${host}.consumer.${v.id} consumer/${v.id}`)]);
  for (const n of names) t.true(ids.has(n), n);
  t.false(renderJunit(b).includes('name="nsprobe-7f00a1'));
});

// ---------------------------------------------------------------- matrix

function matrixOf(...inputs: Array<[string, Report]>): Matrix {
  return buildMatrix(inputs.map(([source, report]) => ({ source, report })), new Date('2026-12-01T00:00:00Z'));
}

test('matrix rows say who ran them: euid, modes, --only; the root, normal-user and partial runs of one host differ', (t) => {
  const partial = loadFixture('nobody-debian12');
  partial.startedAt = '2026-11-28T10:20:00.000Z';
  partial.probes = partial.probes.filter((p) => ['uts', 'net'].includes(p.probe));
  const m = matrixOf(['a/report.json', loadFixture('root-debian12')], ['b/report.json', loadFixture('nobody-debian12')], ['c/report.json', partial]);
  t.deepEqual(m.hosts.map((h) => [h.euid, h.modes, h.only]), [
    [0, ['privileged', 'rootless'], undefined],
    [65534, ['rootless'], undefined],
    [65534, ['rootless'], ['uts', 'net']],
  ]);
  const html = renderMatrixHtml(m);
  t.true(html.includes('<th class="host" title="ci-runner-07 (debian 12, 6.1.0-18-amd64)">ci-runner-07<div class="run">euid 0, privileged + rootless<br>debian 12 · 6.1.0-18-amd64 · x86_64</div>'));
  t.true(html.includes('>ci-runner-07 #2<div class="run">euid 65534, rootless<br>'));
  t.true(html.includes('<div class="run">euid 65534, rootless, --only uts,net<br>'));
  const md = renderMatrixMarkdown(m);
  t.true(md.includes('<br>euid 65534, rootless, --only uts,net |'));
});

test('matrix.html: namespaces as column groups with the modes side by side, a sticky host column', (t) => {
  const m = matrixOf(['a', loadFixture('root-debian12')], ['b', loadFixture('centos7-user')]);
  const html = renderMatrixHtml(m);
  t.true(html.includes('<tr><th class="host" rowspan="2">Host</th><th colspan="2">uts</th><th colspan="2">ipc</th>'));
  t.true(html.includes('<th title="uts/privileged">priv</th><th title="uts/rootless">rootless</th>'));
  t.regex(html, /\.matrix th\.host \{ position: sticky; left: 0;/);
  t.true(html.includes('<div class="scroll">\n<table class="matrix">'));
});

test('an identical report given twice is merged once, with a warning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nsprobe-test-report-dup-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(fixturePath('root-debian12'), join(dir, 'copy', 'report.json'), { recursive: true });
  let stderr = '';
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => ((stderr += s), true) } };
  const out = join(dir, 'out');
  const code = await runMerge([fixturePath('root-debian12'), join(dir, 'copy', 'report.json'), fixturePath('nobody-debian12'), '--out', out], io);
  t.is(code, 0, stderr);
  t.is(stderr, `nsprobe merge: warning: ${join(dir, 'copy', 'report.json')} is identical to ${fixturePath('root-debian12')}: merged once\n`);
  const m = JSON.parse(await readFile(join(out, 'matrix.json'), 'utf8')) as Matrix;
  t.is(m.hosts.length, 2);
  t.deepEqual(m.duplicates, [{ source: join(dir, 'copy', 'report.json'), sameAs: fixturePath('root-debian12') }]);
  t.regex(await readFile(join(out, 'matrix.html'), 'utf8'), /<p class="warning">warning: .* is identical to .*: merged once<\/p>/);
});

// ---------------------------------------------------------------- hostile strings

const HOSTILE_HOST = 'evil\u001b]0;pwned\u0007\u001b[2J\rreset\u2028ok 99 - fake\u2029\u0000x';
const HOSTILE_KERNEL = '6.1\\| [click me](https://example.invalid/x) | `y`';

function hostile(name: 'root-debian12' | 'container-skips' = 'root-debian12'): Report {
  const r = loadFixture(name);
  r.host.hostname = HOSTILE_HOST;
  r.host.kernel.release = HOSTILE_KERNEL;
  r.host.distro.name = 'Debian\u001b[31m red';
  r.notes = ['note\u001b[1m bold\rover\u2028written'];
  const uts = r.probes[0] as ProbeResult;
  Object.assign(uts, { status: 'unsupported', assertions: [], cause: 'cause \u001b[5m blink \u0000', remedy: 'sudo echo \u001b]52;c;aGk=\u0007\nsecond\u0085line', gate: 'g\u001bx', stage: 'clone' });
  r.summary = { pass: 15, fail: 0, unsupported: 1, error: 0 };
  return r;
}

test('report.md and matrix.md carry no live escape sequence, NUL or line separator', (t) => {
  const r = hostile();
  const md = renderMarkdown(r);
  t.false(LIVE.test(md), JSON.stringify(md.match(LIVE)));
  t.true(md.includes('evil\\\\x1b\\]0;pwned\\\\x07'), 'controls are shown as visible escapes');
  const m = matrixOf(['x\u001b[2J/report.json', r], ['b', loadFixture('nobody-debian12')]);
  const mmd = renderMatrixMarkdown(m);
  t.false(LIVE.test(mmd), JSON.stringify(mmd.match(LIVE)));
  t.false(LIVE.test(renderSummary(r, { color: true }).replace(/\u001b\[[0-9;]*m/g, '')));
  t.false(LIVE.test(renderHtml(r)));
  t.false(LIVE.test(renderMatrixHtml(m)));
});

test('Markdown: a kernel string with \\| cannot break out of its table cell (checked with marked)', (t) => {
  t.is(mdCode('6.1\\| x', true), '`6.1\\\\\\| x`');
  const m = matrixOf(['a', hostile()]);
  for (const [what, md] of [['matrix.md', renderMatrixMarkdown(m)], ['report.md', renderMarkdown(hostile())]] as const) {
    const html = marked.parse(md, { async: false });
    t.false(/<a\s/i.test(html), `${what}: no link escaped the cell`);
    t.false(html.includes('href="https://example.invalid'), what);
    // Every row of every table has as many cells as its header.
    for (const tableHtml of html.match(/<table>[\s\S]*?<\/table>/g) ?? []) {
      const rows = tableHtml.match(/<tr>[\s\S]*?<\/tr>/g) ?? [];
      const widths = rows.map((row) => (row.match(/<t[hd][\s>]/g) ?? []).length);
      t.true(widths.every((w) => w === widths[0]), `${what}: ${widths.join(',')}`);
    }
  }
});

test('report.tap: a hostname with \\r, U+2028 and U+2029 leaves the TAP parseable, comments carry no controls', async (t) => {
  const r = hostile('container-skips');
  const text = renderTap(r);
  const comments = text.split('\n').filter((l) => l.startsWith('#'));
  for (const c of comments) t.false(LIVE.test(c), JSON.stringify(c));
  t.false(/[\r\u2028\u2029\u0000\u001b]/.test(text));
  const tap = await parseTap(text);
  t.is(tap.count, 16);
  t.deepEqual(tap.extra, []);
  t.false(tap.points.some((p) => p.id === 99), 'no test point smuggled in by the hostname');
  t.deepEqual(tap.points.map((p) => p.id), Array.from({ length: 16 }, (_, i) => i + 1));
});

test('JUnit of a hostile report is still valid and carries no raw controls', async (t) => {
  const r = hostile('container-skips');
  const xml = renderJunit(r);
  t.false(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml));
  const check = await xmllint(xml);
  t.true(check.ok, check.output);
  const mx = renderMatrixJunit(matrixOf(['a', r]));
  t.true((await xmllint(mx)).ok);
});

// ---------------------------------------------------------------- a mode skipped once

/** A normal user's report as the runner now writes it: privileged skipped once, no look-alike results. */
function skippedPrivileged(scope = 'the initial user namespace'): Report {
  const r = loadFixture('nobody-debian12');
  const reason = 'needs CAP_SYS_ADMIN in its own user namespace, which this process (uid 65534) lacks: without it the kernel refuses every namespace but a user namespace (EPERM); run as root for privileged mode (sudo npm run probe)';
  r.probes = r.probes.filter((p) => p.mode === 'rootless');
  r.summary = { pass: 8, fail: 0, unsupported: 0, error: 0 };
  r.modes = [
    { mode: 'privileged', status: 'skipped', reason, scope },
    { mode: 'rootless', status: 'run', scope: `a user namespace of its own below ${scope}` },
  ];
  r.notes = [`privileged mode not run: ${reason}`];
  return r;
}

test('a mode skipped once: the headline says why in a few words, every writer says it once', (t) => {
  const r = skippedPrivileged();
  const v = validateReport(JSON.parse(JSON.stringify(r)));
  t.true(v.ok, v.ok ? '' : v.error);
  t.deepEqual(headline(r), ['privileged: not run (needs CAP_SYS_ADMIN in its own user namespace, which this process (uid 65534) lacks)', 'rootless: all 8 namespaces work']);
  const out = renderSummary(r, { color: false });
  t.regex(out, /^uts +not run +PASS \d+ ms$/m);
  t.regex(out, /^Not run here:\nprivileged mode NOT RUN: needs CAP_SYS_ADMIN in its own user namespace, .*\(sudo npm run probe\)$/m);
  t.is(out.match(/without it the kernel refuses/g)?.length, 1, 'the reason once, not again as a note');
  const md = renderMarkdown(r);
  t.true(md.includes('### privileged mode: not run\n\n- Cause: needs CAP\\_SYS\\_ADMIN'));
  t.is(md.match(/without it the kernel refuses/g)?.length, 1);
  t.regex(md, /\| uts \| not run \| ✅ pass/);
  const html = renderHtml(r);
  t.is(html.match(/without it the kernel refuses/g)?.length, 1);
  const m = buildMatrix([{ source: 'a', report: r }]);
  t.deepEqual(m.hosts[0].modes, ['rootless']);
});

test('the headline names the user namespace when the verdicts are not about the initial one', (t) => {
  const r = loadFixture('root-debian12');
  r.modes = [
    { mode: 'privileged', status: 'run', scope: 'user namespace level 1 (owner uid 1000)' },
    { mode: 'rootless', status: 'run', scope: 'a user namespace of its own below user namespace level 1 (owner uid 1000)' },
  ];
  t.deepEqual(headline(r), [
    'privileged (in user namespace level 1 (owner uid 1000)): all 8 namespaces work',
    'rootless: all 8 namespaces work',
  ]);
});
