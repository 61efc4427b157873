// report.json schemaVersion 2: the model of src/model.ts less what a reader can derive, so a
// fleet's reports are about half the size to store, copy and parse (`nsprobe merge` of 10,000
// hosts spent most of its time in JSON.parse). Left out, and filled back in by
// src/report/validate.ts expandReport():
//   - an assertion's `id` where it is `<probe>.<slug of its name>` (assertionId(), every id nsprobe
//     makes today; an id that is not, from an older or other writer, is kept);
//   - an assertion's `expected` where it equals its `actual` (as JSON: same keys in the same order),
//     which is most passing checks.
// Everything else stays, named as in v1, so jq filters on probes, gates, statuses and causes keep working.

import { assertionId, SCHEMA_VERSION, type AssertionResult, type Report } from '../model.js';

/** Whether a and b are the same JSON (expected/actual are plain JSON values from a probe). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return a !== undefined;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One assertion as v2 writes it, keys in the model's order. */
export function compactAssertion(probe: string, a: AssertionResult): Partial<AssertionResult> {
  const dropId = a.id === assertionId(probe, a.name);
  const dropExpected = sameJson(a.expected, a.actual);
  if (!dropId && !dropExpected) return a;
  const out: Record<string, unknown> = {};
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    if ((k === 'id' && dropId) || (k === 'expected' && dropExpected)) continue;
    out[k] = (a as unknown as Record<string, unknown>)[k];
  }
  return out as Partial<AssertionResult>;
}

/** The report as report.json v2 holds it (a new object; `r` is not changed). */
export function reportDocument(r: Report): Omit<Report, 'probes'> & { probes: Array<Omit<Report['probes'][number], 'assertions'> & { assertions: Partial<AssertionResult>[] }> } {
  return {
    ...r,
    schemaVersion: SCHEMA_VERSION,
    probes: r.probes.map((p) => ({ ...p, assertions: p.assertions.map((a) => compactAssertion(p.probe, a)) })),
  };
}
