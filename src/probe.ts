// What a probe module declares, and the context the runner hands it. A probe says which
// namespaces it needs and what it asserts; the runner enters, times, skips, diagnoses and reports.
import { isDeepStrictEqual } from 'node:util';
import { NsError } from './errors.js';
import { errnoNumber } from './errno.js';
import { assertionId, type AssertionResult, type Mode, type NsType, type Side } from './model.js';
import { enter, join, type EnterOptions, type Outcome, type Sandbox } from './sandbox.js';
import { localHost, type HostIf } from './host/hostif.js';

export interface ProbeNeeds {
  /** Modes the probe exists in (default both). */
  modes?: readonly Mode[];
  /** Minimum kernel version, e.g. "5.6". */
  kernel?: string;
}

export interface ProbeDef {
  /** Probe name; the probe id is `<name>/<mode>`. */
  name: string;
  /** The namespace the probe is about. */
  namespace: NsType;
  /** The clone flag that creates it. */
  cloneFlag: string;
  /** Kernel version that introduced the namespace (for the report and the minimum-kernel need). */
  since: string;
  /** One line a person reads in --help and the report. */
  summary: string;
  /** Namespaces the probe's main sandbox is created in (default [namespace]). */
  namespaces?: (mode: Mode) => NsType[];
  needs?: ProbeNeeds;
  /** Every namespace type any sandbox of this probe creates, in this mode (default: namespaces(mode)); user is implied in rootless mode. */
  creates?: (mode: Mode) => NsType[];
  /** Host features the probe's helper steps use; gates that block them derive `affects` from these. */
  uses?: ProbeUses;
  run(ctx: ProbeContext): Promise<void>;
}

export interface ProbeUses {
  procMount?: boolean;
  veth?: boolean;
  sysctlWrite?: boolean;
  cgroupWrite?: boolean;
  userNsNesting?: boolean;
  pidNsNesting?: boolean;
  hostPidVisibility?: boolean;
}

/** Every namespace type the probe creates in this mode, user included in rootless mode. */
export function createdNamespaces(def: ProbeDef, mode: Mode): NsType[] {
  const made = def.creates?.(mode) ?? def.namespaces?.(mode) ?? [def.namespace];
  const all = new Set<NsType>([def.namespace, ...made]);
  if (mode === 'rootless') all.add('user');
  return [...all];
}

/** How the runner explains a failed helper step: the gate that blocks it (or null) and a sentence. */
export type Explain = (err: NsError) => { gate: string | null; cause: string };

const defaultExplain: Explain = (err) => ({ gate: null, cause: err.message });

export interface HelperOptions {
  /** Name of the assertion recorded when the step fails and no gate explains it (default: the step). */
  name?: string;
  side?: Side;
  /**
   * false: the step is an optional extra (the probe can show its property without it). A failure
   * skips the dependents with the reason, gate or not, and is not a failed assertion.
   */
  required?: boolean;
}

/**
 * isDeepStrictEqual, with its common case done here: primitives, plain arrays (no holes, no other
 * own keys) and plain objects (Object.prototype or null prototype, no symbol keys), which is what
 * probes compare. Anything else (a Buffer, a Map, a Date, a class instance, a sparse array) is
 * isDeepStrictEqual's. Its first call loads and compiles Node's comparisons module (~0.7 ms),
 * and every call goes through its general checks.
 */
export function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return typeof a === 'object' && a !== null ? false : typeof b === 'object' && b !== null ? false : Object.is(a, b);
  }
  if (a === b) return true;
  if (depth > 32) return isDeepStrictEqual(a, b); // deep (or cyclic) data: its cycle checks
  const pa = Object.getPrototypeOf(a);
  if (pa !== Object.getPrototypeOf(b)) return false;
  if (pa === Array.prototype) {
    const x = a as unknown[], y = b as unknown[];
    if (!plainArray(x) || !plainArray(y)) return isDeepStrictEqual(a, b);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameValue(x[i], y[i], depth + 1)) return false;
    return true;
  }
  if ((pa !== Object.prototype && pa !== null) || Object.getOwnPropertySymbols(a).length || Object.getOwnPropertySymbols(b).length) return isDeepStrictEqual(a, b);
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !Object.prototype.propertyIsEnumerable.call(b, k)) return false;
    if (!sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)) return false;
  }
  return true;
}

