// The command line as people meet it: one parser (src/args.ts) for every command, a closed stdout
// that ends a run quietly, colour that follows stdout, --require that says why, --strict.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand, UsageError } from '../src/args.js';
import { exitCode, parseArgs, parseBenchArgs, requireFailures, testedNothing } from '../src/cli.js';
import type { Report } from '../src/model.js';
import { loadFixture } from './helpers/reports.js';
import { CLI, isRoot, NOBODY, ROOT } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-cli-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** The CLI run by sh (for pipes); env without NO_COLOR unless given. */
function sh(cmd: string, env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env };
  delete base.NO_COLOR;
  for (const k of Object.keys(base)) if (k.startsWith('npm_')) delete base[k];
  return spawnSync('bash', ['-c', cmd], { encoding: 'utf8', cwd: ROOT, timeout: 120_000, env: { ...base, ...env } });
}
const node = `'${process.execPath}' '${CLI}'`;
/** A caller without CAP_SYS_ADMIN: nobody when we are root, else ourselves. */
const USER = isRoot ? NOBODY : ['env'];
const noNpm = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));

// ---------------------------------------------------------------- one parser

test('the CLI: usage errors exit 2 with one line and no stack trace, in nsprobe, merge and bench', (t) => {
  for (const args of [['--out', '-x'], ['--only', 'uts', '--only', '-V'], ['merge', '--out'], ['merge', 'x', '--out', '-y'], ['bench', '--iterations=many'], ['bench', '--iterations'], ['bench', '--nope']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: noNpm() });
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.notRegex(r.stderr, /\n\s+at /);
    t.is(r.stdout, '');
  }
  t.false(existsSync(join(ROOT, '-x')), 'no folder named -x');
});

test('bench: --iterations=10 works like every flag; a bad value names the value; nsprobe bench and npm run bench share the flags', (t) => {
  t.is(parseBenchArgs(['--iterations=10'], { iterations: 100, runs: 0 }).iterations, 10);
  t.is(parseBenchArgs(['--iterations', '10', '--runs=2', '--json'], { iterations: 100, runs: 0 }).runs, 2);
  const e = t.throws(() => parseBenchArgs(['--iterations=ten'], { iterations: 100, runs: 0 }), { instanceOf: UsageError });
  t.regex(e!.message, /--iterations takes a whole number from 1 to 1000000, not 'ten'/);
  for (const cmd of [[CLI, 'bench', '--help'], [join(ROOT, 'dist', 'scripts', 'bench.js'), '--help']]) {
    const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', env: noNpm() });
    t.is(r.status, 0, r.stderr);
    for (const flag of ['--iterations N', '--runs N', '--json', '--help']) t.true(r.stdout.includes(flag), `${cmd.join(' ')}: ${flag}`);
  }
});

test('npm run probe --only net (no --): npm kept the flag; we say how to pass it, exit 2', (t) => {
  const env = { ...noNpm(), npm_lifecycle_event: 'probe', npm_lifecycle_script: 'node dist/src/cli.js', npm_config_only: 'net' };
  const r = spawnSync(process.execPath, [CLI], { encoding: 'utf8', env });
  t.is(r.status, 2, r.stderr);
  t.is(r.stderr.trim(), 'nsprobe: npm kept --only for itself, so it never reached this command: use `npm run probe -- --only net`');
  // A flag npm does not know becomes npm_config_mode=true and its value a plain argument.
  const m = spawnSync(process.execPath, [CLI, 'rootless'], { encoding: 'utf8', env: { ...noNpm(), npm_lifecycle_event: 'probe', npm_lifecycle_script: 'node dist/src/cli.js', npm_config_mode: 'true' } });
  t.is(m.status, 2);
  t.regex(m.stderr, /use `npm run probe -- --mode rootless`/);
  // The same variables inherited by a process npm did not start for this script are no error.
  const other = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', env: { ...env, npm_lifecycle_script: 'ava' } });
  t.is(other.status, 0, other.stderr);
});

needTools(missingTools('npm'))('npm run probe --only uts for real: the hint, exit 2, nothing probed', (t) => {
  // npm's cache (and so its debug log, where the hint finds npm's argv) in a folder of this test.
  const cache = tmpDir(t);
  const r = spawnSync('npm', ['run', '--silent', 'probe', '--only', 'uts'], { cwd: ROOT, encoding: 'utf8', env: { ...noNpm(), npm_config_cache: cache }, timeout: 60_000 });
  t.is(r.status, 2, r.stdout + r.stderr);
  t.regex(r.stderr, /use `npm run probe -- --only uts`/);
});

