// The native addon against the real kernel: every request inside a real namespace with its
// host-side counterpart, entry errors with the right stage and code, and no process left behind.
import test from 'ava';
import { readFileSync, readlinkSync, statSync, existsSync, readdirSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { removeCgroup } from '../probes/cgroup.js';
import { localHost } from '../src/host/hostif.js';
import { tmpdir } from 'node:os';
import { dirname, join as joinPath } from 'node:path';
import { native } from '../src/native.js';
import { NsError } from '../src/errors.js';
import { encodeRequest, decodeReply, Op } from '../src/protocol.js';
import { enter, join, AF_INET, IFF_UP } from '../src/sandbox.js';
import { isRoot, run, tsxArgv, NOBODY, ROOT } from './helpers/run.js';

const rootOnly = isRoot ? test : test.skip;
const hostname = () => readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();

/** Children of this process, from /proc (all threads). */
function children(): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${process.pid}/task`)) {
    const c = readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim();
    if (c) out.push(...c.split(/\s+/).map(Number));
  }
  return out;
}

test('identity, uname, sethostname inside; the host hostname is unchanged', async (t) => {
  const before = hostname();
  const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
  try {
    await s.sethostname('addon-test');
    t.is((await s.uname().get()).hostname, 'addon-test');
    t.is(hostname(), before);
    const id = await s.identity().get();
    t.is(id.euid, 0);
    t.is(id.pid, s.pid, 'no pid namespace: same pid inside and out');
  } finally {
    await s.close();
  }
});

test('files: read, readlink and stat inside differ from the host where namespaced', async (t) => {
  const s = await enter({ namespaces: ['net', 'mnt'], mode: 'rootless' });
  try {
    t.regex(await s.readFile('/proc/self/uid_map').get(), /^\s*0\s+\d+\s+1\s*$/);
    const insideNet = await s.readlink('/proc/self/ns/net').get();
    t.not(insideNet, readlinkSync('/proc/self/ns/net'));
    const st = await s.stat('/proc/self/ns/net').get();
    t.is(`net:[${st.ino}]`, insideNet);
    t.is((await s.stat('/').get()).ino, statSync('/').ino);
    const big = await s.readFile('/proc/self/mountinfo').get();
    t.true(big.length > 100);
    const r = await s.call(Op.READFILE, [0, 0], ['/nonexistent-nsprobe']);
    t.is(r.err, 2);
    t.is(r.syscall, 'open');
  } finally {
    await s.close();
  }
});

test('IPC, network, mounts, clocks, processes inside', async (t) => {
  const s = await enter({ namespaces: ['ipc', 'net', 'mnt', 'pid'], mode: 'rootless' });
  try {
    const id = await s.msgget(0x1234, 0o1000 | 0o600).get();
    t.true(id >= 0);
    t.false(readFileSync('/proc/sysvipc/msg', 'utf8').includes(' 4660 '));
    await s.ipcrm('msg', id);
    t.true((await s.mqOpen('nsprobe-addon', 0o100 | 2)).ok);
    t.true((await s.mqUnlink('nsprobe-addon')).ok);
    // "/name", as mq_open(3) takes it, names the same queue (the syscall itself wants no slash)
    t.true((await s.mqOpen('/nsprobe-addon', 0o100 | 0o200 | 2)).ok, 'created with a slash');
    t.true((await s.mqOpen('nsprobe-addon', 2)).ok, 'opened without it');
    t.true((await s.mqUnlink('/nsprobe-addon')).ok);
    t.is((await s.mqUnlink('nsprobe-addon')).code, 'ENOENT', 'gone: ENOENT');
    const links = await s.links().get();
    t.deepEqual(links.map((l) => l.name), ['lo']);
    await s.linkSet('lo', IFF_UP);
    t.is((await s.tcpSelftest(AF_INET, Buffer.from([127, 0, 0, 1])).get()).answer, 'pingpong');
    t.true((await s.mount('nsprobe-addon', '/tmp', 'tmpfs', 0)).ok);
    t.true((await s.readFile('/proc/self/mountinfo').get()).includes('nsprobe-addon'));
    t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes('nsprobe-addon'));
    await s.mkdir('/tmp/x');
    t.deepEqual(await s.listdir('/tmp').get(), ['x']);
    const c = await s.clocks().get();
    t.true(Math.abs(c.realtime - Date.now() / 1000) < 5);
    const pid = await s.forkPause().get();
    t.true(pid > 1);
    t.true((await s.kill(pid, 9)).ok);
    const w = await s.wait(pid, 0, 2000).get();
    t.is(w.pid, pid);
    t.is(w.status & 0x7f, 9);
    t.deepEqual(await s.echo('hello').get(), Buffer.from('hello'));
  } finally {
    await s.close();
  }
});

test('join by path and by pidfd sees the same namespaces', async (t) => {
  const a = await enter({ namespaces: ['uts', 'ipc', 'net'], mode: 'rootless' });
  try {
    await a.sethostname('joined');
    for (const via of ['path', 'pidfd'] as const) {
      const j = await join(a, { namespaces: ['user', 'uts', 'ipc', 'net'], via });
      t.is((await j.uname().get()).hostname, 'joined', via);
      t.is(await j.readlink('/proc/self/ns/net').get(), await a.readlink('/proc/self/ns/net').get());
      await j.close();
    }
  } finally {
    await a.close();
  }
});

rootOnly('rootless mode run as root really runs unprivileged', async (t) => {
  const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
  try {
    const uid = readFileSync(`/proc/${s.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1];
    t.is(Number(uid), 65534);
    t.is((await s.identity().get()).euid, 0);
  } finally {
    await s.close();
  }
});

