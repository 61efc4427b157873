// Reads report.json: schemaVersion 2 (what nsprobe writes, schema/report.schema.json) and 1 (what
// earlier releases wrote, schema/report.v1.schema.json). The check is written out by hand from
// those schemas (test/report-schema.test.ts holds it to them with Ajv on every fixture and on
// mutations of them): one pass over the parsed value, no generic schema walk, no separate depth
// walk. Then the rules a JSON Schema cannot express (id = probe/mode, summary = counts of
// probes), then the parts v2 leaves out are filled back in (src/report/v2.ts), so every reader
// of a parsed report sees the full model of src/model.ts.

import { assertionId, SCHEMA_VERSION, summarize } from '../model.js';
import type { Report } from '../model.js';
import { packageRoot } from '../paths.js';

export { packageRoot };

export type ValidationResult = { ok: true; report: Report } | { ok: false; error: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rejects non-reports and newer reports with a message a person can act on. */
function checkIdentity(obj: unknown): string | undefined {
  if (!isRecord(obj)) return 'not an nsprobe report (expected a JSON object)';
  const tool = obj.tool;
  const toolName = isRecord(tool) ? tool.name : undefined;
  const version = obj.schemaVersion;
  if (toolName !== 'nsprobe' && version === undefined) return 'not an nsprobe report (no tool.name "nsprobe", no schemaVersion)';
  if (toolName !== undefined && toolName !== 'nsprobe') return 'not an nsprobe report (tool.name is not "nsprobe")';
  if (typeof version === 'number' && Number.isInteger(version) && version > SCHEMA_VERSION) {
    return `schemaVersion ${version} is newer than this nsprobe understands (${SCHEMA_VERSION})`;
  }
  return undefined;
}

/** A name from the file (a key, a path of keys), cut short: an error names where, never quotes what. */
function named(s: string): string {
  return s.length <= 80 ? s : `${s.slice(0, 79)}…`;
}

// ---------------------------------------------------------------- the checks
// Each check returns undefined or the first problem, worded as Ajv words it (tests and people
// knew those messages): "<path> must have required property 'x'", "... must be string", ...

/** A problem found: thrown through the walk, caught once in validateReport (no result objects per value). */
class Invalid extends Error {}

/**
 * Where the walk is: the keys and indexes down to the value being checked. Pushed and popped
 * around each child, joined only for an error (building a path string for every value cost as
 * much as the check itself).
 */
const trail: Array<string | number> = [];

/** `where`: a key below the value being checked, when the problem is there. */
function fail(message: string, where?: string): never {
  const path = trail.length || where !== undefined ? `/${[...trail, ...(where === undefined ? [] : [where])].join('/')}` : '/';
  throw new Invalid(`${named(path)} ${message}`);
}

type Check = (v: unknown) => void;

/** Deepest nesting a free-form value (expected, actual, a gate's value) may have below its own place. */
const FREE_DEPTH = 48;

const anyValue: Check = (v) => {
  if (typeof v === 'object' && v !== null && valueDepth(v, FREE_DEPTH) > FREE_DEPTH) fail(`is nested more than ${FREE_DEPTH} levels deep: not an nsprobe report`);
};

const string: Check = (v) => {
  if (typeof v !== 'string') fail('must be string');
};
const nonEmptyString: Check = (v) => {
  if (typeof v !== 'string') fail('must be string');
  if (v.length < 1) fail('must NOT have fewer than 1 characters');
};
const boolean: Check = (v) => {
  if (typeof v !== 'boolean') fail('must be boolean');
};
const nullableBoolean: Check = (v) => {
  if (v !== null && typeof v !== 'boolean') fail('must be boolean,null');
};
const nullableString: Check = (v) => {
  if (v !== null && typeof v !== 'string') fail('must be string,null');
};
const nullableInteger: Check = (v) => {
  if (v !== null && !Number.isInteger(v)) fail('must be integer,null');
};
const count: Check = (v) => {
  if (!Number.isInteger(v)) fail('must be integer');
  if ((v as number) < 0) fail('must be >= 0');
};
const duration: Check = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail('must be number');
  if (v < 0) fail('must be >= 0');
};

function pattern(re: RegExp, source: string): Check {
  return (v) => {
    if (typeof v !== 'string') fail('must be string');
    if (!re.test(v)) fail(`must match pattern "${source}"`);
  };
}

