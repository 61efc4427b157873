// IPC: SysV message queues, shared memory, semaphores and POSIX message queues created inside
// are invisible to the host and to a sibling, host objects are invisible inside, and a second
// process in the same namespace sees them (control). Every object is removed, on the host too.
import type { ProbeDef } from '../src/probe.js';
import { IPC, O } from '../src/errno.js';
import { enter, type Outcome, type Sandbox } from '../src/sandbox.js';
import { claimHostQueue, noteHostSysv, parseSysv, SYSV_HOST_MODE, sysvHostKey, sysvUnjudgedKey } from '../src/cleanup.js';
import { hostPidNs, PID_INIT_INO } from '../src/pidns.js';

const IPC_CREAT = IPC.CREAT;
const IPC_EXCL = IPC.EXCL;
const O_RDWR = O.RDWR;
const O_CREAT = O.CREAT;
const O_EXCL = O.EXCL;
const KINDS = ['msg', 'shm', 'sem'] as const;
type Kind = (typeof KINDS)[number];

function get(s: Sandbox, kind: Kind, key: number, flags: number): Promise<Outcome<number>> {
  if (kind === 'msg') return s.msgget(key, flags);
  if (kind === 'shm') return s.shmget(key, 4096, flags);
  return s.semget(key, 1, flags);
}

/** Keys of the SysV objects in a /proc/sysvipc/<kind> text. */
export function sysvKeys(text: string): number[] {
  return text.split('\n').slice(1).filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[0]) | 0);
}

