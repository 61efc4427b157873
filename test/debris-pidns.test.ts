// Issue 14 item 4 across pid namespaces: a debris pass judges "the maker is gone" only for makers
// of its own pid namespace, and only when the /proc it reads is that namespace's (src/pidns.ts,
// src/cleanup.ts). A pid of another namespace means nothing to it: a run inside
// `unshare -pf --mount-proc` killed a live host run's sandbox and removed its cgroup and host
// queue, and a host run read a child-namespace run's pids as its own.
//
// 1. A run in a child pid namespace keeps a live host run's cgroup (a process in it), host queue
//    and temporary report file; control: the same plants named after a pid of its own namespace
//    that has ended are removed by that run and noted.
// 2. A live run whose agent is in a child pid namespace (--via 'unshare -pf --mount-proc ...')
//    makes its cgroup, and its host-side SysV object, while a host run's pass looks: both stay.
//    The --via command is a relay of the agent's pipe that holds the requests once the object
//    exists (no timing) and lets them go on SIGUSR1. It also sets the child namespace's
//    ns_last_pid so that the agent's pids are ones no host process has (a pass that read them as
//    host pids would find them gone). The SysV trial runs in an IPC namespace of its own, shared
//    only by its runs; control: a key of a maker of the initial pid namespace that has ended is
//    removed by the same host pass.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CGROUP_RE, hostQueueName, listHostQueueNames, ownCgroupDir, parseSysv, QUEUE_RE, SYSV_HOST_MODE, sysvHostKey, sysvKeyMaker, sysvUnjudgedKey, tempMaker } from '../src/cleanup.js';
import { localJudgeNs, localPidNs, PID_INIT_INO, pidTag, tagNs } from '../src/pidns.js';
import { pathToFileURL } from 'node:url';
import { agentPath } from '../src/native.js';
import { enter } from '../src/sandbox.js';
import { CLI, NOBODY, ROOT } from './helpers/run.js';
import { missingTools, needTools, REQUIRE_TOOLS } from './helpers/tools.js';
import { spawnNode } from '../scripts/harness.js';
import { notesOf, runs } from './helpers/debris.js';

const serial = test.serial as unknown as typeof test;
const O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
const CLONE_NEWIPC = 0x08000000;
const IPC_CREAT_EXCL = 0o1000 | 0o2000 | SYSV_HOST_MODE;
const isRoot = process.geteuid?.() === 0;
const rootWith = (...tools: string[]) => needTools(isRoot ? missingTools(...tools) : 'needs root', serial);


async function hostQueue(name: string, op: 'make' | 'remove'): Promise<number> {
  const s = await enter({ namespaces: [], mode: 'privileged', timeoutMs: 2000 });
  try {
    const r = op === 'make' ? await s.mqOpen(name, O_CREAT | O_EXCL | O_RDWR) : await s.mqUnlink(name);
    return r.ok ? 0 : -r.errno;
  } finally {
    await s.close();
  }
}

/** Whether pid runs (a zombie does not). */

/**
 * Starts `argv` (a shell inside a fresh pid namespace that prints its namespace link, runs
 * /bin/true as that namespace's pid 2, and waits for a line before it execs the rest), and
 * resolves with its namespace's inode once printed; `go()` lets it exec, `done` is its exit.
 */
function inChildPidNs(argv: string[]): { ino: Promise<number>; go: () => void; done: Promise<{ code: number | null; stderr: string }>; child: ChildProcess } {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr: err })));
  const ino = new Promise<number>((resolve, reject) => {
    const look = () => {
      const m = /^pid:\[(\d+)\]\n/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', look);
    void done.then((r) => reject(new Error(`the shell in the child pid namespace ended (exit ${r.code}) before it printed its namespace: ${r.stderr}`)));
  });
  return { ino, go: () => child.stdin!.end('go\n'), done, child };
}

/** The shell of inChildPidNs: `exec "$@"` after the line. */
const NS_SHELL = ['sh', '-c', '/bin/true; readlink /proc/self/ns/pid; read go; exec "$@"', 'sh'];

