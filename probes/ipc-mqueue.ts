// IPC / mqueue filesystem: a POSIX message queue created inside is not in the host's mqueue
// filesystem, and an mqueue filesystem mounted inside lists only the namespace's own queues; a
// queue the host creates is in the host's mqueue filesystem (control) and not inside. Every mqueue
// mount is made in a private mount namespace; every queue is removed.
import { readFileSync, readdirSync } from 'node:fs';
import type { ProbeContext, ProbeDef } from '../src/probe.js';
import { enter, type Sandbox } from '../src/sandbox.js';
import { noteHostQueue } from '../src/cleanup.js';
import { MS, mountPoint } from './mnt.js';

const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const EPERM = 1;

/** An mqueue mount of the host's IPC namespace this process can read, or null. */
function hostMqueueMount(): string | null {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (post?.startsWith('mqueue ')) return pre.split(' ')[4];
    }
  } catch {
    // none readable
  }
  return null;
}

/** Mounts a fresh mqueue fs (of the sandbox's IPC namespace) in its private mount namespace. */
async function mountMqueue(s: Sandbox): Promise<number[]> {
  return [(await s.mount('', '/', '', MS.REC | MS.PRIVATE)).err, (await s.mount('mqueue', mountPoint(), 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC)).err];
}

/**
 * The host IPC namespace's queues: through a fresh mqueue mount in a private mount namespace of a
 * process in the host's IPC namespace (privileged, or as root an observer for rootless mode),
 * else through an existing host mqueue mount; null when neither is possible.
 */
async function hostView(ctx: ProbeContext): Promise<{ list: () => Promise<string[]>; how: string } | null> {
  if (ctx.mode === 'privileged' || process.geteuid?.() === 0) {
    const o = await ctx.enter({ namespaces: ['mnt'], mode: 'privileged' });
    const m = await mountMqueue(o);
    if (m.every((e) => e === 0)) return { list: () => o.listdir(mountPoint()), how: 'a fresh mqueue mount in a private mount namespace of a host-IPC process' };
  }
  const existing = hostMqueueMount();
  if (existing) return { list: async () => readdirSync(existing), how: `the host's mqueue mount ${existing}` };
  return null;
}

export const ipcMqueue: ProbeDef = {
  name: 'ipc-mqueue',
  namespace: 'ipc',
  cloneFlag: 'CLONE_NEWIPC',
  since: '2.6.30',
  summary: 'an mqueue filesystem shows only its IPC namespace\'s POSIX message queues',
  namespaces: () => ['ipc', 'mnt'],
  async run(ctx) {
    const q = `nsprobe-mq-${ctx.token}`;
    // The pid lets a later run remove the queue if this one is killed (src/cleanup.ts).
    const hq = `nsprobe-mqh-${process.pid}-${ctx.token}`;
    const where = mountPoint();
    const a = await ctx.enter();
    ctx.expect(`an mqueue fs mounts on ${where} inside (private mount namespace)`, await mountMqueue(a), [0, 0], 'inside');
    ctx.expect('the fresh mqueue fs inside is empty', await a.listdir(where), [], 'inside');
    const made = await a.mqOpen(q, O_CREAT | O_EXCL | O_RDWR);
    ctx.expect('a POSIX message queue is created inside', made, 0, 'inside');
    if (made === 0) ctx.defer(() => a.mqUnlink(q));
    ctx.expect('the mqueue fs inside lists exactly that queue', await a.listdir(where), [q], 'inside');
    // A forked second process keeps the first one's root (a setns joiner would get the mount
    // namespace's root, which differs when nsprobe runs in a chroot).
    const second = ctx.track(await a.forkServe());
    ctx.expect('a second process in the namespace lists it in the same mount (control)', await second.listdir(where), [q], 'control');
    ctx.expect('the second process is in the same IPC namespace (control)', await second.readlink('/proc/self/ns/ipc'), await a.readlink('/proc/self/ns/ipc'), 'control');

    const sibling = await ctx.enter();
    ctx.expect('a sibling IPC namespace mounts its own mqueue fs', await mountMqueue(sibling), [0, 0], 'sibling');
    ctx.expect('the sibling\'s mqueue fs does not list the queue', (await sibling.listdir(where)).includes(q), false, 'sibling');

    const host = await ctx.hostSide();
    const forget = noteHostQueue(hq); // a hurried exit (second signal) removes it
    const hmade = await host.mqOpen(hq, O_CREAT | O_EXCL | O_RDWR);
    if (hmade !== 0) forget();
    ctx.expect('a host process creates a queue in the host IPC namespace', hmade, 0, 'host');
    if (hmade === 0) {
      // The queue lives in the host IPC namespace: if the probe is killed before its own cleanup
      // (timeout, Ctrl-C) the host sandbox is gone, so a fresh one removes it after close.
      let removed = false;
      ctx.defer(async () => {
        const r = await host.mqUnlink(hq);
        removed = r === 0 || r === -2; // ENOENT: removed already
        if (removed) forget();
      });
      ctx.deferAfterClose(async () => {
        if (removed) return;
        const h = await enter({ namespaces: [], mode: ctx.mode, timeoutMs: 2000 });
        try {
          const r = await h.mqUnlink(hq);
          if (r === 0 || r === -2) forget();
        } finally {
          await h.close();
        }
      });
    }
    const view = await hostView(ctx);
    if (view) {
      const seen = await view.list();
      ctx.expect(`the host's queue is listed in the host's mqueue fs (control; ${view.how})`, seen.includes(hq), true, 'control');
      ctx.expect('the queue created inside is not in the host\'s mqueue fs', seen.includes(q), false, 'host');
    } else {
      ctx.expect('the queue created inside cannot be opened from the host IPC namespace (no host mqueue fs is readable here)', await host.mqOpen(q, O_RDWR), -2, 'host');
    }
    ctx.expect('the host\'s queue is not in the mqueue fs inside', (await a.listdir(where)).includes(hq), false, 'inside');
    if (ctx.mode === 'rootless') {
      // The host IPC namespace belongs to the initial user namespace: its mqueue fs cannot be
      // mounted from a user namespace, even in a private mount namespace.
      const hm = await ctx.enter({ namespaces: ['mnt'] });
      ctx.expect('a rootless process in the host IPC namespace cannot mount its mqueue fs (EPERM)', (await mountMqueue(hm))[1], EPERM, 'host');
    }

    if (hmade === 0) ctx.expect('the host removes its queue', await host.mqUnlink(hq), 0, 'host');
    if (made === 0) {
      ctx.expect('the queue inside is removed', await a.mqUnlink(q), 0, 'inside');
      ctx.expect('the mqueue fs inside is empty again', await a.listdir(where), [], 'inside');
    }
    if (view) ctx.expect('the host\'s mqueue fs no longer lists either queue', (await view.list()).filter((n) => n === q || n === hq), [], 'host');
  },
};
