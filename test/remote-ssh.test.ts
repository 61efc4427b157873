// `nsprobe --ssh` against the sshd test hosts (test/helpers/sshd.ts): plain (root), CentOS-7-like
// (a user namespace with max_user_namespaces=0) and unprivileged (nobody).
//   - Each host's --ssh verdicts equal a local run in the same environment (nsprobe run inside
//     that host's namespaces as its login user), per probe/mode, and nothing stays on the target.
//   - Killing the controller (SIGKILL), dropping the ssh connection and Ctrl-C (SIGINT) each leave
//     nothing on the target.
//   - Three hosts and an unreachable one in one run with --jobs 2: four results in the matrix.
//   - A refused login and a refused sudo are that host's result, in words, exit 4.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../src/model.js';
import type { Matrix } from '../src/report/matrix.js';
import { CLI, ROOT, tmp } from './helpers/run.js';
import { sshdMissing, startSshdLab, type SshdHost, type SshdLab } from './helpers/sshd.js';
import { missingTools, needTools } from './helpers/tools.js';

const node = process.execPath;
const statuses = (r: Report) => Object.fromEntries(r.probes.map((p) => [p.id, p.status]));

function runSsh(lab: SshdLab, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(node, [CLI, '--ssh-config', lab.config, ...args], { encoding: 'utf8', timeout: 600000, cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env } });
}

/** nsprobe run locally inside the host's namespaces as its login user; the report as the host sees it. */
function localRun(h: SshdHost, extra: string[]): Report {
  const dir = join(h.dir, `local-${Date.now()}`);
  mkdirSync(dir, { mode: 0o755 });
  if (h.user !== 'root') chownSync(dir, 65534, 65534);
  const out = `${h.inside}/${dir.split('/').pop()}/r`;
  const r = spawnSync(h.enter[0], [...h.enter.slice(1), node, CLI, '--out', out, ...extra], { encoding: 'utf8', timeout: 600000, cwd: ROOT });
  if (![0, 1].includes(r.status ?? -1)) throw new Error(`local run on ${h.name}: exit ${r.status}: ${r.stderr}`);
  return JSON.parse(readFileSync(join(dir, 'r', 'report.json'), 'utf8')) as Report;
}

async function nothingLeft(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, lab: SshdLab, h: SshdHost, when: string): Promise<void> {
  t.deepEqual(await lab.strays(h, 15000), [], `${h.name} ${when}: no process left under its sshd`);
  t.deepEqual(lab.leftovers(h), [], `${h.name} ${when}: no file left in its tmp or home`);
}

needTools(sshdMissing())('--ssh verdicts equal a local run in the same environment on each sshd host; nothing stays on the target', async (t) => {
  const lab = await startSshdLab();
  t.teardown(() => lab.close());
  const d = tmp(t);
  const rows: string[] = [];
  for (const h of lab.hosts) {
    // --ssh first: the local run runs consumer programs (podman --version as nobody makes
    // /tmp/podman-run-65534), which a remote run never does on its target.
    const r = runSsh(lab, ['--ssh', h.target, '--out', join(d, h.kind)]);
    t.true([0, 1].includes(r.status ?? -1), `${h.name}: exit ${r.status}: ${r.stderr}`);
    const remote = JSON.parse(readFileSync(join(d, h.kind, 'report.json'), 'utf8')) as Report;
    await nothingLeft(t, lab, h, 'after --ssh');
    const local = localRun(h, []);
    t.is(remote.host.hostname, h.name, "the report's host facts are the target's");
    t.is(remote.host.euid, local.host.euid);
    t.deepEqual(statuses(remote), statuses(local), `${h.name}: --ssh and local agree per probe/mode`);
    for (const [id, s] of Object.entries(statuses(local))) rows.push(`${h.kind} ${id} local=${s} ssh=${statuses(remote)[id]}`);
  }
  t.log(`agreement:\n${rows.join('\n')}`);
});

