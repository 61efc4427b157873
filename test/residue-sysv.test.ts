// Issue 14 item 4, the residue checker and SysV debris: a SysV object left since a snapshot is
// residue, and so is one that went away; but a dead nsprobe run's object (a key naming a maker
// that has ended, in nsprobe's shape: src/cleanup.ts sysvHostKey) that the next run's debris pass
// removes is not residue of that run. Real objects in this process's IPC namespace, made by
// boxes without namespaces; a real CLI run removes the dead one.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSysv, SYSV_HOST_MODE, sysvHostKey } from '../src/cleanup.js';
import { native } from '../src/native.js';
import { residueSince, snapshot, type Residue } from '../src/residue.js';
import { enter } from '../src/sandbox.js';
import { CLI, tmp } from './helpers/run.js';
import { spawnNode } from '../scripts/harness.js';
import { runs } from './helpers/debris.js';

const IPC_CREAT_EXCL = 0o1000 | 0o2000 | SYSV_HOST_MODE;
const hex = (key: number) => `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
const shmKeys = () => parseSysv(2, readFileSync('/proc/sysvipc/shm', 'utf8')).map((o) => o.key);


test.serial('a dead run\'s SysV object removed by the next run is no residue; an object left, or another one removed, is', async (t) => {
  const mode = process.geteuid?.() === 0 ? 'privileged' : 'rootless';
  const made: number[] = [];
  t.teardown(() => {
    for (const k of made) native().sysvRemove?.(2, k);
  });
  // A dead run's segment: made by a box that has ended since (key and cpid name it). It is in the
  // machine's IPC namespace, where the debris pass of any nsprobe run beside this test may take it
  // before the snapshot: then a new one (the snapshot must see one to judge it).
  let debris = 0;
  let before: Awaited<ReturnType<typeof snapshot>> | undefined;
  let live: Awaited<ReturnType<typeof enter>> | undefined;
  let other = 0;
  let otherId = 0;
  for (let attempt = 0; attempt < 10 && !before; attempt++) {
    const gone = await enter({ namespaces: [], mode });
    debris = sysvHostKey(gone.pid, 0);
    await gone.shmget(debris, 4096, IPC_CREAT_EXCL).get();
    made.push(debris);
    const maker = gone.pid;
    await gone.close();
    while (runs(maker)) await new Promise((r) => setTimeout(r, 10));
    // A live box's segment, which the test removes after the snapshot (a removal the checker reports).
    if (!live) {
      live = await enter({ namespaces: [], mode });
      const l = live;
      t.teardown(() => l.close());
      other = sysvHostKey(live.pid, 1);
      otherId = await live.shmget(other, 4096, IPC_CREAT_EXCL).get();
      made.push(other);
    }
    const snap = await snapshot();
    const seen = [...snap.sysv].find((s) => s.startsWith(`shm key ${hex(debris)} `));
    if (seen) {
      t.true(snap.sysvDebris.has(seen), 'the snapshot sees the dead run\'s segment as debris');
      before = snap;
    } else {
      t.log(`${hex(debris)} was collected by another run before the snapshot: another one`);
    }
  }
  if (!before || !live) return t.fail('every dead run\'s segment was collected by another run before the snapshot');
  const out = tmp(t);
  const r = await spawnNode([CLI, '--only', 'uts', '--out', join(out, 'r')]).done;
  t.is(r.code, 0, r.stderr);
  t.false(shmKeys().includes(debris), 'the run removed the dead run\'s segment');
  await live.ipcrm('shm', otherId).get();
  // And one a test leaves.
  const left = sysvHostKey(live.pid, 2);
  await live.shmget(left, 4096, IPC_CREAT_EXCL).get();
  made.push(left);

  const { residue } = await residueSince(before, { settleMs: 0 });
  const about = (key: number) => residue.filter((x: Residue) => x.kind === 'sysvipc' && x.what.includes(`key ${hex(key)} `));
  t.log(residue.filter((x) => x.kind === 'sysvipc').map((x) => x.what).join('\n'));
  t.deepEqual(about(debris), [], 'the debris pass\'s removal is not residue');
  t.true(about(other).some((x) => x.what.startsWith('removed: SysV shm')), 'control: another segment that went away is reported');
  t.true(about(left).some((x) => x.what.startsWith('SysV shm')), 'a segment left is reported');
});