test('names carry the maker\'s pid namespace and parse back; a name stays valid (cgroup folder, mq name, file name); salt-3 keys name no maker', (t) => {
  const MQ_NAME_MAX = 255;
  for (const ns of [PID_INIT_INO, 4026532179, 0xffffffff, null]) {
    const tag = pidTag(4194303, ns);
    const want = ns ?? 0;
    t.is(tag, ns === PID_INIT_INO ? '4194303' : `4194303@${want}`, 'today\'s name in the initial namespace');
    for (const [re, name] of [[CGROUP_RE, `nsprobe-${tag}-abcdefgh12`], [QUEUE_RE, `nsprobe-mqh-${tag}-abcdefgh`]] as const) {
      const m = re.exec(name);
      t.truthy(m, name);
      t.deepEqual([Number(m![1]), tagNs(m![2])], [4194303, want], name);
      t.false(name.includes('/'), name);
      t.true(Buffer.byteLength(name) <= MQ_NAME_MAX, name);
    }
    t.deepEqual(tempMaker(`.nsprobe-tmp-${tag}-0123456789abcdef`), { pid: 4194303, ns: want });
  }
  t.deepEqual(tempMaker('.report.json.tmp-77-1'), { pid: 77, ns: PID_INIT_INO }, 'old names: the initial namespace');
  t.is(CGROUP_RE.exec('nsprobe-12@-x'), null);
  t.is(hostQueueName(0, 1), 'nsprobe-mqh-u0-1');
  t.is(QUEUE_RE.exec('nsprobe-mqh-u0-1'), null, 'slot names are no pid names');
  for (let salt = 0; salt < 3; salt++) t.is(sysvKeyMaker(sysvHostKey(4242, salt)), 4242);
  for (let i = 0; i < 100; i++) {
    const k = sysvUnjudgedKey();
    t.is(k >>> 24, 0x4e);
    t.is(sysvKeyMaker(k), null);
  }
});

needTools(missingTools('unshare', 'readlink'))('the pid namespace read here is the kernel\'s (readlink), and a pass judges only where /proc is its own namespace\'s', (t) => {
  const link = spawnSync('readlink', ['/proc/self/ns/pid'], { encoding: 'utf8' }).stdout.trim();
  t.is(`pid:[${localPidNs()}]`, link);
  t.is(localJudgeNs(), localPidNs(), 'this process\'s /proc is its own namespace\'s');
  const url = pathToFileURL(join(ROOT, 'dist', 'src', 'pidns.js')).href;
  const script = `import(${JSON.stringify(url)}).then((m) => console.log(JSON.stringify({ ns: m.localPidNs(), judges: m.localJudgeNs(), tag: m.localPidTag() })))`;
  const inside = (mountProc: boolean) => {
    // (A normal user makes a pid namespace in a user namespace of its own.)
    const r = spawnSync('unshare', [...(isRoot ? [] : ['-Ur']), '-pf', ...(mountProc ? ['--mount-proc'] : []), 'sh', '-c', 'readlink /proc/self/ns/pid >&2; exec "$@"', 'sh', process.execPath, '-e', script], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as { ns: number; judges: number | null; tag: string }), link: r.stderr.trim() };
  };
  const own = inside(true);
  t.is(`pid:[${own.ns}]`, own.link, 'a child pid namespace, as readlink says');
  t.not(own.ns, PID_INIT_INO);
  t.is(own.judges, own.ns, 'with its own /proc (--mount-proc) it judges its own makers');
  t.regex(own.tag, new RegExp(`^\\d+@${own.ns}$`));
  // Control: without --mount-proc the /proc there is this namespace's: it judges nothing.
  const foreign = inside(false);
  t.not(foreign.ns, PID_INIT_INO);
  t.is(foreign.judges, null, 'a /proc of another pid namespace: no verdict');
});

