// `npm test` leaves nothing behind: every folder a test makes in the system tmp dir is removed
// (t.teardown, with tmp()'s exit hook as the net under it), and no test makes one another way.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tmp, tsxArgv } from './helpers/run.js';

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

test('every test file that makes a temporary folder itself also removes it', (t) => {
  const dir = join(ROOT, 'test');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    if (!new RegExp('mkd' + 'temp(Sync)?\\(').test(src)) continue;
    t.regex(src, /\brm(Sync)?\(/, `${f} makes a tmp folder with mkdtemp but never removes one (use tmp(t) from helpers/run.ts)`);
  }
});