test('invalid clone flags fail with EINVAL at stage clone', async (t) => {
  const e = await t.throwsAsync(enter({ namespaces: ['mnt'], mode: 'privileged', extraCloneFlags: 0x200 /* CLONE_FS */ }), { instanceOf: NsError });
  t.is(e!.stage, 'clone');
  t.is(e!.code, 'EINVAL');
});

rootOnly('an unprivileged caller asking for a privileged net namespace gets EPERM at clone', (t) => {
  const r = run([...NOBODY, ...tsxArgv('test/helpers/enter.ts', 'privileged', 'net')]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { stage: 'clone', code: 'EPERM', syscall: 'clone' });
});

test('max_user_namespaces lowered to 0 gives ENOSPC at clone', (t) => {
  const r = run(['unshare', '-Ur', 'sh', '-c', `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`, 'sh', ...tsxArgv('test/helpers/enter.ts', 'rootless', 'uts')]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { stage: 'clone', code: 'ENOSPC', syscall: 'clone' });
});

rootOnly('as root with uid 65534 mapped, rootless mode drops to it and its unshare gets ENOSPC when the limit is 0', (t) => {
  // A user namespace that maps 65536 ids (root writes the maps from outside, as newuidmap would),
  // so rootless mode switches to 65534 and creates the namespaces with unshare() in that same
  // process. The shell inside waits for its map, then execs again to be root with capabilities.
  const script = [
    `unshare -U sh -c 'while [ -z "$(cat /proc/self/uid_map)" ]; do sleep 0.01; done; exec "$@"' sh sh -c "\${LIMIT}exec \\"\\$@\\"" sh "$@" &`,
    'p=$!',
    'while [ "$(readlink /proc/$p/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done',
    'echo "0 0 65536" > /proc/$p/gid_map && echo "0 0 65536" > /proc/$p/uid_map',
    'wait $p',
  ].join('\n');
  const argv = ['bash', '-c', script, 'bash', ...tsxArgv('test/helpers/enter.ts', 'rootless', 'uts')];
  const r = run(argv, { env: { LIMIT: 'echo 0 > /proc/sys/user/max_user_namespaces && ' } });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { stage: 'clone', code: 'ENOSPC', syscall: 'unshare' });
  // Control: the same user namespace without the limit lets rootless mode in.
  const ok = run(argv, { env: { LIMIT: '' } });
  t.is(ok.status, 0, ok.stderr);
  t.deepEqual(JSON.parse(ok.stdout), { ok: true });
});

test.serial('200 enter/close cycles leave no child behind', async (t) => {
  const before = children().length;
  for (let i = 0; i < 200; i++) {
    const s = await enter({ namespaces: i % 2 ? ['uts', 'pid'] : ['ipc', 'time'], mode: 'rootless' });
    await s.close();
  }
  t.is(children().length, before);
  t.is(native().openCount(), 0);
});

