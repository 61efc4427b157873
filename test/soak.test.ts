// A short soak: 100 consecutive suites through the library API in this process, then 4 CLI
// suites in parallel: every suite passes, no fd growth after the warm-up, RSS within tolerance,
// zero residue. The full counts (1000 + 16) are `npm run soak`.
import test from 'ava';
import { isRoot } from './helpers/run.js';
import { runSoak } from '../scripts/soak.js';
import { formatResidue } from '../src/residue.js';

const rootOnly = isRoot ? test : test.skip;

rootOnly('100 consecutive suites + 4 parallel: no residue, no fd or RSS growth', async (t) => {
  const r = await runSoak({ runs: 100, parallel: 4 });
  t.log(`100 suites in ${(r.seqMs / 1000).toFixed(1)} s; fds ${JSON.stringify(r.fd)}; rss KiB ${JSON.stringify(r.rss)}; 4 parallel in ${(r.parMs / 1000).toFixed(1)} s`);
  t.deepEqual(r.residue, [], formatResidue(r.residue));
  t.deepEqual(r.problems, []);
  t.deepEqual(r.failedRuns, []);
});
