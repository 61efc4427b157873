// User: the id maps inside show exactly what the parent wrote; inside, euid is 0 with a full
// effective capability set; the host sees the unprivileged id; setgroups reads deny (rootless);
// a host uid outside the map reads as the overflow uid.
import { randomBytes } from '../src/random.js';
import { join } from 'node:path';
import { making, type HostIf } from '../src/host/hostif.js';
import type { ProbeDef } from '../src/probe.js';
import { privilegedIdPlan } from '../src/sandbox.js';

export function parseIdMap(text: string): number[][] {
  return text.split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).map(Number));
}

/** The ids of a /proc/PID/status line (Uid: or Gid:): real, effective, saved, filesystem. */
export function statusIds(status: string, key: 'Uid' | 'Gid'): number[] {
  const line = status.split('\n').find((l) => l.startsWith(`${key}:`));
  return line ? line.slice(key.length + 1).trim().split(/\s+/).map(Number) : [];
}

/**
 * A file whose owner Node sees as a real id (not the overflow uid) outside [base, base+count):
 * the control for "an unmapped owner reads as the overflow uid inside". Environment assumption
 * avoided: "/ is owned by a real uid" holds only in the initial user namespace; inside a user
 * namespace (a normal user's `unshare -Ur`, a rootless container) Node itself sees most files as
 * the overflow uid, and the only real owners may be the ids the probe maps. null: no such file.
 */
export async function unmappedOwnedFile(host: HostIf, base: number, count: number, overflow: number, candidates = ['/', '/usr', '/etc', '/bin', '/sbin', '/var', '/tmp', '/proc/1', '/dev', '/run']): Promise<{ path: string; uid: number } | null> {
  for (const path of candidates) {
    const st = await host.stat(path);
    if (!st.ok) continue; // not here: try the next
    const uid = st.value!.uid;
    if (uid !== overflow && (uid < base || uid >= base + count)) return { path, uid };
  }
  return null;
}