test.serial('a request that hangs times out, and the child is killed', async (t) => {
  const s = await enter({ namespaces: ['pid'], mode: 'rootless' });
  const e = await t.throwsAsync(s.hang(200), { instanceOf: NsError });
  t.is(e!.stage, 'timeout');
  t.regex(e!.message, /timeout after 200 ms/);
  await s.close();
  t.false(existsSync(`/proc/${s.pid}/status`) && readFileSync(`/proc/${s.pid}/status`, 'utf8').includes('nsprobe'));
  t.false(children().includes(s.pid));
});

test.serial('closing while a request is pending rejects the request and reaps the child', async (t) => {
  const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
  const pending = s.hang(10000);
  await new Promise((r) => setTimeout(r, 20));
  const c = await s.close(100);
  t.true(c.reaped);
  await t.throwsAsync(pending);
  t.false(children().includes(s.pid));
});

test('a Node process exiting with open sandboxes leaves no process behind', (t) => {
  const r = run(tsxArgv('test/helpers/exit-open.ts'));
  t.is(r.status, 0, r.stderr);
  const pids = JSON.parse(r.stdout) as number[];
  t.is(pids.length, 3);
  for (const pid of pids) t.false(existsSync(`/proc/${pid}`), `pid ${pid} still exists`);
});

test('requestBare: a reply without fds is a bare ArrayBuffer, one with fds the object request() gives; both read the request before returning', async (t) => {
  const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
  const a = native();
  try {
    const req = encodeRequest(Op.ECHO, 1, [], ['bare']);
    const pending = a.requestBare!(s.id, req, 5000);
    req.fill(0); // overwritten at once, as Sandbox.call's shared buffer is by the next request
    const bare = await pending;
    t.true(bare instanceof ArrayBuffer);
    t.is(decodeReply(Buffer.from(bare as ArrayBuffer)).data.toString(), 'bare');
    const forked = await a.requestBare!(s.id, encodeRequest(Op.FORK, 2, [0, 0]), 5000);
    t.false(forked instanceof ArrayBuffer, 'a reply that passed a channel fd comes with its fds');
    const { reply, fds } = forked as { reply: Buffer; fds: number[] };
    t.is(decodeReply(reply).nfds, 1);
    t.is(fds.length, 1);
    const child = await a.adopt(fds[0], 5000);
    await a.close(child.id, 1000);
    // Control: request() still gives the object for a reply without fds.
    const full = await a.request(s.id, encodeRequest(Op.ECHO, 3, [], ['full']), 5000);
    t.true(Buffer.isBuffer(full.reply));
    t.deepEqual(full.fds, []);
  } finally {
    await s.close();
  }
});

test('malformed requests are errors, not crashes', async (t) => {
  const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
  try {
    for (const junk of [Buffer.alloc(3), Buffer.from('garbage that is not a request at all, long enough to pass'), Buffer.alloc(200, 0xff)]) {
      const r = await native().request(s.id, junk, 1000);
      t.is(decodeReply(r.reply).err, 71 /* EPROTO */);
    }
    const tooBig = Buffer.alloc(9000);
    await t.throwsAsync(native().request(s.id, tooBig, 1000));
    const good = encodeRequest(Op.ECHO, 1, [], ['still alive']);
    t.is(decodeReply((await native().request(s.id, good, 1000)).reply).data.toString(), 'still alive');
  } finally {
    await s.close();
  }
});

test('pending requests do not hold the thread pool: entering still works while many requests hang', async (t) => {
  const hung = await Promise.all(Array.from({ length: 6 }, () => enter({ namespaces: ['uts'], mode: 'rootless' })));
  const pending = hung.map((s) => s.hang(20000).then(() => 'replied', () => 'rejected'));
  const fresh = (async () => {
    const s = await enter({ namespaces: ['uts'], mode: 'rootless' });
    const id = await s.identity().get();
    await s.close();
    return `entered as ${id.euid}`;
  })();
  const first = await Promise.race([fresh, ...pending]);
  t.is(first, 'entered as 0', 'a new sandbox must be served before any hanging request ends');
  await Promise.all(hung.map((s) => s.close(50)));
  t.deepEqual(await Promise.all(pending), hung.map(() => 'rejected'));
});

