// Hostile paths and files (issue 14 items 6-10, the terminal part of 11; issue 13's output paths):
// an output folder under /proc or /sys, a link another user planted, FIFOs and devices where
// files should be, gzip bombs, deep JSON, a report set half replaced, escapes in names. Each
// case is one line in words, exit 2, no hang, nothing left behind.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { collectHostFacts } from '../src/host/facts.js';
import { fixtureHostContext, readCapped, withDeadline } from '../src/host/hostfs.js';
import { readKernelConfig } from '../src/host/kconfig.js';
import { runMerge } from '../src/merge.js';
import { formatResidue } from '../src/residue.js';
import { jsonDepth, parseReport } from '../src/report/validate.js';
import { checkOutputDir, OutputError, REPORT_FILES, tempName, untrustedLink, writeFilesAtomic, writeReports } from '../src/report/write.js';
import { fixturePath, loadFixture } from './helpers/reports.js';
import { CLI, ROOT } from './helpers/run.js';
import { isRoot, missingTools, needRoot, needTools } from './helpers/tools.js';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/** A uid no account has: "another user" who plants things. */
const STRANGER = ['setpriv', '--reuid=54321', '--regid=54321', '--clear-groups'];
const ESC = /[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]/;

function tempDir(t: ExecutionContext, mode = 0o755): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-hostile-'));
  chmodSync(d, mode);
  t.teardown(() => {
    spawnSync('chattr', ['-R', '-i', d], { stdio: 'ignore' });
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The compiled CLI in its own process, with a timeout (a hang or a spin ends as SIGKILL, not a stuck suite). */
function nsprobe(args: string[], opts: { prefix?: string[]; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Outcome {
  const argv = [...(opts.prefix ?? []), process.execPath, CLI, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 20000, killSignal: 'SIGKILL', cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...opts.env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function merge(argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const code = await runMerge(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, signal: null, stdout, stderr };
}

/** Exit 2 and exactly one line on stderr, with no stack trace and no raw control character. */
function oneLine(t: ExecutionContext, r: Outcome, re: RegExp): void {
  t.is(r.signal, null, `killed by ${r.signal} (hang or spin): ${r.stderr}`);
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
  t.notRegex(r.stderr, /\n\s+at |RangeError|internal error/);
  t.notRegex(r.stderr.replace(/\n$/, ''), ESC);
  t.regex(r.stderr, re);
}

// ---- issue 13: output paths are checked first, by code that cannot loop -------------------

for (const [args, re] of [
  [['--out', '/proc/nsprobe'], /^nsprobe: cannot write reports to \/proc\/nsprobe: cannot create \/proc\/nsprobe: \/proc is a proc file system, which takes no new folders\n$/],
  [['--out', '/proc/a/b'], /^nsprobe: cannot write reports to \/proc\/a\/b: cannot create \/proc\/a: \/proc is a proc file system/],
  [['merge', fixturePath('root-debian12'), '--out', '/proc/x'], /^nsprobe merge: cannot write reports to \/proc\/x: cannot create \/proc\/x: \/proc is a proc file system/],
  [['--out', '/sys/kernel'], /^nsprobe: cannot write reports to \/sys\/kernel: \/sys\/kernel is a sysfs file system, which takes no new files\n$/],
  [['--out', '/proc/version/reports'], /^nsprobe: cannot write reports to \/proc\/version\/reports: \/proc\/version is a file, not a folder\n$/],
] as const) {
  test(`${args.join(' ')}: one line in words, exit 2, at once (no 100% CPU loop, no probe run)`, (t) => {
    const r = nsprobe([...args, ...(args[0] === 'merge' ? [] : ['--only', 'uts'])]);
    oneLine(t, r, re);
    t.is(r.stdout, '');
  });
}

test('an output path through a file says "is a file, not a folder" (not EEXIST/ENOTDIR) and makes nothing', (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, 'x'), '');
  const err = t.throws(() => checkOutputDir(join(d, 'x', 'y', 'z')), { instanceOf: OutputError });
  t.is(err?.message, `cannot write reports to ${join(d, 'x', 'y', 'z')}: ${join(d, 'x')} is a file, not a folder`);
  t.deepEqual(readdirSync(d), ['x']);
});

test('missing folders are made one at a time and reported; an existing folder is left as it is', (t) => {
  const d = tempDir(t);
  t.deepEqual(checkOutputDir(join(d, 'a', 'b', 'c')), [join(d, 'a'), join(d, 'a', 'b'), join(d, 'a', 'b', 'c')]);
  t.deepEqual(checkOutputDir(join(d, 'a', 'b', 'c')), []);
  t.deepEqual(readdirSync(join(d, 'a', 'b', 'c')), [], 'the write check leaves no file behind');
});

needTools(missingTools('unshare'))('a read-only tmpfs with a missing subfolder says "read-only file system", not ENOENT', (t) => {
  const d = tempDir(t);
  mkdirSync(join(d, 'ro'));
  // A private mount namespace (in a new user namespace, so a normal user can do it too).
  const r = spawnSync('unshare', ['-Urm', 'sh', '-c', `mount -t tmpfs -o ro none "$1" && exec "$2" "$3" --only uts --out "$1/sub/reports"`, 'sh', join(d, 'ro'), process.execPath, CLI], { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL', cwd: ROOT });
  oneLine(t, { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, new RegExp(`cannot write reports to ${join(d, 'ro', 'sub', 'reports')}: cannot create ${join(d, 'ro', 'sub')}: read-only file system\\n$`));
});

test('a report file that is a folder is named: "report.json is a folder, not a file"', async (t) => {
  const d = tempDir(t);
  mkdirSync(join(d, 'report.json'));
  const err = await t.throwsAsync(writeReports(loadFixture('root-debian12'), d, ['tap', 'json']), { instanceOf: OutputError });
  t.is(err?.message, `cannot write reports to ${d}: ${join(d, 'report.json')} is a folder, not a file`);
  t.deepEqual(readdirSync(d), ['report.json']);
});

// ---- item 6: merge opens inputs without following links, regular files only, never quoting them

test('merge refuses a report.json that is a symbolic link, found in a folder or given by name, and quotes nothing of its target', async (t) => {
  const d = tempDir(t);
  const secret = join(d, 'secret.json');
  writeFileSync(secret, 'root:$6$SECRET-HASH:19000:0:99999:7:::\n', { mode: 0o600 });
  mkdirSync(join(d, 'alice'));
  symlinkSync(secret, join(d, 'alice', 'report.json'));
  for (const input of [join(d, 'alice'), join(d, 'alice', 'report.json')]) {
    const r = await merge([input, '--out', join(d, 'out')]);
    oneLine(t, r, new RegExp(`^nsprobe merge: ${join(d, 'alice', 'report.json')}: cannot read: a symbolic link \\(not followed\\)\\n$`));
    t.notRegex(r.stderr, /SECRET|root:/);
  }
  t.false(existsSync(join(d, 'out')), 'nothing written, not even the folder');
});

test('merge never quotes a file that is not JSON (V8 would quote its first bytes)', async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, 'report.json'), 'root:$6$SECRET-HASH:19000:0:99999:7:::\n');
  const r = await merge([d, '--out', join(d, 'out')]);
  oneLine(t, r, /: not valid JSON \(truncated or corrupt\?\)/);
  t.notRegex(r.stderr, /SECRET|root:/);
  const foreign = join(d, 'foreign.json');
  writeFileSync(foreign, JSON.stringify({ schemaVersion: 1, tool: { name: 'SECRET-NAME' } }));
  const f = await merge([foreign, '--out', join(d, 'out')]);
  oneLine(t, f, /not an nsprobe report \(tool\.name is not "nsprobe"\)/);
  t.notRegex(f.stderr, /SECRET/);
});

test('merge of a report.json that is a FIFO (directly or through a link) ends at once with one line', (t) => {
  const d = tempDir(t);
  mkdirSync(join(d, 'a'));
  t.is(spawnSync('mkfifo', [join(d, 'a', 'report.json')]).status, 0);
  oneLine(t, nsprobe(['merge', join(d, 'a'), '--out', join(d, 'out')]), /a\/report\.json: cannot read: a FIFO \(named pipe\), not a regular file\n$/);
  mkdirSync(join(d, 'b'));
  symlinkSync(join(d, 'a', 'report.json'), join(d, 'b', 'report.json'));
  oneLine(t, nsprobe(['merge', join(d, 'b'), '--out', join(d, 'out')]), /b\/report\.json: cannot read: a symbolic link \(not followed\)\n$/);
  symlinkSync('/dev/zero', join(d, 'zero.json'));
  oneLine(t, nsprobe(['merge', join(d, 'zero.json'), '--out', join(d, 'out')]), /zero\.json: cannot read: a symbolic link/);
});

// ---- item 7: --out does not follow a link another user planted ------------------------------

test('untrustedLink: the StrictModes rule (owner, others writing, sticky)', (t) => {
  const dir = (uid: number, mode: number, gid = 0) => ({ uid, gid, mode: 0o040000 | mode }) as never;
  const link = (uid: number) => ({ uid }) as never;
  t.is(untrustedLink(dir(0, 0o755), link(0), 0, 0), null);
  t.is(untrustedLink(dir(1000, 0o755), link(1000), 1000, 1000), null, "the user's own folder");
  t.regex(untrustedLink(dir(1000, 0o700), link(1000), 0, 0) ?? '', /belongs to uid 1000/, "root in alice's folder");
  t.regex(untrustedLink(dir(0, 0o777), link(0), 0, 0) ?? '', /other users can write \(and it is not sticky\)/);
  t.regex(untrustedLink(dir(0, 0o1777), link(65534), 0, 0) ?? '', /link belongs to uid 65534/);
  t.is(untrustedLink(dir(0, 0o1777), link(0), 0, 0), null, 'our own link in /tmp');
  t.is(untrustedLink(dir(0, 0o775, 0), link(0), 0, 0), null, 'group root may write');
  t.regex(untrustedLink(dir(0, 0o775, 100), link(0), 0, 0) ?? '', /other users can write/, 'group users may write');
});

for (const [what, mode] of [
  ['a world-writable folder', 0o777],
  ['a sticky world-writable folder (/tmp-like)', 0o1777],
] as const) {
  needRoot()(`root's --out and merge --out do not follow another user's link planted in ${what}`, (t) => {
    if (missingTools('setpriv')) return t.fail('setpriv is missing');
    const d = tempDir(t);
    const shared = join(d, 'shared');
    mkdirSync(shared);
    chmodSync(shared, mode);
    const secret = join(d, 'secret');
    mkdirSync(secret, { mode: 0o700 });
    const plant = spawnSync(STRANGER[0]!, [...STRANGER.slice(1), 'ln', '-s', secret, join(shared, 'out')], { encoding: 'utf8' });
    t.is(plant.status, 0, plant.stderr);
    t.is(lstatSync(join(shared, 'out')).uid, 54321);
    const why = mode === 0o777 ? 'which other users can write \\(and it is not sticky\\)' : 'which other users can write, and the link belongs to uid 54321';
    const re = (cmd: string, out: string) => new RegExp(`^${cmd}: cannot write reports to ${out}: ${join(shared, 'out')} is a symbolic link in ${shared}, ${why}: not following it`);
    oneLine(t, nsprobe(['merge', fixturePath('root-debian12'), '--out', join(shared, 'out')]), re('nsprobe merge', join(shared, 'out')));
    oneLine(t, nsprobe(['--only', 'uts', '--out', join(shared, 'out', 'deeper')]), re('nsprobe', join(shared, 'out', 'deeper')));
    t.deepEqual(readdirSync(secret), [], "nothing written into root's folder");
  });
}

needRoot()("a normal user's merge --out does not follow a stranger's link in a world-writable folder either", (t) => {
  if (missingTools('setpriv')) return t.fail('setpriv is missing');
  const d = tempDir(t);
  const shared = join(d, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const mine = join(d, 'nobody-only');
  mkdirSync(mine, { mode: 0o700 });
  chownSync(mine, 65534, 65534);
  t.is(spawnSync(STRANGER[0]!, [...STRANGER.slice(1), 'ln', '-s', mine, join(shared, 'out')]).status, 0);
  const r = nsprobe(['merge', fixturePath('root-debian12'), '--out', join(shared, 'out')], { prefix: NOBODY });
  oneLine(t, r, /is a symbolic link in .*, which other users can write \(and it is not sticky\): not following it/);
  t.deepEqual(readdirSync(mine), []);
});

test('a link in a folder only we can write is followed (the control: links are not refused as such)', async (t) => {
  const d = tempDir(t);
  mkdirSync(join(d, 'target'));
  symlinkSync('target', join(d, 'out'));
  const r = await merge([fixturePath('root-debian12'), '--out', join(d, 'out')]);
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(d, 'target', 'matrix.json')));
});

// ---- item 8: non-regular, endless and explosive host files -----------------------------------

test('readCapped refuses FIFOs and devices at once, follows links only when asked, and caps the size', (t) => {
  const d = tempDir(t);
  const fifo = join(d, 'fifo');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  t.like(readCapped(fifo), { ok: false, code: 'ENOTREG' });
  t.like(readCapped('/dev/zero'), { ok: false, reason: 'a character device, not a regular file' });
  writeFileSync(join(d, 'big'), Buffer.alloc(2 << 20));
  t.like(readCapped(join(d, 'big'), { maxBytes: 1 << 20 }), { ok: false, code: 'EFBIG' });
  symlinkSync('big', join(d, 'link'));
  t.like(readCapped(join(d, 'link'), { follow: false }), { ok: false, code: 'ELOOP' });
  t.is((readCapped(join(d, 'link')) as { data: Buffer }).data.length, 2 << 20);
  const status = readCapped('/proc/self/status');
  t.true(status.ok && status.data.toString().includes('CapEff'), 'proc files (size 0) are read');
});

/** A fixture host root with `files` written under it (paths relative to /). */
function fixtureRoot(t: ExecutionContext, files: Record<string, string | Buffer> = {}): string {
  const root = tempDir(t);
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), data);
  }
  return root;
}

