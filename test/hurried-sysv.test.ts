// Issue 14, a second signal: the ipc probe's SysV objects in the host's IPC namespace are noted
// (src/cleanup.ts noteHostSysv) before they are made, and a hurried exit (hurriedCleanup, which
// waits for no sandbox) removes them from Node itself (the addon's sysvRemove). Real objects in
// this process's IPC namespace, made by a sandbox without namespaces; one made but not noted stays
// (the control), and is then removed by hand.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { sysvKeys } from '../probes/ipc.js';
import { hurriedCleanup, noteHostSysv } from '../src/cleanup.js';
import { native } from '../src/native.js';
import { enter } from '../src/sandbox.js';

const listed = (kind: 'msg' | 'shm' | 'sem') => sysvKeys(readFileSync(`/proc/sysvipc/${kind}`, 'utf8'));

test('a hurried exit removes the noted host SysV objects; one not noted stays (control)', async (t) => {
  const base = (0x4e700000 | ((process.pid & 0xfff) << 4)) | 0;
  const h = await enter({ namespaces: [], mode: 'privileged' });
  const made: { kind: 'msg' | 'shm' | 'sem'; key: number; id: number }[] = [];
  try {
    const IPC_CREAT_EXCL = 0o1000 | 0o2000 | 0o600;
    made.push({ kind: 'msg', key: base, id: await h.msgget(base, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'shm', key: base + 1, id: await h.shmget(base + 1, 4096, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'sem', key: base + 2, id: await h.semget(base + 2, 1, IPC_CREAT_EXCL).get() });
    made.push({ kind: 'msg', key: base + 3, id: await h.msgget(base + 3, IPC_CREAT_EXCL).get() });
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
  hurriedCleanup();
  t.false(listed('msg').includes(base), 'the noted msg queue is gone');
  t.false(listed('shm').includes(base + 1), 'the noted shm segment is gone');
  t.false(listed('sem').includes(base + 2), 'the noted semaphore set is gone');
  t.true(listed('msg').includes(base + 3), 'control: the msg queue not noted stays');
  t.is(native().sysvRemove?.(1, base + 3), 0);
  t.false(listed('msg').includes(base + 3));
  t.is(native().sysvRemove?.(1, base + 3), -2, 'removing it again: ENOENT');
});
