// Issue 14 item 4 for SysV objects: the ipc probe makes a msg queue, a shm segment and a
// semaphore set in the host's IPC namespace (its host-side checks), each keyed after the pid of
// the box that makes it (src/cleanup.ts sysvHostKey). A run killed while one exists leaves it;
// the next run removes it (its maker has ended) and says so in report.json's notes. Controls: an
// object whose maker runs, a 0x4e segment whose key does not name its creator (cpid), and (as
// root) another user's object in nsprobe's shape stay.
//
// The point of the kill is picked as test/remote-debris.test.ts picks it: the run goes through
// an agent (--via, this machine) whose pipe a relay hands on; before it hands on a request the
// relay looks in /proc/sysvipc for an object of the wanted kind whose key names one of the
// agent's boxes, and SIGKILLs the run (the CLI, its parent) and the agent at the first such
// request (the probe's own removal is a later request, which never arrives). No timing: the kill
// lands while the object exists.
// The kinds are all three, in a seeded order. Then: (A) the next run, here, without --via,
// collects them as this machine's; (B, root) the same with the agent in an IPC namespace of its
// own (nsenter), which only the target's pass (through the next run's agent) can see.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseSysv, SYSV_HOST_MODE, sysvHostKey, sysvKeyMaker } from '../src/cleanup.js';
import { agentPath, native } from '../src/native.js';
import { enter } from '../src/sandbox.js';
import { CLI, ROOT } from './helpers/run.js';
import { isRoot, missingTools, needRoot, REQUIRE_TOOLS } from './helpers/tools.js';
import { prng, spawnNode } from '../scripts/harness.js';
import { notesOf, runs } from './helpers/debris.js';

const serial = test.serial as unknown as typeof test;
const KINDS = { msg: 1, shm: 2, sem: 3 } as const;
type Kind = keyof typeof KINDS;
const CLEANUP = pathToFileURL(join(ROOT, 'dist', 'src', 'cleanup.js')).href;
const IPC_CREAT_EXCL = 0o1000 | 0o2000 | SYSV_HOST_MODE;
const MODE = isRoot ? 'privileged' : 'rootless';

/** The --via command: hands on the agent's pipe; "kill:KIND": see the top of this file. */
const RELAY = String.raw`
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [mode, said, cleanup, ...cmd] = process.argv.slice(2);
const want = mode.startsWith('kill:') ? mode.slice(5) : null;
const ppid = (p) => { try { const s = fs.readFileSync('/proc/' + p + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]); } catch { return 0; } };
const below = (p, top) => { for (let i = 0; p > 1 && i < 64; i++, p = ppid(p)) if (p === top) return true; return false; };
import(cleanup).then(({ parseSysv, sysvKeyMaker }) => {
  const agent = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  agent.stdout.pipe(process.stdout);
  agent.stdin.on('error', () => {});
  const kinds = { msg: 1, shm: 2, sem: 3 };
  let killed = false;
  process.stdin.on('data', (d) => {
    if (killed) return;
    if (want) {
      const o = parseSysv(kinds[want], fs.readFileSync('/proc/sysvipc/' + want, 'utf8')).find((x) => { const m = sysvKeyMaker(x.key); return m !== null && below(m, agent.pid); });
      if (o) {
        killed = true;
        fs.writeFileSync(said, JSON.stringify({ agent: agent.pid, run: process.ppid, kind: want, key: o.key, maker: sysvKeyMaker(o.key), cuid: o.cuid }));
        // The whole run: the CLI (this relay's parent), then its agent.
        process.kill(process.ppid, 'SIGKILL');
        agent.kill('SIGKILL');
        return;
      }
    }
    agent.stdin.write(d);
  });
  process.stdin.on('end', () => agent.stdin.end());
  agent.on('exit', (code, sig) => process.exit(sig ? 137 : code));
});
`;