function oneOf(values: readonly string[]): Check {
  const set = new Set<unknown>(values);
  const detail = ` (${values.join(', ')})`;
  return (v) => {
    if (!set.has(v)) fail(`must be equal to one of the allowed values${detail}`);
  };
}

function constant(value: unknown): Check {
  return (v) => {
    if (v !== value) fail(`must be equal to constant (${JSON.stringify(value)})`);
  };
}

function array(item: Check): Check {
  return (v) => {
    if (!Array.isArray(v)) fail('must be array');
    for (let i = 0; i < v.length; i++) {
      trail.push(i);
      item(v[i]);
      trail.pop();
    }
  };
}

const strings = array(string);

/** An object with these properties (a `?` after a name: optional) and no others. */
function object(shape: Record<string, Check>): Check {
  const props = Object.create(null) as Record<string, Check | undefined>;
  const required: string[] = [];
  for (const [k, check] of Object.entries(shape)) {
    const optional = k.endsWith('?');
    const name = optional ? k.slice(0, -1) : k;
    props[name] = check;
    if (!optional) required.push(name);
  }
  return (v) => {
    if (!isRecord(v)) fail('must be object');
    for (const k of required) if (v[k] === undefined && !Object.hasOwn(v, k)) fail(`must have required property '${k}'`);
    for (const k in v) {
      const check = props[k];
      if (!check) fail(`must NOT have additional properties (${named(k)})`);
      trail.push(k);
      check(v[k]);
      trail.pop();
    }
  };
}

const NAMESPACES = ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time'] as const;
const MODE_NAMES = ['privileged', 'rootless'] as const;
const mode = oneOf(MODE_NAMES);

const host = object({
  hostname: string,
  kernel: object({ release: string, version: string }),
  distro: object({ id: string, versionId: string, 'idLike?': strings, name: string }),
  arch: string,
  euid: count,
  'egid?': count,
  'capEff?': pattern(/^[0-9a-fA-F]+$/, '^[0-9a-fA-F]+$'),
  'privileged?': boolean,
  'capSysAdmin?': boolean,
  'userNs?': object({ initial: nullableBoolean, uidMap: nullableString, 'rootIsParentUid?': nullableInteger }),
  'limits?': object({ nproc: nullableInteger, nofile: nullableInteger, as: nullableInteger }),
  'userNsLevel?': nullableInteger,
  'container?': object({ detected: boolean, kind: nullableString, evidence: strings }),
  'chroot?': nullableBoolean,
  'seccomp?': object({ mode: nullableInteger, filters: nullableInteger, noNewPrivs: nullableBoolean }),
  'lsms?': (v) => (v === null ? undefined : Array.isArray(v) ? strings(v) : fail('must be array,null')),
  'cgroupVersion?': oneOf(['v1', 'v2', 'hybrid', 'unknown']),
  'rootMountShared?': nullableBoolean,
  'nodeVersion?': string,
});

const gate = object({
  id: nonEmptyString,
  status: oneOf(['ok', 'warn', 'blocked', 'unknown']),
  value: anyValue,
  affects: strings,
  cause: string,
  remedy: string,
  'evidence?': array(object({ probe: string, stage: string, 'syscall?': string, 'code?': string })),
});

const ASSERTION_ID = /^[a-z0-9-]+\.[a-z0-9-]+$/;
const assertionStatus = oneOf(['pass', 'fail', 'skipped']);
const side = oneOf(['inside', 'host', 'sibling', 'control']);

/** Checks a child value at key k, with k on the trail. */
function at(k: string, check: Check, x: unknown): void {
  trail.push(k);
  check(x);
  trail.pop();
}

