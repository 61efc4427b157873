// The host interface (src/host/hostif.ts): BoxHost, the path a remote run takes (host-side
// observations as requests to a sandbox in the host's own namespaces), answers as LocalHost does,
// every probe goes through it, and a whole suite run through it gives the same verdicts and
// assertion ids per probe and mode as a local run, in the same environment (root, nobody, a
// CentOS-7-like user.max_user_namespaces=0, root of a user namespace). The control: a "host" that
// is not the host (a box in a UTS namespace of its own) is caught by the probes' own controls.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROBES } from '../probes/index.js';
import { listHostQueueNames, ownCgroupDir } from '../src/cleanup.js';
import { settledHostContext } from '../src/host/boxfs.js';
import { collectHostFacts } from '../src/host/facts.js';
import { fixtureHostContext, realHostContext } from '../src/host/hostfs.js';
import { BoxHost, hostKindFrom, localHost, making, OutcomeUnknown, type HostIf } from '../src/host/hostif.js';
import { evaluateGates } from '../src/gates.js';
import { native } from '../src/native.js';
import type { Report } from '../src/model.js';
import { reportFromJson } from '../src/report/validate.js';
import { ProbeContext } from '../src/probe.js';
import { runSuite } from '../src/runner.js';
import { AF_INET, SOCK_STREAM, enter } from '../src/sandbox.js';
import { envById, envUnavailable, mapLimit, NOBODY_ID, runIn, type Env } from './helpers/envs.js';
import { isRoot, needRoot, needTools } from './helpers/tools.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const LOOPBACK = Buffer.from([127, 0, 0, 1]);

test('hostKindFrom: NSPROBE_HOST=box selects BoxHost, anything else LocalHost', (t) => {
  t.is(hostKindFrom({ NSPROBE_HOST: 'box' }), 'box');
  t.is(hostKindFrom({}), 'local');
  t.is(hostKindFrom({ NSPROBE_HOST: 'local' }), 'local');
});

