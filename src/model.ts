// The result model: what a run produces and every report writer consumes.
// report.json is this structure serialised, less what can be derived (src/report/v2.ts: schemaVersion 2
// leaves out an assertion's id where it is `<probe>.<slug>` and `expected` where it equals `actual`);
// schema/report.schema.json describes the file. Change both together and bump SCHEMA_VERSION when a
// reader of an older report would misread a newer one; src/report/validate.ts reads every version since 1.

export const SCHEMA_VERSION = 2;

export { NS_TYPES, type NsType } from './namespaces.js';
import type { NsType } from './namespaces.js';

export const MODES = ['privileged', 'rootless'] as const;
export type Mode = (typeof MODES)[number];

export type ProbeStatus = 'pass' | 'fail' | 'unsupported' | 'error';
/**
 * pass/fail: the property was checked. skipped: it could not be checked here (a helper step the
 * environment blocks, or something nsprobe cannot observe from where it runs); `reason` says why
 * and `gate` names the gate that explains it, if one does. A probe whose assertions all pass or
 * are skipped passes; its verdict rests on what it could show.
 */
export type AssertionStatus = 'pass' | 'fail' | 'skipped';

/** Which side of the namespace boundary an observation was made from. */
export type Side = 'inside' | 'host' | 'sibling' | 'control';

export interface AssertionResult {
  /**
   * Stable id, the same in every run on every host (`<probe>.<slug>`, e.g. "uts.sethostname-inside-not-seen-by-host"):
   * CI dashboards track assertions by it. Values of the run (pids, random names) never go into it or into `name`.
   */
  id: string;
  /** Short sentence naming the property, e.g. "hostname set inside is not seen by the host". */
  name: string;
  status: AssertionStatus;
  expected: unknown;
  actual: unknown;
  side?: Side;
  /** Extra context for a person (never needed to judge the status). */
  note?: string;
  /** For skipped: why it could not be checked here, in one sentence. */
  reason?: string;
  /** For skipped (or a failed helper step): the gate that explains it, when one does. */
  gate?: string | null;
}

/** Stage of entering or acting inside that failed; mirrors the addon's NsError.stage. */
export type Stage =
  | 'clone'
  | 'setgroups'
  | 'gid_map'
  | 'uid_map'
  | 'setuid'
  | 'setns'
  | 'timens_offsets'
  | 'cgroup'
  | 'request'
  | 'timeout'
  | 'needs';

export interface ProbeResult {
  /** `<probe>/<mode>`, e.g. "uts/privileged", "net-veth/rootless". */
  id: string;
  /** The probe's name (equals the namespace for the eight basic probes, e.g. "net-veth" for deep ones). */
  probe: string;
  /** Namespace type the probe is about. */
  namespace: NsType;
  mode: Mode;
  status: ProbeStatus;
  durationMs: number;
  assertions: AssertionResult[];
  /** When entering or a request failed: the errno number, its name, the stage and the syscall. */
  errno?: number;
  code?: string;
  stage?: Stage;
  syscall?: string;
  /** For every non-pass: what happened, in one sentence a person understands. */
  cause?: string;
  /** For unsupported/error: what to run to fix it (may be several lines). */
  remedy?: string;
  /** Id of the gate that explains a non-pass, or null when no known gate explains it. */
  gate?: string | null;
  /** Numbers a probe measured (e.g. nesting depth), keyed by name. */
  metrics?: Record<string, number>;
}

export type GateStatus = 'ok' | 'warn' | 'blocked' | 'unknown';

export interface Gate {
  /** Stable id, e.g. "max_user_namespaces", "apparmor_userns", "seccomp". */
  id: string;
  status: GateStatus;
  /** What was read (a number, a string, an object); null when nothing could be read. */
  value: unknown;
  /** Probe ids (`<probe>/<mode>`) or `<namespace>/<mode>` this gate can block. */
  affects: string[];
  cause: string;
  /** Exact commands to run now, and how to make it last across reboots. Empty when status is ok. */
  remedy: string;
  /** What this run saw the gate do: probes it blocked, with the failing stage and errno. */
  evidence?: GateEvidence[];
}

export interface GateEvidence {
  /** Probe id, e.g. "uts/rootless". */
  probe: string;
  stage: string;
  syscall?: string;
  code?: string;
}

