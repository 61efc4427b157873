// Issue 14 item 4 for remote runs: what an agent SIGKILLed on a --via/--ssh target leaves there
// (cgroups nsprobe-<pid>-* below the agent's cgroup, named after its box's pid on the target) is
// removed by the next run through that target, through the target's host interface, and said in
// report.json's notes as the target's; a cgroup whose maker still runs there stays (control).
//
// The target is this machine, with the agent in a cgroup of its own (the --via command moves
// itself there before it starts the bootstrap): the controller's pass, which lists the
// controller's own cgroup, cannot see it, so only the target's pass can remove it. The --via
// command is also a relay of the agent's pipe: in "kill" mode, before it hands on a request it
// looks for a cgroup the run made in that cgroup, and SIGKILLs the agent at the first request
// after the probe's mkdir (the probe's own rmdir is a later request, which never arrives). No
// timing: the kill lands while the cgroup exists, whatever the load.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ownCgroupDir } from '../src/cleanup.js';
import { agentPath } from '../src/native.js';
import { CLI } from './helpers/run.js';
import { sshdMissing, startSshdLab } from './helpers/sshd.js';
import { isRoot, missingTools, needRoot, needTools, REQUIRE_TOOLS } from './helpers/tools.js';
import { spawnNode } from '../scripts/harness.js';
import { notesOf, runs } from './helpers/debris.js';

const serial = test.serial as unknown as typeof test;
const noAgent = agentPath() ? null : 'the agent is not built (npm run build)';

/** The --via command: moves itself into cgroup CG, runs the bootstrap, relays its pipe; "kill": see the top of this file. */
const RELAY = String.raw`
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [cg, mode, said, ...cmd] = process.argv.slice(2);
fs.writeFileSync(cg + '/cgroup.procs', String(process.pid));
const agent = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
agent.stdout.pipe(process.stdout);
agent.stdin.on('error', () => {});
let killed = false;
process.stdin.on('data', (d) => {
  if (killed) return;
  const made = mode === 'kill' ? fs.readdirSync(cg).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n)) : [];
  if (made.length) {
    killed = true;
    agent.kill('SIGKILL');
    if (!fs.existsSync(said)) fs.writeFileSync(said, JSON.stringify({ agent: agent.pid, made }));
    return;
  }
  agent.stdin.write(d);
});
process.stdin.on('end', () => agent.stdin.end());
agent.on('exit', (code, sig) => process.exit(sig ? 137 : code));
`;


/** Whether pid runs (a zombie does not: it made its last object). */

/** Resolves once pid no longer runs (a process exiting: polled, no deadline but the test's). */
async function gone(pid: number): Promise<void> {
  while (runs(pid)) await new Promise((r) => setTimeout(r, 10));
}

/** Resolves once no process is in cgroup dir (cgroup.events says populated 0; polled, as gone()). */
async function unpopulated(dir: string): Promise<void> {
  while (!/^populated 0$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))) await new Promise((r) => setTimeout(r, 10));
}

/** Removes a cgroup and what is below it, killing what still runs in it. */
async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir, { withFileTypes: true })) if (n.isDirectory()) await removeTree(join(dir, n.name));
  for (let killed = false; ; killed = true) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
    }
    if (!killed) writeFileSync(join(dir, 'cgroup.kill'), '1');
    await new Promise((r) => setTimeout(r, 10));
  }
}

