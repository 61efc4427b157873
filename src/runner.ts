// The runner: turns probe declarations into results. It checks what each probe needs (root,
// kernel version), enters through the probe's context, enforces the timeout, closes everything
// the probe opened, and explains every non-pass with the gates.
import { createRequire } from 'node:module';
import { diagnose } from './diagnose.js';
import { NsError } from './errors.js';
import { evaluateGates } from './gates.js';
import { collectHostFacts, userNsScope } from './host/facts.js';
import { HOST_FACTS_DEADLINE_MS, realHostContext, withDeadline, type HostContext } from './host/hostfs.js';
import { hostKindFrom, openHost, useHost, type HostIf } from './host/hostif.js';
import { SCHEMA_VERSION, summarize, type Gate, type GateEvidence, type HostFacts, type Mode, type ModeRun, type NsType, type ProbeResult, type Report } from './model.js';
import { createdNamespaces, ProbeContext, ProbeUnsupported, type ProbeDef } from './probe.js';
import { NAMESPACES } from './namespaces.js';
import { enter, killAll } from './sandbox.js';

export const DEFAULT_TIMEOUT_MS = 10000;
/**
 * Probes run at once. Most of a probe's time is spent waiting (on its children, and in the kernel:
 * a veth deletion's RCU barrier, 10-20 ms, a cgroup move's grace period, ~15 ms), not on the JS
 * thread, so more probes than cores keep that thread busy: on 2 cores the probe phase took 228 /
 * 200 / 178 ms at 2 / 3 / 4 (medians of report.json durationMs, n=21, Node 24, load 9-10; 148 /
 * 124 / 117 at load 2.6, n=11), with the same CPU time.
 */
export const DEFAULT_CONCURRENCY = 4;

export interface RunOptions {
  probes: readonly ProbeDef[];
  modes: readonly Mode[];
  timeoutMs?: number;
  /** Probes run at once (default DEFAULT_CONCURRENCY). */
  concurrency?: number;
  /** Called as each probe finishes. */
  onResult?: (r: ProbeResult) => void;
  /** Aborting kills every sandbox at once and rejects with Interrupted. */
  signal?: AbortSignal;
  host?: HostContext;
  /** Host facts already collected from `host` (the CLI reads them before the run to pick modes). */
  facts?: HostFacts;
  /** Why a mode was left out (e.g. privileged as a normal user); goes into report.notes. */
  notes?: string[];
  /** The probes' host side (default: LocalHost, or BoxHost with NSPROBE_HOST=box in host.env); a given one is the caller's to close. */
  hostIf?: HostIf;
}

export class Interrupted extends Error {}

export function toolVersion(): string {
  const req = createRequire(import.meta.url);
  for (const p of ['../package.json', '../../package.json']) {
    try {
      return (req(p) as { version: string }).version;
    } catch {
      // try the next layout (src/ via tsx, dist/src/ compiled)
    }
  }
  return '0.0.0';
}

function kernelAtLeast(release: string, want: string): boolean {
  const a = release.split(/[.-]/).map((x) => parseInt(x, 10));
  const b = want.split('.').map((x) => parseInt(x, 10));
  for (let i = 0; i < b.length; i++) {
    if ((a[i] || 0) !== b[i]) return (a[i] || 0) > b[i];
  }
  return true;
}

/**
 * Whether this process can run privileged probes: privileged mode creates namespaces without a
 * new user namespace, as the caller, which the kernel allows with CAP_SYS_ADMIN in the caller's
 * own user namespace (host root, root in a container, root of `unshare -r`). That is the kernel's
 * own rule, read from CapEff; where CapEff cannot be read, root is taken to hold it and the
 * kernel answers when the probes try.
 */
export function canRunPrivileged(facts: HostFacts): boolean {
  return facts.capSysAdmin ?? facts.euid === 0;
}

/** Why privileged mode cannot run here, once for the whole run. */
export function privilegedSkipReason(facts: HostFacts): string {
  return `needs CAP_SYS_ADMIN in its own user namespace, which this process (uid ${facts.euid}) lacks: without it the kernel refuses every namespace but a user namespace (EPERM); run as root for privileged mode (sudo npm run probe)`;
}

/** errnos that are this caller's resource limits, not a host setting: the probe errors and says which limit. */
const RESOURCE_ERRNOS = new Set(['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE']);

