// nsprobe-agent (native/agent.cc) and its client (src/agent/client.ts): the frames match their
// mirror, the program is static and small, the whole suite gives the same verdicts through the
// agent as through the addon (as root, as nobody, in unshare -Ur with max_user_namespaces=0),
// hostile frames are errors or a clean exit, a closed stdin ends every child, the old-kernel
// fallbacks (clone3, pidfd_open, close_range answering ENOSYS) still enter, serve and reap.
import test from 'ava';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentClient, localLauncher } from '../src/agent/client.js';
import { AGENT_MAGIC, ENTER_FIXED, FK, HDR, MAX_FRAME, REP_FIXED, T, frame, parseFrames, u32s } from '../src/agent/proto.js';
import { agentPath, setTransport, transportContext } from '../src/native.js';
import { decodeReply, encodeRequest, Op } from '../src/protocol.js';
import { enter, privilegedIdPlan, rootlessPlan } from '../src/sandbox.js';
import { isRoot, NOBODY, ROOT, tmp } from './helpers/run.js';
import { SECCOMP_EXEC } from './helpers/envs.js';
import { missingTools, needRoot, needTools } from './helpers/tools.js';
import { verdicts, type Verdicts } from './helpers/reports.js';

const execFileP = promisify(execFile);
const AGENT = agentPath();
const noAgent = AGENT ? null : 'the agent is not built (npm run build)';
const agentTest = needTools(noAgent);
// Entering without a user namespace (CLONE_NEWUTS, NEWPID on their own) needs root: as another
// user these are skipped (the suite-through-the-agent tests cover that user).
const rootAgentTest = isRoot ? agentTest : needRoot();
const CLI = join(ROOT, 'dist', 'bin', 'nsprobe.js');

const agentProto = readFileSync(join(ROOT, 'native', 'agent-proto.h'), 'utf8');
const enterH = readFileSync(join(ROOT, 'native', 'enter.h'), 'utf8');

test('frames: native/agent-proto.h and src/agent/proto.ts agree on types, failure kinds and sizes', (t) => {
  const types = new Map([...agentProto.matchAll(/\bNSA_(\w+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  for (const [name, n] of Object.entries(T)) t.is(types.get(name), n, `NSA_${name}`);
  const kinds = new Map([...`${enterH}\n${agentProto}`.matchAll(/\bFK_(\w+)(?: = (\d+))?,/g)].map((m, i) => [m[1], m[2] === undefined ? i : Number(m[2])]));
  for (const [name, n] of Object.entries(FK)) t.is(kinds.get(name), n, `FK_${name}`);
  t.regex(agentProto, new RegExp(`NSA_MAGIC 0x${AGENT_MAGIC.toString(16)}u`));
  t.regex(agentProto, /NSA_MAX_FRAME \(NSP_MAX_REQ \+ 4096\)/);
  t.is(MAX_FRAME, 8192 + 4096);
  // The C side's layouts, counted field by field from the header text.
  t.is(HDR, 16);
  t.is(REP_FIXED, 4 + 4 + 32 + 16 + 6 + 2);
  t.is(ENTER_FIXED, 8 * 3 + 4 * 4 + 4 * 2 + 2 * 2 + 4 * 10 + 4);
});

agentTest('the agent is one static executable under 200 KB (no interpreter, no shared libraries)', (t) => {
  const b = readFileSync(AGENT!);
  t.is(b.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.true(statSync(AGENT!).size < 200 * 1024, `${statSync(AGENT!).size} bytes`);
  const r = spawnSync('readelf', ['-l', '-d', AGENT!], { encoding: 'utf8' });
  if (r.status === 0) {
    t.notRegex(r.stdout, /INTERP/);
    t.notRegex(r.stdout, /NEEDED/);
  }
  t.log(`${AGENT}: ${statSync(AGENT!).size} bytes`);
});

/** Starts an agent and reads its raw frames (for the hostile-input tests). */
const rawAgents = new Set<ReturnType<typeof spawn>>();
process.on('exit', () => {
  for (const p of rawAgents) p.kill('SIGKILL');
});
function rawAgent(argv: string[] = [AGENT!]) {
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
  rawAgents.add(p);
  p.on('exit', () => rawAgents.delete(p));
  let buf: Buffer = Buffer.alloc(0);
  const frames: ReturnType<typeof parseFrames>['frames'] = [];
  let waiters: Array<() => void> = [];
  p.stdout.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    const r = parseFrames(buf);
    buf = r.rest;
    frames.push(...r.frames);
    for (const w of waiters) w();
    waiters = [];
  });
  p.stdin.on('error', () => undefined);
  // 'exit' can come before the last of stdout: wait for both, so the last frame has been read.
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => p.on('close', (code, signal) => resolve({ code, signal })));
  const until = async (pred: () => boolean, ms = 30000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('timed out waiting for the agent');
      await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 50))]);
    }
  };
  return { p, frames, exited, until, reply: (tag: number) => frames.find((f) => f.tag === tag && f.type !== T.HELLO) };
}