needRoot(serial)('--via: cgroups a SIGKILLed agent left on the target are removed by the next run through it and noted as the target\'s; a live maker\'s stay', async (t) => {
  const reason = noAgent ?? missingTools('sh', 'mktemp', 'sha256sum');
  if (reason) {
    if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${reason}`);
    else t.pass(`skipped: ${reason}`);
    return;
  }
  const target = targetCgroup(t, 'nsprobe-test-via');
  if (!target) return;
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  let sleeper: ChildProcess | undefined;
  t.teardown(async () => {
    sleeper?.kill('SIGKILL');
    await removeTree(target);
    rmSync(work, { recursive: true, force: true });
  });
  const relay = join(work, 'relay.cjs');
  writeFileSync(relay, RELAY);
  const said = join(work, 'killed.json');
  const via = (mode: 'kill' | 'pass') => `${process.execPath} ${relay} ${target} ${mode} ${said}`;

  // 1. A run whose agent is SIGKILLed while the cgroup probe's cgroup exists on the target.
  const out1 = join(work, 'out1');
  const first = await spawnNode([CLI, '--only', 'cgroup', '--mode', 'privileged', '--via', via('kill'), '--out', out1]).done;
  t.true(existsSync(said), `the relay killed the agent after the probe made its cgroup (exit ${first.code}): ${first.stderr}`);
  if (!existsSync(said)) return;
  const killed = JSON.parse(readFileSync(said, 'utf8')) as { agent: number; made: string[] };
  await gone(killed.agent);
  const left = readdirSync(target).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n));
  t.log(`agent ${killed.agent} SIGKILLed with ${killed.made.join(', ')} on the target; left: ${left.join(', ')}; the run: exit ${first.code}`);
  t.true(left.length > 0, 'the killed agent left its cgroup (no one could remove it)');
  // Its maker (the agent's box) is gone too, and what ran in the cgroup: their parent-death signal
  // (the target's pass takes no cgroup something runs in).
  for (const n of left) {
    await gone(Number(/^nsprobe-(\d+)-/.exec(n)![1]));
    await unpopulated(join(target, n));
  }

  // Control: the same plant with a maker that still runs on the target.
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  const live = join(target, `nsprobe-${sleeper.pid}-plantlive`);
  mkdirSync(live);
  // A dead maker's cgroup that a process still runs in (a maker of another pid namespace than
  // the box's looks dead from there): the target's pass neither takes it nor kills what runs in it.
  const busy = join(target, `nsprobe-${killed.agent}-plantbusy`);
  mkdirSync(busy);
  const inBusy = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => void inBusy.kill('SIGKILL'));
  writeFileSync(join(busy, 'cgroup.procs'), String(inBusy.pid));
  // And one in the controller's own cgroup whose maker runs: neither pass takes it.
  const mine = join(dirname(target), `nsprobe-${sleeper.pid}-ctrllive`);
  mkdirSync(mine);
  t.teardown(() => rmdirSync(mine));

  // 2. The next run through the same target removes what the killed one left, and says so.
  const out2 = join(work, 'out2');
  const second = await spawnNode([CLI, '--only', 'uts', '--via', via('pass'), '--out', out2]).done;
  t.is(second.code, 0, second.stderr);
  const notes = notesOf(out2);
  t.log(notes.join('\n'));
  for (const n of left) {
    const path = join(target, n);
    t.false(existsSync(path), `removed: ${path}`);
    const pid = /^nsprobe-(\d+)-/.exec(n)![1];
    t.true(notes.includes(`removed a cgroup on the target left by nsprobe process ${pid} there, which has ended: ${path}`), `a note names ${path} as the target's`);
  }
  t.true(existsSync(live), 'a cgroup whose maker runs on the target stays');
  t.true(existsSync(busy) && runs(inBusy.pid!), 'a cgroup something runs in stays, and so does that process');
  t.true(existsSync(mine), 'a cgroup of the controller\'s machine whose maker runs stays');
  t.false(notes.some((n) => n.includes(live) || n.includes(mine) || n.includes(busy)), 'no note names a cgroup that stays');
  // Nothing of the controller's machine is noted as the target's: every such note is below the target's cgroup.
  for (const n of notes.filter((x) => x.includes(' on the target '))) t.true(n.includes(`${target}/`), `the target's: ${n}`);
});

/**
 * A cgroup below this process's own for the target's agent (`<name>-<pid>`), or null, with the
 * test passed as skipped (failed under NSPROBE_REQUIRE_TOOLS=1), where none can be made.
 */
function targetCgroup(t: ExecutionContext, name: string): string | null {
  const own = ownCgroupDir();
  try {
    if (!own) throw new Error('no cgroup2 hierarchy');
    const target = join(own, `${name}-${process.pid}`);
    mkdirSync(target);
    return target;
  } catch (e) {
    // (Root without a writable cgroup2 tree: a container's read-only /sys/fs/cgroup.)
    if (REQUIRE_TOOLS) t.fail(`cannot make a cgroup for the target: ${(e as Error).message}`);
    else t.pass(`skipped: cannot make a cgroup for the target: ${(e as Error).message}`);
    return null;
  }
}

// --ssh: the same collection through the agent of an ssh login (a loopback sshd whose sessions
// run in a cgroup of their own, the target's). The debris is planted as a killed agent leaves it
// (the relay above cannot read an ssh stream): a cgroup named after a pid that has ended, owned
// by the login user; a live maker's stays.
(isRoot ? needTools(sshdMissing(), serial) : needRoot(serial))('--ssh: a dead maker\'s cgroup on the target is removed by the next run and noted as the target\'s; a live maker\'s stays', async (t) => {
  const target = targetCgroup(t, 'nsprobe-test-ssh');
  if (!target) return;
  t.teardown(() => removeTree(target));
  const lab = await startSshdLab(['plain']);
  const h = lab.hosts[0];
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(async () => {
    sleeper.kill('SIGKILL');
    await lab.close();
    rmSync(work, { recursive: true, force: true });
  });
  // Every session sshd starts from here on is in the target's cgroup.
  writeFileSync(join(target, 'cgroup.procs'), String(h.sshd));
  const uid = Number(spawnSync('id', ['-u', h.user], { encoding: 'utf8' }).stdout.trim());
  const dead = spawnSync('true').pid!;
  const gone = join(target, `nsprobe-${dead}-plantdead`);
  const live = join(target, `nsprobe-${sleeper.pid}-plantlive`);
  for (const c of [gone, live]) {
    mkdirSync(c);
    if (Number.isInteger(uid)) chownSync(c, uid, -1);
  }
  const out = join(work, 'out');
  const r = await spawnNode([CLI, '--ssh-config', lab.config, '--ssh', h.target, '--only', 'uts', '--out', out]).done;
  t.is(r.code, 0, r.stderr);
  const notes = notesOf(out);
  t.log(notes.join('\n'));
  t.false(existsSync(gone), `removed: ${gone}`);
  t.true(notes.includes(`removed a cgroup on the target left by nsprobe process ${dead} there, which has ended: ${gone}`), 'a note names it as the target\'s');
  t.true(existsSync(live), 'a cgroup whose maker runs on the target stays');
  t.false(notes.some((n) => n.includes(live)), 'no note names it');
});