// ---------------------------------------------------------------- closed stdout

test('a closed stdout ends every command quietly: --help, --version, merge, nsprobe, --json | head -1', (t) => {
  const out = tmpDir(t);
  const fixture = join(ROOT, 'test', 'fixtures', 'reports', 'root-debian12');
  const cases = [
    `${node} --help | true`,
    `${node} --version | true`,
    `${node} merge '${fixture}' --out '${out}/m' | true`,
    `${node} --only uts --mode rootless --out '${out}/a' | true`,
    `${node} --only uts,ipc --mode rootless --json --out '${out}/b' | head -1`,
  ];
  for (const c of cases) {
    const r = sh(`${c}; echo "status=\${PIPESTATUS[0]}" >&2`);
    t.regex(r.stderr, /status=0\n$/, `${c}: ${r.stderr}`);
    t.notRegex(r.stderr, /EPIPE|Error|\n\s+at /, c);
  }
  t.true(existsSync(join(out, 'b', 'report.json')), 'the run still wrote its reports');
});

test('a closed stdout: nsprobe bench ends quietly too', (t) => {
  const r = sh(`${node} bench --iterations 1 | true; echo "status=\${PIPESTATUS[0]}" >&2`);
  t.regex(r.stderr, /status=0\n$/, r.stderr);
  t.notRegex(r.stderr, /EPIPE|Error|\n\s+at /);
});

// ---------------------------------------------------------------- colour

needTools(missingTools('script'))('colour follows stdout: stdout a file and stderr a terminal writes no ANSI codes to the file', (t) => {
  const out = tmpDir(t);
  const file = join(out, 'summary.txt');
  const r = sh(`script -qec "${node} --only uts --mode rootless --out '${out}/r' > '${file}'" /dev/null`);
  t.is(r.status, 0, r.stdout + r.stderr);
  const text = readFileSync(file, 'utf8');
  t.true(text.includes('uts'), text);
  t.false(text.includes('\x1b['), JSON.stringify(text));
  // Control: stdout a terminal does colour, so the check above can fail.
  const tty = sh(`script -qec "${node} --only uts --mode rootless --out '${out}/r2'" /dev/null`);
  t.true(tty.stdout.includes('\x1b['), 'a terminal on stdout gets colour');
});

// ---------------------------------------------------------------- --require and --strict

test('--require through the CLI: one line naming the requirement and why, exit 1', (t) => {
  const out = tmpDir(t);
  const r = spawnSync(process.execPath, [CLI, '--only', 'uts', '--mode', 'rootless', '--require', 'net:rootless', '--out', out], { encoding: 'utf8', env: noNpm() });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^nsprobe: required net\/rootless: not run \(--only uts\)$/m);
});

test('as a normal user (root: as nobody): a privileged requirement says why; one without a mode means rootless', (t) => {
  const out = tmpDir(t);
  spawnSync('chmod', ['0777', out]);
  const r = spawnSync(USER[0], [...USER.slice(1), process.execPath, CLI, '--only', 'uts', '--require', 'uts:privileged', '--out', out], { encoding: 'utf8', env: noNpm() });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^nsprobe: required uts\/privileged: (unsupported|skipped) \(.*CAP_SYS_ADMIN.*\)$/m);
  const ok = spawnSync(USER[0], [...USER.slice(1), process.execPath, CLI, '--only', 'uts', '--require', 'uts', '--out', out], { encoding: 'utf8', env: noNpm() });
  t.is(ok.status, 0, ok.stderr);
});

test('as a normal user (root: as nobody), privileged only: a warning that nothing was tested; --strict exits 1', (t) => {
  const out = tmpDir(t);
  spawnSync('chmod', ['0777', out]);
  const args = [...USER.slice(1), process.execPath, CLI, '--only', 'uts', '--mode', 'privileged', '--out', out];
  const r = spawnSync(USER[0], args, { encoding: 'utf8', env: noNpm() });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /warning: nothing was tested/);
  const s = spawnSync(USER[0], [...args, '--strict'], { encoding: 'utf8', env: noNpm() });
  t.is(s.status, 1, s.stderr);
  // Control: a run that passed something does not warn.
  const p = spawnSync(process.execPath, [CLI, '--only', 'uts', '--mode', 'rootless', '--strict', '--out', out], { encoding: 'utf8', env: noNpm() });
  t.is(p.status, 0, p.stderr);
  t.notRegex(p.stderr, /nothing was tested/);
});

// ---------------------------------------------------------------- every command, one wording

