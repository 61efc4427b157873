// The deep probes of issue 5 (net-veth, join, nesting, identity, pid-signals, ipc-mqueue) against
// the real kernel: they pass as root and as nobody (rootless), show in every report, leave no
// interface behind (normal, failed, timed-out and SIGKILLed runs) and the nesting depth matches
// what util-linux unshare reaches in a shell loop.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbeResult, Report } from '../src/model.js';
import { collectHostFacts } from '../src/host/facts.js';
import { realHostContext } from '../src/host/hostfs.js';
import { runProbe } from '../src/runner.js';
import type { ProbeDef } from '../src/probe.js';
import { netVeth } from '../probes/net-veth.js';
import { cgroup2Root, removeCgroup } from '../probes/cgroup.js';
import { cli, CLI, isRoot, NOBODY, run, tmp } from './helpers/run.js';

const rootOnly = isRoot ? test.serial : test.skip;
const DEEP = ['net-veth', 'join', 'nesting', 'identity', 'pid-signals', 'ipc-mqueue'];

function runCli(args: string[], prefix: string[] = []): { status: number | null; rep: Report; stderr: string } {
  const out = tmp();
  run(['chmod', '0777', out]);
  const r = cli(['--out', out, '--json', '--no-color', ...args], prefix);
  return { status: r.status, rep: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

const describe = (p: ProbeResult) => `${p.id}: ${p.status} ${p.cause ?? ''} ${p.assertions.filter((a) => a.status !== 'pass').map((a) => `${a.name} = ${JSON.stringify(a.actual)}`).join('; ')}`;

/** Names of the interfaces in the network namespaces of these pids (default every process). */
function linksOf(pids: string[] = readdirSync('/proc').filter((p) => /^\d+$/.test(p))): Set<string> {
  const seen = new Set<string>();
  for (const pid of pids) {
    try {
      for (const line of readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2)) {
        const name = line.split(':')[0].trim();
        if (name) seen.add(name);
      }
    } catch {
      // gone meanwhile
    }
  }
  return seen;
}

/** Which of these interface names exist anywhere: on the host or in any live process's netns. */
function stillThere(names: string[]): string[] {
  const all = linksOf();
  for (const n of readdirSync('/sys/class/net')) all.add(n);
  return names.filter((n) => all.has(n));
}

/** Descendants of pid (through every thread's children list). */
function descendants(pid: number): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids: string[] = [];
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        // gone
      }
      for (const k of kids) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(String(pid));
  return out;
}

const hostLinks = () => readdirSync('/sys/class/net').sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function goneWithin(names: string[], ms: number): Promise<string[]> {
  const until = Date.now() + ms;
  let left = stillThere(names);
  while (left.length && Date.now() < until) {
    await sleep(20);
    left = stillThere(names);
  }
  return left;
}

const nspOnHost = () => hostLinks().filter((n) => n.startsWith('nsp'));

