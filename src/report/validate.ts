// Validates a parsed report.json against schema/report.schema.json, plus the consistency
// rules a JSON Schema cannot express (id = probe/mode, summary = counts of probes).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { SCHEMA_VERSION, summarize } from '../model.js';
import type { Report } from '../model.js';
import { packageRoot, SCHEMA_PATH } from '../paths.js';

export { packageRoot };

export type ValidationResult = { ok: true; report: Report } | { ok: false; error: string };


let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const schema = JSON.parse(readFileSync(join(packageRoot(), SCHEMA_PATH), 'utf8')) as object;
    // The schema's patterns are ASCII: no 'u' flag, whose regexps are slower (one per assertion id, ~470 a report).
    compiled = new Ajv({ allErrors: false, unicodeRegExp: false }).compile(schema);
  }
  return compiled;
}

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

function describeAjvError(e: ErrorObject): string {
  const where = named(e.instancePath || '/');
  const params = e.params as Record<string, unknown>;
  let detail = '';
  if (e.keyword === 'additionalProperties') detail = ` (${named(String(params.additionalProperty))})`;
  else if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) detail = ` (${params.allowedValues.join(', ')})`;
  else if (e.keyword === 'const') detail = ` (${JSON.stringify(params.allowedValue)})`;
  return `${where} ${e.message ?? 'is invalid'}${detail}`;
}

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

export function validateReport(obj: unknown): ValidationResult {
  const identity = checkIdentity(obj);
  if (identity) return { ok: false, error: identity };
  const validate = validator();
  if (!validate(obj)) {
    const first = validate.errors?.[0];
    return { ok: false, error: first ? describeAjvError(first) : 'does not match the report schema' };
  }
  const report = obj as Report;
  const inconsistency = checkConsistency(report);
  if (inconsistency) return { ok: false, error: inconsistency };
  return { ok: true, report };
}

/** Deepest nesting of arrays and objects accepted (a report is about 8 deep). */
export const MAX_DEPTH = 64;

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
  // Two parallel stacks and no Object.values() copy: merge walks every object of thousands of reports.
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
 * Parses and validates the text of a report.json. Errors say what is wrong and where, and never
 * quote the file (it may not be a report at all, but someone's secret behind a name).
 */
export function parseReport(text: string): ValidationResult {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text around the error: say only where it is.
    const at = /position (\d+)/.exec(e instanceof Error ? e.message : '');
    const where = at ? ` at character ${at[1]}` : text.trim() === '' ? ' (empty)' : '';
    return { ok: false, error: `not valid JSON (truncated or corrupt?)${where}` };
  }
  // V8's JSON.parse does not recurse, so the depth is checked on the parsed value: a walk over its
  // containers, far cheaper than a scan of every character (merge reads thousands of reports).
  if (valueDepth(obj, MAX_DEPTH) > MAX_DEPTH) return { ok: false, error: `nested more than ${MAX_DEPTH} levels deep: not an nsprobe report` };
  try {
    return validateReport(obj);
  } catch (e) {
    if (e instanceof RangeError) return { ok: false, error: 'too deeply nested to check: not an nsprobe report' };
    throw e;
  }
}