const ENTER_UTS = (() => {
  const b = Buffer.alloc(ENTER_FIXED + 4);
  b.writeBigUInt64LE(0x04000000n, 0); // CLONE_NEWUTS
  b.writeInt32LE(65534, 28);
  b.writeInt32LE(65534, 32);
  b.writeInt32LE(5000, 36);
  return b; // + two empty strings (the maps)
})();

// Tests that route Sandbox through an agent (setTransport) take turns: the transport is global.
let turn: Promise<unknown> = Promise.resolve();
function withTransport(a: AgentClient, fn: (a: AgentClient) => Promise<void>): Promise<void> {
  const run = async () => {
    setTransport(a);
    try {
      await fn(a);
    } finally {
      setTransport(undefined);
      a.shutdown();
    }
  };
  const p = turn.then(run, run);
  turn = p.catch(() => undefined);
  return p;
}

function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(s);
  } catch {
    return false;
  }
}

rootAgentTest('hostile frames: random well-framed payloads get one reply each and the agent goes on; bad magic and oversized frames end it cleanly, killing its children', async (t) => {
  // A seeded generator: the same cases each run.
  let seed = 20261201;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd(256)));
  t.teardown(() => {
    for (const p of rawAgents) p.kill('SIGKILL');
  });
  const a = rawAgent();
  await a.until(() => a.frames.some((f) => f.type === T.HELLO));
  a.p.stdin.write(frame(T.ENTER, 1, ENTER_UTS));
  await a.until(() => !!a.reply(1));
  const box = a.reply(1)!;
  t.is(box.err, 0, 'a uts box to aim at');
  const boxId = box.v[0], boxPid = box.v[1];
  // Types that act on the host (netlink, enter with random paths and flags) are left out; every
  // other type gets random and truncated payloads, and unknown types too.
  const kinds = [T.REQUEST, T.CLOSE, T.ADOPT, T.KILL, T.CLOSEFD, T.PING, T.SETNOFILE, T.ENTER, 13, 14, 99, 4000];
  let tag = 100;
  const sent: number[] = [];
  for (let i = 0; i < 600; i++) {
    const type = kinds[rnd(kinds.length)];
    let payload: Buffer;
    if (type === T.ENTER) payload = bytes(rnd(ENTER_FIXED)); // always short: an error reply
    else if (type === T.REQUEST) {
      // To a box that does not exist, or to the real one with a request that fails its magic.
      const bad = bytes(88 + rnd(64));
      bad.writeUInt32LE(0xdeadbeef, 0);
      payload = Buffer.concat([u32s(rnd(2) ? boxId : 1000 + rnd(1000), 2000), bad]).subarray(0, rnd(3) ? undefined : rnd(8));
    } else if (type === T.KILL) payload = u32s(1000 + rnd(1000), 9); // never our box
    else if (type === T.CLOSE) payload = u32s(1000 + rnd(1000), 100);
    else payload = bytes(rnd(300));
    sent.push(++tag);
    a.p.stdin.write(frame(type, tag, payload));
    if (i % 50 === 0) await a.until(() => !!a.reply(tag));
  }
  await a.until(() => sent.every((x) => a.reply(x)), 60000);
  t.is(sent.filter((x) => a.frames.filter((f) => f.tag === x).length !== 1).length, 0, 'exactly one reply per frame');
  a.p.stdin.write(frame(T.PING, 9000, Buffer.from('still here')));
  await a.until(() => !!a.reply(9000));
  t.is(a.reply(9000)!.data.toString(), 'still here');
  t.true(alive(boxPid), 'the box survived the noise');
  // A frame that cannot be read: an error, then a clean exit that takes the box with it.
  const bad = Buffer.alloc(HDR);
  bad.writeUInt32LE(0x12345678, 0);
  a.p.stdin.write(bad);
  const ex = await a.exited;
  t.deepEqual(ex, { code: 0, signal: null });
  t.is(a.frames.at(-1)!.type, T.ERROR);
  t.false(alive(boxPid), 'its child is gone');

  const b = rawAgent();
  await b.until(() => b.frames.some((f) => f.type === T.HELLO));
  const huge = Buffer.alloc(HDR);
  huge.writeUInt32LE(AGENT_MAGIC, 0);
  huge.writeUInt16LE(T.PING, 4);
  huge.writeUInt32LE(7, 8);
  huge.writeUInt32LE(0xfffffff0, 12);
  b.p.stdin.write(huge);
  t.deepEqual(await b.exited, { code: 0, signal: null });
  t.is(b.frames.at(-1)!.err, 90 /* EMSGSIZE */);

  // Pure noise on stdin: never a crash.
  for (let i = 0; i < 10; i++) {
    const c = rawAgent();
    c.p.stdin.end(bytes(1 + rnd(4000)));
    const r = await c.exited;
    t.is(r.signal, null, `noise run ${i}: no signal`);
  }
});

