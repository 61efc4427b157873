// The request path between Sandbox and a child, against the real kernel: shutdown() settles what
// waits, a timeout looks at the socket before it calls a request lost, and the shared request
// buffer is lent to one send at a time. Serial: shutdown() ends every sandbox of this process.
import test from 'ava';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, constants as fsc } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NsError } from '../src/errors.js';
import { native } from '../src/native.js';
import { MAGIC_REQ, Op, ProtocolError, decodeReply, encodeRequest, sendEncoded } from '../src/protocol.js';
import { enter, type Sandbox } from '../src/sandbox.js';
import { isRoot, ROOT } from './helpers/run.js';

const mode = isRoot ? 'privileged' : 'rootless';

/** 'pending', or what the promise settled with, after two turns of the event loop. */
async function state<T>(p: Promise<T>): Promise<string> {
  const turns = new Promise<string>((r) => setImmediate(() => setImmediate(() => r('pending'))));
  return Promise.race([p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), turns]);
}

test.serial('shutdown() rejects the requests waiting on its sandboxes, sent or queued behind one, saying the sandbox was shut down', async (t) => {
  const s = await enter({ namespaces: ['uts'], mode });
  const hung = s.hang(60000); // sent, waiting for a reply that never comes
  const queued = s.identity(); // waiting its turn behind it in Sandbox's chain
  hung.catch(() => {});
  queued.catch(() => {});
  t.is(await state(hung), 'pending', 'the hang waits until something ends it');
  native().shutdown(500);
  t.regex(await state(hung), /^rejected: the sandbox was shut down/);
  t.regex(await state(queued), /^rejected: the sandbox was shut down/);
  const e = await t.throwsAsync(hung, { instanceOf: NsError });
  t.is(e!.code, 'ECANCELED');
  t.false(existsSync(`/proc/${s.pid}/status`) && readFileSync(`/proc/${s.pid}/status`, 'utf8').includes('\nState:\tS'), 'the child was killed');
  await s.close();
  // Control: a request to a sandbox closed by close() still says closed, not shut down.
  const c = await enter({ namespaces: ['uts'], mode });
  await c.close();
  t.regex((await t.throwsAsync(c.identity()))!.message, /closed/);
});