export const user: ProbeDef = {
  name: 'user',
  namespace: 'user',
  cloneFlag: 'CLONE_NEWUSER',
  since: '3.8',
  summary: 'ids are mapped, root inside holds capabilities only there',
  creates: () => ['user'],
  uses: {},
  async run(ctx) {
    const privileged = ctx.mode === 'privileged';
    // Privileged mode maps a block of the ids nsprobe's own user namespace maps (100000+65536 in
    // the initial one); as root of a user namespace that maps only root, just that one id.
    const ids = privileged ? privilegedIdPlan() : undefined;
    const a = await ctx.enter(ids ? { privilegedIds: ids } : {});
    // Environment assumption: /proc/sys/kernel/overflowuid is readable (it is, also read-only).
    const overflow = Number(await ctx.host.readFile('/proc/sys/kernel/overflowuid').get());
    const single = !!ids?.single;
    const SINGLE_REASON = ids ? `nsprobe's user namespace maps only the caller's own uid ${ids.uid.base}, so the privileged map is that one id` : '';
    if (ids) {
      // Unmapped until it switches to uid 0 inside (as a rootful engine with id remapping does).
      const before = await a.identity().get();
      const name = 'before switching, the creator\'s uid is unmapped inside (overflow uid)';
      if (single) ctx.skip(name, SINGLE_REASON, null, 'control');
      else ctx.expect(name, before.euid, overflow, 'control');
      ctx.expectOk('switching to uid 0 inside works', await a.setuid(0, 0), 'inside');
    }
    // Where only one id is mapped, the map inside reads like Node's own ("0 0 1"): the namespace
    // itself tells the two apart.
    const ownNs = await a.readlink('/proc/self/ns/user').get();
    const nodeNs = await ctx.host.readlink('/proc/self/ns/user').get();
    ctx.check('the process is in a user namespace of its own, not Node\'s', ownNs !== nodeNs, `not ${nodeNs}`, ownNs, 'inside');
    const plan = a.plan;
    const hostUid = ids ? ids.uid.base : plan!.hostUid;
    const hostGid = ids ? ids.gid.base : plan!.hostGid;
    const uidCount = ids ? ids.uid.count : 1;
    const gidCount = ids ? ids.gid.count : 1;
    ctx.expect('uid_map inside shows exactly the written mapping', parseIdMap(await a.readFile('/proc/self/uid_map').get()), [[0, hostUid, uidCount]], 'inside');
    ctx.expect('gid_map inside shows exactly the written mapping', parseIdMap(await a.readFile('/proc/self/gid_map').get()), [[0, hostGid, gidCount]], 'inside');
    const id = await a.identity().get();
    ctx.expect('inside, euid is 0', id.euid, 0, 'inside');
    const last = Number(await ctx.host.readFile('/proc/sys/kernel/cap_last_cap').get());
    const full = (1n << BigInt(last + 1)) - 1n;
    ctx.expect('inside, the effective capability set is full', '0x' + id.capEff.toString(16), '0x' + full.toString(16), 'inside');
    // Environment assumption: the host side's /proc shows the sandbox (its child) by a.pid, with
    // ids as its user namespace maps them.
    const seenUid = statusIds(await ctx.host.readFile(`/proc/${a.pid}/status`).get(), 'Uid')[1];
    ctx.expect('the host sees the process with the mapped host uid', seenUid, hostUid, 'host');
    const NOT_ROOT = 'the host uid is not 0';
    if (single) ctx.skip(NOT_ROOT, SINGLE_REASON, null, 'host');
    else if (plan && !plan.drop && plan.hostUid === 0) ctx.skip(NOT_ROOT, plan.note ?? 'rootless mode nests a user namespace as uid 0 here', null, 'host');
    else ctx.check(NOT_ROOT, seenUid !== 0, 'not 0', seenUid, 'host');
    if (!privileged) ctx.expect('/proc/self/setgroups reads deny', (await a.readFile('/proc/self/setgroups').get()).trim(), 'deny', 'inside');
    const OVERFLOW = 'a file owned by a host uid outside the map shows the overflow uid inside';
    const REAL = 'the host sees that file\'s real owner (control)';
    // No such file on the system (Node in a user namespace): one Node makes is owned by Node's
    // own uid, a real id, which the map leaves out when rootless mode dropped to another uid or
    // the privileged block excludes it.
    let file = await unmappedOwnedFile(ctx.host, hostUid, uidCount, overflow);
    const euid = ctx.host.euid;
    if (!file && euid !== overflow && (euid < hostUid || euid >= hostUid + uidCount)) {
      const dir = join(ctx.host.tmpdir, `nsprobe-user-${randomBytes(6).toString('hex')}`);
      const removeLater = () => ctx.defer(() => ctx.host.rmdir(dir));
      if ((await making(ctx.host.mkdir(dir, 0o700), removeLater)).ok) {
        removeLater();
        file = await unmappedOwnedFile(ctx.host, hostUid, uidCount, overflow, [dir]);
      }
    }
    if (!file) {
      const why = `no file Node can see has a real owner outside the probe's map (uids ${hostUid}..${hostUid + uidCount - 1}): nsprobe runs in a user namespace where every other owner reads as the overflow uid ${overflow}`;
      ctx.skip(OVERFLOW, why, null, 'inside');
      ctx.skip(REAL, why, null, 'control');
    } else {
      const inside = await a.stat(file.path).get();
      const note = `${file.path} is owned by uid ${file.uid} as Node sees it; overflow uid ${overflow}`;
      ctx.expect(OVERFLOW, inside.uid, overflow, 'inside', note);
      // The same request from a process in Node's own namespaces reads the real owner.
      const outside = await ctx.enter({ namespaces: [], mode: 'privileged' });
      const seen = (await outside.stat(file.path).get()).uid;
      ctx.check(REAL, seen === file.uid && seen !== overflow, `${file.uid}, not ${overflow}`, seen, 'control', note);
    }
  },
};