rootOnly('forks inside stay writable while other rootless sandboxes switch uid (the mm lock)', async (t) => {
  // Stage A's uid switch makes the memory shared with Node non-dumpable for a moment; a fork
  // taken then kept that for good and could not write its own /proc/self/uid_map (EACCES).
  // Without the lock this loop saw 8 such nests out of 400.
  let stop = false;
  const churn = async (ns: 'uts' | 'ipc') => {
    while (!stop) await (await enter({ namespaces: [ns], mode: 'rootless' })).close();
  };
  const loops = [churn('uts'), churn('ipc')];
  const s = await enter({ namespaces: ['pid'], mode: 'rootless' });
  const errnos: number[] = [];
  try {
    for (let i = 0; i < 300; i++) errnos.push((await s.nest('user', 40).get()).errno);
  } finally {
    stop = true;
    await Promise.all(loops);
    await s.close();
  }
  t.deepEqual([...new Set(errnos)], [28 /* ENOSPC: the nesting limit, every time */]);
});

test("a child starts with none of Node's signal handlers or ignored signals, through clone3 and through the clone fallback", (t) => {
  // Plain: clone3 with CLONE_CLEAR_SIGHAND. Under the container-like seccomp filter clone3 answers
  // ENOSYS and the addon falls back to clone() and resets every signal itself.
  const seccomp = `${ROOT}/build/Release/nsprobe-seccomp-exec`;
  for (const prefix of [[], [seccomp]]) {
    const r = run([...prefix, ...tsxArgv('test/helpers/sigs.ts')]);
    t.is(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { self: { caught: string; ignored: string }; child: { caught: string; ignored: string } };
    // Control: this Node process catches signals and ignores SIGPIPE, so there is something to reset.
    t.not(BigInt('0x' + m.self.caught), 0n);
    t.not(BigInt('0x' + m.self.ignored), 0n);
    t.is(BigInt('0x' + m.child.caught), 0n, `child catches ${m.child.caught} ${prefix.length ? '(clone fallback)' : '(clone3)'}`);
    t.is(BigInt('0x' + m.child.ignored), 0n, `child ignores ${m.child.ignored} ${prefix.length ? '(clone fallback)' : '(clone3)'}`);
  }
});

test('a map the parent may not write fails at stage gid_map or uid_map with EPERM, after clone succeeded', (t) => {
  const r = run([...(isRoot ? NOBODY : []), ...tsxArgv('test/helpers/mapfail.ts')]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), [{ stage: 'gid_map', code: 'EPERM' }, { stage: 'uid_map', code: 'EPERM' }, { ok: true }]);
});

test('POSIX queues are created small: 40 at once fit in one user\'s RLIMIT_MSGQUEUE', async (t) => {
  // With the default attributes (10 x 8192 bytes) a queue takes about 80 KiB of its owner's
  // RLIMIT_MSGQUEUE (800 KiB by default), so the 11th would fail with EMFILE; parallel suites did.
  const s = await enter({ namespaces: ['ipc'], mode: 'rootless' });
  try {
    const made: string[] = [];
    for (let i = 0; i < 40; i++) made.push((await s.mqOpen(`nsprobe-small-${i}`, 0o100 | 0o200 | 2)).code);
    t.deepEqual(made, new Array(40).fill('OK'));
    for (let i = 0; i < 40; i++) t.true((await s.mqUnlink(`nsprobe-small-${i}`)).ok);
  } finally {
    await s.close();
  }
});

test('a port the TCP self-test used can be listened on right after (its TIME_WAIT does not hold it)', async (t) => {
  // The net probe listens inside on the port the host listens on; when the self-test before it
  // had used that same port (ephemeral ports collide now and then), the bind failed with EADDRINUSE.
  const s = await enter({ namespaces: ['net'], mode: 'rootless' });
  try {
    await s.linkSet('lo', IFF_UP);
    const lo = Buffer.from([127, 0, 0, 1]);
    const self = await s.tcpSelftest(AF_INET, lo).get();
    const port = self.port;
    const l = await s.listen(AF_INET, 1 /* SOCK_STREAM */, lo, port);
    t.true(l.ok, `bind to ${port} after the self-test: ${l.sentence}`);
  } finally {
    await s.close();
  }
});