/** The hot path (about 470 a full report): written out rather than made by object(). */
function assertion(v: unknown, v1: boolean): void {
  if (!isRecord(v)) fail('must be object');
  // JSON.parse makes plain objects: every key for-in sees is their own (a null value is still there).
  if (v.name === undefined) fail("must have required property 'name'");
  if (v.status === undefined) fail("must have required property 'status'");
  if (v1 && !('expected' in v)) fail("must have required property 'expected'");
  if (!('actual' in v)) fail("must have required property 'actual'");
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'id':
        if (typeof x !== 'string') fail('must be string', 'id');
        if (!ASSERTION_ID.test(x)) fail(`must match pattern "${ASSERTION_ID.source}"`, 'id');
        break;
      case 'name':
        if (typeof x !== 'string') fail('must be string', 'name');
        if (x.length < 1) fail('must NOT have fewer than 1 characters', 'name');
        break;
      case 'status':
        if (x !== 'pass' && x !== 'fail' && x !== 'skipped') at('status', assertionStatus, x);
        break;
      case 'expected':
      case 'actual':
        if (typeof x === 'object' && x !== null) at(k, anyValue, x);
        break;
      case 'side':
        at('side', side, x);
        break;
      case 'note':
      case 'reason':
        if (typeof x !== 'string') fail('must be string', k);
        break;
      case 'gate':
        if (x !== null && typeof x !== 'string') fail('must be string,null', 'gate');
        break;
      default:
        fail(`must NOT have additional properties (${named(k)})`);
    }
  }
}

const PROBE_ID = /^[a-z0-9-]+\/(privileged|rootless)$/;
const probeFields = object({
  id: pattern(PROBE_ID, PROBE_ID.source),
  probe: pattern(/^[a-z0-9-]+$/, '^[a-z0-9-]+$'),
  namespace: oneOf(NAMESPACES),
  mode,
  status: oneOf(['pass', 'fail', 'unsupported', 'error']),
  durationMs: duration,
  assertions: () => undefined, // checked by probe() below, with the version
  'errno?': count,
  'code?': string,
  'stage?': oneOf(['clone', 'setgroups', 'gid_map', 'uid_map', 'setuid', 'setns', 'timens_offsets', 'cgroup', 'request', 'timeout', 'needs']),
  'syscall?': string,
  'cause?': string,
  'remedy?': string,
  'gate?': nullableString,
  'metrics?': (v) => {
    if (!isRecord(v)) fail('must be object');
    for (const k in v) if (Object.hasOwn(v, k) && (typeof v[k] !== 'number' || !Number.isFinite(v[k]))) fail('must be number', k);
  },
});

const assertionsOf = { 1: array((a) => assertion(a, true)), 2: array((a) => assertion(a, false)) } as const;

function probe(v: unknown, v1: boolean): void {
  probeFields(v);
  trail.push('assertions');
  assertionsOf[v1 ? 1 : 2]((v as { assertions: unknown }).assertions);
  trail.pop();
}

const idStatus = object({ id: string, status: string });
const installedObject = object({ path: string, version: nullableString });
const consumer = object({
  id: nonEmptyString,
  name: string,
  command: string,
  status: oneOf(['works', 'degraded', 'blocked']),
  for: object({ user: string, uid: count, root: boolean }),
  restsOn: object({ probes: array(idStatus), gates: array(idStatus) }),
  cause: string,
  'blocker?': string,
  'error?': string,
  'fallback?': string,
  'warning?': string,
  'remedy?': string,
  installed: (v) => {
    if (v === null) return;
    if (!isRecord(v)) fail('must match exactly one schema in oneOf');
    installedObject(v);
  },
});

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function top(version: 1 | 2): Check {
  const v1 = version === 1;
  return object({
    schemaVersion: constant(version),
    tool: object({ name: constant('nsprobe'), version: nonEmptyString }),
    startedAt: pattern(TIMESTAMP, TIMESTAMP.source),
    durationMs: duration,
    host,
    gates: array(gate),
    probes: array((p) => probe(p, v1)),
    summary: object({ pass: count, fail: count, unsupported: count, error: count }),
    'notes?': strings,
    'modes?': array(object({ mode, status: oneOf(['run', 'skipped']), 'reason?': string, scope: string })),
    'consumers?': array(consumer),
  });
}

const CHECKS = { 1: top(1), 2: top(2) } as const;

function checkConsistency(r: Report): string | undefined {
  for (const [i, p] of r.probes.entries()) {
    // id, probe and mode passed the schema's patterns ([a-z0-9-], an enum): safe to quote.
    if (p.id !== `${p.probe}/${p.mode}`) return `/probes/${i}/id "${p.id}" does not match probe/mode "${p.probe}/${p.mode}"`;
  }
  const ids = new Set<string>();
  for (const p of r.probes) {
    if (ids.has(p.id)) return `probe ${p.id} appears more than once`;
    ids.add(p.id);
  }
  const expected = summarize(r.probes);
  for (const k of ['pass', 'fail', 'unsupported', 'error'] as const) {
    if (r.summary[k] !== expected[k]) return `/summary/${k} is ${r.summary[k]} but ${expected[k]} probes have status ${k}`;
  }
  return undefined;
}

