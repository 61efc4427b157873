// `nsprobe bench`: a short real run (the figures themselves come from `npm run bench`, a script;
// no test here judges speed), and its usage errors.
import test from 'ava';
import type { NsBench } from '../src/bench.js';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { missingTools, needRoot, needTools } from './helpers/tools.js';
import { cli, isRoot, ROOT, run } from './helpers/run.js';

test('nsprobe bench --json: one row per namespace type and all, each with addon and raw figures', (t) => {
  const r = cli(['bench', '--iterations', '3', '--json']);
  t.is(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as NsBench[];
  const names = ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time', 'all'];
  // As root every type privileged (the user namespace too), then user and all rootless again.
  t.deepEqual(rows.map((x) => `${x.name}/${x.mode}`), isRoot ? [...names.map((n) => `${n}/privileged`), 'user/rootless', 'all/rootless'] : names.map((n) => `${n}/rootless`));
  for (const row of rows) {
    t.true(row.addon.n === 3 && row.addon.p50 > 0 && row.addonSpread.p50 > 0, row.name);
    t.truthy(row.raw, `${row.name}: the raw loop ran`);
    t.is(row.raw!.p50, Math.min(row.rawSpread!.p50, row.rawPinned!.p50), `${row.name}: the floor is the faster placement`);
    t.is(row.ratio, Math.round((row.addon.p50 / row.raw!.p50) * 100) / 100);
    // The CLONE_VM loop ran beside it, and its ratio is taken the same way.
    t.true(row.rawVm !== null && row.rawVm.p50 > 0, `${row.name}: the CLONE_VM loop ran`);
    t.is(row.ratioVm, Math.round((row.addon.p50 / row.rawVm!.p50) * 100) / 100);
  }
  // Rootless rows without pid or time also run against the same work in C.
  const user = rows.find((x) => x.name === 'user' && x.mode === 'rootless')!;
  t.true(user.rawRootless !== null && user.rawRootless!.p50 > 0);
  t.is(rows.find((x) => x.name === 'all' && x.mode === 'rootless')!.rawRootless, null);
  if (isRoot) {
    // The privileged user namespace row also runs against its own map writes in C; no other row does.
    const pu = rows.find((x) => x.name === 'user' && x.mode === 'privileged')!;
    t.true(pu.rawMaps !== null && pu.rawMaps!.p50 > 0, 'the maps loop ran');
    t.is(pu.ratioMaps, Math.round((pu.addon.p50 / pu.rawMaps!.p50) * 100) / 100);
    for (const row of rows) if (row !== pu) t.is(row.rawMaps, undefined, `${row.name}/${row.mode}: no maps loop`);
  }
});

test('nsprobe bench with a bad argument: one line, exit 2', (t) => {
  const r = cli(['bench', '--iterations', 'many']);
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^nsprobe: bench:/);
});

test('npm run bench with a bad argument: one line, exit 2, before any measuring', (t) => {
  for (const args of [['--iterations', 'x'], ['--runs', 'lots'], ['--runs=-1'], ['--iterations=0'], ['--fast', '1']]) {
    const r = run([process.execPath, join(ROOT, 'dist', 'scripts', 'bench.js'), ...args]);
    t.is(r.status, 2, args.join(' '));
    t.is(r.stdout, '', args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^bench: /);
  }
});

test('the suite bench: wall time next to node -e 0, CPU time of the process tree, the slowest probes, of the bundled bin', async (t) => {
  const { benchSuite, renderSuiteLine } = await import('../src/bench.js');
  const s = benchSuite(1);
  t.is(s.cli, 'dist/bin/nsprobe.js', 'the program bin runs is timed (npm run bench bundles it first)');
  t.true(s.probes > 0 && s.medianMs > 0 && s.nodeFloorMedianMs > 0);
  t.is(s.ratio, Math.round((s.medianMs / s.nodeFloorMedianMs) * 10) / 10);
  // CPU comes from the children this process waited for: a run takes some, and more than node -e 0.
  t.true(s.cpuMs > 0 && s.cpuMs >= s.nodeFloorCpuMs, JSON.stringify(s));
  t.true(s.slowest.length > 0 && s.slowest.every((p, i, a) => i === 0 || a[i - 1]!.medianMs >= p.medianMs));
  t.regex(renderSuiteLine(s), /x node -e 0[\s\S]*CPU \d+ ms[\s\S]*slowest probes: \S+\/(privileged|rootless) \d+ ms/);
});

// The bench's user/privileged row tripled when every enter() read /proc/self/uid_map and gid_map
// again (the id plan). They are read once per process now; strace counts the opens of one and of
// six enters per mode (privileged user namespace and rootless): on that code the counts were 4
// and 24. Control: one sandbox's opens are seen at all (the count can tell).
// As another user rootless mode maps the caller's own id and reads no map: a root-only test.
(isRoot ? needTools(missingTools('strace')) : needRoot())('entering reads /proc/self/uid_map and gid_map once per process, not once per sandbox', (t) => {
  const script = (n: number) =>
    `const { enter } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'sandbox.js'))});` +
    `for (let i = 0; i < ${n}; i++) for (const mode of ${JSON.stringify(['privileged', 'rootless'])}) {` +
    ` const s = await enter({ namespaces: ['user'], mode }); await s.identity().get(); await s.close(); }`;
  const opens = (n: number) => {
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=openat', '-e', 'signal=none', process.execPath, '--input-type=module', '-e', script(n)], { encoding: 'utf8', timeout: 60000 });
    t.is(r.status, 0, r.stderr.slice(-2000));
    return (r.stderr.match(/"\/proc\/self\/(uid|gid)_map"/g) ?? []).length;
  };
  const one = opens(1);
  t.true(one >= 2, `one sandbox reads both maps (${one} opens): the count sees them`);
  t.is(opens(6), one, 'six sandboxes per mode read them no more often than one');
});
