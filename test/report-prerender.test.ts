// The parts of report.tap and report.json made for each probe result while the run goes on
// (src/report/prerender.ts) give the same files as rendering the finished report at once: on
// fixture reports, on a report without probes, and on what a real run wrote (compared with a
// render of its report.json read back, fresh objects that nothing was made for). The control: a
// result changed after its parts were made shows in the output, so the made parts are used.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../src/model.js';
import { prerender } from '../src/report/prerender.js';
import { parseReport } from '../src/report/validate.js';
import { causeGroups, compareProbeIds, headline, probeGrid, sharedLayout, skipGroups, sortedProbes } from '../src/report/common.js';
import { FORMATS, renderReport } from '../src/report/write.js';
import { GOOD, loadFixture } from './helpers/reports.js';
import { ROOT, run, tmp } from './helpers/run.js';

const fresh = (r: Report): Report => structuredClone(r);

test('made per probe result or all at the end, report.tap and report.json are the same bytes', (t) => {
  for (const name of GOOD) {
    const r = loadFixture(name);
    const expected = { tap: renderReport(fresh(r), 'tap'), json: renderReport(fresh(r), 'json') };
    for (const p of r.probes.slice(0, Math.ceil(r.probes.length / 2))) prerender(p); // some made before, the rest at the end
    t.is(renderReport(r, 'tap', true), expected.tap, `${name} tap`);
    t.is(renderReport(r, 'json', true), expected.json, `${name} json`);
  }
  const none = { ...loadFixture(GOOD[0]!), probes: [] };
  t.is(renderReport(none, 'tap', true), renderReport(fresh(none), 'tap'));
  t.is(renderReport(none, 'json', true), renderReport(fresh(none), 'json'));
});

test('control: a result changed after its parts were made shows in the output (they are used)', (t) => {
  const r = loadFixture(GOOD[0]!);
  const before = { tap: renderReport(fresh(r), 'tap'), json: renderReport(fresh(r), 'json') };
  for (const p of r.probes) prerender(p);
  r.probes[0]!.durationMs += 1000;
  t.is(renderReport(r, 'tap', true), before.tap);
  t.is(renderReport(r, 'json', true), before.json);
  t.not(renderReport(r, 'tap'), before.tap);
  t.not(renderReport(r, 'json'), before.json);
});

test('a real run writes report.tap and report.json as a render of its report read back', (t) => {
  const out = tmp();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = run([process.execPath, join(ROOT, 'dist', 'bin', 'nsprobe.js'), '--only', 'uts,ipc,user', '--out', out]);
  t.is(r.status, 0, r.stderr);
  const parsed = parseReport(readFileSync(join(out, 'report.json'), 'utf8'));
  t.true(parsed.ok, JSON.stringify(parsed).slice(0, 300));
  if (!parsed.ok) return;
  t.is(renderReport(parsed.report, 'json'), readFileSync(join(out, 'report.json'), 'utf8'));
  t.is(renderReport(parsed.report, 'tap'), readFileSync(join(out, 'report.tap'), 'utf8'));
});

test('prerender makes only the parts of the formats asked for (a change after it shows only in the others)', (t) => {
  const r = loadFixture(GOOD[0]!);
  const before = { tap: renderReport(fresh(r), 'tap'), json: renderReport(fresh(r), 'json') };
  for (const p of r.probes) prerender(p, ['md', 'tap']);
  r.probes[0]!.durationMs += 1000;
  t.is(renderReport(r, 'tap', true), before.tap, 'tap was made before the change');
  t.not(renderReport(r, 'json', true), before.json, 'json was not made: --format without json costs nothing for it');
  const r2 = loadFixture(GOOD[0]!);
  for (const p of r2.probes) prerender(p, ['json']);
  r2.probes[0]!.durationMs += 1000;
  t.is(renderReport(r2, 'json', true), before.json);
  t.not(renderReport(r2, 'tap', true), before.tap, 'control: tap was not made');
});

test('the writers sharing one sorted probe list (sharedLayout) write the bytes each writes alone', (t) => {
  for (const name of GOOD) {
    const r = loadFixture(name);
    // Shuffled, so that the order comes from the sort.
    const shuffled: Report = { ...r, probes: [...r.probes].reverse() };
    const alone = FORMATS.map((f) => renderReport(fresh(shuffled), f));
    const together = sharedLayout(shuffled, () => FORMATS.map((f) => renderReport(shuffled, f)));
    t.deepEqual(together, alone, name);
    t.deepEqual(sharedLayout(shuffled, () => sortedProbes(shuffled.probes).map((p) => p.id)), sortedProbes(fresh(shuffled).probes).map((p) => p.id));
    t.deepEqual(sortedProbes(shuffled.probes).map((p) => p.id), [...r.probes.map((p) => p.id)].sort(compareProbeIds), 'the same order as comparing ids');
    // Control: another list inside the layout is sorted on its own, not answered with the shared one.
    const other = shuffled.probes.slice(1);
    t.is(sharedLayout(shuffled, () => sortedProbes(other)).length, other.length);
    // The grid, cause and skip groups and headline: made once inside, the same as made alone.
    sharedLayout(shuffled, () => {
      t.is(causeGroups(shuffled.probes), causeGroups(shuffled.probes), 'made once');
      t.is(headline(shuffled), headline(shuffled));
      t.deepEqual(causeGroups(shuffled.probes), causeGroups(fresh(shuffled).probes));
      t.deepEqual(skipGroups(shuffled.probes), skipGroups(fresh(shuffled).probes));
      t.deepEqual(probeGrid(shuffled), probeGrid(fresh(shuffled)));
      t.deepEqual(headline(shuffled), headline(fresh(shuffled)));
      t.not(causeGroups(other), causeGroups(other), 'control: another list is grouped anew each time');
    });
    t.not(causeGroups(shuffled.probes), causeGroups(shuffled.probes), 'control: outside, made each time');
  }
});
