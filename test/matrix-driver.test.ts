// ci/matrix.mjs (the Vagrant distro matrix driver) against a stand-in `vagrant` on PATH
// (test/fixtures/fake-vagrant/vagrant), plus ci/validate-vagrantfile.sh against the real Vagrant.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingTools, needTools } from './helpers/tools.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DRIVER = join(ROOT, 'ci', 'matrix.mjs');
const FAKE_DIR = join(ROOT, 'test', 'fixtures', 'fake-vagrant');
const FAKE_NSPROBE = `node ${join(ROOT, 'test', 'fixtures', 'fake-nsprobe.mjs')}`;
const REAL_CLI = join(ROOT, 'dist', 'src', 'cli.js');
const BOXES: string[] = JSON.parse(readFileSync(join(ROOT, 'ci', 'boxes.json'), 'utf8')).boxes.map((b: { name: string }) => b.name);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  calls: string[][];
  sleepers: number[];
  dir: string;
  out: string;
}

type Scenario = Record<string, { up?: string; probe?: string; sshconfig?: string; status?: Record<string, string> }>;

function runDriver(
  args: string[],
  opts: { scenario?: Scenario; require?: string; interruptOn?: RegExp; nsprobe?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-matrix-test-'));
  const out = join(dir, 'out');
  const log = join(dir, 'vagrant.log');
  const scenarioFile = join(dir, 'scenario.json');
  writeFileSync(scenarioFile, JSON.stringify(opts.scenario ?? {}));
  const extra = ['--out', out, '--nsprobe', opts.nsprobe ?? FAKE_NSPROBE];
  if (opts.require !== undefined) {
    writeFileSync(join(dir, 'require.txt'), opts.require);
    extra.push('--require', join(dir, 'require.txt'));
  }
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [DRIVER, ...args, ...extra], {
      cwd: ROOT,
      env: {
        ...process.env,
        PATH: `${FAKE_DIR}${delimiter}${process.env.PATH}`,
        FAKE_VAGRANT_LOG: log,
        FAKE_VAGRANT_SCENARIO: scenarioFile,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (opts.interruptOn && !signalled && opts.interruptOn.test(stdout)) {
        signalled = true;
        // Give the fake time to start its own child before the Ctrl-C.
        setTimeout(() => child.kill('SIGINT'), 300);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      done({
        code,
        stdout,
        stderr,
        ms: Date.now() - started,
        calls: lines.filter((l) => l.argv).map((l) => l.argv),
        sleepers: lines.filter((l) => l.sleeper).map((l) => l.sleeper),
        dir,
        out,
      });
    });
  });
}

const callsOf = (r: Run, cmd: string, box: string) => r.calls.filter((c) => c[0] === cmd && c.includes(box));

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('two boxes succeed: up without provisioning, ssh-config, nsprobe --ssh as root (--sudo) and as the login user, destroy, merge; reports land under --out/<box>/{root,user}', async (t) => {
  const r = await runDriver(['--boxes', 'centos7,debian12', '--jobs', '2', '--provider', 'virtualbox']);
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const box of ['centos7', 'debian12']) {
    // nothing is provisioned: no Node, no compiler in the guest
    t.deepEqual(callsOf(r, 'up', box), [['up', box, '--provider', 'virtualbox', '--no-provision']]);
    t.is(callsOf(r, 'provision', box).length, 0);
    t.deepEqual(callsOf(r, 'ssh-config', box), [['ssh-config', box]]);
    const cfg = join(r.out, 'logs', `${box}.ssh-config`);
    t.regex(readFileSync(cfg, 'utf8'), new RegExp(`^Host ${box}$`, 'm'));
    t.deepEqual(callsOf(r, 'nsprobe', box), [
      ['nsprobe', '--ssh', box, '--ssh-config', cfg, '--sudo', '--out', join(r.out, box, 'root')],
      ['nsprobe', '--ssh', box, '--ssh-config', cfg, '--out', join(r.out, box, 'user')],
    ]);
    t.deepEqual(callsOf(r, 'destroy', box), [['destroy', '-f', box]]);
    for (const line of [`[${box}] up (attempt 1/2)`, `[${box}] probe root`, `[${box}] probe user`, `[${box}] collected 2 reports`, `[${box}] destroyed`]) {
      t.true(r.stdout.includes(line), `missing progress line ${line}:\n${r.stdout}`);
    }
    for (const run of ['root', 'user']) {
      const rep = JSON.parse(readFileSync(join(r.out, box, run, 'report.json'), 'utf8'));
      t.is(rep.host.hostname, `nsprobe-${box}`);
      t.is(rep.host.euid, run === 'root' ? 0 : 1000);
    }
  }
  const matrix = JSON.parse(readFileSync(join(r.out, 'matrix.json'), 'utf8'));
  t.deepEqual(matrix.reports, ['centos7/root/report.json', 'centos7/user/report.json', 'debian12/root/report.json', 'debian12/user/report.json']);
});