test('host facts: /etc/os-release as a FIFO or /dev/zero reads as missing (no hang, no memory growth)', (t) => {
  const root = fixtureRoot(t, { 'usr/lib/os-release': 'ID=fallback\n' });
  mkdirSync(join(root, 'etc'));
  t.is(spawnSync('mkfifo', [join(root, 'etc', 'os-release')]).status, 0);
  t.is(collectHostFacts(fixtureHostContext(root)).distro.id, 'fallback');
  rmSync(join(root, 'etc', 'os-release'));
  symlinkSync('/dev/zero', join(root, 'etc', 'os-release'));
  const ctx = fixtureHostContext(root);
  t.is(ctx.fs.readFile('/etc/os-release'), null);
  t.is(collectHostFacts(ctx).distro.id, 'fallback');
});

test('kernel config: NSPROBE_KERNEL_CONFIG=/dev/zero is unknown, and a gzip bomb stops at the output cap', (t) => {
  const real = fixtureHostContext('/', { env: {} });
  t.is(readKernelConfig(real, 'x', '/dev/zero'), null);
  // 1 KB of real config, then 64 MB of comment: a real config is ~300 KB.
  const bomb = gzipSync(Buffer.concat([Buffer.from('CONFIG_USER_NS=y\n'), Buffer.alloc(64 << 20, 0x23)]), { level: 9 });
  t.true(bomb.length < 1 << 20);
  const root = fixtureRoot(t, { 'proc/config.gz': bomb, 'boot/config-6.1': 'CONFIG_PID_NS=y\n' });
  const cfg = readKernelConfig(fixtureHostContext(root), '6.1');
  t.is(cfg?.source, '/boot/config-6.1', 'the bomb is skipped like an unreadable config, the next candidate is used');
  const ok = fixtureRoot(t, { 'proc/config.gz': gzipSync('CONFIG_USER_NS=y\n') });
  t.is(readKernelConfig(fixtureHostContext(ok), '6.1')?.options.get('CONFIG_USER_NS'), 'y');
});