// The syscall a blocked task is in, from /proc/PID/syscall; null when the task is gone.
function syscallOf(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
const RECVFROM = process.arch === 'arm64' ? 207 : 45;

test.serial('a request whose deadline passed while the JS thread was busy gets the reply that is already there, not a timeout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const fifo = join(dir, 'fifo');
  const mk = spawnSync('mkfifo', ['-m', '0666', fifo]);
  t.is(mk.status, 0, `mkfifo: ${mk.stderr}`);
  const s: Sandbox = await enter({ namespaces: ['uts'], mode });
  try {
    // The child opens the FIFO and blocks until a writer opens it: no reply before that.
    const timeoutMs = 100;
    const t0 = performance.now();
    const p = s.call(Op.READFILE, [0, 16], [fifo], timeoutMs);
    p.catch(() => {});
    // In the check phase (after this iteration's poll): the JS thread lets the child reply, waits
    // until the reply is in the socket (the child is back in recvfrom) and past the deadline, so
    // the timer runs before any poll sees the reply.
    const busy = await new Promise<string>((resolve) =>
      setImmediate(() => {
        let fd = -1;
        while (fd < 0) {
          try {
            fd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENXIO') return resolve(`open: ${(e as Error).message}`);
            if (syscallOf(s.pid) === null) return resolve('the child is gone before it opened the FIFO');
          }
        }
        closeSync(fd);
        for (;;) {
          const sc = syscallOf(s.pid);
          if (sc === null) return resolve('the child is gone before it replied');
          if (sc === RECVFROM) break;
        }
        while (performance.now() < t0 + timeoutMs + 10) {
          // past the deadline
        }
        resolve('');
      }),
    );
    t.is(busy, '');
    const r = await p;
    t.is(r.op, Op.READFILE, 'the reply to this request');
    t.is(r.err, 29 /* ESPIPE: a FIFO cannot be pread */, 'its outcome, as the child sent it');
    t.is((await s.echo('still served').get()).toString(), 'still served', 'the child was not killed');
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // Control: with no reply there, the same deadline is a timeout and the child is killed.
  const h = await enter({ namespaces: ['uts'], mode });
  const e = await t.throwsAsync(h.hang(100), { instanceOf: NsError });
  t.is(e!.stage, 'timeout');
  await h.close();
});

test.serial('the shared request buffer is lent to one send at a time: no request is encoded inside another\'s send, and a view kept past it is refused by the child', async (t) => {
  // Encoding inside a send would overwrite the bytes being sent: it is refused, and they stay whole.
  const seen = sendEncoded(Op.ECHO, 1, [], ['first'], (req) => {
    t.throws(() => sendEncoded(Op.ECHO, 2, [], ['second'], () => 0), { instanceOf: ProtocolError });
    t.throws(() => encodeRequest(Op.ECHO, 3, [], ['third']), { instanceOf: ProtocolError });
    return Buffer.from(req);
  });
  t.deepEqual(seen, encodeRequest(Op.ECHO, 1, [], ['first']));
  // A transport that kept the view instead of copying it: after the send it is no request.
  let kept: Buffer | null = null;
  sendEncoded(Op.ECHO, 4, [], ['kept'], (req) => (kept = req));
  t.not(kept!.readUInt32LE(0), MAGIC_REQ);
  const s = await enter({ namespaces: ['uts'], mode });
  try {
    const reply = decodeReply(Buffer.from((await native().requestBare!(s.id, kept!, 5000)) as ArrayBuffer));
    t.is(reply.err, 71 /* EPROTO */, 'the child refuses it');
    // Both sandboxes' requests at once, each reply its own (the addon copies before it returns).
    const s2 = await enter({ namespaces: ['uts'], mode });
    try {
      const words = Array.from({ length: 20 }, (_, i) => `w${i}`);
      const got = await Promise.all(words.map((w, i) => (i % 2 ? s2 : s).echo(w).get()));
      t.deepEqual(got.map(String), words);
    } finally {
      await s2.close();
    }
  } finally {
    await s.close();
  }
});

test.serial('NSPROBE_COLOCATE=all keeps the JS thread and every open sandbox on one CPU, and gives the masks back after the last (control: the default spreads two)', (t) => {
  if (availableParallelism() < 2) return t.pass('one CPU: nothing to spread or pin');
  // In a process of its own: the pins are the process's, and this one's other tests must not see them.
  const script = `
    import { readFileSync } from 'node:fs';
    import { enter } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'sandbox.js'))};
    const allowed = (p) => /Cpus_allowed_list:\\s*(\\S+)/.exec(readFileSync(p, 'utf8'))[1];
    const main = () => allowed('/proc/self/task/' + process.pid + '/status');
    const before = main();
    const mode = process.geteuid() === 0 ? 'privileged' : 'rootless';
    const a = await enter({ namespaces: ['uts'], mode });
    const b = await enter({ namespaces: ['uts'], mode });
    await a.identity(); await b.identity();
    const two = { main: main(), a: allowed('/proc/' + a.pid + '/status'), b: allowed('/proc/' + b.pid + '/status') };
    await a.close(); await b.close();
    await new Promise((r) => setTimeout(r, 200)); // the masks come back 50 ms after the last close
    console.log(JSON.stringify({ before, two, after: main() }));`;
  const seen = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60000 });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { before: string; two: { main: string; a: string; b: string }; after: string };
  };
  const all = seen({ NSPROBE_COLOCATE: 'all' });
  t.regex(all.two.main, /^\d+$/, 'the JS thread on one CPU with two sandboxes open');
  t.is(all.two.a, all.two.main);
  t.is(all.two.b, all.two.main);
  t.is(all.after, all.before, 'its own mask back');
  const dflt = seen({ NSPROBE_COLOCATE: '' });
  t.is(dflt.two.main, dflt.before, 'default: two sandboxes spread');
  t.is(dflt.two.b, dflt.before);
});
