// Issue 14 item 2 on a --via run: the hurried exit (a second signal) removes this machine's
// cgroups named after this machine's pids only. The pids of the target (the agent and its boxes,
// one of them the run's BoxHost) name cgroups on the target, never here: a local cgroup named
// after one of them is another run's (on a real target those pids mean nothing here), so it stays,
// and so does what runs in it. Control: a cgroup named after the run's own pid is removed by the
// hurried exit (the normal path of a single signal would not touch it, so its removal shows that
// the hurried path ran).
//
// The target is this machine, with the agent in a cgroup of its own (the --via command moves
// itself there and execs the bootstrap): the target's pids are real pids here. The points: once
// the agent has a box (the BoxHost's, before any probe), a seeded random number of the agent's
// further children later (events, no sleeps), SIGTERM; once the run says it is stopping, SIGINT.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ownCgroupDir, parseSysv, SYSV_KINDS } from '../src/cleanup.js';
import { agentPath } from '../src/native.js';
import { CLI, ROOT } from './helpers/run.js';
import { needRoot, REQUIRE_TOOLS, missingTools } from './helpers/tools.js';
import { prng, spawnNode } from '../scripts/harness.js';

const serial = test.serial as unknown as typeof test;

function ppidOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function procsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
const tick = () => new Promise((r) => setTimeout(r, 5));

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
    await tick();
  }
}

needRoot(serial)('--via, a second signal: a local cgroup named after a target pid stays with what runs in it; the run\'s own is removed', async (t) => {
  const reason = (agentPath() ? null : 'the agent is not built (npm run build)') ?? missingTools('sh', 'mktemp', 'sha256sum', 'sleep');
  const own = ownCgroupDir();
  if (reason || !own) {
    const why = reason ?? 'no cgroup2 hierarchy';
    if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${why}`);
    else t.pass(`skipped: ${why}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  // The target's cgroup, and one of the controller's own (the runs are started in it): plants
  // there are listed by no other run (the suite's other files run beside this one, and their
  // debris passes would take a plant whose maker has ended).
  const target = join(own, `nsprobe-test-hurry-${process.pid}`);
  const home = join(own, `nsprobe-test-ctrl-${process.pid}`);
  mkdirSync(target);
  mkdirSync(home);
  const planted: string[] = [];
  const sleepers: ChildProcess[] = [];
  t.teardown(async () => {
    for (const s of sleepers) s.kill('SIGKILL');
    for (const c of planted) await removeTree(c).catch(() => undefined);
    await removeTree(target).catch(() => undefined);
    await removeTree(home).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });
  const via = join(work, 'via.sh');
  writeFileSync(via, `#!/bin/sh\necho $$ > ${target}/cgroup.procs\nexec "$@"\n`, { mode: 0o755 });
  const inHome = ['sh', '-c', `echo $$ > ${home}/cgroup.procs && exec "$@"`, 'sh'];
  const rand = prng(14021);
  let hurried = 0;
  for (let trial = 0; trial < 8 && hurried < 2; trial++) {
    const out = join(work, `out${trial}`);
    const { child, done } = spawnNode([CLI, '--only', 'cgroup,ipc,net-veth', '--mode', 'privileged', '--via', via, '--out', out], { prefix: inHome });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    // The agent: the process in the target's cgroup whose children are boxes.
    const extra = Math.floor(rand() * 3);
    const seen = new Set<number>();
    let agent = 0;
    while (alive(child)) {
      const pids = procsIn(target);
      agent ||= pids.find((p) => pids.some((q) => ppidOf(q) === p && readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('nsprobe-agent'))) ?? 0;
      if (agent) for (const p of pids) if (ppidOf(p) === agent) seen.add(p);
      if (seen.size > extra) break;
      await tick();
    }
    if (!alive(child)) {
      t.log(`trial ${trial}: the run ended before the point (${(await done).code}): ${stderr}`);
      continue;
    }
    // Plants: a cgroup here (in the controller's own cgroup) named after each target pid, a live
    // process in each; and the control, named after the run's pid.
    const mine: string[] = [];
    for (const pid of [agent, ...seen]) {
      const c = join(home, `nsprobe-${pid}-plant${trial}`);
      mkdirSync(c);
      planted.push(c);
      const s = spawn('sleep', ['600'], { stdio: 'ignore' });
      sleepers.push(s);
      writeFileSync(join(c, 'cgroup.procs'), String(s.pid));
      mine.push(c);
    }
    const control = join(home, `nsprobe-${child.pid}-ctl${trial}`);
    mkdirSync(control);
    planted.push(control);
    child.kill('SIGTERM');
    while (alive(child) && !stderr.includes('SIGTERM, stopping')) await tick();
    child.kill('SIGINT');
    const r = await done;
    if (!r.stderr.includes('stopping')) {
      // (It ended between the look and the signal: no point.)
      t.log(`trial ${trial}: the run ended before the signal (exit ${r.code})`);
      continue;
    }
    t.log(`trial ${trial}: agent ${agent}, boxes ${[...seen].join(' ')} (after ${extra}), exit ${r.code}`);
    // (Also when the first signal came while the reports were written: the handlers stay until
    // the exit, whose agent shutdown a second signal once ended by its default action.)
    t.is(r.code, 143, `the run stopped on the first signal (exit ${r.code}, signal ${r.signal}): ${r.stderr}`);
    const wasHurried = !existsSync(control);
    if (wasHurried) hurried++;
    else t.log(`trial ${trial}: the run ended before the second signal hurried it`);
    for (const c of mine) t.true(existsSync(c) && procsIn(c).length === 1, `a cgroup named after a target pid stays, with its process: ${c}`);
    // What the hurried exit left on the target (the agent's cgroup there): the next run's target pass takes it.
    const left = readdirSync(target).filter((n) => n.startsWith('nsprobe-'));
    t.log(`trial ${trial}: left on the target: ${left.join(', ') || 'nothing'}`);
  }
  t.true(hurried > 0, 'some runs were hurried by the second signal');
  // The next run through the same target collects what the hurried exits left there.
  const after = await spawnNode([CLI, '--only', 'uts', '--via', via, '--out', join(work, 'next')]).done;
  t.is(after.code, 0, after.stderr);
  const still = readdirSync(target).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n));
  t.deepEqual(still, [], 'the next run through the target removed every cgroup the hurried exits left there');
});