test('the fake box reports are valid against schema/report.schema.json', async (t) => {
  const schemaPath = join(ROOT, 'schema', 'report.schema.json');
  if (!existsSync(schemaPath)) return t.fail('schema/report.schema.json is missing');
  const r = await runDriver(['--boxes', 'alpine319', '--retries', '0']);
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 0, r.stdout + r.stderr);
  const { default: Ajv } = (await import('ajv')) as unknown as { default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown } } };
  const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
  for (const run of ['root', 'user']) {
    const ok = validate(JSON.parse(readFileSync(join(r.out, 'alpine319', run, 'report.json'), 'utf8')));
    t.true(ok, `${run}: ${JSON.stringify(validate.errors)}`);
  }
});

test('an up that fails once is destroyed and retried, and the box then succeeds', async (t) => {
  const r = await runDriver(['--boxes', 'rocky8', '--retries', '1'], { scenario: { rocky8: { up: 'fail-once' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(callsOf(r, 'up', 'rocky8').length, 2);
  t.true(r.stdout.includes('[rocky8] up (attempt 2/2)'));
  // One destroy before the retry, one at the end.
  t.is(callsOf(r, 'destroy', 'rocky8').length, 2);
  t.deepEqual(r.calls.map((c) => c[0]), ['up', 'destroy', 'up', 'ssh-config', 'nsprobe', 'nsprobe', 'destroy']);
  t.true(r.stdout.includes('[rocky8] collected 2 reports'));
});

test('an up that always fails: box FAILED, destroy still called, other boxes still merged, exit 1', async (t) => {
  const r = await runDriver(['--boxes', 'arch,debian11', '--retries', '2', '--jobs', '1'], { scenario: { arch: { up: 'fail' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 1, r.stdout + r.stderr);
  t.is(callsOf(r, 'up', 'arch').length, 3);
  t.true(r.stdout.includes('[arch] up (attempt 3/3)'));
  t.is(callsOf(r, 'ssh-config', 'arch').length, 0);
  t.is(callsOf(r, 'nsprobe', 'arch').length, 0);
  t.true(callsOf(r, 'destroy', 'arch').length >= 1);
  t.deepEqual(r.calls.at(-1), ['destroy', '-f', 'debian11']);
  t.regex(r.stdout, /\[arch\] FAILED: vagrant up failed 3 time\(s\), last: exit 1/);
  t.true(r.stdout.includes('[debian11] collected 2 reports'));
  t.deepEqual(JSON.parse(readFileSync(join(r.out, 'matrix.json'), 'utf8')).reports, ['debian11/root/report.json', 'debian11/user/report.json']);
  t.regex(r.stdout, /1 box\(es\) ok, 1 failed \(arch\)/);
});

test('a hanging box is killed at the per-box timeout (with its children), destroyed, and the run ends promptly', async (t) => {
  // 8 s: the good box's fake vagrant starts node four times, slow on a loaded CI machine.
  const r = await runDriver(['--boxes', 'ubuntu2204,fedora39', '--timeout', '8', '--jobs', '2'], { scenario: { ubuntu2204: { up: 'hang' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 1, r.stdout + r.stderr);
  // The hung fake never ends on its own: the run ending at all, with this line, is the timeout at work
  // (no wall-clock bound: a loaded CI machine made 30 s too short for a run that was right).
  t.regex(r.stdout, /\[ubuntu2204\] FAILED: timeout after 8 s/);
  t.deepEqual(callsOf(r, 'destroy', 'ubuntu2204'), [['destroy', '-f', 'ubuntu2204']]);
  t.true(r.stdout.includes('[ubuntu2204] destroyed'));
  t.true(r.stdout.includes('[fedora39] collected 2 reports'));
  t.true(r.sleepers.length > 0, 'the fake should have started a child');
  for (const pid of r.sleepers) t.true(await gone(pid), `child ${pid} of the hanging vagrant is still running`);
});

test('a probe that hangs is timed out too, and reports that never came are not merged', async (t) => {
  // 15 s: up and ssh-config (two starts of the fake, a node program) must be over before it, also
  // on a loaded machine; the hanging nsprobe then holds the box until the timeout, however long
  const r = await runDriver(['--boxes', 'debian12', '--timeout', '15'], { scenario: { debian12: { probe: 'hang' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /\[debian12\] FAILED: timeout after 15 s \(during probe root\)/);
  t.is(callsOf(r, 'nsprobe', 'debian12').length, 1, 'the user run does not start after the root run timed out');
  t.is(callsOf(r, 'destroy', 'debian12').length, 1);
  t.true(r.stdout.includes('[merge] skipped: no report.json collected'));
  for (const pid of r.sleepers) t.true(await gone(pid));
});

test('vagrant ssh-config without the box entry, or failing, fails the box before any probe', async (t) => {
  const r = await runDriver(['--boxes', 'ubuntu2004,rocky8', '--retries', '0'], { scenario: { ubuntu2004: { sshconfig: 'garbage' }, rocky8: { sshconfig: 'fail' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 1);
  t.regex(r.stdout, /\[ubuntu2004\] FAILED: vagrant ssh-config printed no 'Host ubuntu2004' entry/);
  t.regex(r.stdout, /\[rocky8\] FAILED: vagrant ssh-config failed \(exit 1\)/);
  for (const box of ['ubuntu2004', 'rocky8']) {
    t.is(callsOf(r, 'nsprobe', box).length, 0);
    t.is(callsOf(r, 'destroy', box).length, 1);
  }
});

test('a box nsprobe could not probe (exit 4, no report) fails, and the runs that did report are still merged', async (t) => {
  const r = await runDriver(['--boxes', 'alma9,debian11', '--retries', '0'], { scenario: { alma9: { probe: 'fail' } } });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /\[alma9\] FAILED: probe failed \(root: nsprobe exit 4, no report\.json; user: nsprobe exit 4, no report\.json\), collected 0 report\(s\)/);
  t.is(callsOf(r, 'destroy', 'alma9').length, 1);
  t.deepEqual(JSON.parse(readFileSync(join(r.out, 'matrix.json'), 'utf8')).reports, ['debian11/root/report.json', 'debian11/user/report.json']);
});

test('--require: a required cell that is not pass fails the run; passing and qualified cells do not', async (t) => {
  const scenario = { ubuntu2404: { status: { 'user user/rootless': 'fail' } } };
  const boxes = ['--boxes', 'ubuntu2404,alma9'];
  const bad = await runDriver(boxes, { scenario, require: '# cells that must pass\n* uts/privileged\nubuntu2404 user/rootless\n' });
  t.teardown(() => rmSync(bad.dir, { recursive: true, force: true }));
  t.is(bad.code, 1, bad.stdout + bad.stderr);
  t.regex(bad.stdout, /\[require\] ubuntu2404 user\/rootless: NOT PASS \(root=pass user=fail\)/);
  t.regex(bad.stdout, /\[require\] 3 required cell\(s\) checked, 1 not pass/);
  t.regex(bad.stdout, /0 failed/);

  const good = await runDriver(boxes, { scenario, require: '* uts/privileged\nubuntu2404/root user/rootless\nalma9 user/rootless\n' });
  t.teardown(() => rmSync(good.dir, { recursive: true, force: true }));
  t.is(good.code, 0, good.stdout + good.stderr);
  t.regex(good.stdout, /\[require\] 4 required cell\(s\) checked, 0 not pass/);
});

// Serial: its Ctrl-C comes from a timer, and a concurrent test's spawnSync (the real vagrant) held
// that timer past the box's 60 s timeout under load (a clean-clone CI run at load 18).
test.serial('Ctrl-C kills the running vagrant and its children, destroys the box, exits 130', async (t) => {
  const r = await runDriver(['--boxes', 'centos7,rocky8', '--jobs', '1', '--timeout', '60'], {
    scenario: { centos7: { up: 'hang' } },
    interruptOn: /\[centos7\] up \(attempt 1/,
  });
  t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
  t.is(r.code, 130, r.stdout + r.stderr);
  t.notRegex(r.stdout, /timeout after 60 s/, 'Ctrl-C ended the box, not its 60 s timeout');
  t.deepEqual(callsOf(r, 'destroy', 'centos7'), [['destroy', '-f', 'centos7']]);
  t.is(callsOf(r, 'up', 'rocky8').length, 0, 'no new box starts after Ctrl-C');
  for (const pid of r.sleepers) t.true(await gone(pid), `child ${pid} still running`);
});

test('bad flags: one line on stderr and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--jobs', '0'], /--jobs takes a whole number from 1 up, not '0'/],
    [['--timeout', 'soon'], /--timeout takes a number of seconds/],
    [['--jobs'], /--jobs needs a number/],
    [['--out', '-x'], /--out needs a folder, and '-x' looks like a flag/],
    [['--retries', '-1'], /--retries/],
    [['--provider', 'docker'], /--provider wants one of libvirt\|virtualbox/],
    [['--boxes', 'centos7,windows11'], /unknown box windows11/],
    [['--frobnicate'], /unknown flag '--frobnicate' \(see --help\)/],
    [['--vagrant', '/nonexistent/vagrant'], /--vagrant \/nonexistent\/vagrant: not an executable/],
  ];
  for (const [args, re] of cases) {
    const r = await runDriver(args);
    rmSync(r.dir, { recursive: true, force: true });
    t.is(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: more than one line: ${r.stderr}`);
    t.deepEqual(r.calls, [], 'vagrant must not run on bad flags');
  }
  const badReq = await runDriver(['--boxes', 'arch'], { require: 'arch user rootless\n' });
  rmSync(badReq.dir, { recursive: true, force: true });
  t.is(badReq.code, 2);
  t.regex(badReq.stderr, /require\.txt:1: want/);
});

const realMerge = existsSync(REAL_CLI) ? test : test.skip;
realMerge(
  existsSync(REAL_CLI)
    ? 'the real `node dist/src/cli.js merge` merges what the driver collected'
    : 'SKIPPED: the real merge test needs dist/src/cli.js, which does not exist (run `npm run build` first)',
  async (t) => {
    const r = await runDriver(['--boxes', 'centos7,ubuntu2404'], {
      env: { FAKE_NSPROBE_MERGE: REAL_CLI },
      scenario: { ubuntu2404: { status: { 'user user/rootless': 'fail' } } },
    });
    t.teardown(() => rmSync(r.dir, { recursive: true, force: true }));
    t.is(r.code, 0, r.stdout + r.stderr);
    for (const f of ['matrix.json', 'matrix.md', 'matrix.html', 'matrix-junit.xml']) t.true(existsSync(join(r.out, f)), `${f} missing`);
    const matrix = readFileSync(join(r.out, 'matrix.json'), 'utf8');
    t.true(matrix.includes('nsprobe-centos7') && matrix.includes('nsprobe-ubuntu2404'), 'both hosts in matrix.json');
  },
);

/** Why the real Vagrant cannot check the Vagrantfile here (null: it can). No provider is needed. */
function vagrantCannot(): string | null {
  const missing = missingTools('vagrant', 'ruby');
  return missing ? `${missing} (Debian: apt-get install vagrant)` : null;
}

test('validate-vagrantfile.sh: vagrant without a usable provider validates with --ignore-provider and reads the machines from the Vagrantfile', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-vagrant-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // What Vagrant prints when no provider is usable: none at all, the requested one missing, or
  // vagrant-libvirt without a libvirt daemon. The fake validates only with --ignore-provider.
  const messages = [
    'No usable default provider could be found for your system.',
    "The provider 'libvirt' could not be found, but was requested to back the machine 'centos7'. Please use a provider that exists.",
    'Error while connecting to Libvirt: Error making a connection to libvirt URI qemu:///system',
  ];
  for (const [i, msg] of messages.entries()) {
    const fake = join(dir, `vagrant${i}`);
    writeFileSync(fake, `#!/bin/sh\ncase "$1 $2" in "--version "*) echo "Vagrant 2.3.4";; "validate --ignore-provider") echo "Vagrantfile validated successfully.";; *) echo "${msg}" >&2; exit 1;; esac\n`, { mode: 0o755 });
    const check = spawnSync('sh', [join(ROOT, 'ci', 'validate-vagrantfile.sh'), '--provider-check'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VAGRANT: fake } });
    t.is(check.status, 3, 'the provider check says there is none');
    if (missingTools('ruby')) continue;
    const r = spawnSync('sh', [join(ROOT, 'ci', 'validate-vagrantfile.sh')], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VAGRANT: fake } });
    t.is(r.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /no usable provider here/);
    t.notRegex(r.stdout + r.stderr, /is not a machine of the Vagrantfile/);
    for (const box of BOXES) t.true(r.stdout.includes(box), box);
  }
});

needTools(vagrantCannot())('ci/validate-vagrantfile.sh passes with the real Vagrant and knows every box of ci/boxes.json', (t) => {
  const r = spawnSync('sh', [join(ROOT, 'ci', 'validate-vagrantfile.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.true(r.stdout.includes('validated successfully'), r.stdout);
  const machines = r.stdout.split('\n').find((l) => l.startsWith('validate-vagrantfile: machines:')) ?? '';
  for (const box of BOXES) t.true(machines.split(/\s+/).includes(box), `box ${box} missing from: ${machines}`);
  t.true(BOXES.length >= 11);
});
