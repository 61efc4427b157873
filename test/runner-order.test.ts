// The runner's start order (src/runner.ts startOrder): the probes that take longest start first, so
// that they run beside the short ones; every planned probe starts exactly once; the rest keep the
// planned order. Pure logic on the real probe list (the report keeps the planned order: results are
// stored by planned index, see runSuiteWith).
import test from 'ava';
import { PROBES } from '../probes/index.js';
import { LONG_PROBES, startOrder } from '../src/runner.js';

const planned = PROBES.flatMap((probe) => (['privileged', 'rootless'] as const).map((mode) => ({ probe, mode })));

test('long probes start first, each probe once, the rest in planned order', (t) => {
  const order = startOrder(planned);
  t.deepEqual([...order].sort((a, b) => a - b), planned.map((_, i) => i), 'a permutation of the plan');
  const names = order.map((i) => planned[i].probe.name);
  const long = LONG_PROBES;
  t.true(long.length > 0);
  for (const n of long) t.true(names.includes(n), `${n} is a probe (the list in runner.ts names real probes)`);
  t.deepEqual(names.slice(0, 2 * long.length), long.flatMap((n) => [n, n]), 'the long ones first, by rank');
  const rest = order.slice(2 * long.length);
  t.deepEqual(rest, [...rest].sort((a, b) => a - b), 'the others in planned order');
  // Control: the planned order itself does not start them first (the test would pass vacuously otherwise).
  t.notDeepEqual(planned.slice(0, 2 * long.length).map((p) => p.probe.name), names.slice(0, 2 * long.length));
});