// Serial: it polls for the agent while the run lasts; a spawnSync of a concurrent test in this worker
// would block that poll for the whole run.
needTools(sshdMissing(), test.serial)('SIGKILL of the controller, a dropped ssh connection and Ctrl-C each leave nothing on the target', async (t) => {
  const lab = await startSshdLab(['plain']);
  t.teardown(() => lab.close());
  const h = lab.hosts[0];
  const d = tmp(t);
  for (const how of ['SIGKILL controller', 'kill ssh', 'SIGINT controller'] as const) {
    // A slow link (each chunk from the target held back 25 ms): the run lasts seconds, not 0.6 s.
    const slow = h.options.find((o) => o.startsWith('ProxyCommand='))!.replace(/%p$/, '%p 25');
    const child = spawn(node, [CLI, '--ssh-config', lab.config, '--ssh-option', slow, '--ssh', h.target, '--out', join(d, how.replace(/ /g, '-'))], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    // Wait until the agent runs on the target (a process there other than the session's shell).
    let seen = false;
    // (A deadline, not a count: on a loaded machine the controller's start and the preflight take a while.)
    for (const end = Date.now() + 120000; Date.now() < end && !seen && child.exitCode === null; ) {
      await new Promise((r) => setTimeout(r, 20));
      seen = (await lab.strays(h, 0)).some((p) => /nsprobe-agent|\/\.nsprobe|agent/.test(p));
    }
    t.true(seen, `${how}: the agent was seen running on the target (exit ${child.exitCode}: ${err})`);
    if (how === 'kill ssh') {
      const ssh = spawnSync('pgrep', ['-P', String(child.pid), '-x', 'ssh'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
      t.true(ssh.length > 0, 'the controller runs ssh');
      for (const p of ssh) process.kill(Number(p), 'SIGKILL');
    } else child.kill(how === 'SIGKILL controller' ? 'SIGKILL' : 'SIGINT');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    if (how === 'SIGINT controller') t.is(child.exitCode, 130, err);
    await nothingLeft(t, lab, h, `after ${how}`);
  }
});

needTools(sshdMissing())('three sshd hosts and an unreachable one with --jobs 2: four results in the matrix, the unreachable one marked, exit 4', async (t) => {
  const lab = await startSshdLab();
  t.teardown(() => lab.close());
  const d = tmp(t);
  const out = join(d, 'fleet');
  const r = runSsh(lab, ['--ssh', [...lab.hosts.map((h) => h.target), lab.unreachable.target].join(','), '--jobs', '2', '--out', out]);
  t.is(r.status, 4, `exit 4: a host was not probed\n${r.stdout}${r.stderr}`);
  t.regex(r.stdout, new RegExp(`${lab.unreachable.target}\\s+NOT PROBED\\s+host unreachable`));
  t.regex(r.stderr, /matrix of 4 host\(s\)/);
  for (const h of lab.hosts) t.true(existsSync(join(out, `${h.user}@${h.name}_${h.port}`, 'report.json')), `${h.name}: its own report folder`);
  const m = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as Matrix;
  t.is(m.hosts.length, 4);
  const un = m.hosts.find((x) => x.hostname === lab.unreachable.name)!;
  t.truthy(un, 'the unreachable host is in the matrix');
  t.true(Object.values(m.cells[un.label]).every((c) => c.status === 'error' && c.gate === 'unreachable'));
  t.true(m.groups.some((g) => g.hosts.includes(un.label) && /unreachable/.test(g.summary)), 'its group says unreachable');
  for (const h of lab.hosts) {
    const row = m.hosts.find((x) => x.hostname === h.name);
    t.truthy(row, `${h.name} is in the matrix`);
    if (row) t.false(Object.values(m.cells[row.label]).some((c) => c.status === 'error' && /^not probed/.test(c.cause ?? '')), `${h.name} was probed`);
  }
  for (const h of lab.hosts) await nothingLeft(t, lab, h, 'after the fleet run');
});

needTools(sshdMissing())('a refused login and a refused sudo are the host’s result in words (exit 4), with a report for the matrix', async (t) => {
  const lab = await startSshdLab(['plain', 'unprivileged']);
  t.teardown(() => lab.close());
  const d = tmp(t);
  const [plain, unpriv] = lab.hosts;
  const login = runSsh(lab, ['--ssh', `nosuchuser@${plain.name}`, '--out', join(d, 'login')]);
  t.is(login.status, 4, login.stderr);
  t.regex(login.stderr, /^nsprobe: nosuchuser@nsprobe-plain: not probed: login refused: .*Permission denied \(publickey\)/m);
  const rep = JSON.parse(readFileSync(join(d, 'login', 'report.json'), 'utf8')) as Report;
  t.true(rep.probes.every((p) => p.gate === 'login-refused'));
  const sudo = runSsh(lab, ['--ssh', unpriv.target, '--sudo', '--out', join(d, 'sudo')]);
  t.is(sudo.status, 4, sudo.stderr);
  t.regex(sudo.stderr, /not probed: sudo -n refused: /);
  // The control: the same host without --sudo is reached (the refusal is sudo's, not the login's).
  const plainRun = runSsh(lab, ['--ssh', unpriv.target, '--out', join(d, 'nosudo'), '--only', 'uts']);
  t.notRegex(plainRun.stderr, /login refused|sudo -n refused|unreachable/, plainRun.stderr);
  for (const h of lab.hosts) await nothingLeft(t, lab, h, 'after refused runs');
});

needTools(sshdMissing() ?? missingTools('setarch'))('a target of an architecture the agent is not built for is that host’s result (exit 4), nothing copied', async (t) => {
  // Every command on this host runs under `setarch i686`: uname -m says i686, as on a 32-bit box.
  const lab = await startSshdLab(['plain'], { sshdConfig: ['ForceCommand setarch i686 /bin/sh -c "$SSH_ORIGINAL_COMMAND"'] });
  t.teardown(() => lab.close());
  const d = tmp(t);
  const h = lab.hosts[0];
  const r = runSsh(lab, ['--ssh', h.target, '--out', join(d, 'r')]);
  t.is(r.status, 4, r.stderr);
  t.regex(r.stderr, /not probed: no agent for its architecture: the target is i686; the agent is built for x86_64 and aarch64/);
  const rep = JSON.parse(readFileSync(join(d, 'r', 'report.json'), 'utf8')) as Report;
  t.is(rep.host.arch, 'i686');
  t.true(rep.probes.every((p) => p.gate === 'arch-missing'));
  await nothingLeft(t, lab, h, 'after the refused architecture');
});