test('BoxHost answers every host operation as LocalHost does (and fails with the same errno)', async (t) => {
  const box = await BoxHost.open();
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-hostif-'));
  try {
    t.is(box.kind, 'box');
    t.not(box.pid, process.pid, 'the box is a process of its own');
    t.is(box.euid, localHost.euid);
    t.is(box.egid, localHost.egid);
    t.is(box.release, localHost.release);
    const value = async (h: HostIf, f: (h: HostIf) => Promise<{ ok: boolean; value?: unknown; code: string }>) => {
      const r = await f(h);
      return r.ok ? r.value : r.code;
    };
    const same = async (what: string, f: (h: HostIf) => Promise<{ ok: boolean; value?: unknown; code: string }>, sort = false) => {
      let [l, b] = [await value(localHost, f), await value(box, f)];
      if (sort && Array.isArray(l) && Array.isArray(b)) [l, b] = [[...l].sort(), [...b].sort()];
      t.deepEqual(b, l, what);
    };
    for (const p of ['/proc/sys/kernel/hostname', '/proc/sys/kernel/overflowuid', '/proc/self/uid_map', '/proc/self/cgroup', '/proc/sys/net/ipv4/ip_forward', '/nonexistent-nsprobe-hostif'])
      await same(`read ${p}`, (h) => h.readFile(p));
    for (const p of ['/sys/class/net', '/', '/nonexistent-nsprobe-hostif']) await same(`list ${p}`, (h) => h.readdir(p), true);
    for (const ns of ['net', 'uts', 'ipc', 'mnt', 'pid', 'user', 'cgroup']) await same(`readlink /proc/self/ns/${ns}`, (h) => h.readlink(`/proc/self/ns/${ns}`));
    await same('readlink of a file that is no link', (h) => h.readlink('/proc/sys/kernel/hostname'));
    for (const p of ['/', '/proc/self/ns/user', '/proc/self/ns/pid']) await same(`stat ${p}`, async (h) => {
      const r = await h.stat(p);
      return r.ok ? { ok: true, value: { dev: r.value!.dev, ino: r.value!.ino, uid: r.value!.uid, mode: r.value!.mode }, code: r.code } : r;
    });
    t.true(await box.exists('/proc/self'));
    t.false(await box.exists('/nonexistent-nsprobe-hostif'));

    const sub = join(dir, 'made-by-box');
    t.true((await box.mkdir(sub, 0o700)).ok);
    t.true(await localHost.exists(sub), 'the box makes folders on the host');
    t.is((await box.mkdir(sub)).code, 'EEXIST');
    t.is((await localHost.mkdir(sub)).code, 'EEXIST');
    t.true((await box.rmdir(sub)).ok);
    t.deepEqual(readdirSync(dir), []);
    t.is((await box.rmdir(sub)).code, 'ENOENT');
    t.is((await localHost.rmdir(sub)).code, 'ENOENT');
    t.is((await box.writeFile(join(dir, 'missing'), 'x')).code, 'ENOENT', 'writes go to existing files only');
    t.is((await localHost.writeFile(join(dir, 'missing'), 'x')).code, 'ENOENT', 'writes go to existing files only');

    const [lm, bm] = [await localHost.monotonic(), await box.monotonic()];
    t.true(Math.abs(lm - bm) < 1, `CLOCK_MONOTONIC ${lm} here, ${bm} in the box`);

    // A host listener answers a host process's connection, from either side.
    const client = await enter({ namespaces: [], mode: 'privileged' });
    try {
      for (const h of [localHost, box]) {
        const l = await h.answerTcp(LOOPBACK, 'host');
        const got = await client.send(AF_INET, SOCK_STREAM, LOOPBACK, l.port, 0, 2000, 'hello');
        await l.stop();
        t.is(got.ok ? got.value : got.sentence, 'host', `${h.kind} listener`);
      }
    } finally {
      await client.close();
    }
  } finally {
    await box.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a BoxHost whose box was killed enters a new one for the next request (cleanups after Ctrl-C still reach the host)', async (t) => {
  const box = await BoxHost.open();
  try {
    const first = (await box.readFile('/proc/sys/kernel/hostname').get()).trim();
    (box as unknown as { box: { killNow(): void } }).box.killNow();
    t.is((await box.readFile('/proc/sys/kernel/hostname').get()).trim(), first);
  } finally {
    await box.close();
  }
});

test('a BoxHost whose box dies mid-request: a mkdir is "outcome unknown", not retried, and its caller registers the removal; a read is retried (control)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const box = await BoxHost.open();
  t.teardown(async () => {
    await box.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const boxPid = () => (box as unknown as { box: { pid: number } }).box.pid;
  const pid = boxPid();
  // The box stops: it takes the request into its socket but cannot answer it.
  process.kill(pid, 'SIGSTOP');
  let undone = 0;
  const pending = making(box.mkdir(join(dir, 'a')), () => undone++);
  // Requests are sent from a microtask (the sandbox's chain): by the next macrotask it is in flight.
  await new Promise((r) => setImmediate(r));
  process.kill(pid, 'SIGKILL');
  const e = await t.throwsAsync(pending);
  t.true(e instanceof OutcomeUnknown, `${e?.name}: ${e?.message}`);
  t.regex(e!.message, /mkdir .*\/a: outcome unknown/);
  t.is(undone, 1, 'the caller registered its cleanup as if the directory was made');
  t.false(readdirSync(dir).includes('a'), 'this time the kernel had not made it (the box was stopped)');
  // The next request goes to a new box; a read whose box died is retried (control).
  t.true((await box.mkdir(join(dir, 'b'))).ok);
  t.not(boxPid(), pid, 'a new box');
  const pid2 = boxPid();
  process.kill(pid2, 'SIGSTOP');
  const read = box.readdir(dir);
  await new Promise((r) => setImmediate(r));
  process.kill(pid2, 'SIGKILL');
  t.deepEqual((await read.get()).sort(), ['b'], 'control: a read is asked again of a new box');
  // A real answer is returned as it is, and registers nothing (control).
  const again = await making(box.mkdir(join(dir, 'b')), () => undone++);
  t.is(again.code, 'EEXIST');
  t.is(undone, 1);
});

/** Counts the host requests made through a host interface. */
function counted(h: HostIf): { host: HostIf; calls: () => number } {
  let n = 0;
  const host = new Proxy(h, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) => {
        n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { host, calls: () => n };
}

type Signature = Record<string, { status: string; assertions: string[] }>;
const signature = (r: Report): Signature =>
  Object.fromEntries(r.probes.map((p) => [p.id, { status: p.status, assertions: p.assertions.map((a) => `${a.id} ${a.status}`) }]));

// As a normal user privileged mode is skipped by the runner (no CAP_SYS_ADMIN): rootless alone.
const MODES = isRoot ? (['privileged', 'rootless'] as const) : (['rootless'] as const);

test('in one process: every probe makes its host-side observations through ctx.host, and BoxHost gives the verdicts of LocalHost', async (t) => {
  const box = await BoxHost.open();
  const { host, calls } = counted(box);
  const perProbe: Record<string, number> = {};
  let last = 0;
  let viaBox: Report;
  try {
    viaBox = await runSuite({ probes: PROBES, modes: MODES, concurrency: 1, hostIf: host, onResult: (r) => {
      perProbe[r.id] = calls() - last;
      last = calls();
    } });
  } finally {
    await box.close();
  }
  const local = await runSuite({ probes: PROBES, modes: MODES, concurrency: 1, hostIf: localHost });
  t.is(Object.keys(perProbe).length, PROBES.length * MODES.length);
  t.deepEqual(Object.entries(perProbe).filter(([, n]) => n === 0).map(([id]) => id), [], 'probes that made no host request through ctx.host');
  t.deepEqual(signature(viaBox), signature(local));
  t.deepEqual(viaBox.probes.filter((p) => p.status !== 'pass').map((p) => `${p.id}: ${p.cause}`), []);
});

// Root: a box in a UTS namespace of its own but no user namespace needs CAP_SYS_ADMIN.
needRoot()('control: a "host" that is not the host (a box in a UTS namespace of its own) fails the probes\' own controls', async (t) => {
  const identity = PROBES.find((p) => p.name === 'identity')!;
  const runWith = async (h: HostIf) => {
    const ctx = new ProbeContext(identity, 'rootless', 10000, undefined, h);
    try {
      await identity.run(ctx);
    } finally {
      ctx.killAll();
      await ctx.dispose();
    }
    return ctx.assertions.filter((a) => a.status === 'fail').map((a) => a.id);
  };
  const wrong = await BoxHost.open({ namespaces: ['uts'] });
  const right = await BoxHost.open();
  try {
    t.true((await runWith(wrong)).includes('identity.uts-a-host-process-reads-the-host-s-inode-with-the-same-request-control'));
    t.deepEqual(await runWith(right), []);
  } finally {
    await wrong.close();
    await right.close();
  }
});

// ---------- the whole suite, as a process, both ways, in the same environment ----------

const ENVS_COMPARED = ['root', 'nobody', 'max-user', 'userns'].map(envById);

async function runBoth(env: Env): Promise<{ local: Report | null; box: Report | null; errors: string[] }> {
  const reports: Record<string, Report | null> = {};
  const errors: string[] = [];
  for (const kind of ['local', 'box']) {
    const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-hostif-'));
    try {
      chmodSync(out, 0o777); // nobody writes its reports here
      const r = await runIn(env, [process.execPath, CLI, '--json', '--out', out, '--mode', 'both'], { timeoutMs: 60000, env: { NSPROBE_HOST: kind } });
      try {
        reports[kind] = reportFromJson(r.stdout);
      } catch {
        reports[kind] = null;
        errors.push(`${kind}: no report (exit ${r.status}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  return { local: reports.local, box: reports.box, errors };
}

let started: Map<string, Promise<Awaited<ReturnType<typeof runBoth>>>> | null = null;
function outcome(env: Env) {
  if (!started) {
    const avail = ENVS_COMPARED.filter((e) => envUnavailable(e) === null);
    const m = new Map<string, Promise<Awaited<ReturnType<typeof runBoth>>>>();
    const resolvers = new Map<string, (v: Awaited<ReturnType<typeof runBoth>>) => void>();
    for (const e of avail) m.set(e.id, new Promise((r) => resolvers.set(e.id, r)));
    void mapLimit(avail, 1, async (e) => resolvers.get(e.id)!(await runBoth(e)));
    started = m;
  }
  return started.get(env.id)!;
}

for (const env of ENVS_COMPARED) {
  const why = envUnavailable(env);
  const title = `NSPROBE_HOST=box gives the verdicts and assertion ids of a local run: ${env.id} (${env.describe})`;
  const impl = async (t: import('ava').ExecutionContext) => {
    const o = await outcome(env);
    t.deepEqual(o.errors, []);
    t.truthy(o.local && o.box);
    const [l, b] = [signature(o.local!), signature(o.box!)];
    const diff = Object.keys({ ...l, ...b }).filter((id) => JSON.stringify(l[id]) !== JSON.stringify(b[id]));
    for (const id of diff) t.log(`${id}: local ${JSON.stringify(l[id])}\n  box ${JSON.stringify(b[id])}`);
    t.deepEqual(diff, [], 'probe/mode whose verdict or assertions differ between LocalHost and BoxHost');
    t.true(Object.keys(l).length > 0, 'the run made results');
    // Host facts and gates are read through the box too, and come out the same here.
    t.deepEqual(o.box!.host, o.local!.host, 'host facts');
    t.deepEqual(o.box!.gates.map((g) => `${g.id} ${g.status}`), o.local!.gates.map((g) => `${g.id} ${g.status}`), 'gates');
    // Consumers: the same verdicts; no program of "the target" was run from here (no version).
    t.deepEqual((o.box!.consumers ?? []).map((c) => `${c.id} ${c.status} ${!!c.installed}`), (o.local!.consumers ?? []).map((c) => `${c.id} ${c.status} ${!!c.installed}`), 'consumer verdicts');
    t.deepEqual((o.box!.consumers ?? []).filter((c) => c.installed?.version).map((c) => c.id), [], 'consumers with a version read from this host in box mode');
    const tally: Record<string, number> = {};
    for (const p of Object.values(b)) tally[p.status] = (tally[p.status] ?? 0) + 1;
    t.log(`${env.id}: ${Object.keys(b).length} probe/mode results agree (${Object.entries(tally).map(([k, v]) => `${v} ${k}`).join(', ')})`);
  };
  if (env.needsRoot && !isRoot) needRoot()(title, impl);
  else if (why !== null && why.startsWith(`uid ${NOBODY_ID} cannot read`)) test.skip(`${title} (skipped: ${why})`, impl);
  else needTools(why)(title, impl);
}

// ---------- host facts and gates through the host interface ----------

test('host facts and gates settled through BoxHost equal those read here directly', async (t) => {
  const box = await BoxHost.open();
  try {
    const base = realHostContext();
    const { ctx, rounds, reads } = await settledHostContext(box, base, (c) => void evaluateGates(c, collectHostFacts(c)));
    t.true(rounds >= 1 && reads > 10, `${rounds} rounds, ${reads} reads`);
    t.log(`settled in ${rounds} rounds, ${reads} reads`);
    const here = collectHostFacts(base);
    t.deepEqual(collectHostFacts(ctx), here);
    t.deepEqual(evaluateGates(ctx, collectHostFacts(ctx)), evaluateGates(base, here));
  } finally {
    await box.close();
  }
});

test('control: the settled facts are the host interface\'s, not this host\'s (a host interface over the centos7 fixture reports centos7)', async (t) => {
  const root = join(ROOT, 'test', 'fixtures', 'hosts', 'centos7');
  const under = (p: string) => join(root, resolve('/', p));
  // LocalHost, every path taken under the fixture root: a host interface that is not this host.
  const fixture: HostIf = {
    ...localHost,
    kind: 'box',
    pid: localHost.pid,
    euid: 0,
    egid: 0,
    release: localHost.release,
    tmpdir: localHost.tmpdir,
    readFile: (p) => localHost.readFile(under(p)),
    readBytes: (p, m) => localHost.readBytes(under(p), m),
    readdir: (p) => localHost.readdir(under(p)),
    readlink: (p) => localHost.readlink(under(p)),
    stat: (p, l) => localHost.stat(under(p), l),
    exists: (p) => localHost.exists(under(p)),
  };
  const { ctx } = await settledHostContext(fixture, { ...fixtureHostContext(root), fs: realHostContext().fs }, (c) => void collectHostFacts(c));
  const want = collectHostFacts(fixtureHostContext(root));
  const got = collectHostFacts(ctx);
  t.is(got.kernel.release, want.kernel.release);
  t.is(got.kernel.release, '3.10.0-1160.el7.x86_64');
  t.deepEqual(got.distro, want.distro);
  t.deepEqual(got, { ...want, euid: 0, egid: 0 });
  t.notDeepEqual(got, collectHostFacts(realHostContext()));
});

// ---------- interruption in box mode ----------

// Serial: alone, before the file's concurrent tests (the suites they run would slow its runs).
(isRoot ? test.serial : test.serial.skip)(`NSPROBE_HOST=box: a run stopped by SIGINT at any point leaves no cgroup, queue or process (cleanups reach the host through a new box)${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
  const cg = ownCgroupDir();
  const ours = (pids: Set<number>) => (cg ? readdirSync(cg) : []).filter((n) => {
    const m = /^nsprobe-(\d+)-/.exec(n);
    return m !== null && pids.has(Number(m[1]));
  });
  const queues = async () => (await listHostQueueNames()) ?? [];
  const qBefore = new Set(await queues());
  const runPids = new Set<number>(); // every process of every run below
  for (const delay of [250, 700, 1300, 1800]) {
    const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-hostif-'));
    try {
      const child = spawn(process.execPath, [CLI, '--out', out], { env: { ...process.env, NSPROBE_HOST: 'box' }, stdio: ['ignore', 'ignore', 'pipe'] });
      // Every process of the run's tree, seen while it runs (the box and its children carry the pids that name cgroups).
      const pids = new Set<number>([child.pid!]);
      const watch = setInterval(() => {
        for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x)).map(Number)) {
          try {
            const ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
            if (pids.has(ppid)) pids.add(p);
          } catch {
            // gone
          }
        }
      }, 20);
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGINT');
      const guard = setTimeout(() => child.kill('SIGKILL'), 30000); // a stopped run that hangs is a failure, not a hung test
      // (A run faster than the delay has already exited: its 'exit' event is gone.)
      const code = child.exitCode !== null || child.signalCode !== null ? (child.exitCode ?? 128) : await new Promise<number | null>((r) => child.on('exit', (c, s) => r(c ?? (s === 'SIGKILL' ? -9 : 128))));
      clearTimeout(guard);
      t.not(code, -9, `SIGINT at ${delay} ms: the run did not end within 30 s`);
      clearInterval(watch);
      for (const p of pids) runPids.add(p);
      await new Promise((r) => setTimeout(r, 300)); // children dying of their parent-death signal
      const alive = [...pids].filter((p) => {
        try {
          return !readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') && true;
        } catch {
          return false;
        }
      });
      t.deepEqual(alive, [], `SIGINT at ${delay} ms (exit ${code}): processes left`);
      t.deepEqual(ours(pids), [], `SIGINT at ${delay} ms: cgroups left`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  // Only these runs' queues: their pid in the name, or a slot name no live process holds (test
  // files beside this one run nsprobe too, and their live queues are theirs).
  const left: string[] = [];
  for (const q of await queues()) {
    if (qBefore.has(q) || !q.startsWith('nsprobe-')) continue;
    const pid = /^nsprobe-mqh-(\d+)(?:@\d+)?-/.exec(q);
    if (pid ? runPids.has(Number(pid[1])) : /^nsprobe-mqh-u\d+-\d+$/.test(q) ? (await native().mqReap!(q, true)) === 0 : true) left.push(q);
  }
  t.deepEqual(left, [], 'host queues left');
});