/**
 * The --via command for the target's side of a hurried exit: moves itself into cgroup CG, runs
 * the bootstrap and hands on its pipe; before it hands on a request it looks for what the run has
 * made on the target (WHAT: "cgroup", a cgroup below CG; "sysv", a SysV object whose key names
 * one of the agent's boxes) and, the first time, sends the CLI (its parent) SIGTERM and then
 * SIGINT (two signals: the second hurries the exit), and goes on handing on requests.
 */
const RELAY = String.raw`
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [cg, what, said, cleanup, ...cmd] = process.argv.slice(2);
fs.writeFileSync(cg + '/cgroup.procs', String(process.pid));
const ppid = (p) => { try { const s = fs.readFileSync('/proc/' + p + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]); } catch { return 0; } };
const below = (p, top) => { for (let i = 0; p > 1 && i < 64; i++, p = ppid(p)) if (p === top) return true; return false; };
import(cleanup).then(({ parseSysv, sysvKeyMaker }) => {
  const agent = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  agent.stdout.pipe(process.stdout);
  agent.stdin.on('error', () => {});
  let sent = false;
  const look = () => {
    if (what === 'cgroup') return fs.readdirSync(cg).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n)).map((n) => ({ cgroup: n }));
    const out = [];
    for (const [kind, name] of [[1, 'msg'], [2, 'shm'], [3, 'sem']])
      for (const o of parseSysv(kind, fs.readFileSync('/proc/sysvipc/' + name, 'utf8'))) {
        const m = sysvKeyMaker(o.key);
        if (m !== null && below(m, agent.pid)) out.push({ kind: name, key: o.key });
      }
    return out;
  };
  process.stdin.on('data', (d) => {
    if (!sent && what !== 'none') {
      const seen = look();
      if (seen.length) {
        sent = true;
        fs.writeFileSync(said, JSON.stringify({ agent: agent.pid, seen }));
        process.kill(process.ppid, 'SIGTERM');
        process.kill(process.ppid, 'SIGINT');
      }
    }
    agent.stdin.write(d);
  });
  process.stdin.on('end', () => agent.stdin.end());
  agent.on('exit', (code, sig) => process.exit(sig ? 137 : code));
});
`;

needRoot(serial)('--via, a second signal while the run has a cgroup or a SysV object on the target: its SysV objects go through the agent, a cgroup left there goes with the next run', async (t) => {
  const reason = (agentPath() ? null : 'the agent is not built (npm run build)') ?? missingTools('sh', 'mktemp', 'sha256sum');
  const own = ownCgroupDir();
  if (reason || !own) {
    const why = reason ?? 'no cgroup2 hierarchy';
    if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${why}`);
    else t.pass(`skipped: ${why}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const target = join(own, `nsprobe-test-hurryt-${process.pid}`);
  mkdirSync(target);
  t.teardown(async () => {
    await removeTree(target).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });
  const relay = join(work, 'relay.cjs');
  writeFileSync(relay, RELAY);
  const cleanup = pathToFileURL(join(ROOT, 'dist', 'src', 'cleanup.js')).href;
  const via = (what: string, said: string) => [process.execPath, relay, target, what, said, cleanup].join(' ');
  const sysvNow = () => SYSV_KINDS.flatMap(([k, name]) => parseSysv(k, readFileSync(`/proc/sysvipc/${name}`, 'utf8')).map((o) => `${name}:${o.key}`));
  for (const what of ['sysv', 'cgroup'] as const) {
    const said = join(work, `said-${what}.json`);
    const r = await spawnNode([CLI, '--only', what === 'sysv' ? 'ipc' : 'cgroup', '--mode', 'privileged', '--via', via(what, said), '--out', join(work, `out-${what}`)]).done;
    t.true(existsSync(said), `the relay saw the run's ${what} on the target (exit ${r.code}): ${r.stderr}`);
    if (!existsSync(said)) continue;
    const s = JSON.parse(readFileSync(said, 'utf8')) as { agent: number; seen: { kind?: string; key?: number; cgroup?: string }[] };
    // (Both pending at once, the kernel hands on SIGINT first: 130; else SIGTERM's 143.)
    t.true(r.code === 130 || r.code === 143, `stopped by the first signal (exit ${r.code}, signal ${r.signal}): ${r.stderr}`);
    const left = readdirSync(target).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n));
    t.log(`${what}: seen ${JSON.stringify(s.seen)}; left on the target after the hurried exit: cgroups ${left.join(', ') || 'none'}`);
    if (what === 'sysv') {
      const now = sysvNow();
      for (const o of s.seen) t.false(now.includes(`${o.kind}:${o.key}`), `the hurried exit removed ${o.kind} ${o.key} through the agent`);
    }
  }
  // The next run through the same target takes what the hurried exits left there (a cgroup:
  // no box was left to remove it through).
  const next = await spawnNode([CLI, '--only', 'uts', '--via', via('none', join(work, 'unused')), '--out', join(work, 'next')]).done;
  t.is(next.code, 0, next.stderr);
  t.deepEqual(readdirSync(target).filter((n) => /^nsprobe-\d+-[a-z0-9]+$/.test(n)), [], 'nothing of the runs is left on the target');
});
