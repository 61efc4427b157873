// The bundle `bin` runs (scripts/bundle.mjs): a small entry, the program in one script (main.cjs),
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
  for (const f of ['nsprobe.js', 'main.cjs', 'merge.js']) t.true(existsSync(join(BIN, f)), f);
  const main = readFileSync(join(BIN, 'main.cjs'), 'utf8');
  t.regex(main, /__nsprobe_import\("\.\/merge\.js"\)/, 'merge is loaded apart, through the wrapper');
  t.notRegex(main, /\bimport\("/, 'no import() the script wrapper does not serve');
  // The fleet's merge (in main.cjs) starts its worker threads on merge.js, not on the script.
  t.regex(main, /const self = new URL\(new URL\("\.\/merge\.js", __nsprobe_url\)\.href\)/);
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

// A plain run loads only the builtins it uses (issue 14): the bundle reaches builtins through
// stubs that load a module on the first call of one of its functions (scripts/bundle.mjs), and
// names come from /dev/urandom, not node:crypto. The control: the same watch, on the modules tsc
// compiled (ES imports of builtins), sees those builtins loaded.
// (net is not among them: stdout or stderr being a pipe loads it.)
// fs/promises: the report writer used FileHandle, which loads readline, the REPL history and fs
// watchers (Node 20's ES module loader loads internal/fs/promises itself, so only the public name).
const RARE = ['crypto', 'child_process', 'dgram', 'worker_threads', 'perf_hooks', 'readline', 'fs/promises'];
function builtinsLoaded(entry: string, out: string): Set<string> {
  const d = tmp();
  const preload = join(d, 'list.cjs');
  const list = join(d, 'loaded.txt');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
  const r = run([process.execPath, '-r', preload, entry, '--only', 'uts,ipc', '--out', out]);
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  const names = readFileSync(list, 'utf8').split('\n').flatMap((l) => (l.startsWith('NativeModule ') ? [l.slice(13)] : []));
  rmSync(d, { recursive: true, force: true });
  return new Set(names);
}

test('a plain run of the bundle loads none of the rarely used builtins (control: the tsc modules do)', (t) => {
  const out = tmp();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const bundled = builtinsLoaded(join(BIN, 'nsprobe.js'), join(out, 'b'));
  t.deepEqual(RARE.filter((m) => bundled.has(m)), [], 'the bundle loaded them');
  t.true(bundled.has('fs') && bundled.has('path'), 'the watch sees what is loaded');
  const modules = builtinsLoaded(join(ROOT, 'dist', 'src', 'nsprobe.js'), join(out, 'm'));
  t.true(['crypto', 'child_process'].every((m) => modules.has(m)), `control: ES imports load them (${RARE.filter((m) => modules.has(m)).join(', ')})`);
  t.true((JSON.parse(readFileSync(join(out, 'b', 'report.json'), 'utf8')) as { probes: unknown[] }).probes.length > 0, 'the run probed');
});

test('a Node without process.getBuiltinModule (older than engines) and a bundle without its script get one line, no stack trace', (t) => {
  // Control: the same entry with the same Node answers --version.
  const ok = run([process.execPath, join(BIN, 'nsprobe.js'), '--version']);
  t.is(ok.status, 0, ok.stderr);
  const old = run([process.execPath, '--import', 'data:text/javascript,delete process.getBuiltinModule', join(BIN, 'nsprobe.js'), '--version']);
  t.is(old.status, 2, old.stderr);
  t.regex(old.stderr, /^nsprobe: Node v[\d.]+ is too old: nsprobe needs Node \^20\.17\.0 or >= 22\.9\.0\n$/);
  // A copy of the entry whose main.cjs is missing (a broken install): one line, exit 3.
  const d = tmp();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  writeFileSync(join(d, 'nsprobe.js'), readFileSync(join(BIN, 'nsprobe.js')));
  const broken = run([process.execPath, join(d, 'nsprobe.js'), '--version']);
  t.is(broken.status, 3, broken.stderr);
  t.regex(broken.stderr, /^nsprobe: cannot read \S+main\.cjs \(ENOENT\): the installation is incomplete; reinstall nsprobe\n$/);
});