/** A value in one short line for a cause. */
function brief(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The namespace type a failed step names, by its clone flag or as "a user namespace". */
export function namedNamespace(message: string | undefined): NsType | undefined {
  if (!message) return undefined;
  return NAMESPACES.find((n) => new RegExp(`\\b${n.cloneFlagName}\\b|\\b(an?|one|no) ${n.type} namespace`).test(message))?.type;
}

interface Planned {
  probe: ProbeDef;
  mode: Mode;
}

/**
 * `gates` may be a function that evaluates them on first use (the runner's: evaluating them takes
 * ~15-20 ms of CPU, done while the first probes' children start, see runSuiteWith).
 */
export async function runProbe(p: Planned, facts: HostFacts, gates: Gate[] | (() => Gate[]), timeoutMs: number, signal?: AbortSignal, hostIf?: HostIf): Promise<ProbeResult> {
  const { probe, mode } = p;
  const gateList = typeof gates === 'function' ? gates : () => gates;
  const base = { id: `${probe.name}/${mode}`, probe: probe.name, namespace: probe.namespace, mode };
  const started = performance.now();
  // A probe may create several namespaces (pid needs mnt): ask about each, its own first; a step
  // that names the type it tried ("unshare(CLONE_NEWUSER): ENOSPC") is asked about that type first.
  const created = createdNamespaces(probe, mode);
  const explain = (f: { stage?: string; syscall?: string; errno?: number; code?: string; message?: string }) => {
    const ask = (namespace: NsType) =>
      diagnose({ probe: probe.name, namespace, mode, ...f, euid: facts.euid, privilegedCaller: canRunPrivileged(facts) }, gateList(), facts);
    const named = namedNamespace(f.message);
    const order = named ? [named, ...created.filter((n) => n !== named)] : created;
    const first = ask(order[0]!);
    if (first.gate) return first;
    for (const ns of order.slice(1)) {
      const d = ask(ns);
      if (d.gate) return d;
    }
    return first;
  };
  const unsupported = (f: { stage: string; syscall?: string; errno?: number; code?: string; message?: string }): ProbeResult => ({
    ...base,
    status: 'unsupported',
    durationMs: 0,
    assertions: [],
    ...(f.errno !== undefined ? { errno: f.errno, code: f.code } : {}),
    stage: f.stage as ProbeResult['stage'],
    ...explain(f),
  });

  if (probe.needs?.modes && !probe.needs.modes.includes(mode)) return unsupported({ stage: 'needs', message: `the ${probe.name} probe has no ${mode} mode` });
  if (probe.needs?.kernel && !kernelAtLeast(facts.kernel.release, probe.needs.kernel)) {
    return { ...unsupported({ stage: 'needs' }), cause: `needs kernel ${probe.needs.kernel} or newer (${probe.cloneFlag}); this is ${facts.kernel.release}`, remedy: `boot a kernel >= ${probe.needs.kernel}`, gate: null };
  }

  const ctx = new ProbeContext(probe, mode, timeoutMs, (e) => {
    const d = explain({ stage: e.stage, syscall: e.syscall, errno: e.errno, code: e.code, message: e.message });
    return { gate: d.gate ?? null, cause: d.cause ?? e.message };
  }, hostIf);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NsError('timeout', 'probe', 110, `timeout after ${timeoutMs} ms`)), timeoutMs);
    onAbort = () => reject(new Interrupted('interrupted'));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  let result: ProbeResult;
  try {
    await Promise.race([probe.run(ctx), stop]);
    const failed = ctx.assertions.filter((a) => a.status === 'fail');
    result = {
      ...base,
      status: failed.length ? 'fail' : 'pass',
      durationMs: 0,
      assertions: ctx.assertions,
      ...(failed.length ? { cause: `${failed.length} of ${ctx.assertions.length} assertions failed: ${failed[0].name} (expected ${brief(failed[0].expected)}, got ${brief(failed[0].actual)})` } : {}),
    };
    if (!failed.length && ctx.assertions.length === 0) {
      result = { ...result, status: 'error', cause: 'the probe made no assertion' };
    }
  } catch (e) {
    if (e instanceof Interrupted) {
      ctx.killAll();
      await ctx.dispose();
      throw e;
    }
    ctx.killAll();
    if (e instanceof ProbeUnsupported) {
      result = { ...base, status: 'unsupported', durationMs: 0, assertions: ctx.assertions, cause: e.message, remedy: '', gate: null };
    } else if (e instanceof NsError) {
      const d = explain({ stage: e.stage, syscall: e.syscall, errno: e.errno, code: e.code, message: e.message });
      // Entering failed, or the host blocked a step and a gate names why: the host does not
      // support it. A timeout, a resource limit of this caller (RLIMIT_NPROC, RLIMIT_AS, open
      // files) or an unexplained failure after entering is an error.
      const entering = e.stage !== 'request' && e.stage !== 'timeout';
      const limit = RESOURCE_ERRNOS.has(e.code) && !d.gate;
      const status = e.stage !== 'timeout' && !limit && (entering || d.gate) ? 'unsupported' : 'error';
      result = {
        ...base,
        status,
        durationMs: 0,
        assertions: ctx.assertions,
        errno: e.errno,
        code: e.code,
        stage: e.stage,
        syscall: e.syscall,
        ...d,
        ...(e.stage === 'timeout' ? { cause: e.message } : {}),
      };
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      result = { ...base, status: 'error', durationMs: 0, assertions: ctx.assertions, cause: `probe crashed: ${msg}`, gate: null };
    }
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
  await ctx.dispose();
  if (Object.keys(ctx.metrics).length) result.metrics = ctx.metrics;
  result.durationMs = Math.round((performance.now() - started) * 100) / 100;
  return result;
}