function plainArray(x: unknown[]): boolean {
  return Object.keys(x).length === x.length && Object.getOwnPropertySymbols(x).length === 0;
}

/**
 * The value of a settled step, or its failure thrown here. A probe that asks for several things
 * side by side (Promise.allSettled) takes them in the order it records them, so the assertions
 * before a failed step are kept and the error is the first failure in that order, as when the
 * steps ran one after another.
 */
export function take<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** The modes a probe exists in. */
export function probeModes(def: ProbeDef): readonly Mode[] {
  return def.needs?.modes ?? ['privileged', 'rootless'];
}

export class ProbeUnsupported extends Error {}

/** The handle a probe works through. Everything it opens is closed by the runner. */
export class ProbeContext {
  readonly assertions: AssertionResult[] = [];
  readonly metrics: Record<string, number> = {};
  private readonly sandboxes: Sandbox[] = [];
  private readonly cleanups: (() => unknown)[] = [];
  private readonly afterClose: (() => unknown)[] = [];
  /** Entries in flight and closes of sandboxes that arrived after the probe was stopped. */
  private readonly entering = new Set<Promise<void>>();
  private stopped = false;
  /** Set once dispose() has run the cleanups (and, later, the after-close ones). */
  private cleaned = false;
  private closedAll = false;
  /** A short random token for names this run creates (hostnames, IPC keys, mount sources). */
  readonly token: string;

  /** Explains a failed helper step (the runner supplies one that asks the gates). */
  readonly explain: Explain;

  /**
   * The host side: every file, folder, link, stat, cgroup folder, clock or listener a probe reads
   * or makes on the host goes through it (never node:fs, node:os or the addon), so the same probe
   * code runs locally (LocalHost) and against a remote target (BoxHost over the agent).
   */
  readonly host: HostIf;

  constructor(
    readonly probe: ProbeDef,
    readonly mode: Mode,
    readonly timeoutMs: number,
    explain?: Explain,
    host?: HostIf,
  ) {
    this.host = host ?? localHost;
    this.token = Math.random().toString(36).slice(2, 10);
    this.explain = explain ?? defaultExplain;
  }

  /** Helper namespace types the kernel refused here (enterWithHelper): later entries leave them out. */
  private readonly withoutHelpers = new Set<NsType>();

  /** The namespaces of the main sandbox in this mode. */
  get namespaces(): NsType[] {
    return (this.probe.namespaces?.(this.mode) ?? [this.probe.namespace]).filter((n) => !this.withoutHelpers.has(n));
  }

  /** Enters the probe's namespaces (or `namespaces`) in this mode. */
  enter(opts: Partial<EnterOptions> = {}): Promise<Sandbox> {
    return this.adopt(enter({ namespaces: this.namespaces, mode: this.mode, timeoutMs: this.timeoutMs, ...opts }));
  }

  /**
   * Enters the probe's namespaces, of which `helper` is only a helper (the pid probe's mount
   * namespace for a fresh /proc). When the kernel refuses them and explain() puts it on the
   * helper type's own count limit (max_<helper>_namespaces), the probe's verdict is still about its
   * own namespace: it enters without the helper, and `dependents` are recorded skipped with that
   * gate. Any other refusal is thrown as before. Returns the sandbox and whether the helper is there.
   */
  async enterWithHelper(helper: NsType, dependents: readonly string[], side?: Side): Promise<{ sandbox: Sandbox; helper: boolean }> {
    try {
      return { sandbox: await this.enter(), helper: true };
    } catch (e) {
      if (!(e instanceof NsError)) throw e;
      const { gate, cause } = this.explain(e);
      if (gate !== `max_${helper}_namespaces` || helper === this.probe.namespace) throw e;
      this.withoutHelpers.add(helper);
      const sandbox = await this.enter();
      for (const d of dependents) this.skip(d, `no ${helper} namespace can be made here to do it in: ${cause}`, gate, side);
      return { sandbox, helper: false };
    }
  }

