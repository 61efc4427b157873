// Entering on the JS thread (native/addon.cc enter_on_loop): the clone happens in the call and the
// hello is awaited on the event loop. A JS thread that is busy past the enter timeout (a
// spawnSync, a long synchronous step) while the child's hello arrives must not turn into "did not
// start serving": libuv runs due timers before it polls, so the timer looks for the hello first.
import test from 'ava';
import { enter } from '../src/sandbox.js';

const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

for (const mode of ['privileged', 'rootless'] as const) {
  test.serial(`${mode}: a JS thread blocked past the enter timeout still gets the sandbox whose hello came`, async (t) => {
    if (mode === 'privileged' && process.geteuid?.() !== 0) return t.pass('privileged uts needs root; the rootless case covers this user');
    const p = enter({ namespaces: ['uts'], mode, timeoutMs: 200 });
    block(600); // the child serves within a few ms; the timer is due long before we look again
    const s = await p;
    try {
      t.is((await s.identity().get()).euid, 0);
    } finally {
      await s.close();
    }
  });
}

test.serial('the hello of many sandboxes entered at once on the loop: each gets its own', async (t) => {
  const ss = await Promise.all(Array.from({ length: 12 }, () => enter({ namespaces: ['uts'], mode: 'rootless' })));
  try {
    const pids = await Promise.all(ss.map(async (s) => (await s.identity().get()).pid));
    t.deepEqual(pids, ss.map((s) => s.pid), 'each sandbox answers as its own process');
    t.is(new Set(pids).size, 12);
  } finally {
    await Promise.all(ss.map((s) => s.close()));
  }
});