async function gone(pid: number): Promise<void> {
  while (runs(pid)) await new Promise((r) => setTimeout(r, 10));
}
const hex = (key: number) => `0x${(key >>> 0).toString(16)}`;
/** The keys of one kind in this IPC namespace, or (ns) in the one of that /proc/PID/ns/ipc. */
function keys(kind: Kind, ns?: string): number[] {
  const text = ns ? spawnSync('nsenter', [`--ipc=${ns}`, 'cat', `/proc/sysvipc/${kind}`], { encoding: 'utf8' }).stdout : readFileSync(`/proc/sysvipc/${kind}`, 'utf8');
  return parseSysv(KINDS[kind], text).map((o) => o.key);
}
const deadPid = () => spawnSync('true').pid!;

interface Killed { agent: number; run: number; kind: Kind; key: number; maker: number; cuid: number }

/** Runs the ipc probe through the relay and kills its agent while a host object of `kind` exists; what the relay saw. */
async function killAt(t: ExecutionContext, work: string, kind: Kind, prefix: string[], cliPrefix: string[] = []): Promise<Killed | null> {
  const relay = join(work, 'relay.cjs');
  if (!existsSync(relay)) writeFileSync(relay, RELAY);
  const said = join(work, `killed-${kind}.json`);
  rmSync(said, { force: true });
  const via = [...prefix, process.execPath, relay, `kill:${kind}`, said, CLEANUP].join(' ');
  const r = await spawnNode([CLI, '--only', 'ipc', '--via', via, '--out', join(work, `out-${kind}`)], { prefix: cliPrefix }).done;
  if (!existsSync(said)) {
    t.fail(`the relay saw no ${kind} object of the run's (exit ${r.code}): ${r.stderr}`);
    return null;
  }
  const k = JSON.parse(readFileSync(said, 'utf8')) as Killed;
  t.is(r.signal, 'SIGKILL', `the run was killed (pid ${k.run}): ${r.stderr}`);
  await gone(k.agent);
  await gone(k.maker);
  t.log(`${kind}: agent ${k.agent} killed while ${hex(k.key)} of box ${k.maker} (uid ${k.cuid}) existed; the run: exit ${r.code}`);
  return k;
}

const CLONE_NEWIPC = 0x08000000;