test('withDeadline: after the deadline every read answers as unreadable', (t) => {
  let now = 0;
  const ctx = withDeadline(fixtureHostContext(fixtureRoot(t, { 'etc/hostname': 'h\n' })), 100, () => now);
  t.is(ctx.fs.readFile('/etc/hostname'), 'h\n');
  now = 101;
  t.is(ctx.fs.readFile('/etc/hostname'), null);
  t.false(ctx.fs.exists('/etc/hostname'));
});

for (const [what, make] of [
  ['a FIFO', (p: string) => spawnSync('mkfifo', [p]).status === 0],
  ['/dev/zero', (p: string) => (symlinkSync('/dev/zero', p), true)],
] as const) {
  needRoot()(`a run with /etc/os-release bind-mounted to ${what} does not hang or grow (private mount namespace)`, (t) => {
    if (missingTools('unshare')) return t.fail('unshare is missing');
    const d = tempDir(t);
    const src = join(d, 'src');
    t.true(make(src));
    const out = join(d, 'reports');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind "$1" /etc/os-release && exec "$2" "$3" --only uts --mode rootless --format json --out "$4"`, 'sh', src, process.execPath, CLI, out], { encoding: 'utf8', timeout: 30000, killSignal: 'SIGKILL', cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=512' } });
    t.is(r.signal, null, `hung or aborted: ${r.stderr}`);
    t.is(r.status, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { host: { distro: { id: string } } };
    t.is(typeof report.host.distro.id, 'string');
  });
}

// ---- item 9: deep JSON and unreadable folders -------------------------------------------------

test('merge of a report nested 100,000 levels deep: one line naming the file, exit 2, no RangeError', async (t) => {
  const d = tempDir(t);
  const r = loadFixture('root-debian12') as unknown as { gates: Array<Record<string, unknown>> };
  const text = JSON.stringify(r).replace('"gates":[', `"gates":[${'['.repeat(100000)}${']'.repeat(100000)},`);
  writeFileSync(join(d, 'report.json'), text);
  t.true(jsonDepth(text) > 100000);
  const m = await merge([join(d, 'report.json'), '--out', join(d, 'out')]);
  // The check walks the report's fixed shape: the nesting is refused where it starts.
  oneLine(t, m, new RegExp(`^nsprobe merge: ${join(d, 'report.json')}: /gates/0 must be object\\n$`));
  // A free-form value (an assertion's actual) may nest, but only so far.
  const deep = JSON.stringify(r).replace('"actual":', `"actual":${'['.repeat(100000)}${']'.repeat(100000)},"x":`);
  writeFileSync(join(d, 'report.json'), deep);
  const m2 = await merge([join(d, 'report.json'), '--out', join(d, 'out')]);
  oneLine(t, m2, new RegExp(`^nsprobe merge: ${join(d, 'report.json')}: /probes/0/assertions/0/actual is nested more than 48 levels deep: not an nsprobe report\\n$`));
  t.is(jsonDepth('{"a":"[[[[","b":[{}]}'), 3, 'brackets inside strings do not count');
  t.true(parseReport(JSON.stringify(loadFixture('root-debian12'))).ok, 'a real report is well under the bound');
});

needTools(isRoot ? missingTools('setpriv') : null)('a folder that cannot be read is skipped with a warning; the merge goes on', (t) => {
  const d = tempDir(t);
  mkdirSync(join(d, 'runs', 'a'), { recursive: true });
  writeFileSync(join(d, 'runs', 'a', 'report.json'), readFileSync(join(fixturePath('root-debian12'))));
  mkdirSync(join(d, 'runs', 'locked'), { mode: 0o000 });
  chmodSync(join(d, 'runs', 'locked'), 0o000);
  mkdirSync(join(d, 'out'));
  if (isRoot) chownSync(join(d, 'out'), 65534, 65534);
  const r = nsprobe(['merge', join(d, 'runs'), '--out', join(d, 'out')], { prefix: isRoot ? NOBODY : [] });
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, `nsprobe merge: warning: ${join(d, 'runs', 'locked')}: skipped: cannot read (permission denied)\n`);
  t.true(existsSync(join(d, 'out', 'matrix.json')));
});

// ---- item 10: the report set appears whole or not at all ---------------------------------------

const OLD = 'old run\n';

function oldSet(d: string): void {
  for (const name of Object.values(REPORT_FILES)) writeFileSync(join(d, name), OLD);
}

function assertOldSet(t: ExecutionContext, d: string, except: string): void {
  for (const name of Object.values(REPORT_FILES)) if (name !== except) t.is(readFileSync(join(d, name), 'utf8'), OLD, `${name} is from the old run`);
  t.deepEqual(readdirSync(d).filter((n) => n.startsWith('.')), [], 'no temporary file is left');
}

test('a report.md that is a folder leaves the old report set whole, and the error names it', async (t) => {
  const d = tempDir(t);
  oldSet(d);
  rmSync(join(d, 'report.md'));
  mkdirSync(join(d, 'report.md'));
  const err = await t.throwsAsync(writeReports(loadFixture('root-debian12'), d, ['tap', 'junit', 'json', 'md', 'html']), { instanceOf: OutputError });
  t.regex(err?.message ?? '', new RegExp(`${join(d, 'report.md')} is a folder, not a file`));
  assertOldSet(t, d, 'report.md');
});

needTools(missingTools('chattr'))('an immutable report.md (chattr +i): every renamed file is put back, the error names report.md', async (t) => {
  const d = tempDir(t);
  oldSet(d);
  if (spawnSync('chattr', ['+i', join(d, 'report.md')]).status !== 0) return t.pass('this file system or caller cannot set the immutable flag');
  const err = await t.throwsAsync(writeReports(loadFixture('root-debian12'), d, ['tap', 'junit', 'json', 'md', 'html']), { instanceOf: OutputError });
  t.regex(err?.message ?? '', new RegExp(`${join(d, 'report.md')}: operation not permitted`));
  assertOldSet(t, d, '');
});

needRoot()('in a shared sticky folder, a file another user planted makes the write fail whole, for the victim', (t) => {
  if (missingTools('setpriv')) return t.fail('setpriv is missing');
  const d = tempDir(t);
  const shared = join(d, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  t.is(spawnSync(STRANGER[0]!, [...STRANGER.slice(1), 'sh', '-c', `echo planted > "$1/matrix.md"`, 'sh', shared]).status, 0);
  const r = nsprobe(['merge', fixturePath('root-debian12'), '--out', shared], { prefix: NOBODY });
  oneLine(t, r, new RegExp(`^nsprobe merge: cannot write reports to ${shared}: cannot replace ${join(shared, 'matrix.md')}: operation not permitted \\(the old reports were put back\\)\\n$`));
  t.deepEqual(readdirSync(shared), ['matrix.md'], 'no matrix.json without its matrix.md, no temporary file');
});

test('temporary names are unpredictable and start with .nsprobe-tmp-<pid>-', (t) => {
  const a = tempName();
  t.regex(a, new RegExp(`^\\.nsprobe-tmp-${process.pid}-[0-9a-f]{16}$`));
  t.not(a, tempName());
});

test('files written one after another by writeFilesAtomic replace the old ones, and nothing temporary stays', async (t) => {
  const d = tempDir(t);
  oldSet(d);
  await writeFilesAtomic(d, [{ name: 'report.json', data: 'new\n' }, { name: 'report.md', data: 'new\n' }]);
  t.is(readFileSync(join(d, 'report.json'), 'utf8'), 'new\n');
  t.is(readFileSync(join(d, 'report.tap'), 'utf8'), OLD);
  t.deepEqual(readdirSync(d).sort(), Object.values(REPORT_FILES).sort());
});

// ---- item 11 (terminal part): no escape sequence of someone else's choosing reaches a terminal

test('merge errors show escapes in file names and keys as text', async (t) => {
  const d = tempDir(t);
  const evil = join(d, 'evil\x1b]0;pwned\x07\x1b[2J');
  mkdirSync(evil);
  writeFileSync(join(evil, 'report.json'), '{');
  oneLine(t, await merge([evil, '--out', join(d, 'out')]), /evil\\x1b\]0;pwned\\x07\\x1b\[2J\/report\.json: not valid JSON/);
  const r = loadFixture('root-debian12') as unknown as Record<string, unknown>;
  r['\x1b[31mkey\u2028'] = 1;
  writeFileSync(join(d, 'key.json'), JSON.stringify(r));
  oneLine(t, await merge([join(d, 'key.json'), '--out', join(d, 'out')]), /\\x1b\[31mkey\\u2028/);
});

test('usage errors and output errors show escapes from arguments as text', (t) => {
  oneLine(t, nsprobe(['--frobnicate\x1b]0;owned\x07']), /unknown flag '--frobnicate\\x1b\]0;owned\\x07'/);
  oneLine(t, nsprobe(['--only', 'uts', '--out', '/proc/\x1b[2J']), /cannot create \/proc\/\\x1b\[2J/);
});

test('--check-residue lines show escapes in names as text', (t) => {
  const s = formatResidue([{ kind: 'file', uid: 0, what: 'new file /tmp/\x1b]0;x\x07 (uid 0)' }]);
  t.is(s, 'residue: file: new file /tmp/\\x1b]0;x\\x07 (uid 0)\n');
});

needRoot()('without /proc (a bare chroot) the output folder is still checked and written, by path', (t) => {
  if (missingTools('unshare')) return t.fail('unshare is missing');
  const d = tempDir(t);
  writeFileSync(join(d, 'file'), '');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', process.execPath, CLI, 'merge', fixturePath('root-debian12'), '--out', join(d, 'a', 'b')], { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL', cwd: ROOT });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(readdirSync(join(d, 'a', 'b')).sort(), ['matrix-junit.xml', 'matrix.html', 'matrix.json', 'matrix.md']);
  const bad = spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', process.execPath, CLI, 'merge', fixturePath('root-debian12'), '--out', join(d, 'file', 'x')], { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL', cwd: ROOT });
  oneLine(t, { code: bad.status, signal: bad.signal, stdout: bad.stdout, stderr: bad.stderr }, / is a file, not a folder\n$/);
});

test('a run with NSPROBE_KERNEL_CONFIG=/dev/zero finishes (the config is unknown) instead of growing without end', (t) => {
  const d = tempDir(t);
  const r = nsprobe(['--only', 'uts', '--mode', 'rootless', '--format', 'json', '--out', d], { env: { NSPROBE_KERNEL_CONFIG: '/dev/zero' }, timeoutMs: 60000 });
  t.is(r.signal, null, `hung or aborted: ${r.stderr}`);
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(join(d, 'report.json'), 'utf8')) as { gates: Array<{ id: string; status: string }> };
  const gate = report.gates.find((g) => g.id === 'kernel_config');
  t.truthy(gate, 'the kernel_config gate is reported');
  t.is(gate?.status, 'unknown');
});
