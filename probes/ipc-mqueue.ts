// IPC / mqueue filesystem: a POSIX message queue created inside is not in the host's mqueue
// filesystem, and an mqueue filesystem mounted inside lists only the namespace's own queues; a
// queue the host creates is in the host's mqueue filesystem (control) and not inside. Every mqueue
// mount is made in a private mount namespace; every queue is removed.
import { mqueueMountPoint } from '../src/host/mountinfo.js';
import type { ProbeContext, ProbeDef } from '../src/probe.js';
import { MS, O } from '../src/errno.js';
import { enter, type Outcome, type Sandbox } from '../src/sandbox.js';
import { claimHostQueue } from '../src/cleanup.js';
import { mountPoint } from './mnt.js';

const O_RDWR = O.RDWR;
const O_CREAT = O.CREAT;
const O_EXCL = O.EXCL;


/** Mounts a fresh mqueue fs (of the sandbox's IPC namespace) in its private mount namespace: the first failed step, or the mount's success. */
async function mountMqueue(s: Sandbox, where: string): Promise<Outcome<void>> {
  const priv = await s.mount('', '/', '', MS.REC | MS.PRIVATE);
  if (!priv.ok) return priv;
  return s.mount('mqueue', where, 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC);
}

/**
 * The host IPC namespace's queues: through a fresh mqueue mount in a private mount namespace of a
 * process in the host's IPC namespace (privileged, or as root an observer for rootless mode),
 * else through an existing host mqueue mount; null when neither is possible.
 */
async function hostView(ctx: ProbeContext, where: string): Promise<{ list: () => Promise<string[]>; how: string } | null> {
  if (ctx.mode === 'privileged' || ctx.host.euid === 0) {
    const o = await ctx.enter({ namespaces: ['mnt'], mode: 'privileged' });
    const m = await mountMqueue(o, where);
    if (m.ok) return { list: () => o.listdir(where).get(), how: 'a fresh mqueue mount in a private mount namespace of a host-IPC process' };
  }
  const info = await ctx.host.readFile('/proc/self/mountinfo');
  const existing = mqueueMountPoint(info.ok ? info.value! : null);
  if (existing) return { list: () => ctx.host.readdir(existing).get(), how: `the host's mqueue mount ${existing}` };
  return null;
}

