// `npm test` leaves nothing behind: every folder a test makes in the system tmp dir is removed
// (t.teardown, with tmp()'s exit hook as the net under it), and no test makes one another way.
import test from 'ava';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, sweepDeadWorkers, tmp, tsxArgv } from './helpers/run.js';

test('tmp(t) is gone when the test ends, and tmp() when the test process exits (even without teardown)', (t) => {
  const child = spawnSync(
    tsxArgv('test/helpers/tmp-child.ts')[0],
    tsxArgv('test/helpers/tmp-child.ts').slice(1),
    { cwd: ROOT, encoding: 'utf8' },
  );
  t.is(child.status, 0, child.stderr);
  const dirs = child.stdout.trim().split('\n');
  t.is(dirs.length, 2, child.stdout);
  for (const d of dirs) t.false(existsSync(d), `${d} left behind`);
  // Control: while the process runs, the folder exists.
  const mine = tmp('nsprobe-test-cleanup-', t);
  t.true(existsSync(mine));
});

async function waitingChild(): Promise<{ child: ChildProcess; dirs: string[] }> {
  const argv = tsxArgv('test/helpers/tmp-child.ts', 'wait');
  const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const dirs = await new Promise<string[]>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n').filter(Boolean);
      if (lines.length >= 2) resolve(lines);
    });
    child.once('exit', (c, s) => reject(new Error(`the child ended (${c ?? s}) before printing its folders: ${out}`)));
  });
  return { child, dirs };
}
const ended = (c: ChildProcess) => new Promise<string>((r) => c.once('exit', (code, sig) => r(sig ?? `exit ${code}`)));

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  test(`a test process stopped by ${sig} (ava's timeout, Ctrl-C) still removes its tmp() folders and dies by that signal`, async (t) => {
    const { child, dirs } = await waitingChild();
    for (const d of dirs) t.true(existsSync(d), `control: ${d} exists while the process runs`);
    const done = ended(child);
    child.kill(sig);
    t.is(await done, sig);
    for (const d of dirs) t.false(existsSync(d), `${d} left behind`);
  });
}

test("the folders of a SIGKILLed test process (no handler runs) are removed by the next one, a live one's are not", async (t) => {
  const killed = await waitingChild();
  const done = ended(killed.child);
  killed.child.kill('SIGKILL');
  t.is(await done, 'SIGKILL');
  for (const d of killed.dirs) t.true(existsSync(d), `control: a SIGKILL leaves ${d}`);
  const live = await waitingChild();
  t.teardown(() => live.child.kill('SIGKILL'));
  // The next test process sweeps when it loads helpers/run.ts (here: the live child); so does a call.
  sweepDeadWorkers();
  for (const d of killed.dirs) t.false(existsSync(d), `${d} of the dead process is still there`);
  for (const d of live.dirs) t.true(existsSync(d), `${d} of a running process was removed`);
  const stop = ended(live.child);
  live.child.kill('SIGTERM');
  await stop;
});

test('every test file that makes a temporary folder itself also removes it', (t) => {
  const dir = join(ROOT, 'test');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    if (!new RegExp('mkd' + 'temp(Sync)?\\(').test(src)) continue;
    t.regex(src, /\brm(Sync)?\(/, `${f} makes a tmp folder with mkdtemp but never removes one (use tmp(t) from helpers/run.ts)`);
  }
});
