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
    compiled = new Ajv({ allErrors: false }).compile(schema);
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
  if (toolName !== undefined && toolName !== 'nsprobe') return `not an nsprobe report (tool.name is ${JSON.stringify(toolName)})`;
  if (typeof version === 'number' && Number.isInteger(version) && version > SCHEMA_VERSION) {
    return `schemaVersion ${version} is newer than this nsprobe understands (${SCHEMA_VERSION})`;
  }
  return undefined;
}

function describeAjvError(e: ErrorObject): string {
  const where = e.instancePath || '/';
  const params = e.params as Record<string, unknown>;
  let detail = '';
  if (e.keyword === 'additionalProperties') detail = ` (${String(params.additionalProperty)})`;
  else if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) detail = ` (${params.allowedValues.join(', ')})`;
  else if (e.keyword === 'const') detail = ` (${JSON.stringify(params.allowedValue)})`;
  return `${where} ${e.message ?? 'is invalid'}${detail}`;
}

function checkConsistency(r: Report): string | undefined {
  for (const [i, p] of r.probes.entries()) {
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
