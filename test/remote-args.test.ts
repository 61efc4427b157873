// The remote half of the command line without any host (pure parsing): --ssh targets, --hosts
// files, --jobs, --ssh-option, NSPROBE_SSH_ARGS, the ssh argv, the words for ssh's failures, and
// the report of a host that was not probed (valid, merged as a host of its own).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../src/args.js';
import { parseArgs } from '../src/cli.js';
import { MatrixBuilder } from '../src/report/matrix.js';
import { parseReport } from '../src/report/validate.js';
import { childArgv } from '../src/remote/cli.js';
import { classifySsh, shellWords, sshArgv } from '../src/remote/ssh.js';
import { parseTarget, readHostsFile } from '../src/remote/targets.js';
import { unreachedReport } from '../src/remote/unreached.js';
import { cli, tmp } from './helpers/run.js';

test('targets: [user@]host[:port], IPv6 in brackets, ssh_config aliases; folder names stay plain', (t) => {
  t.like(parseTarget('db1'), { user: null, host: 'db1', port: null, slug: 'db1' });
  t.like(parseTarget('root@db1.example.org:2222'), { user: 'root', host: 'db1.example.org', port: 2222, slug: 'root@db1.example.org_2222' });
  t.like(parseTarget('admin@[2001:db8::1]:22'), { user: 'admin', host: '2001:db8::1', port: 22, slug: 'admin@2001_db8__1_22' });
  t.like(parseTarget('[::1]'), { host: '::1', port: null });
  for (const bad of ['', '@h', 'h:', 'h:0', 'h:65536', 'h:22x', '-oProxyCommand=x', 'u@-h', 'a b', 'h/x', '[zz]:22', 'us er@h']) {
    const e = t.throws(() => parseTarget(bad), { instanceOf: UsageError }, bad);
    t.false(e!.message.includes('\n'));
    t.regex(e!.message, /expected \[user@\]host\[:port\]/);
  }
});

test('--ssh lists and repeats; the same host twice, --jobs out of range and remote-only flags alone are usage errors', (t) => {
  const o = parseArgs(['--ssh', 'a,root@b:2', '--ssh', 'c', '--jobs', '2'], {});
  t.deepEqual(
    o.remote!.targets.map((x) => x.spec),
    ['a', 'root@b:2', 'c'],
  );
  t.is(o.remote!.jobs, 2);
  t.is(parseArgs(['--ssh', 'a'], {}).remote!.jobs, 4);
  t.is(parseArgs([], {}).remote, null);
  const cases: [string[], RegExp][] = [
    [['--ssh', 'a,a'], /given twice/],
    [['--ssh', 'a', '--jobs', '0'], /--jobs takes a whole number from 1 to 256, not '0'/],
    [['--ssh', 'a', '--jobs', 'lots'], /--jobs takes/],
    [['--jobs', '2'], /--jobs is for remote runs/],
    [['--sudo'], /--sudo is for remote runs/],
    [['--ssh-option', 'IdentityFile=x'], /--ssh-option is for remote runs/],
    [['--ssh', 'a', '--ssh-option', 'novalue'], /--ssh-option takes KEY=VALUE/],
    [['--ssh', 'a', '--check-residue'], /--check-residue looks at this machine/],
    [['--ssh', '-x'], /looks like a flag/],
  ];
  for (const [argv, re] of cases) {
    const e = t.throws(() => parseArgs(argv, {}), { instanceOf: UsageError }, argv.join(' '));
    t.regex(e!.message, re, argv.join(' '));
    t.false(e!.message.includes('\n'));
  }
});

