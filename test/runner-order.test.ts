// The runner's start order (src/runner.ts startOrder): the probes that take longest start first, so
// that they run beside the short ones, one mode of each before any second mode; every planned
// probe starts exactly once; the rest keep the planned order. Pure logic on the real probe list (the report keeps the planned order: results are
// stored by planned index, see runSuiteWith).
import test from 'ava';
import { PROBES } from '../probes/index.js';
import { DEFAULT_CONCURRENCY, LONG_PROBES, startOrder } from '../src/runner.js';

const planned = PROBES.flatMap((probe) => (['privileged', 'rootless'] as const).map((mode) => ({ probe, mode })));

test('long probes start first, each probe once, the rest in planned order', (t) => {
  const order = startOrder(planned);
  t.deepEqual([...order].sort((a, b) => a - b), planned.map((_, i) => i), 'a permutation of the plan');
  const names = order.map((i) => planned[i].probe.name);
  const long = LONG_PROBES;
  t.true(long.length > 0);
  for (const n of long) t.true(names.includes(n), `${n} is a probe (the list in runner.ts names real probes)`);
  // One mode of each long probe first, by rank, then their other modes in the same order (the two
  // modes of one probe do not start side by side).
  t.deepEqual(names.slice(0, 2 * long.length), [...long, ...long], 'the long ones first, one mode of each, then the other');
  const firstModes = order.slice(0, 2 * long.length).map((i) => planned[i].mode);
  t.deepEqual(firstModes, [...long.map(() => 'privileged'), ...long.map(() => 'rootless')], 'the planned first mode of each first');
  // With DEFAULT_CONCURRENCY workers, the ones started together hold no probe twice.
  const together = names.slice(0, Math.min(DEFAULT_CONCURRENCY, long.length));
  t.is(new Set(together).size, together.length, 'the probes started together are all different');
  for (let k = 0; k + 1 < 2 * long.length; k++) t.not(names[k], names[k + 1], 'no probe starts right beside its other mode');
  const rest = order.slice(2 * long.length);
  t.deepEqual(rest, [...rest].sort((a, b) => a - b), 'the others in planned order');
  // Control: the planned order itself does not start them first (the test would pass vacuously otherwise).
  t.notDeepEqual(planned.slice(0, 2 * long.length).map((p) => p.probe.name), names.slice(0, 2 * long.length));
});
