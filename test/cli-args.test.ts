// CLI parsing without running a probe (the fast lane, npm run test:unit): the one parser
// (src/args.ts), the --require explanations and --strict on fixture reports.
import test from 'ava';
import { parseCommand, UsageError } from '../src/args.js';
import { exitCode, parseArgs, requireFailures, testedNothing } from '../src/cli.js';
import type { Report } from '../src/model.js';
import { loadFixture } from './helpers/reports.js';

test('--only uts --only net takes the union (and --only=a,b the same), duplicates once', (t) => {
  t.deepEqual(parseArgs(['--only', 'uts', '--only', 'net'], {}).only, ['uts', 'net']);
  t.deepEqual(parseArgs(['--only=uts,net', '--only', 'uts'], {}).only, ['uts', 'net']);
  t.deepEqual(parseArgs(['--require=uts', '--require', 'net:rootless'], {}).require, [
    { probe: 'uts', mode: null },
    { probe: 'net', mode: 'rootless' },
  ]);
});

test('values that look like flags are usage errors, not values', (t) => {
  for (const argv of [['--out', '-x'], ['--only', '-V'], ['--only', 'uts,-V'], ['--out', '--json'], ['--timeout', '-5'], ['--out=-x']]) {
    const e = t.throws(() => parseArgs(argv, {}), { instanceOf: UsageError }, argv.join(' '));
    t.regex(e!.message, /looks like a flag/, argv.join(' '));
  }
});

test('every usage error is one plain line: unknown flag, missing value, switch with a value, twice', (t) => {
  const cases: [string[], RegExp][] = [
    [['--frobnicate'], /^unknown flag '--frobnicate' \(see --help\)$/],
    [['extra'], /^unexpected argument 'extra' \(see --help\)$/],
    [['--out'], /^--out needs a folder$/],
    [['--out='], /^--out needs a folder$/],
    [['--json=yes'], /^--json takes no value/],
    [['--mode', 'rootless', '--mode=privileged'], /^--mode given twice/],
    [['--timeout=soon'], /^--timeout takes milliseconds from 100 to 600000, not 'soon'$/],
    [['--only', 'nope'], /^unknown probe 'nope'/],
    [['--require', 'uts:sideways'], /^--require names unknown mode 'sideways'/],
  ];
  for (const [argv, re] of cases) {
    const e = t.throws(() => parseArgs(argv, {}), { instanceOf: UsageError });
    t.regex(e!.message, re, argv.join(' '));
    t.false(e!.message.includes('\n'));
  }
});

test('--flag=value works for every flag, as --flag value does', (t) => {
  const a = parseArgs(['--only=uts', '--mode=rootless', '--out=x', '--format=json', '--timeout=500', '--require=uts:rootless'], {});
  const b = parseArgs(['--only', 'uts', '--mode', 'rootless', '--out', 'x', '--format', 'json', '--timeout', '500', '--require', 'uts:rootless'], {});
  t.deepEqual(a, b);
  t.is(a.timeoutMs, 500);
});

test('parseCommand: list union, short flags, positionals only where allowed', (t) => {
  const specs = { only: { type: 'string', list: true }, out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } } as const;
  t.deepEqual(parseCommand(specs, ['-o', 'd', '--only', 'a', '--only=b,a', '-h'], { env: {} }).values, { out: 'd', only: ['a', 'b'], help: true });
  t.deepEqual(parseCommand(specs, ['x', '--', '-y'], { positionals: true, env: {} }).positionals, ['x', '-y']);
  t.throws(() => parseCommand(specs, ['x'], { env: {} }), { message: /unexpected argument 'x'/ });
});

test('--require explains each unmet requirement: not run, unsupported with its gate, failed with the first failed assertion, error', (t) => {
  const docker = loadFixture('ubuntu-docker-failing');
  const all = { only: null, modes: ['privileged', 'rootless'] as const, runnable: ['privileged', 'rootless'] as const };
  t.deepEqual(requireFailures(docker, [{ probe: 'net', mode: 'privileged' }], all), ['required net/privileged: failed: a veth created inside does not appear on the host (expected false, got true)']);
  t.deepEqual(requireFailures(docker, [{ probe: 'mnt', mode: 'rootless' }], all), ['required mnt/rootless: error (seccomp: setns(CLONE_NEWNS) was refused with EPERM)']);
  const centos = loadFixture('centos7-user');
  t.deepEqual(requireFailures(centos, [{ probe: 'net', mode: 'rootless' }], all), ['required net/rootless: unsupported (max_user_namespaces: user.max_user_namespaces is 0, so no user namespace can be created)']);
  t.deepEqual(requireFailures(centos, [{ probe: 'net', mode: 'rootless' }], { ...all, only: ['uts'] }).length, 1);
  const onlyUts = { ...docker, probes: docker.probes.filter((p) => p.probe === 'uts') } as Report;
  t.deepEqual(requireFailures(onlyUts, [{ probe: 'net', mode: 'rootless' }], { ...all, only: ['uts'] }), ['required net/rootless: not run (--only uts)']);
  // Without a mode: the modes this caller can run.
  const rootlessOnly = { ...all, runnable: ['rootless'] as const };
  t.deepEqual(requireFailures(loadFixture('nobody-debian12'), [{ probe: 'uts', mode: null }], rootlessOnly), []);
  t.is(requireFailures(loadFixture('nobody-debian12'), [{ probe: 'uts', mode: null }], all).length, 1, 'both modes when both can run');
  t.is(exitCode(loadFixture('nobody-debian12'), [{ probe: 'uts', mode: null }], rootlessOnly), 0);
});

test('a run that tested nothing: testedNothing and --strict (exit 1 unless one passed and none failed)', (t) => {
  const centos = loadFixture('centos7-user');
  t.true(testedNothing(centos));
  t.is(exitCode(centos, []), 0);
  t.is(exitCode(centos, [], undefined, true), 1);
  const nobody = loadFixture('nobody-debian12');
  t.false(testedNothing(nobody));
  t.is(exitCode(nobody, [], undefined, true), 0);
});
