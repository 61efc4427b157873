// ProbeContext's cleanup bookkeeping (pure logic: no sandbox is entered). After a timeout or
// Ctrl-C a probe's run() goes on for a while; whatever it registers for cleanup then must still
// be cleaned up, or an interrupted CLI can be kept alive by, say, a host listener.
import test from 'ava';
import { ProbeContext, type ProbeDef } from '../src/probe.js';

const def: ProbeDef = { name: 'ctx', namespace: 'uts', cloneFlag: 'CLONE_NEWUTS', since: '2.6.19', summary: 'test', run: async () => undefined };
const tick = () => new Promise((r) => setImmediate(r));

test('cleanups registered before dispose run at dispose, in reverse order (control)', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  const ran: string[] = [];
  ctx.defer(() => ran.push('a'));
  ctx.defer(() => ran.push('b'));
  ctx.deferAfterClose(() => ran.push('after'));
  await tick();
  t.deepEqual(ran, []);
  await ctx.dispose();
  t.deepEqual(ran, ['b', 'a', 'after']);
});

test('a cleanup registered after dispose (the probe went on after an interrupt) runs at once', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  await ctx.dispose();
  const ran: string[] = [];
  ctx.defer(() => ran.push('late'));
  ctx.deferAfterClose(() => ran.push('late-after-close'));
  await tick();
  t.deepEqual(ran, ['late', 'late-after-close']);
});

test('a cleanup registered while dispose runs the others is not lost', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  const ran: string[] = [];
  ctx.defer(async () => {
    await tick();
    ctx.defer(() => ran.push('during'));
  });
  await ctx.dispose();
  await tick();
  t.deepEqual(ran, ['during']);
});