export const ipcMqueue: ProbeDef = {
  name: 'ipc-mqueue',
  namespace: 'ipc',
  cloneFlag: 'CLONE_NEWIPC',
  since: '2.6.30',
  summary: 'an mqueue filesystem shows only its IPC namespace\'s POSIX message queues',
  namespaces: () => ['ipc', 'mnt'],
  creates: () => ['ipc', 'mnt'],
  uses: {},
  async run(ctx) {
    const q = `nsprobe-mq-${ctx.token}`;
    const where = await mountPoint(ctx.host);
    const a = await ctx.enter();
    // The mount point is a fact of the host (/tmp almost everywhere): in the note, not the name.
    if (!ctx.expectOk('an mqueue fs mounts on the mount point inside (private mount namespace)', await mountMqueue(a, where), 'inside', `mount point ${where}`)) return;
    ctx.expect('the fresh mqueue fs inside is empty', await a.listdir(where).get(), [], 'inside');
    const made = await a.mqOpen(q, O_CREAT | O_EXCL | O_RDWR);
    ctx.expectOk('a POSIX message queue is created inside', made, 'inside');
    if (made.ok) ctx.defer(() => a.mqUnlink(q));
    ctx.expect('the mqueue fs inside lists exactly that queue', await a.listdir(where).get(), [q], 'inside');
    // A forked second process keeps the first one's root (a setns joiner would get the mount
    // namespace's root, which differs when nsprobe runs in a chroot).
    const second = ctx.track(await a.forkServe().get());
    ctx.expect('a second process in the namespace lists it in the same mount (control)', await second.listdir(where).get(), [q], 'control');
    ctx.expect('the second process is in the same IPC namespace (control)', await second.readlink('/proc/self/ns/ipc').get(), await a.readlink('/proc/self/ns/ipc').get(), 'control');

    const sibling = await ctx.enter();
    const sm = await mountMqueue(sibling, where);
    ctx.expectOk('a sibling IPC namespace mounts its own mqueue fs', sm, 'sibling');
    if (sm.ok) ctx.expect('the sibling\'s mqueue fs does not list the queue', (await sibling.listdir(where).get()).includes(q), false, 'sibling');

    const host = await ctx.hostSide();
    // A slot name held by this run (src/cleanup.ts claimHostQueue): if this run is killed, a
    // later one finds it by name and removes it, also as a user who cannot list the host's queues;
    // a hurried exit (second signal) removes it too.
    const { name: hq, made: hmade, done: forget } = await claimHostQueue((n) => host.mqOpen(n, O_CREAT | O_EXCL | O_RDWR));
    ctx.expectOk('a host process creates a queue in the host IPC namespace', hmade, 'host');
    if (hmade.ok) {
      // The queue lives in the host IPC namespace: if the probe is killed before its own cleanup
      // (timeout, Ctrl-C) the host sandbox is gone, so a fresh one removes it after close.
      let removed = false;
      ctx.defer(async () => {
        const r = await host.mqUnlink(hq);
        removed = r.ok || r.code === 'ENOENT'; // removed already
        if (removed) await forget();
      });
      ctx.deferAfterClose(async () => {
        if (removed) return;
        const h = await enter({ namespaces: [], mode: ctx.mode, timeoutMs: 2000 });
        try {
          const r = await h.mqUnlink(hq);
          if (r.ok || r.code === 'ENOENT') await forget();
        } finally {
          await h.close();
        }
      });
    }
    // Environment assumption avoided: the host's mqueue fs is looked at only where it can be
    // (a fresh mount by a process allowed to, or a mount Node already has); else the queue is
    // looked up by name from the host IPC namespace instead.
    const view = await hostView(ctx, where);
    if (view) {
      const seen = await view.list();
      ctx.expect('the host\'s queue is listed in the host\'s mqueue fs (control)', seen.includes(hq), true, 'control', view.how);
      ctx.expect('the queue created inside is not in the host\'s mqueue fs', seen.includes(q), false, 'host');
    } else {
      ctx.expectErrno('the queue created inside cannot be opened from the host IPC namespace (no host mqueue fs is readable here)', await host.mqOpen(q, O_RDWR), 'ENOENT', 'host');
    }
    ctx.expect('the host\'s queue is not in the mqueue fs inside', (await a.listdir(where).get()).includes(hq), false, 'inside');
    if (ctx.mode === 'rootless') {
      // The host IPC namespace belongs to Node's user namespace (the initial one, or the one
      // nsprobe runs in): its mqueue fs cannot be mounted from a new user namespace below it,
      // even in a private mount namespace.
      const hm = await ctx.enter({ namespaces: ['mnt'] });
      const priv = await hm.mount('', '/', '', MS.REC | MS.PRIVATE);
      ctx.expectOk('a rootless process makes its new mount tree private (control)', priv, 'control');
      ctx.expectErrno('a rootless process in the host IPC namespace cannot mount its mqueue fs (EPERM)', await hm.mount('mqueue', where, 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC), 'EPERM', 'host');
    }

    if (hmade.ok) ctx.expectOk('the host removes its queue', await host.mqUnlink(hq), 'host');
    if (made.ok) {
      ctx.expectOk('the queue inside is removed', await a.mqUnlink(q), 'inside');
      ctx.expect('the mqueue fs inside is empty again', await a.listdir(where).get(), [], 'inside');
    }
    if (view) ctx.expect('the host\'s mqueue fs no longer lists either queue', (await view.list()).filter((n) => n === q || n === hq), [], 'host');
  },
};
