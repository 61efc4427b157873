// What a probe module declares, and the context the runner hands it. A probe says which
// namespaces it needs and what it asserts; the runner enters, times, skips, diagnoses and reports.
import { isDeepStrictEqual } from 'node:util';
import type { AssertionResult, Mode, NsType, Side } from './model.js';
import { enter, join, type EnterOptions, type Sandbox } from './sandbox.js';

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

  constructor(
    readonly probe: ProbeDef,
    readonly mode: Mode,
    readonly timeoutMs: number,
  ) {
    this.token = Math.random().toString(36).slice(2, 10);
  }

  /** The namespaces of the main sandbox in this mode. */
  get namespaces(): NsType[] {
    return this.probe.namespaces?.(this.mode) ?? [this.probe.namespace];
  }

  /** Enters the probe's namespaces (or `namespaces`) in this mode. */
  enter(opts: Partial<EnterOptions> = {}): Promise<Sandbox> {
    return this.adopt(enter({ namespaces: this.namespaces, mode: this.mode, timeoutMs: this.timeoutMs, ...opts }));
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
    const ok = isDeepStrictEqual(actual, expected);
    this.assertions.push({ id: assertionId(this.probe.name, name), name, status: ok ? 'pass' : 'fail', expected, actual, side, ...(note ? { note } : {}) });
    return ok;
  }

  /** Records an assertion decided by `ok`, with what was expected and seen. */
  check(name: string, ok: boolean, expected: unknown, actual: unknown, side?: Side, note?: string): boolean {
    this.assertions.push({ id: assertionId(this.probe.name, name), name, status: ok ? 'pass' : 'fail', expected, actual, side, ...(note ? { note } : {}) });
    return ok;
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

/** `<probe>.<slug of the name>`: stable as long as the name holds no value of the run. */
export function assertionId(probe: string, name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80);
  return `${probe}.${slug || 'assertion'}`;
}