/**
 * When files cannot tell whether this is a chroot, root asks the kernel once: can it create a
 * user namespace? (about 0.5 ms; undefined when not asked).
 */
async function rootUserNsCheck(facts: HostFacts): Promise<string | null | undefined> {
  if (facts.chroot !== null || !canRunPrivileged(facts)) return undefined;
  try {
    const s = await enter({ namespaces: ['user'], mode: 'privileged', timeoutMs: 2000 });
    await s.close();
    return null;
  } catch (e) {
    return e instanceof NsError && e.stage === 'clone' ? e.code : undefined;
  }
}

/**
 * How many user namespace levels can still be created below this process (about 3 ms): a child
 * one level down nests until the kernel refuses. null when that cannot be measured.
 */
async function userNsDepthLeft(timeoutMs: number): Promise<number | null> {
  // Only ENOSPC (EUSERS on 3.11-4.8) means no level is left; any other failure (a resource
  // limit, a count limit, policy) says nothing about the depth and leaves it unknown.
  const noLevel = (errno: number) => errno === 28 /* ENOSPC */ || errno === 87 /* EUSERS */;
  try {
    const s = await enter({ namespaces: [], mode: 'rootless', timeoutMs });
    try {
      const r = await s.nest('user', 64).get();
      return noLevel(r.errno) ? r.levels + 1 : null;
    } finally {
      await s.close();
    }
  } catch (e) {
    return e instanceof NsError && e.stage === 'clone' && noLevel(e.errno) ? 0 : null;
  }
}

/**
 * A gate the run saw blocking a probe (its failure, or a helper step it had to skip, was explained
 * by the gate) is `blocked`, with the evidence: probe, stage, syscall and errno. Files give a
 * gate's first status; what the kernel did when the probes tried decides it.
 */
export function observeGates(gates: Gate[], results: ProbeResult[]): Gate[] {
  const seen = new Map<string, GateEvidence[]>();
  const add = (id: string, ev: GateEvidence) => {
    const list = seen.get(id) ?? seen.set(id, []).get(id)!;
    if (!list.some((e) => e.probe === ev.probe && e.stage === ev.stage && e.syscall === ev.syscall && e.code === ev.code)) list.push(ev);
  };
  for (const r of results) {
    if (r.gate && (r.status === 'unsupported' || r.status === 'error'))
      add(r.gate, { probe: r.id, stage: r.stage ?? 'unknown', ...(r.syscall ? { syscall: r.syscall } : {}), ...(r.code ? { code: r.code } : {}) });
    for (const a of r.assertions)
      if (a.status === 'skipped' && a.gate) add(a.gate, { probe: r.id, stage: 'request' });
  }
  return gates.map((g) => {
    const evidence = seen.get(g.id);
    if (!evidence) return g;
    return { ...g, status: 'blocked', evidence };
  });
}

