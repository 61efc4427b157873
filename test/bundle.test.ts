// The bundle `bin` runs (scripts/bundle.mjs): a small entry, the program in one file (main.js),
// and merge in a file of its own that its worker threads load. The bundle must do what the
// modules tsc compiled do: merge through it, past MIN_PARALLEL inputs (worker threads, which
// load merge.js whole), gives the matrix a one-thread merge gives.
import test from 'ava';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MIN_PARALLEL } from '../src/merge.js';
import type { Matrix } from '../src/report/matrix.js';
import { fleetHost, writeFleet } from '../scripts/fleet-gen.js';
import { ROOT, run, tmp } from './helpers/run.js';

const BIN = join(ROOT, 'dist', 'bin');

test('the bundle is an entry, the program in one file and merge apart', (t) => {
  for (const f of ['nsprobe.js', 'main.js', 'merge.js']) t.true(existsSync(join(BIN, f)), f);
  const entry = readFileSync(join(BIN, 'nsprobe.js'), 'utf8');
  t.regex(entry, /import\("\.\/main\.js"\)/);
  t.regex(readFileSync(join(BIN, 'main.js'), 'utf8'), /import\("\.\/merge\.js"\)/);
});

test('merge through the bundle in worker threads gives the matrix of the one-thread merge', async (t) => {
  const d = tmp();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  await mkdir(join(d, 'in'));
  const n = MIN_PARALLEL + 20;
  writeFleet(join(d, 'in'), n, 7);
  await mkdir(join(d, 'in', 'zz-copy'));
  writeFileSync(join(d, 'in', 'zz-copy', 'report.json'), readFileSync(join(d, 'in', fleetHost(7, 0).report.host.hostname, 'report.json')));
  const merged = (workers: string, out: string) => {
    const r = run([process.execPath, join(BIN, 'nsprobe.js'), 'merge', join(d, 'in'), '--out', join(d, out)], { env: { ...process.env, NSPROBE_MERGE_WORKERS: workers } });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /zz-copy\/report\.json is identical to/);
    return { ...(JSON.parse(readFileSync(join(d, out, 'matrix.json'), 'utf8')) as Matrix), generatedAt: '' };
  };
  const parallel = merged('2', 'out-2');
  const serial = merged('0', 'out-0');
  t.is(parallel.hosts.length, n);
  t.deepEqual(parallel, serial);
  t.notDeepEqual(parallel, { ...serial, hosts: serial.hosts.slice(1) }, 'control: the comparison sees a difference');
});