test('--ssh-option repeats and keeps commas whole (a ProxyCommand may hold one); NSPROBE_SSH_ARGS splits like a shell', (t) => {
  const o = parseArgs(['--ssh', 'h', '--ssh-option', 'ProxyCommand=nc -X connect -x a,b %h %p', '--ssh-option=IdentityFile=/k'], { NSPROBE_SSH_ARGS: `-F /dev/null -o ProxyCommand="ssh -W %h:%p 'jump host'" -o 'User=x y' a\\ b` });
  t.deepEqual(o.remote!.ssh.options, ['ProxyCommand=nc -X connect -x a,b %h %p', 'IdentityFile=/k']);
  t.deepEqual(o.remote!.ssh.extra, ['-F', '/dev/null', '-o', "ProxyCommand=ssh -W %h:%p 'jump host'", '-o', 'User=x y', 'a b']);
  t.throws(() => shellWords(`-o "x`), { instanceOf: UsageError, message: /" is not closed/ });
  t.throws(() => shellWords(`-o 'x`), { instanceOf: UsageError, message: /' is not closed/ });
  const argv = sshArgv(parseTarget('u@h:2200'), { config: '/c', options: ['IdentityFile=/k'], extra: ['-v'], sudo: false });
  t.deepEqual(argv.slice(0, 6), ['ssh', '-F', '/c', '-v', '-o', 'IdentityFile=/k']);
  t.deepEqual(argv.slice(-6), ['-p', '2200', '-l', 'u', '--', 'h'], 'the host comes after --: it can never be read as an option');
  t.true(argv.includes('BatchMode=yes'));
});

test('--hosts: comments, blank lines, one target a line; a bad file is one line naming the line', (t) => {
  const d = tmp(t);
  const f = join(d, 'hosts');
  writeFileSync(f, '# the fleet\nroot@a:22   # first\n\n  b\n');
  t.deepEqual(readHostsFile(f), ['root@a:22', 'b']);
  t.deepEqual(
    parseArgs(['--hosts', f, '--ssh', 'c'], {}).remote!.targets.map((x) => x.spec),
    ['c', 'root@a:22', 'b'],
  );
  const bad: [string, RegExp][] = [
    ['a\nb c\n', /line 2: one target per line, got 'b c'/],
    ['a\nx:99999\n', /line 2: 'x:99999' is not a target: port/],
    ['# nothing\n\n', /no targets in it/],
    ['a\0b', /a binary file/],
  ];
  for (const [text, re] of bad) {
    writeFileSync(f, text);
    const r = cli(['--hosts', f]);
    t.is(r.status, 2, text);
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1, 'one line');
    t.notRegex(r.stderr, /at .*\.js/);
  }
  for (const [path, re] of [
    [join(d, 'missing'), /cannot read it \(no such file or directory\)/],
    [d, /cannot read it \(a folder, not a regular file\)/],
  ] as const) {
    const r = cli(['--hosts', path]);
    t.is(r.status, 2);
    t.regex(r.stderr, re);
  }
});

test("ssh's failures in words: refused and unresolvable are unreachable; bad keys are a refused login; a changed key is its own", (t) => {
  t.like(classifySsh('ssh: connect to host 10.0.0.1 port 22: Connection refused\n'), { kind: 'unreachable', line: 'ssh: connect to host 10.0.0.1 port 22: Connection refused' });
  t.like(classifySsh('ssh: Could not resolve hostname nope: Name or service not known\n'), { kind: 'unreachable' });
  t.like(classifySsh('ssh-relay: connect to 127.0.0.1 port 2999: ECONNREFUSED\nConnection closed by UNKNOWN port 65535\n'), { kind: 'unreachable', line: 'Connection closed by UNKNOWN port 65535' });
  t.like(classifySsh('daemon@h: Permission denied (publickey).\n'), { kind: 'login-refused' });
  t.like(classifySsh('@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.\n'), { kind: 'host-key' });
  t.like(classifySsh(''), { kind: 'ssh-failed' });
});

test("a fleet's children get the person's flags without --ssh, --hosts, --jobs, --out and --json", (t) => {
  t.deepEqual(childArgv(['--ssh', 'a,b', '--only=uts', '--jobs=2', '--out', 'r', '--json', '--sudo', '--hosts', 'f', '--ssh-option', 'A=b']), ['--only=uts', '--sudo', '--ssh-option', 'A=b']);
});

test('a host not probed is a valid report whose every probe/mode is an error naming why; merged, it is a group of its own', (t) => {
  const r = unreachedReport(parseTarget('root@gone:22'), 'unreachable', 'ssh: connect to host gone port 22: Connection refused', { startedAt: new Date(0), durationMs: 5 });
  const v = parseReport(JSON.stringify(r));
  t.true(v.ok, v.ok ? '' : v.error);
  t.true(r.probes.length > 10);
  t.true(r.probes.every((p) => p.status === 'error' && p.gate === 'unreachable' && /not probed: host unreachable: ssh: connect/.test(p.cause!)));
  t.is(r.host.hostname, 'gone');
  const b = new MatrixBuilder(() => r);
  b.add({ source: 'gone/report.json', report: r });
  const m = b.finish();
  t.is(m.hosts.length, 1);
  t.regex(m.groups[0].summary, /error \(unreachable\)/);
  t.notRegex(m.groups[0].summary, /all pass/);
  const only = unreachedReport(parseTarget('x'), 'login-refused', 'Permission denied (publickey).', { startedAt: new Date(0), durationMs: 1, modes: ['rootless'], only: ['uts'] });
  t.deepEqual(
    only.probes.map((p) => p.id),
    ['uts/rootless'],
  );
});
