// Runs probes (a comma list, or "all") in one mode in this process's environment (which a test builds: a container-like
// /proc, a pid namespace, a user namespace) and prints its assertions as JSON. Argument 3 picks
// the explain() hook: "gates" names the gates the runner's diagnose() is to name for these helper
// steps (proc_fully_visible for a refused fresh proc mount, proc_sys_readonly for EROFS under
// /proc/sys, cgroup_writable for a refused cgroup mkdir); "none" is ProbeContext's default (no gate).
// The probe itself runs against the real kernel; only the naming of the gate is stood in for.
import { NsError } from '../../src/errors.js';
import { PROBES } from '../../probes/index.js';
import { ProbeContext, type Explain, type ProbeDef } from '../../src/probe.js';
import { hostKindFrom, openHost } from '../../src/host/hostif.js';
import type { Mode } from '../../src/model.js';

const [names, mode, how = 'gates'] = process.argv.slice(2);
const chosen = names === 'all' ? [...PROBES] : names.split(',').map((n) => PROBES.find((p) => p.name === n) ?? n);
for (const p of chosen) if (typeof p === 'string') throw new Error(`unknown probe ${p}`);

const gates: Explain = (e) => {
  const m = e.message;
  if (e.code === 'EPERM' && e.syscall === 'mount' && /\bproc\b/.test(m)) return { gate: 'proc_fully_visible', cause: 'a fresh /proc cannot be mounted here' };
  if (e.code === 'EROFS' && /\/proc\/sys\//.test(m)) return { gate: 'proc_sys_readonly', cause: '/proc/sys is read-only here' };
  if ((e.code === 'EACCES' || e.code === 'EPERM') && e.syscall === 'mkdir' && /cgroup/.test(m)) return { gate: 'cgroup_writable', cause: 'no cgroup directory can be created here' };
  return { gate: null, cause: e.message };
};

const out: Record<string, unknown> = {};
// NSPROBE_HOST=box: the probes' host side through a sandbox, as a remote run does.
const host = await openHost(hostKindFrom(process.env));
for (const probe of chosen as ProbeDef[]) {
  const ctx = new ProbeContext(probe, mode as Mode, 8000, how === 'gates' ? gates : undefined, host);
  let error: { message: string; stage?: string; code?: string } | null = null;
  try {
    await probe.run(ctx);
  } catch (e) {
    error = e instanceof NsError ? { message: e.message, stage: e.stage, code: e.code } : { message: e instanceof Error ? e.message : String(e) };
  }
  ctx.killAll();
  await ctx.dispose();
  out[probe.name] = { error, assertions: ctx.assertions, metrics: ctx.metrics };
}
await host.close();
process.stdout.write(JSON.stringify(out) + '\n');