rootAgentTest('a closed stdin (the controller gone) makes the agent kill and reap every child and exit', async (t) => {
  const a = new AgentClient(localLauncher(AGENT!));
  const s1 = await a.enter({ cloneFlags: 0x04000000 });
  const s2 = await a.enter({ cloneFlags: 0x20000000 | 0x04000000, timeoutMs: 5000 }); // pid + uts
  const agentPid = a.agentPid!;
  t.true(alive(s1.pid) && alive(s2.pid));
  a.channel!.stdin.end();
  const end = Date.now() + 5000;
  while ((alive(agentPid) || alive(s1.pid) || alive(s2.pid)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.false(alive(s1.pid), 'first child gone');
  t.false(alive(s2.pid), 'second child gone');
  t.false(alive(agentPid), 'the agent exited');
});

rootAgentTest('through the agent: a request that hangs times out and kills its child; EINVAL at clone is data; a box with no namespaces is the host', async (t) => {
  await withTransport(new AgentClient(localLauncher(AGENT!)), async (a) => {
  const s = await enter({ namespaces: ['uts'], mode: 'privileged' });
  const h = await t.throwsAsync(async () => s.hang(300));
  t.is((h as { stage?: string }).stage, 'timeout');
  t.is(h!.message, 'timeout after 300 ms');
  const c = await s.close();
  t.false(alive(s.pid), 'the child that did not answer was killed');
  t.true(c.reaped);
  // CLONE_NEWNS with CLONE_FS: the kernel says EINVAL, and that is the answer (as in addon.test.ts).
  const e = await t.throwsAsync(enter({ namespaces: ['mnt'], mode: 'privileged', extraCloneFlags: 0x200 }));
  t.is((e as { errno?: number }).errno, 22);
  t.is((e as { stage?: string }).stage, 'clone');
  const host = await enter({ namespaces: [], mode: 'privileged' });
  t.is(host.inner.pid, host.pid, 'no pid namespace: the same pid as seen by the agent');
  const u = await host.call(Op.UNAME);
  t.is(u.data.toString().split('\0')[0], readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(), "the host's own hostname");
  await host.close();
  t.is(a.openCount(), 0);
  });
});

needTools(noAgent ?? (existsSync(SECCOMP_EXEC) ? missingTools('python3') : 'nsprobe-seccomp-exec is not built'))(
  'old kernels, forced: with clone3, pidfd_open, pidfd_send_signal and close_range answering ENOSYS the agent still enters, serves and reaps',
  async (t) => {
    // Control: the filter does make pidfd_open fail.
    const ctl = spawnSync(SECCOMP_EXEC, ['--old-kernel', 'python3', '-c', 'import os\ntry:\n os.pidfd_open(os.getpid()); print("works")\nexcept OSError as e: print(e.errno)'], { encoding: 'utf8' });
    t.is(ctl.stdout.trim(), '38', 'pidfd_open is ENOSYS under the filter');
    const free = spawnSync('python3', ['-c', 'import os\nos.pidfd_open(os.getpid()); print("works")'], { encoding: 'utf8' });
    t.is(free.stdout.trim(), 'works', 'and works without it');
    await withTransport(new AgentClient(localLauncher(SECCOMP_EXEC, ['--old-kernel', AGENT!])), async (a) => {
    const modes = isRoot ? (['privileged', 'rootless'] as const) : (['rootless'] as const);
    for (const ns of [[], ['uts'], ['pid'], ['user'], ['time'], ['time', 'pid'], ['net', 'mnt', 'ipc', 'cgroup']] as const) {
      for (const mode of modes) {
        const s = await enter({ namespaces: ns, mode });
        const f = await s.forkServe();
        t.true(f.ok, `${ns}/${mode}: fork a server`);
        t.is((await f.value!.echo('x')).value?.toString(), 'x');
        await f.value!.close();
        const c = await s.close();
        t.true(c.reaped && !c.killed, `${ns}/${mode}: reaped without a kill`);
        t.false(alive(s.pid), `${ns}/${mode}: gone`);
      }
    }
    const status = readFileSync(`/proc/${a.agentPid}/status`, 'utf8');
    t.regex(status, /Seccomp:\s+2/, 'the agent ran under the filter');
    t.is(a.openCount(), 0);
    });
  },
);

const ENVS: { name: string; prefix: string[]; why: string | null }[] = [
  { name: 'as root', prefix: [], why: isRoot ? null : 'needs root' },
  { name: 'as nobody', prefix: NOBODY, why: isRoot ? missingTools('setpriv') : 'needs root to become nobody' },
  { name: 'in unshare -Ur with max_user_namespaces=0', prefix: ['unshare', '-Ur', 'sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', 'sh'], why: missingTools('unshare') },
];

for (const env of ENVS) {
  needTools(noAgent ?? env.why)(`the suite through the agent gives the addon's verdicts, probe by probe and check by check, ${env.name}`, async (t) => {
    const runs: Verdicts[] = [];
    for (const transport of ['addon', 'agent']) {
      const out = tmp(t);
      chmodSync(out, 0o777);
      // Not spawnSync: the other tests of this file wait on timers meanwhile.
      const r = await execFileP(env.prefix[0] ?? process.execPath, [...env.prefix.slice(1), ...(env.prefix.length ? [process.execPath] : []), CLI, '--json', '--out', out], {
        encoding: 'utf8',
        timeout: 120000,
        cwd: '/',
        maxBuffer: 64 << 20,
        env: { ...process.env, NSPROBE_TRANSPORT: transport, HOME: '/tmp' },
      }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
      t.not(r.stdout.trim(), '', `${transport}: a report (stderr: ${r.stderr.slice(0, 300)})`);
      runs.push(verdicts(r.stdout));
    }
    t.true(Object.keys(runs[0].probes).length >= 14);
    t.deepEqual(runs[1].probes, runs[0].probes);
    t.deepEqual(runs[1].assertions, runs[0].assertions);
    t.log(Object.entries(runs[1].probes).map(([k, v]) => `${k}=${v}`).join(' '));
  });
}

rootAgentTest('a request with a wrong magic reaches the child and comes back EPROTO through the agent, as through the addon', async (t) => {
  const a = new AgentClient(localLauncher(AGENT!));
  t.teardown(() => a.shutdown());
  const b = await a.enter({ cloneFlags: 0x04000000 });
  const req = encodeRequest(Op.ECHO, 5, [], ['hi']);
  const ok = await a.request(b.id, req, 2000);
  t.is(ok.reply.readUInt32LE(0), 0x5052534e);
  const bad = Buffer.from(req);
  bad.writeUInt32LE(1, 0);
  const r = await a.request(b.id, bad, 2000);
  t.is(r.reply.readInt32LE(12), 71);
  await a.close(b.id, 1000);
  t.false(alive(b.pid));
});

// A box any user can make: a uts namespace (as root), else a user namespace with uts in it.
const OWN_BOX = isRoot
  ? { cloneFlags: 0x04000000 }
  : { cloneFlags: 0x10000000 | 0x04000000, userns: true, uidMap: `0 ${process.geteuid!()} 1\n`, gidMap: `0 ${process.getegid!()} 1\n` };

agentTest('entering runs off the main loop: an enter held on a pipe stalls neither another enter nor requests; a request held on a pipe stalls no other box', async (t) => {
  const dir = tmp(t);
  const enterPipe = join(dir, 'cgroup.procs'); // the enter writes the child's pid here: open() waits for our reader
  const reqPipe = join(dir, 'request');
  for (const f of [enterPipe, reqPipe]) {
    const r = spawnSync('mkfifo', [f], { encoding: 'utf8' });
    t.is(r.status, 0, `mkfifo ${f}: ${r.stderr}`);
  }
  const a = new AgentClient(localLauncher(AGENT!));
  t.teardown(() => a.shutdown());
  const echo = async (id: number, s: string) => decodeReply((await a.request(id, encodeRequest(Op.ECHO, 1, [], [s]), 30000)).reply).data.toString();
  let enterDone = false;
  // Its own timeout is generous on purpose: it is released by the read below, not by a clock.
  const held = a.enter({ ...OWN_BOX, cgroupProcs: [enterPipe], timeoutMs: 120000 });
  held.then(() => (enterDone = true), () => (enterDone = true));
  const other = await a.enter(OWN_BOX);
  t.is(await echo(other.id, 'other'), 'other', 'a box entered after the held one answers');
  // A request that waits on a pipe in one box while another box answers (the box sees our /tmp).
  const slow = await a.enter(OWN_BOX);
  let reqDone = false;
  const heldReq = a.request(slow.id, encodeRequest(Op.READFILE, 2, [0, 100], [reqPipe]), 120000);
  heldReq.then(() => (reqDone = true), () => (reqDone = true));
  t.is(await echo(other.id, 'again'), 'again', 'the other box answers while the request waits');
  t.false(enterDone, 'the held enter is still waiting for its cgroup file');
  t.false(reqDone, 'the held request is still waiting for its pipe');
  // Control: the enter really was held by the pipe, and goes on once it is read.
  const pid = Number((await readFile(enterPipe, 'utf8')).trim());
  t.true(pid > 0, 'the enter wrote a pid into the pipe');
  const box = await held;
  t.is(await echo(box.id, 'held'), 'held', 'the released enter serves');
  // Opening the write end lets the child's open() return; its pread() on a pipe is ESPIPE.
  const w = await open(reqPipe, 'w');
  const rep = decodeReply((await heldReq).reply);
  await w.close();
  t.is(rep.err, 29, 'the released request went on to its read (ESPIPE on a pipe)');
  for (const b of [box, other, slow]) {
    const c = await a.close(b.id, 2000);
    t.true(c.reaped, `box ${b.id} reaped`);
    t.false(alive(b.pid));
  }
  t.is(a.openCount(), 0);
});

agentTest('a closed stdin ends an enter in flight too: its first stage is killed and the agent exits', async (t) => {
  const dir = tmp(t);
  const enterPipe = join(dir, 'cgroup.procs');
  t.is(spawnSync('mkfifo', [enterPipe]).status, 0);
  const a = new AgentClient(localLauncher(AGENT!));
  t.teardown(() => a.shutdown());
  const b = await a.enter(OWN_BOX);
  const agentPid = a.agentPid!;
  const proc = a.channel!.proc!;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const held = a.enter({ ...OWN_BOX, cgroupProcs: [enterPipe], timeoutMs: 120000 });
  held.catch(() => undefined);
  // The enter's first stage is a child of a worker thread of the agent: wait for it to appear
  // (it is cloned before the cgroup file is opened), and stop if the agent ends meanwhile.
  const children = () => {
    const out: number[] = [];
    try {
      for (const tid of readdirSync(`/proc/${agentPid}/task`)) {
        out.push(...readFileSync(`/proc/${agentPid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {}
    return out.filter((p) => p !== b.pid);
  };
  let stage: number | undefined;
  while (!(stage = children()[0]) && !gone) await new Promise((r) => setTimeout(r, 10));
  t.false(gone, 'the agent is alive while the enter waits');
  t.true(alive(stage!), 'the first stage waits for its cgroup file');
  a.channel!.stdin.end();
  await exited;
  t.false(alive(agentPid), 'the agent exited');
  t.false(alive(b.pid), 'the box is gone');
  t.false(alive(stage!), 'the first stage of the enter in flight is gone');
  await t.throwsAsync(held, undefined, 'the held enter ends with the agent');
});

// The host-side netlink calls, run by a Node process in a network namespace of its own (unshare
// -Urn: its links are nobody else's) through the addon or through a local agent started there.
const NETLINK_SCRIPT = `
import { readFileSync } from 'node:fs';
const { native } = await import(process.argv[2]);
const n = native();
if (n.start) await n.start();
const has = (f, s) => readFileSync(f, 'utf8').includes(s);
const out = {};
out.missing = n.netlink('ifindex', 'nsp-none0');
out.create = n.netlink('vethCreate', 'nsp-a0', 'nsp-b0', 0);
out.again = n.netlink('vethCreate', 'nsp-a0', 'nsp-b0', 0);
out.listed = has('/proc/net/dev', 'nsp-a0:') && has('/proc/net/dev', 'nsp-b0:');
out.ifindex = n.netlink('ifindex', 'nsp-a0') > 0;
out.up = n.netlink('linkUp', 'nsp-a0');
out.addr = n.netlink('addrAdd', 'nsp-a0', 2, Buffer.from([10, 9, 8, 7]), 24);
out.addrSeen = has('/proc/net/fib_trie', '10.9.8.7');
out.bogus = n.netlink('noSuchOp', 'nsp-a0');
out.del = n.netlink('linkDel', 'nsp-a0');
out.gone = n.netlink('ifindex', 'nsp-a0');
out.unlisted = !has('/proc/net/dev', 'nsp-a0:');
process.stdout.write(JSON.stringify(out));
`;

needTools(noAgent ?? missingTools('unshare'))('host-side netlink() answers through the agent as through the addon (veth, up, address, delete, errors), in a network namespace of its own', async (t) => {
  const dir = tmp(t);
  const script = join(dir, 'netlink.mjs');
  writeFileSync(script, NETLINK_SCRIPT);
  chmodSync(dir, 0o755);
  const results: Record<string, unknown>[] = [];
  for (const transport of ['addon', 'agent']) {
    const r = await execFileP('unshare', ['-Urn', process.execPath, script, join(ROOT, 'dist', 'src', 'native.js')], {
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, NSPROBE_TRANSPORT: transport },
    }).catch((e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: e.stdout ?? '', stderr: `${e.message} ${e.stderr ?? ''}` }));
    t.not(r.stdout, '', `${transport}: results (stderr: ${r.stderr.slice(0, 400)})`);
    results.push(JSON.parse(r.stdout || '{}'));
  }
  const [addon, agent] = results;
  // Absolute answers (the control: the agent's netlink() was -ENOSYS before, which fails these).
  t.deepEqual(agent, { missing: -19, create: 0, again: -17, listed: true, ifindex: true, up: 0, addr: 0, addrSeen: true, bogus: -22, del: 0, gone: -19, unlisted: true });
  t.deepEqual(agent, addon, 'the agent answers as the addon');
});

test('the caller identity and remoteness travel with the transport: set with it, gone with it', async (t) => {
  // Pure logic (no agent is started): a remote login uid 1000 with a subordinate range.
  const caller = { euid: 1000, egid: 1001, uidMap: '0 0 4294967295\n', gidMap: '0 0 4294967295\n' };
  const fake = new AgentClient(async () => {
    throw new Error('not started');
  });
  // Inside withTransport's turn: the transport is global to this file's concurrent tests.
  await withTransport(fake, async () => {
    setTransport(undefined);
    const before = { rootless: rootlessPlan(), privileged: privilegedIdPlan(), ctx: transportContext() };
    t.deepEqual(before.ctx, { remote: false, caller: null });
    setTransport(fake, { remote: true, caller });
    t.deepEqual(transportContext(), { remote: true, caller });
    const r = rootlessPlan();
    t.is(r.hostUid, 1000, "rootless sandboxes are made as the target's login");
    t.is(r.gidMap, '0 1001 1\n');
    setTransport(undefined);
    t.deepEqual({ rootless: rootlessPlan(), privileged: privilegedIdPlan(), ctx: transportContext() }, before, "setTransport(undefined) clears it: this process's plans again");
    setTransport(fake);
    t.deepEqual(transportContext(), { remote: false, caller: null }, 'a transport set without a context is local');
  });
});
