// SIGINT / SIGTERM at 20 seeded random points of a CLI run (spread over 0..median run time:
// while Node starts, while entering, during requests, while writing reports): each run ends
// within the bound, with 130 / 143 (or 0/1 after finishing), zero residue, and all reports or none.
// The bound is 1 s in `npm run interrupt`; here 1.5 s, as the tests share 2 cores with others.
import test from 'ava';
import { isRoot } from './helpers/run.js';
import { runInterruptions } from '../scripts/interrupt.js';

const rootOnly = isRoot ? test : test.skip;

rootOnly('20 interruptions: prompt exit, right code, no residue, reports complete or absent', async (t) => {
  const seed = 20240607;
  const s = await runInterruptions({ points: 20, seed, boundMs: 1500, log: (l) => t.log(l) });
  t.log(`seed ${seed}, median run ${Math.round(s.medianRunMs)} ms, outcomes ${JSON.stringify(s.outcomes)}, max exit ${Math.round(s.maxExitMs)} ms`);
  t.deepEqual(s.failures, []);
  // The delays must have reached past the start of Node: some runs were stopped by the handler.
  t.true(s.outcomes.stopped + s.outcomes['stopped-after-reports'] > 0);
});