/** An IPC namespace of this test's own (a sleep holds it; the teardown ends it, and with it every object in it), or null with the test failed. */
async function ownIpcNamespace(t: ExecutionContext): Promise<string | null> {
  const why = missingTools('unshare', 'nsenter', 'sleep', 'readlink', 'cat');
  if (why) {
    if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${why}`);
    else t.log(`the trials share the machine's IPC namespace: ${why}`);
    return null;
  }
  const holder = spawn('unshare', ['--ipc', 'sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => void holder.kill('SIGKILL'));
  await new Promise((r) => holder.once('spawn', r));
  const ns = `/proc/${holder.pid}/ns/ipc`;
  // (unshare has exec'd sleep once its IPC namespace differs from this one's.)
  const link = (p: string) => spawnSync('readlink', [p], { encoding: 'utf8' }).stdout;
  while (link(ns) === link('/proc/self/ns/ipc')) {
    if (holder.exitCode !== null || holder.signalCode !== null) throw new Error(`unshare --ipc ended (${holder.exitCode ?? holder.signalCode})`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return ns;
}

function skip(t: ExecutionContext, why: string | null): boolean {
  if (!why) return false;
  if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${why}`);
  else t.pass(`skipped: ${why}`);
  return true;
}

serial('SysV objects of a killed run are removed by the next run and noted; a live maker\'s, a foreign key\'s and another user\'s stay', async (t) => {
  if (skip(t, (agentPath() ? null : 'the agent is not built (npm run build)') ?? missingTools('sh', 'mktemp', 'sha256sum', ...(isRoot ? ['setpriv'] : [])))) return;
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const planted: { kind: Kind; key: number }[] = [];
  let live: Awaited<ReturnType<typeof enter>> | undefined;
  // As root the trials run in an IPC namespace of their own (still in the initial pid namespace,
  // whose makers' keys a pass judges): what a killed run leaves there on purpose is no residue
  // of the tests beside this one (test/signals*.test.ts, test/suite*.test.ts), and no other run
  // collects it first. (As a normal user, joining one needs its user namespace too, which would
  // make the runs root there: they share the machine's, as before.)
  const own = isRoot ? await ownIpcNamespace(t) : null;
  const ns = own ?? undefined;
  const cliPrefix = own ? ['nsenter', `--ipc=${own}`] : [];
  t.teardown(async () => {
    await live?.close();
    if (!own) for (const p of planted) native().sysvRemove?.(KINDS[p.kind], p.key);
    rmSync(work, { recursive: true, force: true });
  });
  const order: Kind[] = ['msg', 'shm', 'sem'];
  const rand = prng(14031);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  // Controls. A maker that runs: its objects stay.
  live = await enter({ namespaces: [], mode: MODE });
  if (own) await live.setns(own, CLONE_NEWIPC).get();
  const liveKeys = { shm: sysvHostKey(live.pid, 0), msg: sysvHostKey(live.pid, 1) };
  await live.shmget(liveKeys.shm, 4096, IPC_CREAT_EXCL).get();
  planted.push({ kind: 'shm', key: liveKeys.shm });
  await live.msgget(liveKeys.msg, IPC_CREAT_EXCL).get();
  planted.push({ kind: 'msg', key: liveKeys.msg });
  // A segment in nsprobe's shape whose key names a pid that has ended, made by another process (its cpid): not nsprobe's.
  const dead = deadPid();
  const foreign = sysvHostKey(dead, 1);
  const f = await enter({ namespaces: [], mode: MODE });
  try {
    if (own) await f.setns(own, CLONE_NEWIPC).get();
    await f.shmget(foreign, 4096, IPC_CREAT_EXCL).get();
    planted.push({ kind: 'shm', key: foreign });
  } finally {
    await f.close();
  }
  t.is(sysvKeyMaker(foreign), dead);
  // Another user's msg queue in nsprobe's shape, its key naming a pid that has ended (root only).
  let other: number | null = null;
  if (isRoot) {
    other = sysvHostKey(dead, 2);
    const mk = `import { enter } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', 'sandbox.js')).href)};
      const s = await enter({ namespaces: [], mode: 'rootless' }); await s.msgget(${other}, ${IPC_CREAT_EXCL}).get(); await s.close();`;
    const r = spawnSync(cliPrefix[0] ?? 'setpriv', [...cliPrefix.slice(1), ...(own ? ['setpriv'] : []), '--reuid=4242', '--regid=4242', '--clear-groups', process.execPath, '--input-type=module', '-e', mk], { encoding: 'utf8', cwd: '/' });
    t.is(r.status, 0, r.stderr);
    planted.push({ kind: 'msg', key: other });
  }

  const stays = [liveKeys.shm, liveKeys.msg, foreign, ...(other === null ? [] : [other])].map(hex);

  // For each kind: a run killed while its object exists; the next run (no --via: this machine's
  // pass) removes it and says so. (Each killed run's own start collects nothing of the others':
  // each was collected before it started.)
  let noted = 0;
  for (const [i, kind] of order.entries()) {
    const k = await killAt(t, work, kind, [], cliPrefix);
    if (!k) return;
    planted.push({ kind, key: k.key });
    if (!own && !keys(kind).includes(k.key)) {
      // (The machine's IPC namespace: the debris pass of an nsprobe run beside this test, e.g. a
      // root run, whose rootless mode makes its host objects as uid 65534 too, took it first.)
      t.log(`${kind} ${hex(k.key)} was collected by another run before the next one started`);
      continue;
    }
    t.true(keys(kind, ns).includes(k.key), `the killed run left ${kind} ${hex(k.key)}`);
    if (own) t.false(keys(kind).includes(k.key), 'not in the machine\'s IPC namespace');
    const out = join(work, `next${i}`);
    const r = await spawnNode([CLI, '--only', 'uts', '--out', out], { prefix: cliPrefix }).done;
    t.is(r.code, 0, r.stderr);
    const notes = notesOf(out);
    t.log(notes.join('\n'));
    t.false(keys(kind, ns).includes(k.key), `removed: ${kind} ${hex(k.key)}`);
    // (As a normal user host IPC is shared with every nsprobe run on the machine: one beside this test may have collected it first.)
    if (own) t.true(notes.includes(`removed a SysV IPC object left by nsprobe process ${k.maker}, which has ended: ${kind} key ${hex(k.key)}`), 'a note names it');
    if (notes.includes(`removed a SysV IPC object left by nsprobe process ${k.maker}, which has ended: ${kind} key ${hex(k.key)}`)) noted++;
    else t.log(`${kind} ${hex(k.key)} was collected by another run`);
    t.true(keys('shm', ns).includes(liveKeys.shm) && keys('msg', ns).includes(liveKeys.msg), 'a live maker\'s objects stay');
    t.true(keys('shm', ns).includes(foreign), 'a 0x4e segment whose key does not name its creator stays');
    if (other !== null) t.true(keys('msg', ns).includes(other), 'another user\'s object stays');
    t.false(notes.some((n) => stays.some((x) => n.endsWith(`key ${x}`))), 'no note names an object that stays');
  }
  // (The note itself is checked strictly by the next test, whose objects no other run can see.)
  if (!noted) t.log('every object was collected by another run');
});

needRoot(serial)('through a target (its own IPC namespace): a killed agent\'s SysV object there is removed by the next run through it, noted as the target\'s', async (t) => {
  if (skip(t, (agentPath() ? null : 'the agent is not built (npm run build)') ?? missingTools('sh', 'mktemp', 'sha256sum', 'unshare', 'nsenter', 'sleep', 'cat'))) return;
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const holder: ChildProcess = spawn('unshare', ['--ipc', 'sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => {
    holder.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
  await new Promise((r) => holder.once('spawn', r));
  const ns = `/proc/${holder.pid}/ns/ipc`;
  // (unshare has exec'd sleep once its IPC namespace differs from this one's.)
  const own = spawnSync('readlink', ['/proc/self/ns/ipc'], { encoding: 'utf8' }).stdout;
  while (spawnSync('readlink', [ns], { encoding: 'utf8' }).stdout === own) await new Promise((r) => setTimeout(r, 5));
  const kinds: Kind[] = ['msg', 'shm', 'sem'];
  const kind = kinds[Math.floor(prng(14032)() * 3)];
  const k = await killAt(t, work, kind, ['nsenter', `--ipc=${ns}`]);
  if (!k) return;
  t.true(keys(kind, ns).includes(k.key), `the killed agent left ${kind} ${hex(k.key)} in the target's IPC namespace`);
  t.false(keys(kind).includes(k.key), 'not in this machine\'s');
  const out = join(work, 'next');
  const relay = join(work, 'relay.cjs');
  const r = await spawnNode([CLI, '--only', 'uts', '--via', ['nsenter', `--ipc=${ns}`, process.execPath, relay, 'pass', join(work, 'unused'), CLEANUP].join(' '), '--out', out]).done;
  t.is(r.code, 0, r.stderr);
  const notes = notesOf(out);
  t.log(notes.join('\n'));
  t.false(keys(kind, ns).includes(k.key), `removed there: ${kind} ${hex(k.key)}`);
  t.true(notes.includes(`removed a SysV IPC object on the target left by nsprobe process ${k.maker} there, which has ended: ${kind} key ${hex(k.key)}`), 'a note names it as the target\'s');
});