  /**
   * Tracks a sandbox still being created. After a timeout or Ctrl-C the probe's run() goes on
   * until its next request fails; a sandbox it gets after that is closed at once (so it cannot
   * create anything that no cleanup would remove), and dispose() waits for entries in flight.
   */
  private adopt(p: Promise<Sandbox>): Promise<Sandbox> {
    return this.pending(p.then((s) => this.track(s)));
  }

  /** Remembers work dispose() must wait for; returns it. */
  private pending<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(() => undefined, () => undefined);
    this.entering.add(settled);
    void settled.then(() => this.entering.delete(settled));
    return p;
  }

  /**
   * A process in the host's namespaces in this mode (rootless: only a user namespace of its own),
   * to look from the host side with the same requests the inside uses.
   */
  hostSide(): Promise<Sandbox> {
    return this.enter({ namespaces: [] });
  }

  /** A second process joining `target`'s namespaces (the user namespace too in rootless mode). */
  async join(target: Sandbox, namespaces?: NsType[], via: 'path' | 'pidfd' = 'path'): Promise<Sandbox> {
    const ns = [...(namespaces ?? target.namespaces)];
    if (target.mode === 'rootless' && !ns.includes('user')) ns.unshift('user');
    return this.adopt(join(target, { namespaces: ns, via, timeoutMs: this.timeoutMs }));
  }

  /** Tracks a sandbox made another way (e.g. forkServe) so it is closed with the probe. */
  track(s: Sandbox): Sandbox {
    if (this.stopped) {
      this.pending(s.close(0));
      throw new Error('the probe was stopped (timeout or interrupt)');
    }
    this.sandboxes.push(s);
    return s;
  }

  /**
   * Registers cleanup of state made through a sandbox (runs in reverse order while the sandboxes
   * still live, also after a failed assertion; after a timeout they may be gone already).
   */
  defer(fn: () => unknown): void {
    // After a timeout or Ctrl-C run() goes on until its next request fails; what it made in the
    // meantime (a host listener, say) must not wait for a dispose() that has already run: a
    // forgotten listening socket kept an interrupted CLI alive for good.
    if (this.cleaned) this.pending(Promise.resolve().then(fn));
    else this.cleanups.push(fn);
  }

  /** Registers cleanup that needs the probe's processes gone (e.g. removing a cgroup). */
  deferAfterClose(fn: () => unknown): void {
    if (this.closedAll) this.pending(Promise.resolve().then(fn));
    else this.afterClose.push(fn);
  }

  /** Records an assertion that `actual` deep-equals `expected`. */
  expect(name: string, actual: unknown, expected: unknown, side?: Side, note?: string): boolean {
    const ok = sameValue(actual, expected);
    this.assertions.push({ id: assertionId(this.probe.name, name), name, status: ok ? 'pass' : 'fail', expected, actual, side, ...(note ? { note } : {}) });
    return ok;
  }

  /** Records an assertion decided by `ok`, with what was expected and seen. */
  check(name: string, ok: boolean, expected: unknown, actual: unknown, side?: Side, note?: string): boolean {
    this.assertions.push({ id: assertionId(this.probe.name, name), name, status: ok ? 'pass' : 'fail', expected, actual, side, ...(note ? { note } : {}) });
    return ok;
  }

  /**
   * Records that a request step succeeded. On failure the assertion reads as the step's sentence,
   * e.g. expected "mount proc on /proc: ok", got "mount proc on /proc: EPERM".
   */
  expectOk(name: string, result: Outcome<unknown>, side?: Side, note?: string): boolean {
    return this.check(name, result.ok, `${result.step}: ok`, result.sentence, side, note);
  }

  /** Records that a request step failed with exactly this errno (a name such as 'EPERM', or a number). */
  expectErrno(name: string, result: Outcome<unknown>, errno: string | number, side?: Side, note?: string): boolean {
    const want = typeof errno === 'number' ? errno : errnoNumber(errno);
    const wantName = typeof errno === 'string' ? errno : result.errno === errno ? result.code : `errno ${errno}`;
    return this.check(name, !result.ok && result.errno === want, `${result.step}: ${wantName}`, result.ok ? `${result.step}: succeeded` : result.sentence, side, note);
  }

  /** Records an assertion that could not be checked here, with the reason and the gate that explains it. */
  skip(name: string, reason: string, gate?: string | null, side?: Side): void {
    this.assertions.push({ id: assertionId(this.probe.name, name), name, status: 'skipped', expected: null, actual: null, ...(side ? { side } : {}), reason, gate: gate ?? null });
  }

  /**
   * A helper step the dependent assertions need (a fresh /proc mount, a sysctl write, a second
   * user namespace level). With `name`, the step is itself an assertion in every run (pass,
   * skipped or fail), so the set of assertions is the same wherever the probe runs.
   * Succeeded: returns true. Failed: when explain() names a gate, the step and its dependents are
   * recorded skipped with that reason and gate (the probe could not show them here); when no gate
   * explains it, the step is a failed assertion (a real failure) and the dependents are skipped
   * as not checked. Returns false either way.
   */
  helper(result: Outcome<unknown>, dependents: readonly string[], opts: HelperOptions = {}): boolean {
    if (result.ok) {
      if (opts.name) this.expectOk(opts.name, result, opts.side);
      return true;
    }
    const err = result.error();
    const { gate, cause } = this.explain(err);
    // With a gate the reason names both the step and the gate's cause; without one, the step alone
    // (the runner's "no known gate" sentence adds nothing a person can act on).
    const why = gate && cause && cause !== err.message ? `${err.message} (${cause})` : err.message;
    if (gate || opts.required === false) {
      for (const d of [...(opts.name ? [opts.name] : []), ...dependents]) this.skip(d, why, gate, opts.side);
      return false;
    }
    this.check(opts.name ?? result.step, false, `${result.step}: ok`, result.sentence, opts.side);
    for (const d of dependents) this.skip(d, `not checked: ${err.message}`, null, opts.side);
    return false;
  }

  metric(name: string, value: number): void {
    this.metrics[name] = value;
  }

  /** Kills every sandbox at once (timeout, Ctrl-C). */
  killAll(): void {
    this.stopped = true;
    for (const s of this.sandboxes) if (!s.isClosed) s.killNow();
  }

  /** Runs cleanups, closes sandboxes (newest first), runs after-close cleanups; never throws. */
  async dispose(): Promise<void> {
    this.cleaned = true; // from now on a new cleanup runs at once
    await runAll(this.cleanups);
    this.stopped = true;
    // A sandbox entered meanwhile is closed by track(); wait for it before after-close cleanups
    // (a child still in a cgroup keeps it from being removed).
    while (this.entering.size) await Promise.all(this.entering);
    for (const s of [...this.sandboxes].reverse()) {
      try {
        await s.close();
      } catch {
        // already gone
      }
    }
    this.closedAll = true;
    await runAll(this.afterClose);
  }
}

async function runAll(fns: (() => unknown)[]): Promise<void> {
  for (const fn of fns.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // best effort: the residue checker reports what is left
    }
  }
}

// `<probe>.<slug of the name>` (src/model.ts: report.json v2 leaves it out where it is this).
export { assertionId };
