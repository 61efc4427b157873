// PID signals: PID 1 of a namespace ignores SIGKILL and SIGTERM sent from inside (it has no
// handler), while another process inside dies of them (control); a process inside cannot signal a
// host process (ESRCH: it is not visible), while a host process can (signal 0, control); killing
// PID 1 from the host kills every process of the namespace.
import { existsSync, readFileSync } from 'node:fs';
import type { ProbeDef } from '../src/probe.js';

const SIGKILL = 9;
const SIGTERM = 15;
const ESRCH = 3;

/** Whether host pid `pid` is a live (not zombie) process with this start time. */
function alive(pid: number, start: string | null): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] !== 'Z' && f[0] !== 'X' && (start === null || f[19] === start);
  } catch {
    return false;
  }
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export const pidSignals: ProbeDef = {
  name: 'pid-signals',
  namespace: 'pid',
  cloneFlag: 'CLONE_NEWPID',
  since: '2.6.24',
  summary: 'PID 1 ignores fatal signals from inside, nothing inside can signal out, killing PID 1 ends the namespace',
  async run(ctx) {
    const a = await ctx.enter();
    // Without a parent-death signal: these processes die only if the namespace takes them.
    const g = ctx.track(await a.forkServe({ noDeathSignal: true }));
    const g2 = ctx.track(await g.forkServe({ noDeathSignal: true }));
    ctx.check('a process forked inside has a pid other than 1', g.inner.pid > 1, '> 1', g.inner.pid, 'inside');

    for (const [sig, name] of [[SIGKILL, 'SIGKILL'], [SIGTERM, 'SIGTERM']] as const) {
      const r = await g.kill(1, sig);
      ctx.expect(`kill(1, ${name}) from inside returns 0`, r, 0, 'inside');
      const id = await a.identity();
      ctx.expect(`PID 1 still answers after ${name} from inside`, id.pid, 1, 'inside');
    }
    ctx.check('the host still sees PID 1 alive', alive(a.pid, null), 'alive', alive(a.pid, null) ? 'alive' : 'gone', 'host');
    const victim = await a.forkPause();
    const kv = await g.kill(victim, SIGKILL);
    const w = await a.wait(victim, 0, 2000);
    ctx.expect('another process inside dies of the same SIGKILL (control)', [kv, w.pid, w.status & 0x7f], [0, victim, SIGKILL], 'control');

    // Signalling out: a host process's pid means nothing inside.
    const host = await ctx.hostSide();
    const other = await ctx.hostSide();
    const note = host.pid < 16 ? `host pid ${host.pid} is small enough to exist inside too` : undefined;
    ctx.expect(`kill(host pid ${host.pid}, 0) from inside is ESRCH`, await g.kill(host.pid, 0), -ESRCH, 'inside', note);
    ctx.expect(`kill(Node's host pid ${process.pid}, 0) from inside is ESRCH`, await g.kill(process.pid, 0), -ESRCH, 'inside');
    ctx.expect('the same kill(host pid, 0) from another host process works (control)', await other.kill(host.pid, 0), 0, 'control');

    // Killing PID 1 from the host takes the namespace with it.
    const starts = [startTime(g.pid), startTime(g2.pid)];
    ctx.expect('before, the processes inside are alive (control)', [alive(g.pid, starts[0]), alive(g2.pid, starts[1])], [true, true], 'control');
    a.killNow(SIGKILL);
    // Gone means reaped (no /proc entry, or one of a later process with the same pid).
    const gone = (pid: number, start: string | null) => !existsSync(`/proc/${pid}/stat`) || startTime(pid) !== start;
    const until = Date.now() + 3000;
    while (!(gone(g.pid, starts[0]) && gone(g2.pid, starts[1])) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    ctx.expect('after the host kills PID 1, every other process of the namespace is gone (reaped)', [gone(g.pid, starts[0]), gone(g2.pid, starts[1])], [true, true], 'host');
  },
};