rootWith('unshare', 'sh', 'readlink', 'sleep')('a run in a child pid namespace keeps a live host run\'s cgroup, queue and temporary file; its own namespace\'s dead maker\'s go', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const cg = ownCgroupDir();
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  const made: { cgroups: string[]; queues: string[] } = { cgroups: [], queues: [] };
  t.teardown(async () => {
    sleeper.kill('SIGKILL');
    for (const c of made.cgroups) {
      if (!existsSync(c)) continue;
      if (readFileSync(join(c, 'cgroup.procs'), 'utf8').trim()) writeFileSync(join(c, 'cgroup.kill'), '1');
      while (existsSync(c)) {
        try {
          rmdirSync(c);
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
    for (const q of made.queues) await hostQueue(q, 'remove').catch(() => undefined);
    rmSync(out, { recursive: true, force: true });
  });
  await new Promise((r) => sleeper.once('spawn', r));
  const run = inChildPidNs(['unshare', '-pf', '--mount-proc', ...NS_SHELL, process.execPath, CLI, '--only', 'uts', '--out', out]);
  const ino = await run.ino;
  // This test's process is the live host run; pid 2 of the child namespace (/bin/true) has ended.
  const host = String(process.pid);
  const dead = `2@${ino}`;
  const stays: string[] = [];
  const gone: string[] = [];
  const file = (name: string, to: string[]) => {
    writeFileSync(join(out, name), 'partial');
    to.push(join(out, name));
  };
  file(`.nsprobe-tmp-${host}-h0stl1ve`, stays);
  file(`.nsprobe-tmp-${dead}-d3adb0x`, gone);
  file(`.nsprobe-tmp-2@0-unkn0wn`, stays); // a maker that could not read its namespace: never judged
  if (cg) {
    for (const [tag, tok, to] of [[host, 'pidnshost', stays], [dead, 'pidnsdead', gone], ['2@0', 'pidnsunknown', stays]] as const) {
      const c = join(cg, `nsprobe-${tag}-${tok}`);
      mkdirSync(c);
      made.cgroups.push(c);
      to.push(c);
    }
    // A process runs in the live host run's cgroup: the pass on main killed it.
    writeFileSync(join(cg, `nsprobe-${host}-pidnshost`, 'cgroup.procs'), String(sleeper.pid));
  } else {
    t.log('no cgroup2 hierarchy here: cgroups not checked');
  }
  const queues = (await listHostQueueNames()) !== null;
  if (queues) {
    for (const tag of [host, dead]) {
      const q = `nsprobe-mqh-${tag}-pidns${tag === host ? 'host' : 'dead'}`;
      t.is(await hostQueue(q, 'make'), 0, q);
      made.queues.push(q);
    }
  } else {
    t.log('the host\'s queues cannot be listed here: queues not checked');
  }
  run.go();
  const r = await run.done;
  t.is(r.code, 0, r.stderr);
  const notes = notesOf(out);
  t.log(notes.join('\n'));
  for (const p of stays) t.true(existsSync(p), `kept: ${p}`);
  for (const p of gone) t.false(existsSync(p), `removed: ${p}`);
  t.true(runs(sleeper.pid!), 'the process in the live host run\'s cgroup still runs');
  // (Names of the child namespace: no other run judges them, so the notes are this run's.)
  for (const p of gone) t.true(notes.some((n) => /^removed a (cgroup|temporary report file) left by nsprobe process 2, which has ended: /.test(n) && n.endsWith(p)), `a note names ${p}`);
  for (const p of stays) t.false(notes.some((n) => n.includes(p)), `no note names ${p}`);
  if (queues) {
    const now = (await listHostQueueNames())!;
    t.true(now.includes(`nsprobe-mqh-${host}-pidnshost`), 'the live host run\'s queue stays');
    t.false(now.includes(`nsprobe-mqh-${dead}-pidnsdead`), 'the dead child-namespace maker\'s queue is gone');
    t.true(notes.includes(`removed a POSIX message queue left by nsprobe process 2, which has ended: nsprobe-mqh-${dead}-pidnsdead`), 'a note names it');
    t.false(notes.some((n) => n.includes(`nsprobe-mqh-${host}-`)), 'no note names the host run\'s queue');
  }
});

needTools(missingTools(...(isRoot ? ['setpriv'] : []), 'unshare', 'sh', 'readlink'), serial)('as nobody in unshare -Ur -pf: a live host run\'s temporary file in a shared report folder stays; its own namespace\'s dead maker\'s goes', async (t) => {
  // (Root runs it as nobody; a normal user as itself.)
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const uid = isRoot ? 65534 : process.geteuid!();
  chownSync(out, uid, uid);
  const run = inChildPidNs([...(isRoot ? NOBODY : []), 'unshare', '-Ur', '-pf', '--mount-proc', ...NS_SHELL, process.execPath, CLI, '--only', 'uts', '--out', out]);
  const ino = await run.ino;
  const live = join(out, `.nsprobe-tmp-${process.pid}-n0b0dyl1ve`);
  const dead = join(out, `.nsprobe-tmp-2@${ino}-n0b0dyd3ad`);
  for (const p of [live, dead]) {
    writeFileSync(p, 'partial');
    chownSync(p, uid, uid);
  }
  run.go();
  const r = await run.done;
  t.is(r.code, 0, r.stderr);
  const notes = notesOf(out);
  t.log(notes.join('\n'));
  t.true(existsSync(live), 'a live host run\'s temporary file stays');
  t.false(existsSync(dead), 'the dead child-namespace maker\'s file is removed');
  t.true(notes.includes(`removed a temporary report file left by nsprobe process 2, which has ended: ${dead}`), 'a note names it');
  t.false(notes.some((n) => n.includes(live)), 'no note names the live one');
});

/**
 * The --via command: sets the child pid namespace's ns_last_pid to BASE (so the agent's pids
 * follow it), starts the agent, relays its pipe; "hold:cgroup:DIR" holds the requests once a
 * cgroup named after a pid of this namespace from BASE on is in DIR, "hold:sysv" once a 0x4e
 * SysV key is in this IPC namespace (one of the test's own), and writes what it found to SAID;
 * SIGUSR1 lets the held requests go.
 */
const RELAY = String.raw`
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [mode, said, base, ...cmd] = process.argv.slice(2);
fs.writeFileSync('/proc/sys/kernel/ns_last_pid', base);
const lo = Number(base) + 1;
const ino = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))[1];
const agent = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
agent.stdout.pipe(process.stdout);
agent.stdin.on('error', () => {});
const found = () => {
  if (mode.startsWith('hold:cgroup:')) {
    const name = fs.readdirSync(mode.slice(12)).find((n) => {
      const m = /^nsprobe-(\d+)(?:@(\d+))?-[a-z0-9]+$/.exec(n);
      return m && Number(m[1]) >= lo && Number(m[1]) < lo + 1000 && (m[2] === undefined || m[2] === ino);
    });
    // (Once the probe's sandbox is in it: a pass that took it would kill that.)
    const events = name ? fs.readFileSync(mode.slice(12) + '/' + name + '/cgroup.events', 'utf8') : '';
    return /^populated 1$/m.test(events) ? { name } : null;
  }
  for (const kind of ['msg', 'shm', 'sem']) {
    for (const l of fs.readFileSync('/proc/sysvipc/' + kind, 'utf8').split('\n').slice(1)) {
      const key = Number(l.trim().split(/\s+/)[0]) | 0;
      if (l.trim() && key >>> 24 === 0x4e) return { kind, key };
    }
  }
  return null;
};
let held = null;
let once = false;
process.on('SIGUSR1', () => {
  const h = held;
  held = null;
  for (const d of h ?? []) agent.stdin.write(d);
});
process.stdin.on('data', (d) => {
  if (held) return void held.push(d);
  if (!once) {
    const f = found();
    if (f) {
      once = true;
      held = [d];
      fs.writeFileSync(said, JSON.stringify({ ...f, ino: Number(ino) }));
      return;
    }
  }
  agent.stdin.write(d);
});
process.stdin.on('end', () => agent.stdin.end());
agent.on('exit', (code, sig) => process.exit(sig ? 137 : code));
`;

/** A run of pids from which on (64 of them) no host process runs now: the child namespace's agent takes them. */
function freeHostPids(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const used = new Set(readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number));
  for (let i = 0; i < 10000; i++) {
    const base = 1000 + Math.floor(Math.random() * (max - 1100));
    let free = true;
    for (let p = base; p <= base + 64 && free; p++) free = !used.has(p);
    if (free) return base;
  }
  return 30000;
}

/** Resolves with what the relay found once it holds the run's requests; rejects (with its stderr) if the run ends first. */
async function heldAt(said: string, run: ReturnType<typeof spawnNode>): Promise<Record<string, unknown>> {
  let ended: string | null = null;
  void run.done.then((r) => (ended = `the run ended (exit ${r.code}) before the relay held it: ${r.stderr}`));
  while (!existsSync(said)) {
    if (ended) throw new Error(ended);
    await new Promise((r) => setTimeout(r, 10));
  }
  return JSON.parse(readFileSync(said, 'utf8')) as Record<string, unknown>;
}

/** SIGUSR1 to the relay (a child namespace's init: it has a handler), found by its command line. */
function release(relay: string): void {
  for (const n of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${n}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    // (Not unshare, whose command line names it too: SIGUSR1 would end it, and the run's pipe.)
    const argv = cmd.split('\0');
    if (argv[0] === process.execPath && argv[1] === relay && argv[2].startsWith('hold:')) process.kill(Number(n), 'SIGUSR1');
  }
}

function skipped(t: ExecutionContext, why: string | null): boolean {
  if (!why) return false;
  if (REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${why}`);
  else t.pass(`skipped: ${why}`);
  return true;
}

rootWith('unshare', 'sh', 'mktemp', 'sha256sum')('a live run whose agent is in a child pid namespace keeps its cgroup while a host run\'s pass looks', async (t) => {
  const cg = ownCgroupDir();
  if (skipped(t, agentPath() ? (cg ? null : 'no cgroup2 hierarchy here') : 'the agent is not built (npm run build)')) return;
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const relay = join(work, 'relay.cjs');
  writeFileSync(relay, RELAY);
  const said = join(work, 'held.json');
  const base = freeHostPids();
  const held = spawnNode([CLI, '--only', 'cgroup', '--mode', 'privileged', '--timeout', '600000', '--via', `unshare -pf --mount-proc ${process.execPath} ${relay} hold:cgroup:${cg} ${said} ${base}`, '--out', join(work, 'held')]);
  t.teardown(() => {
    held.child.kill('SIGKILL');
    release(relay);
    rmSync(work, { recursive: true, force: true });
  });
  const found = await heldAt(said, held);
  const name = found.name as string;
  const path = join(cg!, name);
  t.log(`held with ${path}`);
  t.true(/^populated 1$/m.test(readFileSync(join(path, 'cgroup.events'), 'utf8')), 'the probe\'s sandbox runs in it');
  const pass = await spawnNode([CLI, '--only', 'uts', '--out', join(work, 'pass')]).done;
  t.is(pass.code, 0, pass.stderr);
  const notes = notesOf(join(work, 'pass'));
  t.log(notes.join('\n'));
  t.true(existsSync(path), 'the live run\'s cgroup stays');
  t.true(/^populated 1$/m.test(readFileSync(join(path, 'cgroup.events'), 'utf8')), 'what runs in it was not killed');
  t.false(notes.some((n) => n.includes(name)), 'no note names it');
  t.regex(name, new RegExp(`^nsprobe-\\d+@${found.ino}-`), 'the name says its maker\'s pid namespace');
  release(relay);
  const r = await held.done;
  const rep = JSON.parse(readFileSync(join(work, 'held', 'report.json'), 'utf8')) as { probes: { id: string; status: string }[] };
  t.is(r.code, 0, `the held run ends well: ${r.stdout}\n${r.stderr}`);
  t.deepEqual(rep.probes.map((p) => [p.id, p.status]), [['cgroup/privileged', 'pass']]);
  t.false(existsSync(path), 'its own cleanup removed it');
});

rootWith('unshare', 'nsenter', 'sleep', 'sh', 'mktemp', 'sha256sum')('SysV: a live child-pid-namespace run\'s host-side key is not judged by a host run; an initial-namespace dead maker\'s key is (own IPC namespace)', async (t) => {
  if (skipped(t, agentPath() ? null : 'the agent is not built (npm run build)')) return;
  const work = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const holder = spawn('unshare', ['--ipc', 'sleep', '600'], { stdio: 'ignore' });
  const relay = join(work, 'relay.cjs');
  writeFileSync(relay, RELAY);
  let held: ReturnType<typeof spawnNode> | undefined;
  t.teardown(() => {
    held?.child.kill('SIGKILL');
    release(relay);
    holder.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
  await new Promise((r) => holder.once('spawn', r));
  const ns = `/proc/${holder.pid}/ns/ipc`;
  // (unshare has exec'd sleep once its IPC namespace differs from this one's.)
  const link = (p: string) => spawnSync('readlink', [p], { encoding: 'utf8' }).stdout;
  while (link(ns) === link('/proc/self/ns/ipc')) await new Promise((r) => setTimeout(r, 5));
  const prefix = ['nsenter', `--ipc=${ns}`];
  const sysv = () => ['msg', 'shm', 'sem'].flatMap((k, i) => parseSysv((i + 1) as 1 | 2 | 3, spawnSync('nsenter', [`--ipc=${ns}`, 'cat', `/proc/sysvipc/${k}`], { encoding: 'utf8' }).stdout).map((o) => ({ ...o, name: k })));
  const said = join(work, 'held.json');
  const base = freeHostPids();
  held = spawnNode([CLI, '--only', 'ipc', '--mode', 'privileged', '--timeout', '600000', '--via', `unshare -pf --mount-proc ${process.execPath} ${relay} hold:sysv ${said} ${base}`, '--out', join(work, 'held')], { prefix });
  const found = await heldAt(said, held);
  const key = found.key as number;
  const hex = `0x${(key >>> 0).toString(16)}`;
  t.log(`held with ${found.kind} ${hex}`);
  // Control: a key of a maker of the initial pid namespace that has ended, in nsprobe's shape.
  const dead = spawnSync('true').pid!;
  const control = sysvHostKey(dead, 0);
  // And the same key shape in another program's mode (its own 0600: a key from ftok(path, 'N')
  // can look like one nsprobe names its maker with): not nsprobe's, it stays.
  const dead2 = spawnSync('true').pid!;
  const foreign = sysvHostKey(dead2, 1);
  const s = await enter({ namespaces: [], mode: 'privileged', timeoutMs: 5000 });
  try {
    await s.setns(ns, CLONE_NEWIPC).get();
    await s.msgget(control, IPC_CREAT_EXCL).get();
    await s.msgget(foreign, 0o1000 | 0o2000 | 0o600).get();
  } finally {
    await s.close();
  }
  t.true(sysv().some((o) => o.key === control), 'the control is planted');
  const pass = await spawnNode([CLI, '--only', 'uts', '--out', join(work, 'pass')], { prefix }).done;
  t.is(pass.code, 0, pass.stderr);
  const notes = notesOf(join(work, 'pass'));
  t.log(notes.join('\n'));
  const now = sysv();
  t.true(now.some((o) => o.key === key), 'the live run\'s key stays');
  t.false(now.some((o) => o.key === control), 'the dead initial-namespace maker\'s key is removed');
  const other = now.find((o) => o.key === foreign);
  t.truthy(other, 'the same key shape in mode 0600 (another program\'s) stays');
  if (other) {
    const rm = await enter({ namespaces: [], mode: 'privileged', timeoutMs: 5000 });
    try {
      await rm.setns(ns, CLONE_NEWIPC).get();
      await rm.ipcrm('msg', other.id).get();
    } finally {
      await rm.close();
    }
  }
  t.true(notes.includes(`removed a SysV IPC object left by nsprobe process ${dead}, which has ended: msg key 0x${(control >>> 0).toString(16)}`), 'a note names it');
  t.false(notes.some((n) => n.endsWith(`key ${hex}`)), 'no note names the live run\'s key');
  t.is(sysvKeyMaker(key), null, 'a maker outside the initial pid namespace makes a key no pass judges');
  release(relay);
  const r = await held.done;
  const rep = JSON.parse(readFileSync(join(work, 'held', 'report.json'), 'utf8')) as { probes: { id: string; status: string }[] };
  t.is(r.code, 0, `the held run ends well: ${r.stdout}\n${r.stderr}`);
  t.deepEqual(rep.probes.map((p) => [p.id, p.status]), [['ipc/privileged', 'pass']]);
  t.deepEqual(sysv().filter((o) => o.key >>> 24 === 0x4e), [], 'nothing of nsprobe\'s is left in the IPC namespace');
});
