// Issue 14 item 13: with `ulimit -n` below about 46 a run failed with ESM loader stack traces
// (EMFILE) or `recvmsg EMSGSIZE ... no known host gate explains it` (passed descriptors
// truncated). The nsprobe entry raises the soft limit up to the hard limit before the program is
// loaded, or stops with one line that says how many descriptors a run needs (exit 2).
import test from 'ava';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NOBODY, ROOT, run, tmp } from './helpers/run.js';
import { needTools, missingTools } from './helpers/tools.js';
import { NOFILE_MIN, NOFILE_NEEDED } from '../src/limits.js';

const ENTRY = join(ROOT, 'dist', 'src', 'nsprobe.js');
const prlimit = needTools(missingTools('prlimit'));

prlimit('soft 30, hard 4096: the limit is raised and the whole run passes', (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = run(['prlimit', '--nofile=30:4096', process.execPath, ENTRY, '--out', dir]);
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stderr, /EMFILE|EMSGSIZE|\n\s+at /);
  t.regex(r.stdout, / 0 fail, \d+ unsupported, 0 error/);
});

prlimit('soft and hard 30: one line naming the descriptors needed, exit 2, nothing written', (t) => {
  const dir = join(tmp(), 'reports');
  t.teardown(() => rmSync(join(dir, '..'), { recursive: true, force: true }));
  const r = run(['prlimit', '--nofile=30:30', process.execPath, ENTRY, '--out', dir]);
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`^nsprobe: a run needs ${NOFILE_MIN} open file descriptors, but this process may open only 30 .*ulimit -n ${NOFILE_NEEDED}$`, 'm'));
  t.is(r.stdout, '');
  t.false(existsSync(dir), 'no report folder was made');
});

needTools(missingTools('prlimit', 'setpriv'))('as nobody: soft 30, hard 4096 runs; soft and hard 40 stops with one line', (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const as = process.geteuid?.() === 0 ? NOBODY : [];
  const ok = run(['prlimit', '--nofile=30:4096', ...as, process.execPath, ENTRY, '--out', join('/tmp', `nsprobe-test-nofile-${process.pid}`)]);
  rmSync(join('/tmp', `nsprobe-test-nofile-${process.pid}`), { recursive: true, force: true });
  t.is(ok.status, 0, ok.stderr);
  const bad = run(['prlimit', '--nofile=40:40', ...as, process.execPath, ENTRY, '--out', dir]);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^nsprobe: a run needs \d+ open file descriptors, but this process may open only 40 /);
});

prlimit('soft and hard between the two-probe and the four-probe need: the run passes, two probes at a time', (t) => {
  // A host whose hard limit leaves less than a four-probe run needs is not refused: the run has
  // two probes at once (src/limits.ts nofileConcurrency). It stopped with exit 2 when the limit
  // was only the four-probe need.
  t.true(NOFILE_MIN < NOFILE_NEEDED);
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = run(['prlimit', `--nofile=${NOFILE_MIN}:${NOFILE_MIN}`, process.execPath, ENTRY, '--out', dir]);
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stderr, /EMFILE|EMSGSIZE|\n\s+at /);
  t.regex(r.stdout, / 0 fail, \d+ unsupported, 0 error/);
});

test('npm run probe and the nsprobe command start through the entry that raises the limit', (t) => {
  const pkg = JSON.parse(run(['cat', join(ROOT, 'package.json')]).stdout) as { bin: Record<string, string>; scripts: Record<string, string> };
  // dist/bin/nsprobe.js is that entry bundled (scripts/bundle.mjs): the limit is raised before the CLI's chunk loads.
  t.is(pkg.bin.nsprobe, 'dist/bin/nsprobe.js');
  t.regex(pkg.scripts.probe, /dist\/bin\/nsprobe\.js/);
});

prlimit('the bundled entry (bin, npm run probe) raises the limit too: soft 30, hard 4096 runs', (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = run(['prlimit', '--nofile=30:4096', process.execPath, join(ROOT, 'dist', 'bin', 'nsprobe.js'), '--out', dir]);
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stderr, /EMFILE|EMSGSIZE|\n\s+at /);
  t.regex(r.stdout, / 0 fail, \d+ unsupported, 0 error/);
});
