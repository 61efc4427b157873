// A probe whose inside child hangs (a request that never gets a reply) is killed at the probe
// timeout, reported as an error with cause "timeout after N ms", leaves no process, and the other
// probes of the same suite still pass.
import test from 'ava';
import { existsSync } from 'node:fs';
import { native } from '../src/native.js';
import type { ProbeDef } from '../src/probe.js';
import { formatResidue, residueSince, snapshot } from '../src/residue.js';
import { runSuite } from '../src/runner.js';
import { uts } from '../probes/uts.js';
import { user } from '../probes/user.js';
import { foreignTo } from '../scripts/harness.js';

const pids: number[] = [];
const hang: ProbeDef = {
  name: 'hang',
  namespace: 'uts',
  cloneFlag: 'CLONE_NEWUTS',
  since: '2.6.19',
  summary: 'test only: the inside child never answers',
  async run(ctx) {
    const s = await ctx.enter();
    pids.push(s.pid);
    ctx.check('entered', true, true, true, 'inside');
    // Its own request timeout is far away: the runner's probe timeout is what must end it.
    await s.hang(60_000);
  },
};

test('a hanging probe is an error "timeout after 300 ms", killed, and the rest of the suite passes', async (t) => {
  const before = await snapshot();
  const report = await runSuite({ probes: [uts, hang, user], modes: ['rootless'], timeoutMs: 300 });
  const byName = Object.fromEntries(report.probes.map((p) => [p.probe, p]));
  t.is(byName.hang.status, 'error');
  t.is(byName.hang.cause, 'timeout after 300 ms');
  t.is(byName.uts.status, 'pass', byName.uts.cause);
  t.is(byName.user.status, 'pass', byName.user.cause);
  t.true(pids.length > 0);
  for (const pid of pids) t.false(existsSync(`/proc/${pid}`), `hung child ${pid} is gone`);
  t.is(native().openCount(), 0);
  const { residue } = await residueSince(before, { ignore: foreignTo([process.pid]), settleMs: 3000 });
  t.deepEqual(residue, [], formatResidue(residue));
});
