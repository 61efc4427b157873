// Signals beyond a single SIGINT/SIGTERM (issue 14 items 1-3, issue 13's Ctrl-C bullet), each at
// seeded random points of a run, as test/interrupt.test.ts does:
// - SIGHUP (terminal closed, ssh dropped) and SIGQUIT stop a run as SIGINT does: exit 129 / 131,
//   no residue (cgroups, host queues, temporary report files), reports complete or absent;
// - a second signal 2 ms after the first hurries the exit, and still nothing is left;
// - a signal while stderr is a closed pipe: the handler's write must not throw (EPIPE);
// - Ctrl-C on a terminal (a pty through script(1)): no probe is printed after the stop message,
//   the line ends cleanly, and a report folder the run made is removed.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { needRoot, needTools, missingTools } from './helpers/tools.js';
import { CLI, NOBODY, ROOT, tmp } from './helpers/run.js';
import { checkOutDir, runInterruptions, type StopSignal } from '../scripts/interrupt.js';

// One at a time: each run's residue check would see the others' processes.
const serial = test.serial as unknown as typeof test;
const ONLY = ['--only', 'cgroup,ipc-mqueue'];

async function series(t: import('ava').ExecutionContext, seed: number, points: number, signals: StopSignal[], extra: { args?: string[]; secondAfterMs?: number; closeStderr?: boolean; prefix?: string[] }) {
  // Most of a short run is Node starting (before any handler can exist): the delays count from
  // the CLI's first sandbox, over half a median run.
  // boundMs catches a hang, not slowness (speed is npm run bench's): a stopped run on this 2-core
  // machine, loaded by the tests beside it, took up to 2 s to end.
  const s = await runInterruptions({ points, seed, boundMs: 6000, signals, fromFirstSandbox: true, log: (l) => t.log(l), ...extra });
  t.log(`seed ${seed}, median run ${Math.round(s.medianRunMs)} ms, outcomes ${JSON.stringify(s.outcomes)}, max exit ${Math.round(s.maxExitMs)} ms`);
  t.deepEqual(s.failures, []);
  t.true(s.outcomes.stopped + s.outcomes['stopped-after-reports'] > 0, 'some runs were stopped by the handler');
}

needRoot(serial)('SIGHUP and SIGQUIT during --only cgroup,ipc-mqueue: 129 / 131, no residue, reports complete or absent', async (t) => {
  await series(t, 14001, 12, ['SIGHUP', 'SIGQUIT'], { args: ONLY });
});

// As a normal user (the root test process watches): a rootless run made a queue in the host's IPC
// namespace that SIGHUP left behind.
needTools(missingTools('setpriv'), serial)('SIGHUP and SIGQUIT as nobody during --only cgroup,ipc-mqueue: no queue or file left', async (t) => {
  if (process.geteuid?.() !== 0) return t.pass('the root run of this test covers it (the residue check needs root)');
  await series(t, 14007, 8, ['SIGHUP', 'SIGQUIT'], { args: ONLY, prefix: NOBODY });
});

needRoot(serial)('SIGHUP and SIGQUIT during a whole run', async (t) => {
  await series(t, 14002, 6, ['SIGHUP', 'SIGQUIT'], {});
});

needRoot(serial)('a second SIGTERM or SIGINT 2 ms after the first hurries the exit but leaves nothing', async (t) => {
  await series(t, 14003, 12, ['SIGTERM', 'SIGINT'], { args: ONLY, secondAfterMs: 2 });
});

needRoot(serial)('a second signal during a whole run leaves nothing either (host IPC of every probe)', async (t) => {
  await series(t, 14008, 6, ['SIGTERM', 'SIGINT', 'SIGHUP'], { secondAfterMs: 2 });
});

needRoot(serial)('a signal while stderr is a closed pipe: no EPIPE, right code, nothing left', async (t) => {
  await series(t, 14004, 8, ['SIGINT', 'SIGTERM', 'SIGHUP'], { args: ONLY, closeStderr: true });
});

/** Runs the CLI on a pty (script -qec) and types Ctrl-C after delayMs; returns the transcript. */
function ctrlC(args: string[], delayMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const p = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    // Ctrl-C once the progress line shows (the run is among its probes), else after delayMs.
    let sent = false;
    const send = () => {
      if (sent) return;
      sent = true;
      p.stdin.write('\x03');
    };
    p.stdout.on('data', () => /\[\d+\/\d+\]/.test(out) && setTimeout(send, delayMs));
    const fallback = setTimeout(send, 3000);
    const kill = setTimeout(() => p.kill('SIGKILL'), 15000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(fallback);
      clearTimeout(kill);
      p.stdin.destroy();
      resolve({ code, out });
    });
  });
}

needTools(missingTools('script'), serial)('Ctrl-C on a terminal: the stop message is the last line, it ends cleanly, and the folder the run made is gone', async (t) => {
  const base = tmp();
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  for (const [i, delay] of [0, 5, 20, 40].entries()) {
    const out = join(base, `new-${i}`, 'reports');
    const r = await ctrlC(['--out', out], delay);
    const text = r.out.replace(/\r/g, '');
    t.log(`Ctrl-C ${delay} ms after the first progress line: exit ${r.code}, transcript ${JSON.stringify(r.out.slice(-160))}`);
    if (r.code === 0 || r.code === 1) continue; // the run had finished (reports written)
    t.is(r.code, 130, 'script -e passes on the CLI\'s exit code');
    const at = text.lastIndexOf('nsprobe: SIGINT, stopping');
    t.true(at >= 0, 'the stop message is shown');
    const after = text.slice(at + 'nsprobe: SIGINT, stopping'.length);
    t.is(after.trim(), '', 'nothing (no probe shown as error) after the stop message');
    // Ctrl-C signals the terminal's foreground process group: sandboxes in it died before Node's
    // handler ran, and their probes were shown as error around the ^C (4 of 4 trials before they
    // got a process group of their own; since, once in about 25 under heavy parallel load, cause
    // not known: logged, not failed, as what is shown after the stop message is checked above).
    const beforeStop = text.slice(0, at);
    if (/\] \S+ error/.test(beforeStop)) t.log('a probe was shown as error before the stop message');
    t.true(r.out.endsWith('\n'), 'the terminal line ends with a newline');
    // The stop message starts on a clean line: the progress line was cleared, not continued.
    t.regex(r.out.slice(0, r.out.lastIndexOf('nsprobe: SIGINT, stopping')), /(\r\x1b\[K|\n)$/);
    // Either the folder it made is gone, or the signal came while the reports were written (the
    // last probe had ended: as nobody, 14 probes end quickly), and then the whole set is there.
    if (existsSync(join(base, `new-${i}`))) {
      const got = checkOutDir(out);
      t.deepEqual(got, { reports: 'all', problems: [] }, 'a report folder left after Ctrl-C holds the complete set');
      t.log(`Ctrl-C ${delay} ms: it came while the reports were written; the complete set stays`);
    } else t.pass('the report folder (and the parent the run made) is gone');
  }
});
