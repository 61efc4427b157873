// User: the id maps inside show exactly what the parent wrote; inside, euid is 0 with a full
// effective capability set; the host sees the unprivileged id; setgroups reads deny (rootless);
// a host uid outside the map reads as the overflow uid.
import { readFileSync, statSync } from 'node:fs';
import type { ProbeDef } from '../src/probe.js';

export function parseIdMap(text: string): number[][] {
  return text.split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).map(Number));
}

function statusIds(pid: number, key: 'Uid' | 'Gid'): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${key}:`));
  return line ? line.slice(key.length + 1).trim().split(/\s+/).map(Number) : [];
}

export const user: ProbeDef = {
  name: 'user',
  namespace: 'user',
  cloneFlag: 'CLONE_NEWUSER',
  since: '3.8',
  summary: 'ids are mapped, root inside holds capabilities only there',
  async run(ctx) {
    const a = await ctx.enter();
    const privileged = ctx.mode === 'privileged';
    if (privileged) {
      // Unmapped until it switches to uid 0 inside (as a rootful engine with id remapping does).
      const before = await a.identity();
      const overflow = Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8'));
      ctx.expect('before switching, the creator\'s host uid 0 is unmapped inside (overflow uid)', before.euid, overflow, 'control');
      const r = await a.setuid(0, 0);
      ctx.expect('switching to uid 0 inside works', r.err, 0, 'inside');
    }
    const plan = a.plan;
    const hostUid = privileged ? 100000 : plan!.hostUid;
    const hostGid = privileged ? 100000 : plan!.hostGid;
    const count = privileged ? 65536 : 1;
    ctx.expect('uid_map inside shows exactly the written mapping', parseIdMap(await a.readFile('/proc/self/uid_map')), [[0, hostUid, count]], 'inside');
    ctx.expect('gid_map inside shows exactly the written mapping', parseIdMap(await a.readFile('/proc/self/gid_map')), [[0, hostGid, count]], 'inside');
    const id = await a.identity();
    ctx.expect('inside, euid is 0', id.euid, 0, 'inside');
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    const full = (1n << BigInt(last + 1)) - 1n;
    ctx.expect('inside, the effective capability set is full', '0x' + id.capEff.toString(16), '0x' + full.toString(16), 'inside');
    ctx.expect('the host sees the process with the mapped host uid', statusIds(a.pid, 'Uid')[1], hostUid, 'host');
    // Nested rootless mode (uid 0 in a user namespace without an unprivileged uid) keeps uid 0
    // by design and says so in the report notes; otherwise the host must see a non-root uid.
    if (!(plan && !plan.drop && plan.hostUid === 0)) {
      ctx.check('the host uid is not 0', statusIds(a.pid, 'Uid')[1] !== 0, 'not 0', statusIds(a.pid, 'Uid')[1], 'host');
    }
    if (!privileged) ctx.expect('/proc/self/setgroups reads deny', (await a.readFile('/proc/self/setgroups')).trim(), 'deny', 'inside');
    const overflow = Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8'));
    const rootOwner = statSync('/').uid;
    if (rootOwner < hostUid || rootOwner >= hostUid + count) {
      const inside = await a.stat('/');
      ctx.expect(`a file owned by host uid ${rootOwner} (outside the map) shows the overflow uid ${overflow} inside`, inside.uid, overflow, 'inside');
      ctx.check('the host sees that file\'s real owner (control)', rootOwner !== overflow, `not ${overflow}`, rootOwner, 'control');
    }
  },
};