test('every command parses alike: --help exits 0, an unknown flag and a flag-like value are one line, exit 2', (t) => {
  const d = (s: string) => join(ROOT, 'dist', 'scripts', s);
  const c = (s: string) => join(ROOT, 'ci', s);
  const commands: { name: string; argv: string[]; value: string }[] = [
    { name: 'nsprobe', argv: [CLI], value: '--out' },
    { name: 'nsprobe merge', argv: [CLI, 'merge'], value: '--out' },
    { name: 'nsprobe bench', argv: [CLI, 'bench'], value: '--iterations' },
    { name: 'npm run bench', argv: [d('bench.js')], value: '--iterations' },
    { name: 'npm run fuzz', argv: [d('fuzz.js')], value: '--cases' },
    { name: 'npm run soak', argv: [d('soak.js')], value: '--runs' },
    { name: 'npm run interrupt', argv: [d('interrupt.js')], value: '--points' },
    { name: 'ci/kernels.mjs', argv: [c('kernels.mjs')], value: '--out' },
    { name: 'ci/matrix.mjs', argv: [c('matrix.mjs')], value: '--out' },
    { name: 'ci/aarch64.mjs', argv: [c('aarch64.mjs')], value: '--check=x' },
  ];
  for (const cmd of commands) {
    const go = (...args: string[]) => spawnSync(process.execPath, [...cmd.argv, ...args], { cwd: ROOT, encoding: 'utf8', env: noNpm(), timeout: 30_000 });
    const help = go('--help');
    t.is(help.status, 0, `${cmd.name} --help: ${help.stderr}`);
    t.regex(help.stdout, /usage/i, `${cmd.name} --help`);
    const unknown = go('--frobnicate');
    t.is(unknown.status, 2, `${cmd.name} --frobnicate: ${unknown.stderr}`);
    t.regex(unknown.stderr, /unknown flag '--frobnicate'/, cmd.name);
    t.is(unknown.stderr.trim().split('\n').length, 1, `${cmd.name}: ${unknown.stderr}`);
    const flagLike = cmd.value.includes('=') ? go(cmd.value) : go(cmd.value, '-x');
    t.is(flagLike.status, 2, `${cmd.name} ${cmd.value} -x: ${flagLike.stderr}`);
    t.regex(flagLike.stderr, cmd.value.includes('=') ? /takes no value/ : /looks like a flag/, cmd.name);
    t.notRegex(unknown.stderr + flagLike.stderr, /\n\s+at /, `${cmd.name}: a stack trace`);
  }
});

// A run prints its last lines with fs.writeSync (src/cli.ts print: no stream object is made for
// them). A stdout that is a non-blocking pipe makes that write fail with EAGAIN once the pipe is
// full: the rest goes through process.stdout, which waits for the reader, so nothing is lost.
// Here the pipe is made non-blocking and 4 KB small, and the reader waits until the run has
// filled it (or has exited) before it reads: the --json report (tens of KB) then meets EAGAIN.
const NONBLOCKING_READER = `
import fcntl, os, select, subprocess, sys, termios, array
r, w = os.pipe2(os.O_NONBLOCK)
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
p = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
os.close(w)
size = fcntl.fcntl(r, 1032)  # F_GETPIPE_SZ
full = False
while p.poll() is None and not full:
    n = array.array('i', [0])
    fcntl.ioctl(r, termios.FIONREAD, n)
    full = n[0] >= size
    if not full:
        select.select([], [], [], 0.01)
out = bytearray()
while True:
    select.select([r], [], [])
    try:
        b = os.read(r, 65536)
    except BlockingIOError:
        continue
    if not b:
        break
    out += b
p.wait()
sys.stderr.write(p.stderr.read().decode())
sys.stdout.buffer.write(out)
sys.exit(p.returncode)
`;

needTools(missingTools('python3'))('--json to a full non-blocking pipe: every byte arrives, in order (EAGAIN hands the rest to the stream)', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-cli-nb-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync('python3', ['-c', NONBLOCKING_READER, process.execPath, CLI, '--only', 'uts,ipc', '--json', '--out', join(out, 'r')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  t.is(r.status, 0, r.stderr);
  t.true(r.stdout.length > 8192, `more than the pipe holds (${r.stdout.length} bytes)`);
  const printed = JSON.parse(r.stdout) as Report;
  t.is(r.stdout, `${JSON.stringify(printed, null, 2)}\n`, 'whole and in order: the JSON as it was printed');
  const written = JSON.parse(readFileSync(join(out, 'r', 'report.json'), 'utf8')) as Report;
  t.deepEqual(printed.probes.map((p) => p.id), written.probes.map((p) => p.id), 'the results of the report written');
  t.deepEqual(printed.summary, written.summary);
});