export const ipc: ProbeDef = {
  name: 'ipc',
  namespace: 'ipc',
  cloneFlag: 'CLONE_NEWIPC',
  since: '2.6.19',
  summary: 'SysV IPC objects and POSIX message queues are private to the namespace',
  creates: () => ['ipc'],
  uses: {},
  async run(ctx) {
    const key = (0x4e000000 | (parseInt(ctx.token.slice(0, 6), 36) & 0xffffff)) | 0;
    // The host-side objects' key names the host box that makes them (sysvHostKey: its pid and a
    // salt), so that a later run can tell a killed run's object from a live one's and from a
    // foreign one (src/cleanup.ts deadSysv). No two live boxes share a pid; the salt starts at
    // random and moves on where the key is taken (EEXIST) all the same.
    // The key has no room for the box's pid namespace: only a box of the initial one names itself
    // (salts 0-2); any other makes keys no pass judges (sysvUnjudgedKey: salt 3, random bits).
    const salt0 = parseInt(ctx.token.slice(6, 8) || '0', 36) % 3;
    const mq = `nsprobe-${ctx.token}`;
    // Objects made in the host's IPC namespace, noted before the request that creates them: if
    // the probe is killed (timeout, Ctrl-C) its host sandbox is gone, so a fresh one removes them
    // by key after close. Empty after a normal run.
    const onHost = new Map<string, () => Promise<unknown>>();
    ctx.deferAfterClose(async () => {
      if (!onHost.size) return;
      const h = await enter({ namespaces: [], mode: ctx.mode, timeoutMs: 2000 });
      try {
        for (const rm of onHost.values()) await rm.call(h).catch(() => undefined);
      } finally {
        await h.close();
      }
    });
    // The three processes that need no other are entered side by side (every object is made
    // after all four exist).
    const [a, host, sibling, pidNs] = await Promise.all([ctx.enter(), ctx.hostSide(), ctx.enter(), hostPidNs(ctx.host)]);
    // (The host box is a child of ctx.host's process, in its pid namespace; its pid as it sees it.)
    const initNs = pidNs.ns === PID_INIT_INO && host.inner.pid === host.pid;
    const second = await ctx.join(a, ['ipc']);

    // Environment assumption: /proc/sysvipc is readable and shows Node's IPC namespace.
    for (const kind of KINDS) {
      const made = await get(a, kind, key, IPC_CREAT | IPC_EXCL | 0o600);
      ctx.expectOk(`SysV ${kind} created inside with key K`, made, 'inside');
      if (!made.ok) continue;
      const id = made.value!;
      ctx.defer(() => a.ipcrm(kind, id));
      const listed = async (k: number) => sysvKeys(await ctx.host.readFile(`/proc/sysvipc/${kind}`).get()).includes(k);
      const hostHas = await listed(key);
      ctx.check(`the host's /proc/sysvipc/${kind} does not list key K`, !hostHas, 'absent', hostHas ? 'present' : 'absent', 'host');
      ctx.expectErrno(`a host process looking up key K of ${kind} gets ENOENT`, await get(host, kind, key, 0), 'ENOENT', 'host');
      ctx.expectErrno(`a sibling IPC namespace looking up key K of ${kind} gets ENOENT`, await get(sibling, kind, key, 0), 'ENOENT', 'sibling');
      const found = await get(second, kind, key, 0);
      ctx.expect(`a second process in the same namespace finds ${kind} key K (control)`, found.ok ? found.value : found.sentence, id, 'control');

      let hostKey = 0;
      let forgetSysv: () => unknown = () => undefined;
      onHost.set(kind, async function (this: Sandbox) {
        const r = await get(this, kind, hostKey, 0);
        if (!r.ok) return;
        // Only the object in the host mode this probe makes (SYSV_HOST_MODE): a create that came
        // back EEXIST, or never came back, may have noted another's key.
        const listing = await this.readFile(`/proc/sysvipc/${kind}`);
        const n = kind === 'msg' ? 1 : kind === 'shm' ? 2 : 3;
        if (listing.ok && !parseSysv(n, listing.value!).some((o) => o.id === r.value && o.mode === SYSV_HOST_MODE)) return;
        await this.ipcrm(kind, r.value!);
      });
      let hmade: Outcome<number> | undefined;
      for (let i = 0; i < 4; i++) {
        hostKey = initNs ? sysvHostKey(host.pid, (salt0 + i) % 3) : sysvUnjudgedKey();
        // A hurried exit (second signal) waits for no sandbox: it removes the object from Node.
        forgetSysv = noteHostSysv(kind === 'msg' ? 1 : kind === 'shm' ? 2 : 3, hostKey);
        hmade = await get(host, kind, hostKey, IPC_CREAT | IPC_EXCL | SYSV_HOST_MODE);
        if (hmade.ok || hmade.code !== 'EEXIST') break;
        forgetSysv();
      }
      if (hmade!.ok) {
        const hid = hmade!.value!;
        ctx.defer(() => host.ipcrm(kind, hid).then((r) => (onHost.delete(kind), r.ok && forgetSysv())));
        const seen = await listed(hostKey);
        ctx.check(`a ${kind} object the host created is listed in the host's /proc/sysvipc (control)`, seen, 'present', seen ? 'present' : 'absent', 'control');
        ctx.expectErrno(`a ${kind} object the host created with key K2 is invisible inside`, await get(a, kind, hostKey, 0), 'ENOENT', 'inside');
        if ((await host.ipcrm(kind, hid)).ok) forgetSysv();
        onHost.delete(kind);
      } else {
        onHost.delete(kind);
        forgetSysv();
        ctx.expectOk(`host creates a ${kind} object with key K2`, hmade!, 'host');
      }
      await a.ipcrm(kind, id);
    }

    const created = await a.mqOpen(mq, O_CREAT | O_EXCL | O_RDWR);
    ctx.expectOk('POSIX message queue created inside', created, 'inside');
    if (created.ok) {
      ctx.defer(() => a.mqUnlink(mq));
      ctx.expectErrno('a host process opening the queue name gets ENOENT', await host.mqOpen(mq, O_RDWR), 'ENOENT', 'host');
      ctx.expectErrno('a sibling IPC namespace opening the queue name gets ENOENT', await sibling.mqOpen(mq, O_RDWR), 'ENOENT', 'sibling');
      ctx.expectOk('a second process in the same namespace opens the queue (control)', await second.mqOpen(mq, O_RDWR), 'control');
      await a.mqUnlink(mq);
    }
    // A slot name held by this run (src/cleanup.ts claimHostQueue): a later run removes it if
    // this one is killed; a hurried exit (second signal) removes it from Node.
    let hostMq = '';
    let forget: () => Promise<void> = async () => undefined;
    // The one way the host's queue is removed (the probe's step, its deferred cleanup, and a fresh
    // host sandbox's after a timeout): removed, or not there (ENOENT), it is no longer noted for
    // removal. (The three copies disagreed: only the cleanup took ENOENT as gone.)
    // Once removed it is removed for good: the name is let go (hostMq = ''), so the deferred
    // cleanup does not unlink it again after the slot was freed and another run may hold it.
    const removeHostQueue = async (sb: Sandbox) => {
      const name = hostMq;
      const r = await sb.mqUnlink(name);
      if (r.ok || r.code === 'ENOENT') {
        if (hostMq === name) hostMq = '';
        onHost.delete('mq');
        await forget();
      }
      return r;
    };
    onHost.set('mq', async function (this: Sandbox) {
      if (hostMq) await removeHostQueue(this);
    });
    const claimed = await claimHostQueue((n) => ((hostMq = n), host.mqOpen(n, O_CREAT | O_EXCL | O_RDWR)));
    forget = claimed.done;
    hostMq = claimed.name;
    const hostCreated = claimed.made;
    ctx.expectOk('POSIX message queue created by the host', hostCreated, 'host');
    if (hostCreated.ok) {
      ctx.defer(async () => {
        if (hostMq) await removeHostQueue(host);
      });
      ctx.expectErrno('a queue the host created is invisible inside', await a.mqOpen(hostMq, O_RDWR), 'ENOENT', 'inside');
      ctx.expectOk('the host removes its queue', await removeHostQueue(host), 'host');
    } else {
      onHost.delete('mq');
    }
  },
};
