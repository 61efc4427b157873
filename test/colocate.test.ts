// CPU co-location against the real scheduler: while a sandbox is open the JS thread and the child
// share one CPU, the child follows the JS thread when it moves, and every thread gets its own
// mask back after the last sandbox is closed. With co-location off nothing is pinned (control).
import test from 'ava';
import { availableParallelism } from 'node:os';
import { run, tsxArgv } from './helpers/run.js';

interface Seen {
  before: { main: string; threads: Record<string, string> };
  on: { main: string; child: string; moved: null | { to: string; child: string } };
  two: { main: string; first: string; second: string; back: { main: string; first: string } };
  closedAt: { main: string };
  after: { main: string; threads: Record<string, string> };
  off: { main: string; child: string };
}

const single = (list: string) => /^\d+$/.test(list);
const multi = availableParallelism() > 1;

(multi ? test : test.skip)(`co-location: one CPU for the JS thread and a lone sandbox, spread for two, every mask restored after${multi ? '' : ' (skipped: needs 2 or more CPUs)'}`, (t) => {
  const r = run(tsxArgv('test/helpers/colocate.ts'));
  t.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Seen;
  t.false(single(s.before.main), `this process may run on ${s.before.main} only: nothing to show`);
  // On: pinned together.
  t.true(single(s.on.main), `main thread allowed on ${s.on.main}`);
  t.is(s.on.child, s.on.main);
  // The child follows the JS thread (the CPU hint in each request).
  t.truthy(s.on.moved);
  t.is(s.on.moved!.child, s.on.moved!.to);
  // Two sandboxes at once: work to spread, so nothing is pinned; one again: together again.
  t.is(s.two.main, s.before.main);
  t.is(s.two.first, s.before.main);
  t.is(s.two.second, s.before.main);
  t.true(single(s.two.back.main), `main thread allowed on ${s.two.back.main} with one sandbox left`);
  t.is(s.two.back.first, s.two.back.main);
  // After the grace period: every thread of the process, pool threads included, as before.
  t.is(s.after.main, s.before.main);
  for (const [tid, mask] of Object.entries(s.after.threads)) t.is(mask, s.before.main, `thread ${tid}`);
  // Off (control): nothing pinned, neither the JS thread nor the child.
  t.is(s.off.main, s.before.main);
  t.is(s.off.child, s.before.main);
});
