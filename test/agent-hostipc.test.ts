// The agent's host-IPC frame (NSA_HOSTIPC, native/agent.cc, and the addon's same calls, both on
// native/enter.cc): a queue the agent holds is held for every other process (EBUSY) and for the
// agent's own reap; once released, or once the agent is gone, no one holds it and a reap removes
// it. The kernel answers: real queues in this IPC namespace (a local agent shares it).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient, localLauncher } from '../src/agent/client.js';
import { IPCOP, T } from '../src/agent/proto.js';
import { agentPath, native } from '../src/native.js';
import { enter } from '../src/sandbox.js';
import { ROOT } from './helpers/run.js';
import { needTools } from './helpers/tools.js';

const AGENT = agentPath();
const agentTest = needTools(AGENT ? null : 'the agent is not built (npm run build)');
const O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
const EBUSY = -16, ENOENT = -2;

test('NSA_HOSTIPC and its ops: native/agent-proto.h and src/agent/proto.ts agree', (t) => {
  const h = readFileSync(join(ROOT, 'native', 'agent-proto.h'), 'utf8');
  t.regex(h, new RegExp(`NSA_HOSTIPC = ${T.HOSTIPC},`));
  const ops = new Map([...h.matchAll(/\bNSA_IPC_(\w+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  t.deepEqual(Object.fromEntries(ops), { ...IPCOP });
});

async function makeQueue(name: string): Promise<void> {
  const s = await enter({ namespaces: [], mode: 'privileged' });
  try {
    await s.mqOpen(name, O_CREAT | O_EXCL | O_RDWR).get();
  } finally {
    await s.close();
  }
}

agentTest('a queue the agent holds is busy for others and for its own reap; released or with the agent gone, a reap removes it', async (t) => {
  const a = `nsprobe-test-hold-a-${process.pid}`;
  const b = `nsprobe-test-hold-b-${process.pid}`;
  const agent = new AgentClient(localLauncher(AGENT!));
  t.teardown(() => {
    agent.shutdown();
    native().mqUnlink(a);
    native().mqUnlink(b);
  });
  await makeQueue(a);
  await makeQueue(b);
  t.is(await native().mqReap!(a, true), 0, 'control: a new queue is held by no one');
  t.is(await agent.mqHold(a), 0);
  t.is(await agent.mqHold(b), 0);
  t.is(await native().mqReap!(a, true), EBUSY, 'held by the agent: busy for this process');
  t.is(await native().mqReap!(a), EBUSY, 'and not removed');
  t.is(await agent.mqReap(a), EBUSY, 'the agent never reaps (opens and closes) a queue it holds');
  t.is(await agent.mqHold(`nsprobe-test-none-${process.pid}`), ENOENT, 'no such queue');
  t.is(await agent.mqRelease(a), 0);
  t.is(await agent.mqRelease(a), ENOENT, 'released already');
  t.is(await native().mqReap!(a, true), 0, 'released: held by no one');
  t.is(await agent.mqReap(a), 0, 'so the agent removes it');
  t.is(await native().mqReap!(a, true), ENOENT, 'gone');
  // The agent ends with b held: the kernel ends its registration.
  t.is(await native().mqReap!(b, true), EBUSY);
  agent.shutdown();
  t.is(await native().mqReap!(b, true), 0, 'the holder is gone: held by no one');
  t.is(await native().mqReap!(b), 0, 'and removed');
  t.is(await native().mqReap!(b, true), ENOENT);
});

test('the addon: a queue it holds is never reaped by it, a second hold opens nothing; sysvRemove answers ENOENT for a key that is not there', async (t) => {
  const q = `nsprobe-test-hold-c-${process.pid}`;
  t.teardown(() => {
    native().mqRelease?.(q);
    native().mqUnlink(q);
  });
  await makeQueue(q);
  t.is(await native().mqHold!(q), 0);
  t.is(await native().mqHold!(q), 0, 'held already: no second open (its close would end the hold)');
  t.is(await native().mqReap!(q), EBUSY, 'never reaped by its holder');
  t.is(await native().mqRelease!(q), 0);
  t.is(await native().mqReap!(q), 0, 'released: removed');
  t.is(native().sysvRemove!(1, 0x4e7fffff), ENOENT);
});