export interface ReadOptions {
  /**
   * Fill in what schemaVersion 2 leaves out (each assertion's derivable id, an `expected` equal
   * to `actual`), so the report is the full model. Default true; merge, which reads neither,
   * says false.
   */
  expand?: boolean;
}

/**
 * Checks a parsed report.json (v1 or v2) and returns it as the full model. The value is taken
 * over, not copied: expanding fills in the parsed objects themselves.
 */
export function validateReport(obj: unknown, opts: ReadOptions = {}): ValidationResult {
  const identity = checkIdentity(obj);
  if (identity) return { ok: false, error: identity };
  const version = (obj as { schemaVersion: unknown }).schemaVersion;
  // An unknown version: checked as the current one, so the message names schemaVersion.
  const check = version === 1 ? CHECKS[1] : CHECKS[2];
  trail.length = 0;
  try {
    check(obj);
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    if (e instanceof RangeError) return { ok: false, error: 'too deeply nested to check: not an nsprobe report' };
    throw e;
  }
  const report = obj as Report;
  const inconsistency = checkConsistency(report);
  if (inconsistency) return { ok: false, error: inconsistency };
  if (opts.expand !== false) expandReport(report);
  return { ok: true, report };
}

/**
 * Fills in, in place, what schemaVersion 2 leaves out: an assertion without `id` gets
 * `<probe>.<slug of its name>`, one without `expected` gets its `actual`. A v1 report has both.
 */
export function expandReport(r: Report): Report {
  for (const p of r.probes) {
    const list = p.assertions;
    for (let i = 0; i < list.length; i++) {
      const a = list[i];
      if (a.id !== undefined && Object.hasOwn(a, 'expected')) continue;
      // Rebuilt in the model's key order (id, name, status, expected, actual, ...), as a v1 report has it.
      const { id, name, status, expected, actual, ...rest } = a;
      list[i] = { id: id ?? assertionId(p.probe, name), name, status, expected: Object.hasOwn(a, 'expected') ? expected : actual, actual, ...rest };
    }
  }
  return r;
}

/**
 * The report in a report.json text nsprobe wrote (`--json` output, a report folder), as the full
 * model, for tests and tools that read one: JSON.parse() alone gives v2's short form, where
 * derivable ids and expected values are left out. Throws when the text is not a valid report.
 */
export function reportFromJson(text: string): Report {
  const v = parseReport(text);
  if (!v.ok) throw new Error(`not a valid report.json: ${v.error}`);
  return v.report;
}

/** How deeply `text` nests [ and { outside strings, stopping once past `limit` (a linear scan, no recursion). */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** How deeply a parsed JSON value nests arrays and objects, stopping once past `limit` (no recursion). */
export function valueDepth(value: unknown, limit = Infinity): number {
  if (typeof value !== 'object' || value === null) return 0;
  // Two parallel stacks and no Object.values() copy.
  const values: object[] = [value];
  const depths: number[] = [1];
  let max = 0;
  while (values.length) {
    const v = values.pop()!;
    const d = depths.pop()!;
    if (d > max) {
      max = d;
      if (max > limit) return max;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const c: unknown = v[i];
        if (typeof c === 'object' && c !== null) values.push(c), depths.push(d + 1);
      }
    } else {
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        const c: unknown = (v as Record<string, unknown>)[k];
        if (typeof c === 'object' && c !== null) values.push(c), depths.push(d + 1);
      }
    }
  }
  return max;
}

/**
 * Parses and validates the text of a report.json (v1 or v2). Errors say what is wrong and where,
 * and never quote the file (it may not be a report at all, but someone's secret behind a name).
 */
export function parseReport(text: string, opts: ReadOptions = {}): ValidationResult {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text around the error: say only where it is.
    const at = /position (\d+)/.exec(e instanceof Error ? e.message : '');
    const where = at ? ` at character ${at[1]}` : text.trim() === '' ? ' (empty)' : '';
    return { ok: false, error: `not valid JSON (truncated or corrupt?)${where}` };
  }
  // V8's JSON.parse does not recurse. The checks walk a report's fixed shape, which is a few
  // levels deep; only free-form values (expected, actual, a gate's value) can nest further, and
  // each of those is bounded where it is checked. Nothing else walks the value recursively.
  return validateReport(obj, opts);
}