/** A directory of the pids controller in which this process may make a child cgroup, or null. */
function pidsCgroupBase(): string | null {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':'));
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = l.split(' - ');
    const f = post?.split(' ') ?? [];
    const mountPoint = pre.split(' ')[4];
    if (f[0] === 'cgroup' && f[2]?.split(',').includes('pids')) {
      const path = own.find((x) => x[1]?.split(',').includes('pids'))?.[2] ?? '/';
      return mountPoint + (path === '/' ? '' : path);
    }
    if (f[0] === 'cgroup2') {
      const dir = mountPoint + (own.find((x) => x[0] === '0')?.[2] ?? '/').replace(/\/$/, '');
      try {
        if (readFileSync(`${dir}/cgroup.subtree_control`, 'utf8').split(/\s+/).includes('pids')) return dir;
      } catch {
        // no such file: not the hierarchy we need
      }
    }
  }
  return null;
}

// nsprobe-serve forks the server of a time+pid sandbox (a pid namespace waits for a child). When
// that fork fails its hello carries the error: a real failure, provoked by a pids cgroup that
// holds only the process that execs nsprobe-serve.
rootOnly('a failed fork in nsprobe-serve comes back as clone/EAGAIN (pids.max 1); pids.max 2 is the control', async (t) => {
  const base = pidsCgroupBase();
  if (!base) {
    t.log('skipped: no pids controller this process may make a child cgroup in');
    t.pass();
    return;
  }
  const dir = `${base}/nsprobe-test-pids-${process.pid}`;
  mkdirSync(dir);
  const spec = { namespaces: ['time', 'pid'] as const, mode: 'privileged' as const, cgroupProcs: [`${dir}/cgroup.procs`] };
  try {
    writeFileSync(`${dir}/pids.max`, '1');
    const e = await t.throwsAsync(enter({ ...spec, namespaces: [...spec.namespaces] }), { instanceOf: NsError });
    t.is(e?.stage, 'clone', e?.message);
    t.is(e?.syscall, 'clone');
    t.is(e?.code, 'EAGAIN');
    writeFileSync(`${dir}/pids.max`, '2');
    const s = await enter({ ...spec, namespaces: [...spec.namespaces] });
    try {
      t.is((await s.identity().get()).pid, 1, 'control: the server is PID 1 of its namespace');
      t.regex(readlinkSync(`/proc/${s.pid}/exe`), /\/nsprobe-serve$/, 'control: served by nsprobe-serve');
    } finally {
      await s.close();
    }
  } finally {
    await removeCgroup(localHost, dir);
  }
});

test('a time namespace is served by nsprobe-serve (exec), by a fork of Node without it, and after a failed exec', (t) => {
  const badDir = mkdtempSync(joinPath(tmpdir(), 'nsprobe-test-serve-'));
  t.teardown(() => rmSync(badDir, { recursive: true, force: true }));
  const bad = joinPath(badDir, 'not-a-program');
  writeFileSync(bad, 'this is no program\n', { mode: 0o755 });
  const cases = [
    { name: 'exec', env: {}, exe: /\/build\/Release\/nsprobe-serve$/ },
    { name: 'fork (NSPROBE_EXEC_SERVE=0)', env: { NSPROBE_EXEC_SERVE: '0' }, exe: new RegExp(`^${process.execPath}$`) },
    { name: 'fork after the exec failed (ENOEXEC)', env: { NSPROBE_SERVE_PATH: bad }, exe: new RegExp(`^${process.execPath}$`) },
  ];
  try {
    for (const c of cases) {
      const r = run(tsxArgv('test/helpers/timens.ts'), { env: c.env });
      t.is(r.status, 0, `${c.name}: ${r.stderr}`);
      const seen = JSON.parse(r.stdout) as Record<string, { exe: string; pid: number; offsetSeen: boolean }>;
      for (const [ns, v] of Object.entries(seen)) {
        t.regex(v.exe, c.exe, `${c.name}, ${ns}: served by ${v.exe}`);
        t.true(v.offsetSeen, `${c.name}, ${ns}: the server sees the time offsets`);
      }
      t.is(seen['time+pid'].pid, 1, `${c.name}: with a pid namespace the server is its PID 1`);
    }
  } finally {
    rmSync(dirname(bad), { recursive: true, force: true });
  }
});