/** Runs the suite and returns the report (not yet written anywhere). */
export async function runSuite(opts: RunOptions): Promise<Report> {
  const host = opts.host ?? realHostContext();
  if (opts.hostIf) return runSuiteOn(opts, host, opts.hostIf);
  const hostIf = await openHost(hostKindFrom(host.env), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  try {
    return await runSuiteOn(opts, host, hostIf);
  } finally {
    await hostIf.close();
  }
}

async function runSuiteOn(opts: RunOptions, host: HostContext, hostIf: HostIf): Promise<Report> {
  const startedAt = new Date();
  const t0 = performance.now();
  const restore = useHost(hostIf);
  try {
    return await runSuiteWith(opts, host, hostIf, startedAt, t0);
  } finally {
    restore();
  }
}

// The probes that take longest (medians of report.json durationMs at load 3-5 after the forks of
// Node's memory were gone: net-veth ~55-70 ms, join ~25-40, cgroup ~15-25 (moving the sandbox into
// its cgroup waits for an RCU grace period, and the two modes wait on the same lock), identity
// ~17-22; every other one under 15, nesting ~5) start first, so that they run beside the short
// ones instead of last, two long ones side by side at the end while nothing else is left.
// The report keeps the planned order; only the start order changes.
export const LONG_PROBES = ['net-veth', 'join', 'cgroup', 'identity'];
// Two modes of one probe started side by side wait on the same kernel locks at the same moment
// (both net-veth deletions of their pair: the kernel's rcu_barrier() is serialised, the second
// waits for the first one's and then its own, ~10-20 ms each): so one mode of each long probe
// starts first, then the other modes as those finish: net-veth/p, join/p, cgroup/p, identity/p,
// net-veth/r, join/r, cgroup/r, identity/r (with DEFAULT_CONCURRENCY workers the first four start
// together and the second net-veth starts when the first short one of them ends).
export function startOrder(planned: readonly { probe: { name: string } }[]): number[] {
  // Each entry's key: [the how-manieth mode of its probe it is, rank]; the others
  // [LONG_PROBES.length, 0] (no probe has that many modes). Counted in one pass, each key made once.
  const seen = new Map<string, number>();
  const keys = planned.map((p) => {
    const name = p.probe.name;
    const nth = seen.get(name) ?? 0;
    seen.set(name, nth + 1);
    const r = LONG_PROBES.indexOf(name);
    return r < 0 ? [LONG_PROBES.length, 0] : [nth, r];
  });
  return planned.map((_, i) => i).sort((a, b) => {
    const ka = keys[a], kb = keys[b];
    return ka[0] - kb[0] || ka[1] - kb[1] || a - b;
  });
}

async function runSuiteWith(opts: RunOptions, host: HostContext, hostIf: HostIf, startedAt: Date, t0: number): Promise<Report> {
  // Host facts once per run, every read bounded and all of them under one deadline.
  const facts = opts.facts ?? collectHostFacts(withDeadline(host, HOST_FACTS_DEADLINE_MS));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // NSPROBE_KERNEL_CONFIG=/path: judge kernel_config by that file (e.g. an unpacked kernel package's
  // /boot/config-<version>) instead of /proc/config.gz or /boot/config-$(uname -r); ci/kernels.mjs sets it.
  const kernelConfigPath = host.env.NSPROBE_KERNEL_CONFIG || undefined;
  const measured = {
    rootUserNs: await rootUserNsCheck(facts),
    userNsDepthLeft: opts.modes.includes('rootless') ? await userNsDepthLeft(timeoutMs) : undefined,
  };
  // Gates are evaluated on first use: a probe that needs an explanation before then evaluates
  // them; otherwise right after the first probes started (their children are being created and
  // say hello meanwhile), so the ~15-20 ms of CPU they take is not spent before any probe runs.
  let gates: Gate[] | undefined;
  const gatesNow = () => (gates ??= evaluateGates(host, facts, kernelConfigPath ? { kernelConfigPath, measured } : { measured }));
  const privileged = canRunPrivileged(facts);
  const scope = userNsScope(facts);
  const modes: ModeRun[] = opts.modes.map((mode) =>
    mode === 'privileged' && !privileged
      ? { mode, status: 'skipped', reason: privilegedSkipReason(facts), scope }
      : { mode, status: 'run', scope: mode === 'privileged' ? scope : `a user namespace of its own below ${scope}` });
  const planned: Planned[] = [];
  for (const probe of opts.probes) for (const m of modes) if (m.status === 'run') planned.push({ probe, mode: m.mode });
  const results: ProbeResult[] = new Array(planned.length);
  const order = startOrder(planned);
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      if (opts.signal?.aborted) throw new Interrupted('interrupted');
      const i = order[next++];
      results[i] = await runProbe(planned[i], facts, gatesNow, timeoutMs, opts.signal, hostIf);
      opts.onResult?.(results[i]);
    }
  };
  const onAbort = () => killAll();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Every worker settles (so every probe is disposed: sandboxes reaped, cgroups removed)
    // before an interruption is reported.
    const workers = Array.from({ length: Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY) }, worker);
    // Once the first probes have sent their first requests and are waiting on their children (a
    // check-phase callback runs after the microtasks that got them there). A throw must not leave
    // the started probes undisposed: it is raised once they settled.
    let gateError: unknown;
    const early = setImmediate(() => {
      try {
        gatesNow();
      } catch (e) {
        gateError = e ?? new Error('evaluating the gates failed');
      }
    });
    const settled = await Promise.allSettled(workers);
    clearImmediate(early);
    if (gateError !== undefined) throw gateError;
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'nsprobe', version: toolVersion() },
    startedAt: startedAt.toISOString(),
    durationMs: Math.round((performance.now() - t0) * 100) / 100,
    host: facts,
    gates: observeGates(gatesNow(), results),
    probes: results,
    summary: summarize(results),
    ...(opts.notes?.length ? { notes: opts.notes } : {}),
    modes,
  };
}
