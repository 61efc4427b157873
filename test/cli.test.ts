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