export interface HostFacts {
  hostname: string;
  kernel: { release: string; version: string };
  distro: { id: string; versionId: string; idLike?: string[]; name: string };
  arch: string;
  euid: number;
  egid?: number;
  /** Effective capability mask as a hex string (from /proc/self/status CapEff). */
  capEff?: string;
  /** Whether euid 0 holds CAP_SYS_ADMIN in the init user namespace. */
  privileged?: boolean;
  /** Whether this process holds CAP_SYS_ADMIN in its own user namespace: what privileged mode needs. */
  capSysAdmin?: boolean;
  /** The user namespace nsprobe runs in (privileged verdicts apply to it). */
  userNs?: {
    /** true: the initial one (uid_map is the identity over every id); false: a nested one; null: unknown. */
    initial: boolean | null;
    /** /proc/self/uid_map as one line ("0 1000 1"), when readable. */
    uidMap: string | null;
    /** The parent namespace's uid that uid 0 here stands for, when uid 0 is mapped. */
    rootIsParentUid?: number | null;
  };
  /** Resource limits of this process (soft values; null: unlimited), from /proc/self/limits. */
  limits?: { nproc: number | null; nofile: number | null; as: number | null };
  /** Nesting level of the current user namespace below the initial one (0 = initial), when known. */
  userNsLevel?: number | null;
  container?: { detected: boolean; kind: string | null; evidence: string[] };
  chroot?: boolean | null;
  seccomp?: { mode: number | null; filters: number | null; noNewPrivs: boolean | null };
  lsms?: string[] | null;
  cgroupVersion?: 'v1' | 'v2' | 'hybrid' | 'unknown';
  rootMountShared?: boolean | null;
  nodeVersion?: string;
}

export interface Summary {
  pass: number;
  fail: number;
  unsupported: number;
  error: number;
}

export interface Report {
  schemaVersion: number;
  tool: { name: 'nsprobe'; version: string };
  startedAt: string;
  durationMs: number;
  host: HostFacts;
  gates: Gate[];
  probes: ProbeResult[];
  summary: Summary;
  /** Notes for a person about the run as a whole (a mode left out, debris removed, ...). */
  notes?: string[];
  /** Each mode asked for: whether it ran, and if not, why (once, instead of one result per probe). */
  modes?: ModeRun[];
  /** Will bubblewrap, rootless podman, ... work here, for whom, and if not what to change (src/consumers.ts). */
  consumers?: ConsumerVerdict[];
}

/** One consumer's predicted verdict (issue 15). */
export interface ConsumerVerdict {
  /** Consumer id, e.g. "bwrap", "podman-rootless". */
  id: string;
  name: string;
  /** The invocation the verdict is about. */
  command: string;
  /** works; degraded: runs with `fallback`, printing `warning`; blocked: fails with `error`. */
  status: 'works' | 'degraded' | 'blocked';
  /** The user the prediction is for. */
  for: { user: string; uid: number; root: boolean };
  /** Probe results (`<probe>/<mode>`) and gates the verdict rests on, with their status. */
  restsOn: { probes: Array<{ id: string; status: string }>; gates: Array<{ id: string; status: string }> };
  cause: string;
  /** For blocked: what stops it first (EPERM, ENOSPC, uid_map, proc, subid, helper, not-root, ...). */
  blocker?: string;
  /** For blocked: the line the consumer itself prints. */
  error?: string;
  fallback?: string;
  warning?: string;
  remedy?: string;
  /** The program when installed (path and the first line of --version); null when not found. */
  installed: { path: string; version: string | null } | null;
}

export interface ModeRun {
  mode: Mode;
  /** run: probes were planned in this mode; skipped: none was, for `reason`. */
  status: 'run' | 'skipped';
  reason?: string;
  /** The user namespace this mode's verdicts apply to, in words ("the initial user namespace", ...). */
  scope: string;
}

/**
 * An assertion's id, `<probe>.<slug of the name>`: stable as long as the name holds no value of
 * the run. report.json (schemaVersion 2) leaves an id out when it is this; readers fill it back in.
 */
export function assertionId(probe: string, name: string): string {
  const key = `${probe}\0${name}`;
  let id = assertionIds.get(key);
  if (id === undefined) {
    const slug = name.toLowerCase().replace(NOT_SLUG, '-').replace(EDGE_DASHES, '').slice(0, 80);
    id = `${probe}.${slug || 'assertion'}`;
    // Names repeat in every report (reading a fleet's makes the same ids thousands of times); bounded.
    if (assertionIds.size >= 20000) assertionIds.clear();
    assertionIds.set(key, id);
  }
  return id;
}
const assertionIds = new Map<string, string>();
// Made once: a regex literal in the function was a new RegExp per call, each starting in V8's
// regexp interpreter again (472 ids of a suite run: 4.7 ms so, 0.7 ms with these).
const NOT_SLUG = /[^a-z0-9]+/g;
const EDGE_DASHES = /^-+|-+$/g;

export function summarize(probes: ProbeResult[]): Summary {
  const s: Summary = { pass: 0, fail: 0, unsupported: 0, error: 0 };
  for (const p of probes) s[p.status]++;
  return s;
}