rootOnly('as root: every deep probe passes in both modes and shows in the Markdown and HTML tables', (t) => {
  const out = tmp(t);
  const before = hostLinks();
  const r = cli(['--out', out, '--only', DEEP.join(','), '--no-color']);
  t.is(r.status, 0, r.stdout + r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  t.deepEqual(rep.probes.map((p) => p.id).sort(), DEEP.flatMap((d) => [`${d}/privileged`, `${d}/rootless`]).sort());
  for (const p of rep.probes) t.is(p.status, 'pass', describe(p));
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  for (const d of DEEP) {
    t.true(md.includes(d), `report.md lists ${d}`);
    t.true(html.includes(d), `report.html lists ${d}`);
  }
  const nest = rep.probes.find((p) => p.id === 'nesting/privileged')!;
  const depth = nest.assertions.find((a) => /user namespaces nest \d+ levels/.test(a.name));
  t.is(typeof depth?.actual, 'number');
  t.is(typeof depth?.expected, 'number');
  t.deepEqual(hostLinks(), before);
  t.deepEqual(nspOnHost(), []);
});

rootOnly('as nobody: every deep rootless probe passes; privileged mode is skipped once, for CAP_SYS_ADMIN', (t) => {
  const { status, rep } = runCli(['--only', DEEP.join(',')], NOBODY);
  t.is(status, 0);
  t.is(rep.host.euid, 65534);
  for (const p of rep.probes) t.is(p.status, 'pass', describe(p));
  t.true(rep.probes.every((p) => p.mode === 'rootless'));
  t.regex(rep.modes?.find((m) => m.mode === 'privileged')?.reason ?? '', /CAP_SYS_ADMIN/);
  t.deepEqual(nspOnHost(), []);
});

// ---------- the veth pair never outlives a run ----------

const facts = () => collectHostFacts(realHostContext());

const tokens: string[] = [];
const pairOf = (token: string) => [`nsp${token}a`, `nsp${token}b`];
/** net-veth that records its token (hence its interface names). */
const recorded: ProbeDef = {
  ...netVeth,
  run(ctx) {
    tokens.push(ctx.token);
    return netVeth.run(ctx);
  },
};
/** net-veth with a failure injected once the pair exists (the probe crashes mid-way). */
let seenAtFailure: string[] = [];
const failing: ProbeDef = {
  ...netVeth,
  async run(ctx) {
    tokens.push(ctx.token);
    const expect = ctx.expect.bind(ctx);
    ctx.expect = (name, ...rest) => {
      if (name.startsWith('link-local addresses')) {
        seenAtFailure = stillThere(pairOf(ctx.token));
        throw new Error('injected failure after the pair was created');
      }
      return expect(name, ...rest);
    };
    await netVeth.run(ctx);
  },
};

for (const mode of ['privileged', 'rootless'] as const) {
  rootOnly(`net-veth/${mode}: a run that fails after creating the pair leaves no interface`, async (t) => {
    const before = hostLinks();
    tokens.length = 0;
    const r = await runProbe({ probe: failing, mode }, facts(), [], 10000);
    t.is(r.status, 'error', r.cause);
    t.regex(r.cause ?? '', /injected failure/);
    const pair = pairOf(tokens[0]);
    t.deepEqual(seenAtFailure, pair, 'both ends existed when it failed');
    t.true(pair.every((n) => !before.includes(n) && !readdirSync('/sys/class/net').includes(n)), 'neither end is in the host namespace');
    t.deepEqual(await goneWithin(pair, 2000), []);
    t.deepEqual(hostLinks(), before);
  });

  rootOnly(`net-veth/${mode}: a run that times out leaves no interface`, async (t) => {
    const before = hostLinks();
    tokens.length = 0;
    const statuses: string[] = [];
    for (const ms of [5, 10, 20, 40, 80]) statuses.push((await runProbe({ probe: recorded, mode }, facts(), [], ms)).status);
    t.true(statuses.includes('error'), `some runs timed out: ${statuses}`);
    t.deepEqual(await goneWithin(tokens.flatMap(pairOf), 2000), []);
    t.deepEqual(hostLinks(), before);
  });

  rootOnly(`net-veth/${mode}: a CLI SIGKILLed while the pair exists leaves no interface`, async (t) => {
    const before = hostLinks();
    let caught: string[] = [];
    for (let attempt = 0; attempt < 40 && !caught.length; attempt++) {
      const out = tmp(t);
      const child = spawn(process.execPath, [CLI, '--only', 'net-veth', '--mode', mode, '--out', out, '--json'], { stdio: 'ignore' });
      let done = false;
      const exited = new Promise((r) => child.once('exit', r)).then(() => (done = true));
      while (!done) {
        const names = [...linksOf(descendants(child.pid!))].filter((n) => /^nsp[a-z0-9]+[ab]$/.test(n));
        if (names.length) {
          child.kill('SIGKILL');
          caught = names;
          break;
        }
        await new Promise((r) => setImmediate(r));
      }
      await exited;
    }
    t.true(caught.length > 0, 'the CLI was killed while the pair existed');
    const token = caught[0].slice(3, -1);
    t.deepEqual(await goneWithin(pairOf(token), 3000), []);
    t.deepEqual(hostLinks(), before);
  });
}

// ---------- nesting against util-linux ----------

/** Deepest level a shell loop of nested `unshare` reaches (each level re-runs the loop inside). */
function unshareDepth(flags: string, prefix: string[] = []): number {
  const loop = `echo "$1"; exec unshare ${flags} sh -c "$NEST" sh $(($1 + 1)) 2>/dev/null`;
  const r = run([...prefix, 'sh', '-c', loop, 'sh', '0'], { env: { NEST: loop } });
  const levels = r.stdout.trim().split('\n').filter(Boolean).map(Number);
  return Math.max(...levels);
}

rootOnly('nesting: the measured depths match a util-linux unshare loop', (t) => {
  const userLoop = unshareDepth('--user --map-root-user');
  const pidLoop = unshareDepth('--pid --fork');
  t.true(userLoop > 0 && pidLoop > 0, `${userLoop} ${pidLoop}`);
  const { rep } = runCli(['--only', 'nesting']);
  for (const mode of ['privileged', 'rootless']) {
    const p = rep.probes.find((x) => x.id === `nesting/${mode}`)!;
    t.is(p.status, 'pass', describe(p));
    t.is(p.metrics?.['user.depth'], userLoop, `${mode}: user depth vs unshare loop`);
    t.is(p.metrics?.['pid.depth'], pidLoop, `${mode}: pid depth vs unshare loop`);
    t.is(p.metrics?.['user.limit'], 32);
  }
  // As nobody too: rootless starts one level down and reaches the same depth.
  const nobodyLoop = unshareDepth('--user --map-root-user', NOBODY);
  const nobody = runCli(['--only', 'nesting', '--mode', 'rootless'], NOBODY).rep.probes[0];
  t.is(nobody.status, 'pass', describe(nobody));
  t.is(nobody.metrics?.['user.depth'], nobodyLoop);
  t.is(nobody.metrics?.['user.levels'], nobodyLoop - 1);
});

rootOnly('the cgroup probe removes its cgroup even with a process still in it (killed through cgroup.kill)', async (t) => {
  const root = cgroup2Root();
  if (!root) return t.pass('no cgroup2 hierarchy is mounted here');
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
  const dir = `${root}${own === '/' ? '' : own}/nsprobe-test-${process.pid}`;
  mkdirSync(dir);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  await new Promise((r) => sleeper.once('spawn', r));
  writeFileSync(`${dir}/cgroup.procs`, String(sleeper.pid));
  // Control: a plain rmdir fails while the process is in it.
  t.throws(() => rmdirSync(dir), { code: 'EBUSY' });
  const exited = new Promise((r) => sleeper.once('exit', (_c, sig) => r(sig)));
  await removeCgroup(dir);
  t.false(existsSync(dir));
  t.is(await exited, 'SIGKILL');
});
