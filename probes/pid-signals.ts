// PID signals: PID 1 of a namespace ignores SIGKILL and SIGTERM sent from inside (it has no
// handler), while another process inside dies of them (control); a process inside cannot signal a
// host process (ESRCH: it is not visible), while a host process can (signal 0, control); killing
// PID 1 from the host kills every process of the namespace.
import { SIG } from '../src/errno.js';
import type { HostIf } from '../src/host/hostif.js';
import type { ProbeDef } from '../src/probe.js';

const SIGKILL = SIG.KILL;
const SIGTERM = SIG.TERM;

/** The fields of a /proc/PID/stat text after the parenthesised comm (state first). */
const statFields = (stat: string) => stat.slice(stat.lastIndexOf(')') + 2).split(' ');

/** Whether host pid `pid` is a live (not zombie) process with this start time. */
async function alive(host: HostIf, pid: number, start: string | null): Promise<boolean> {
  const r = await host.readFile(`/proc/${pid}/stat`);
  if (!r.ok) return false;
  const f = statFields(r.value!);
  return f[0] !== 'Z' && f[0] !== 'X' && (start === null || f[19] === start);
}

async function startTime(host: HostIf, pid: number): Promise<string | null> {
  const r = await host.readFile(`/proc/${pid}/stat`);
  return r.ok ? statFields(r.value!)[19] ?? null : null;
}

export const pidSignals: ProbeDef = {
  name: 'pid-signals',
  namespace: 'pid',
  cloneFlag: 'CLONE_NEWPID',
  since: '2.6.24',
  summary: 'PID 1 ignores fatal signals from inside, nothing inside can signal out, killing PID 1 ends the namespace',
  creates: () => ['pid'],
  uses: { hostPidVisibility: true },
  async run(ctx) {
    const a = await ctx.enter();
    // Without a parent-death signal: these processes die only if the namespace takes them.
    const g = ctx.track(await a.forkServe({ noDeathSignal: true }).get());
    const g2 = ctx.track(await g.forkServe({ noDeathSignal: true }).get());
    ctx.check('a process forked inside has a pid other than 1', g.inner.pid > 1, '> 1', g.inner.pid, 'inside');

    for (const [sig, name] of [[SIGKILL, 'SIGKILL'], [SIGTERM, 'SIGTERM']] as const) {
      ctx.expectOk(`kill(1, ${name}) from inside returns 0`, await g.kill(1, sig), 'inside');
      const id = await a.identity().get();
      ctx.expect(`PID 1 still answers after ${name} from inside`, id.pid, 1, 'inside');
    }
    const one = await alive(ctx.host, a.pid, null);
    ctx.check('the host still sees PID 1 alive', one, 'alive', one ? 'alive' : 'gone', 'host');
    const victim = await a.forkPause().get();
    const kv = await g.kill(victim, SIGKILL);
    const w = await a.wait(victim, 0, 2000);
    ctx.expect('another process inside dies of the same SIGKILL (control)', [kv.sentence, w.ok ? w.value!.pid === victim : w.sentence, w.ok ? w.value!.status & 0x7f : null], [kv.step + ': ok', true, SIGKILL], 'control');

    // Signalling out: a host process's pid means nothing inside, provided no process inside has
    // that pid. Environment assumption made explicit: pids inside are allocated upwards from 1,
    // so no process inside has a pid above the inside's ns_last_pid (read through the inside's
    // /proc/sys/kernel/ns_last_pid, which shows the reader's own pid namespace). A host pid
    // above it cannot exist inside; a smaller one might (Node is pid 1 in a container, say), and
    // its check is skipped with the reason. Nothing is forked inside after this point.
    const host = await ctx.hostSide();
    const other = await ctx.hostSide();
    const lastRead = await g.readFile('/proc/sys/kernel/ns_last_pid');
    const last = lastRead.ok ? Number(lastRead.value!.trim()) : NaN;
    const outOfReach = (pid: number) => Number.isFinite(last) && pid > last;
    const why = (who: string, pid: number) =>
      Number.isFinite(last)
        ? `${who} has pid ${pid} here, which a process inside may have too (the inside has allocated pids up to ${last})`
        : `the inside's last pid cannot be read (${lastRead.sentence}), so no host pid is known to be absent inside`;
    const HOST = 'kill(a host process\'s pid, 0) from inside is ESRCH';
    const NODE = 'kill(Node\'s own pid, 0) from inside is ESRCH';
    if (outOfReach(host.pid)) ctx.expectErrno(HOST, await g.kill(host.pid, 0), 'ESRCH', 'inside', `host pid ${host.pid}; the inside's last pid is ${last}`);
    else ctx.skip(HOST, why('the host process', host.pid), null, 'inside');
    // "Node" is the process that stands for the run on the host (the agent on a remote target).
    const self = ctx.host.pid;
    if (outOfReach(self)) ctx.expectErrno(NODE, await g.kill(self, 0), 'ESRCH', 'inside', `Node's pid ${self}; the inside's last pid is ${last}`);
    else ctx.skip(NODE, why('Node', self), null, 'inside');
    ctx.expectOk('the same kill(host pid, 0) from another host process works (control)', await other.kill(host.pid, 0), 'control');

    // Killing PID 1 from the host takes the namespace with it.
    const starts = [await startTime(ctx.host, g.pid), await startTime(ctx.host, g2.pid)];
    ctx.expect('before, the processes inside are alive (control)', [await alive(ctx.host, g.pid, starts[0]), await alive(ctx.host, g2.pid, starts[1])], [true, true], 'control');
    a.killNow(SIGKILL);
    // Waits for PID 1's end (the addon's pidfd, no polling): the kernel ends PID 1 only after it
    // has killed and reaped every other process of the namespace, so the check below then passes
    // at its first look where the namespace does take them; the loop stays for where it does not.
    await a.close(0);
    // Gone means reaped (no /proc entry, or one of a later process with the same pid).
    const gone = async (pid: number, start: string | null) => (await startTime(ctx.host, pid)) !== start || !(await ctx.host.exists(`/proc/${pid}/stat`));
    const both = async () => [await gone(g.pid, starts[0]), await gone(g2.pid, starts[1])];
    const until = Date.now() + 3000;
    let seen = await both();
    while (!(seen[0] && seen[1]) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await both();
    }
    ctx.expect('after the host kills PID 1, every other process of the namespace is gone (reaped)', seen, [true, true], 'host');
  },
};
