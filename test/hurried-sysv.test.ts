// Issue 14, a second signal: the ipc probe's SysV objects in the host's IPC namespace are noted
// (src/cleanup.ts noteHostSysv) before they are made, and a hurried exit (hurriedCleanup, which
// waits for no sandbox) removes them from Node itself (the addon's sysvRemove). Real objects in
// this process's IPC namespace, made by a sandbox without namespaces; one made but not noted stays
// (the control), and is then removed by hand. The same through a real agent (the transport of
// --via and --ssh): its boxes end, the agent removes what was noted in its IPC namespace (NSA_HOSTIPC,
// NSA_MQ_UNLINK), then it ends.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { sysvKeys } from '../probes/ipc.js';
import { AgentClient, localLauncher } from '../src/agent/client.js';
import { hurriedCleanup, noteHostQueue, noteHostSysv, SYSV_HOST_MODE } from '../src/cleanup.js';
import { agentPath, native, setTransport } from '../src/native.js';
import { enter } from '../src/sandbox.js';
import { needTools } from './helpers/tools.js';

const listed = (kind: 'msg' | 'shm' | 'sem') => sysvKeys(readFileSync(`/proc/sysvipc/${kind}`, 'utf8'));

test.serial('a hurried exit removes the noted host SysV objects; one not noted stays (control)', async (t) => {
  const base = (0x4e700000 | ((process.pid & 0xfff) << 4)) | 0;
  const h = await enter({ namespaces: [], mode: 'privileged' });
  const made: { kind: 'msg' | 'shm' | 'sem'; key: number; id: number }[] = [];
  try {
    const IPC_CREAT_EXCL = 0o1000 | 0o2000 | SYSV_HOST_MODE;
    made.push({ kind: 'msg', key: base, id: await h.msgget(base, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'shm', key: base + 1, id: await h.shmget(base + 1, 4096, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'sem', key: base + 2, id: await h.semget(base + 2, 1, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'msg', key: base + 3, id: await h.msgget(base + 3, IPC_CREAT_EXCL).get() });
    // Another program's object under a noted key (a create that came back EEXIST): its own 0600.
    made.push({ kind: 'msg', key: base + 4, id: await h.msgget(base + 4, 0o1000 | 0o2000 | 0o600).get() });
  } finally {
    await h.close();
  }
  t.teardown(() => {
    for (const m of made) native().sysvRemove?.(m.kind === 'msg' ? 1 : m.kind === 'shm' ? 2 : 3, m.key);
  });
  for (const m of made) t.true(listed(m.kind).includes(m.key), `${m.kind} ${m.key} exists before`);
  noteHostSysv(1, base);
  noteHostSysv(2, base + 1);
  noteHostSysv(3, base + 2);
  noteHostSysv(1, base + 4);
  hurriedCleanup();
  t.true(listed('msg').includes(base + 4), 'control: a noted key whose object is not in nsprobe\'s host mode (another\'s) stays');
  t.false(listed('msg').includes(base), 'the noted msg queue is gone');
  t.false(listed('shm').includes(base + 1), 'the noted shm segment is gone');
  t.false(listed('sem').includes(base + 2), 'the noted semaphore set is gone');
  t.true(listed('msg').includes(base + 3), 'control: the msg queue not noted stays');
  t.is(native().sysvRemove?.(1, base + 3), 0);
  t.false(listed('msg').includes(base + 3));
  t.is(native().sysvRemove?.(1, base + 3), -2, 'removing it again: ENOENT');
});

const AGENT = agentPath();
const O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;

/** Whether a queue exists in this IPC namespace (opened from a box made through the addon). */
async function queueThere(name: string): Promise<boolean> {
  const s = await enter({ namespaces: [], mode: 'privileged' });
  try {
    const r = await s.mqOpen(name, O_RDWR);
    if (!r.ok && r.code !== 'ENOENT') throw new Error(r.sentence);
    return r.ok;
  } finally {
    await s.close();
  }
}

needTools(AGENT ? null : 'the agent is not built (npm run build)', test.serial)('through the agent: a hurried exit ends its boxes, removes the noted SysV objects and queue through it, then ends it; what was not noted stays (control)', async (t) => {
  const base = (0x4e710000 | ((process.pid & 0xfff) << 4)) | 0;
  const q = `nsprobe-test-hq-${process.pid}`;
  const qControl = `nsprobe-test-hqc-${process.pid}`;
  const agent = new AgentClient(localLauncher(AGENT!));
  setTransport(agent);
  const made: { kind: 1 | 2 | 3; key: number }[] = [];
  t.teardown(async () => {
    setTransport(undefined);
    agent.shutdown();
    for (const m of made) native().sysvRemove?.(m.kind, m.key);
    native().mqUnlink(q);
    native().mqUnlink(qControl);
  });
  await agent.start();
  const agentPid = agent.agentPid!;
  const h = await enter({ namespaces: [], mode: 'privileged' });
  const IPC_CREAT_EXCL = 0o1000 | 0o2000 | SYSV_HOST_MODE;
  await h.msgget(base, IPC_CREAT_EXCL).get();
  made.push({ kind: 1, key: base });
  await h.shmget(base + 1, 4096, IPC_CREAT_EXCL).get();
  made.push({ kind: 2, key: base + 1 });
  await h.semget(base + 2, 1, IPC_CREAT_EXCL).get();
  made.push({ kind: 3, key: base + 2 });
  await h.msgget(base + 3, IPC_CREAT_EXCL).get();
  made.push({ kind: 1, key: base + 3 });
  await h.mqOpen(q, O_CREAT | O_EXCL | O_RDWR).get();
  await h.mqOpen(qControl, O_CREAT | O_EXCL | O_RDWR).get();
  // The box made them in the agent's IPC namespace, which is this process's (a local agent).
  t.true(listed('msg').includes(base) && listed('shm').includes(base + 1) && listed('sem').includes(base + 2), 'made before');
  const boxPid = h.pid;
  t.true(readFileSync(`/proc/${boxPid}/stat`, 'utf8').length > 0, 'the box runs');
  noteHostSysv(1, base);
  noteHostSysv(2, base + 1);
  noteHostSysv(3, base + 2);
  noteHostQueue(q);
  hurriedCleanup(); // the box is still open: the agent ends it
  setTransport(undefined);
  t.false(listed('msg').includes(base), 'the noted msg queue is gone');
  t.false(listed('shm').includes(base + 1), 'the noted shm segment is gone');
  t.false(listed('sem').includes(base + 2), 'the noted semaphore set is gone');
  t.true(listed('msg').includes(base + 3), 'control: the msg queue not noted stays');
  t.false(await queueThere(q), 'the noted POSIX queue is gone');
  t.true(await queueThere(qControl), 'control: the POSIX queue not noted stays');
  const gone = (pid: number) => {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return /^[ZX]$/.test(st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3));
    } catch {
      return true;
    }
  };
  t.true(gone(boxPid), 'the box ended');
  t.true(gone(agentPid), 'the agent ended');
  t.is(agent.channel, undefined, 'the client has no agent any more');
});
