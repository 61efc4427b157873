// Issue 14 item 4 for a normal user without /dev/mqueue: a user cannot list the host's POSIX
// queues (no mqueue mount, and mounting the host's needs CAP_SYS_ADMIN over its IPC namespace's
// owner), so the queue a SIGKILLed run left is found by name: the ipc probes' host queues take
// the first free of a few slot names (nsprobe-mqh-u<uid>-<slot>) and the run holds each with
// mq_notify. The kernel answers a second registration with EBUSY while the holder lives and ends
// the registration when it dies, so the next run removes the dead run's queue and notes it, and
// never a live run's (the control). Real queues in the host's IPC namespace, made through the
// same claimHostQueue the probes use, by processes of nobody's; the next run is a real nsprobe
// run as nobody in a mount namespace with no mqueue mount.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostQueueName } from '../src/cleanup.js';
import { native } from '../src/native.js';
import { CLI, NOBODY, ROOT, run } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

const serial = test.serial as unknown as typeof test;
const NO_MQUEUE = (cmd: string[]) => ['unshare', '-m', 'sh', '-c', 'umount -l /dev/mqueue 2>/dev/null; exec "$@"', 'sh', ...cmd];

/** A process of nobody's that makes a host queue as the probes do and holds it until killed. */
function holder(): { child: ChildProcess; name: Promise<string> } {
  const code = `
    const { claimHostQueue } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'cleanup.js'))});
    const { enter } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'sandbox.js'))});
    const h = await enter({ namespaces: [], mode: 'rootless' });
    const c = await claimHostQueue((n) => h.mqOpen(n, 0o100 | 0o200 | 2));
    if (!c.made.ok) { console.error(c.made.sentence); process.exit(3); }
    console.log(c.name);
    process.stdin.resume(); // until killed, or until the test's end of the pipe closes
    process.stdin.on('end', () => process.exit(0));`;
  const child = spawn(NOBODY[0], [...NOBODY.slice(1), process.execPath, '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: '/tmp' } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const name = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (c, s) => reject(new Error(`the holder ended (${s ?? c}) before it made its queue: ${err}`)));
  });
  return { child, name };
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

needTools(missingTools('setpriv', 'unshare') ?? (process.geteuid?.() === 0 ? null : 'needs root to run nobody in a mount namespace without /dev/mqueue'), serial)(
  'as nobody without /dev/mqueue: the queue of a SIGKILLed run is removed by the next run and noted; a live run\'s stays (control)',
  async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
    chownSync(out, 65534, 65534);
    const dead = holder();
    const live = holder();
    const names: string[] = [];
    t.teardown(async () => {
      dead.child.kill('SIGKILL');
      live.child.kill('SIGKILL');
      await Promise.all([exited(dead.child), exited(live.child)]);
      for (const n of names) native().mqUnlink(n);
      rmSync(out, { recursive: true, force: true });
    });
    const deadName = await dead.name;
    names.push(deadName);
    const liveName = await live.name;
    names.push(liveName);
    t.regex(deadName, /^nsprobe-mqh-u65534-\d+$/);
    t.not(deadName, liveName);
    // Both are held while their makers live (this process holds neither: its looks change nothing).
    t.is(await native().mqReap!(deadName, true), -16, 'EBUSY: the first run holds its queue');
    t.is(await native().mqReap!(liveName, true), -16, 'EBUSY: the second run holds its queue');
    dead.child.kill('SIGKILL');
    await exited(dead.child);
    t.is(await native().mqReap!(deadName, true), 0, 'the killed run\'s queue is still there, held by no one');
    t.is(await native().mqReap!(liveName, true), -16, 'control: the live run\'s queue is held');
    // nobody has no mqueue mount to list queues with here (the run cannot use the listing path).
    const probe = run([...NO_MQUEUE([...NOBODY, 'sh', '-c', 'grep -c " - mqueue " /proc/self/mountinfo || true'])]);
    t.is(probe.stdout.trim(), '0', 'no mqueue mount where the run runs');
    const r = run([...NO_MQUEUE([...NOBODY, 'env', 'HOME=/tmp', process.execPath, CLI, '--only', 'uts', '--out', out])]);
    t.is(r.status, 0, r.stderr);
    const notes = (JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { notes?: string[] }).notes ?? [];
    t.log(notes.join('\n'));
    t.is(await native().mqReap!(deadName, true), -2, 'ENOENT: the killed run\'s queue is gone');
    const noted = notes.some((n) => n.includes(deadName) && /^removed a POSIX message queue left by an nsprobe run that has ended/.test(n));
    // (Another nobody run on the machine may have collected it first: queues are shared.)
    if (!noted) t.log(`${deadName} was collected by another run`);
    else t.pass();
    t.is(await native().mqReap!(liveName, true), -16, 'control: the live run\'s queue stays, held');
    t.false(notes.some((n) => n.includes(liveName)), 'no note names the live run\'s queue');
    t.is(hostQueueName(65534, 0), 'nsprobe-mqh-u65534-0');
  },
);
