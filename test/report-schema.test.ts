// report.json schemaVersion 2 and the v1 reader: what v2 leaves out comes back the same, the
// hand-written check (src/report/validate.ts) agrees with the JSON schemas in schema/ (Ajv) on
// every fixture and on thousands of mutations of them, and merge reads v1 reports made by the
// nsprobe before v2 (test/fixtures/v1), alone and mixed with v2 ones, and names a corrupted v2
// report in one line.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Ajv } from 'ajv';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastMergeWorkers, MIN_PARALLEL, runMerge } from '../src/merge.js';
import { assertionId, type Report } from '../src/model.js';
import { reportJson } from '../src/report/common.js';
import type { Matrix } from '../src/report/matrix.js';
import { parseReport, validateReport } from '../src/report/validate.js';
import { reportDocument } from '../src/report/v2.js';
import { fleetHost } from '../scripts/fleet-gen.js';
import { GOOD, loadFixture } from './helpers/reports.js';

const ROOT = join(import.meta.dirname, '..');
const V1_DIR = join(ROOT, 'test', 'fixtures', 'v1');
const V1 = ['root-full', 'userns-limit-zero'].map((name) => ({ name, text: readFileSync(join(V1_DIR, `${name}.report.json`), 'utf8') }));

function tmp(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-schema-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function merge(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runMerge(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

function ajvFor(file: string) {
  const schema = JSON.parse(readFileSync(join(ROOT, 'schema', file), 'utf8')) as object;
  return new Ajv({ allErrors: false, unicodeRegExp: false }).compile(schema);
}
const ajv = { 1: ajvFor('report.v1.schema.json'), 2: ajvFor('report.schema.json') };

/** Errors of the rules no JSON Schema states (ids, counts): the hand-written check adds them. */
const CONSISTENCY = /does not match probe\/mode|appears more than once|^\/summary\/\w+ is \d+ but/;

test('a v1 report made by the nsprobe before v2 reads as it is; written again, it is v2 and about half the size', (t) => {
  for (const { name, text } of V1) {
    const v = parseReport(text);
    t.true(v.ok, `${name}: ${v.ok ? '' : v.error}`);
    if (!v.ok) continue;
    t.deepEqual(v.report, JSON.parse(text), `${name}: a v1 report is already the whole model`);
    t.true(ajv[1](JSON.parse(text)), `${name}: valid by schema/report.v1.schema.json`);
    const v2 = reportJson(v.report);
    t.true(v2.startsWith('{\n  "schemaVersion": 2,'), name);
    // root-full: mostly passing checks; userns-limit-zero: mostly probes refused, with their remedies.
    t.true(v2.length < text.length * (name === 'root-full' ? 0.7 : 0.85), `${name}: v2 ${v2.length} bytes, v1 ${text.length}`);
    t.true(ajv[2](JSON.parse(v2)), `${name}: valid by schema/report.schema.json: ${JSON.stringify(ajv[2].errors?.[0])}`);
    const doc = JSON.parse(v2) as Report;
    const all = doc.probes.flatMap((p) => p.assertions.map((a) => ({ p, a })));
    t.true(all.length > 200);
    t.true(all.every(({ a }) => a.id === undefined), `${name}: every id nsprobe makes is derivable, so none is written`);
    t.true(all.some(({ a }) => Object.hasOwn(a, 'expected')), `${name}: an expected that differs from actual is kept`);
    t.true(all.every(({ a }) => !Object.hasOwn(a, 'expected') || JSON.stringify(a.expected) !== JSON.stringify(a.actual)), `${name}: no expected equal to its actual`);
    const back = parseReport(v2);
    t.true(back.ok);
    if (back.ok) t.deepEqual(back.report, { ...(JSON.parse(text) as Report), schemaVersion: 2 }, `${name}: v2 read back is the v1 report`);
    // One line per assertion still, for grep; jq sees the same keys as before.
    t.true(v2.includes('\n        {"name":"the hostname can be set inside","status":"pass","actual":"set the hostname: ok","side":"inside"},\n'), name);
  }
});

test('v2 keeps an id that is not derivable and an expected that differs, and fills in the rest', (t) => {
  const r = JSON.parse(V1[0].text) as Report;
  t.true(r.probes[0].assertions.length >= 4);
  const a = r.probes[0].assertions;
  a[0] = { ...a[0], id: `${r.probes[0].probe}.an-older-name` };
  a[1] = { ...a[1], expected: 'one', actual: 'two' };
  a[2] = { ...a[2], expected: { x: [1, 2] }, actual: { x: [1, 2] } };
  a[3] = { ...a[3], expected: null, actual: null };
  const doc = reportDocument(r);
  t.is(doc.probes[0].assertions[0].id, `${r.probes[0].probe}.an-older-name`);
  t.false(Object.hasOwn(doc.probes[0].assertions[1], 'id'));
  t.is(doc.probes[0].assertions[1].expected, 'one');
  t.false(Object.hasOwn(doc.probes[0].assertions[2], 'expected'));
  t.false(Object.hasOwn(doc.probes[0].assertions[3], 'expected'));
  t.deepEqual(r.probes[0].assertions[2].expected, { x: [1, 2] }, 'the report itself is not changed');
  const back = parseReport(reportJson(r));
  t.true(back.ok);
  if (!back.ok) return;
  t.deepEqual(back.report, { ...r, schemaVersion: 2 });
  t.is(back.report.probes[0].assertions[1].id, assertionId(r.probes[0].probe, a[1].name));
  // Not expanded (merge): as written.
  const lean = parseReport(reportJson(r), { expand: false });
  t.true(lean.ok && lean.report.probes[0].assertions[1].id === undefined);
});

/** Every place in a JSON value: [parent, key] pairs, depth first. */
function places(v: unknown, out: Array<[Record<string, unknown> | unknown[], string | number]> = []): typeof out {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), places(x, out)));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push([v as Record<string, unknown>, k]), places(x, out);
  return out;
}

const REPLACEMENTS: unknown[] = [1.5, -1, 7, 'x', '', null, true, [], {}, ['x'], { id: 'x' }];

test('the hand-written check accepts and refuses exactly what the JSON schemas do, v1 and v2, over mutations of every fixture', (t) => {
  const docs: Array<{ what: string; version: 1 | 2; text: string }> = [
    ...GOOD.map((name) => ({ what: name, version: 1 as const, text: JSON.stringify(loadFixture(name)) })),
    ...GOOD.map((name) => ({ what: `${name} v2`, version: 2 as const, text: reportJson(loadFixture(name)) })),
    ...V1.map(({ name, text }) => ({ what: `${name} v2`, version: 2 as const, text: reportJson(JSON.parse(text) as Report) })),
  ];
  let compared = 0;
  let refused = 0;
  for (const d of docs) {
    const n = places(JSON.parse(d.text)).length;
    // Small reports: every place; larger ones: every 2nd, 13th (thousands of mutations in all).
    const step = n > 2000 ? 13 : n > 400 ? 2 : 1;
    for (let i = 0; i < n; i += step) {
      for (let m = 0; m < REPLACEMENTS.length + 2; m++) {
        const doc = JSON.parse(d.text) as unknown;
        const [parent, key] = places(doc)[i];
        if (m === REPLACEMENTS.length) {
          if (Array.isArray(parent)) parent.splice(key as number, 1);
          else delete parent[key as string];
        } else if (m === REPLACEMENTS.length + 1) {
          const target = (parent as Record<string, unknown>)[key as string];
          if (typeof target !== 'object' || target === null || Array.isArray(target)) continue;
          (target as Record<string, unknown>).extra = 1;
        } else (parent as Record<string, unknown>)[key as string] = REPLACEMENTS[m];
        const version = (doc as { schemaVersion?: unknown }).schemaVersion === 1 ? 1 : 2;
        const schemaOk = ajv[version](doc);
        const v = validateReport(doc, { expand: false });
        if (!v.ok && /newer than this nsprobe|not an nsprobe report/.test(v.error)) continue; // identity: checked before any schema
        const handOk = v.ok || CONSISTENCY.test(v.error);
        compared++;
        if (!schemaOk) refused++;
        if (handOk !== schemaOk) {
          t.fail(`${d.what}: place ${i}, mutation ${m}: the schema says ${schemaOk ? 'valid' : `invalid (${JSON.stringify(ajv[version].errors?.[0])})`}, the check ${v.ok ? 'valid' : v.error}`);
          return;
        }
      }
    }
  }
  t.true(compared > 3000, `${compared} mutations compared`);
  t.true(refused > compared / 3, `${refused} of them refused: the mutations do break reports`);
});

test('errors name the place and what is wrong, as the schema words it, and never quote the file', (t) => {
  const base = reportJson(loadFixture('ubuntu-docker-failing'));
  const cases: Array<[string, (d: Record<string, any>) => void, RegExp]> = [
    ['assertion status', (d) => (d.probes[0].assertions[1].status = 'SECRET'), /^\/probes\/0\/assertions\/1\/status must be equal to one of the allowed values \(pass, fail, skipped\)$/],
    ['assertion without actual', (d) => delete d.probes[0].assertions[0].actual, /^\/probes\/0\/assertions\/0 must have required property 'actual'$/],
    ['an extra assertion key', (d) => (d.probes[0].assertions[0].SECRET = 1), /^\/probes\/0\/assertions\/0 must NOT have additional properties \(SECRET\)$/],
    ['a bad assertion id', (d) => (d.probes[0].assertions[0].id = 'SECRET'), /^\/probes\/0\/assertions\/0\/id must match pattern/],
    ['v1 without expected', (d) => ((d.schemaVersion = 1), delete d.probes[0].assertions[0].expected), /^\/probes\/0\/assertions\/0 must have required property 'expected'$/],
    ['a gate value too deep', (d) => (d.gates[0].value = JSON.parse('['.repeat(60) + ']'.repeat(60))), /^\/gates\/0\/value is nested more than 48 levels deep/],
    ['host euid', (d) => (d.host.euid = 'SECRET'), /^\/host\/euid must be integer$/],
    ['assertions not a list', (d) => (d.probes[1].assertions = 'SECRET'), /^\/probes\/1\/assertions must be array$/],
    ['probes not a list', (d) => (d.probes = { SECRET: 1 }), /^\/probes must be array$/],
  ];
  for (const [what, mutate, re] of cases) {
    const d = JSON.parse(base) as Record<string, any>;
    mutate(d);
    const v = parseReport(JSON.stringify(d));
    t.false(v.ok, what);
    if (!v.ok) {
      t.regex(v.error, re, what);
      t.false(v.error.includes('SECRET') && !/additional properties/.test(v.error), `${what}: the value is not quoted`);
    }
  }
});

/** n synthetic hosts below dir, host i as v1 when v1(i), else v2; returns the matrix file names' dir. */
function writeMixed(dir: string, n: number, asV1: (i: number) => boolean): void {
  mkdirSync(dir);
  for (let i = 0; i < n; i++) {
    const { report } = fleetHost(3, i);
    mkdirSync(join(dir, report.host.hostname));
    // v1 as the nsprobe before v2 wrote it: the model itself (ids and expected all there), schemaVersion 1.
    const text = asV1(i) ? `${JSON.stringify({ ...report, schemaVersion: 1 }, null, 2)}\n` : reportJson(report);
    writeFileSync(join(dir, report.host.hostname, 'report.json'), text);
  }
}

function normalise(text: string, dir: string): string {
  return text.split(dir).join('<DIR>').replace(/"generatedAt": "[^"]*"/, '').replace(/generated [^<\n]*/g, '');
}

for (const n of [12, MIN_PARALLEL + 40]) {
  test(`a merge of ${n} hosts, v1 and v2 mixed, gives the same matrix as all v2 (${n >= MIN_PARALLEL ? 'worker threads' : 'one thread'})`, async (t) => {
    const d = tmp(t);
    writeMixed(join(d, 'v2'), n, () => false);
    writeMixed(join(d, 'mixed'), n, (i) => i % 3 !== 1);
    const a = await merge([join(d, 'v2'), '--out', join(d, 'out-v2')]);
    t.is(a.code, 0, a.stderr);
    const b = await merge([join(d, 'mixed'), '--out', join(d, 'out-mixed')]);
    t.is(b.code, 0, b.stderr);
    if (n >= MIN_PARALLEL) t.true(lastMergeWorkers() > 0 || !process.env.NSPROBE_REQUIRE_TOOLS, 'worker threads read the reports (tsc has built dist/)');
    for (const f of ['matrix.json', 'matrix.md', 'matrix.html', 'matrix-junit.xml']) {
      const x = normalise(readFileSync(join(d, 'out-v2', f), 'utf8'), join(d, 'v2'));
      const y = normalise(readFileSync(join(d, 'out-mixed', f), 'utf8'), join(d, 'mixed'));
      t.true(x === y, `${f} is the same for v1+v2 as for v2 alone`);
    }
    const m = JSON.parse(readFileSync(join(d, 'out-mixed', 'matrix.json'), 'utf8')) as Matrix;
    t.is(m.hosts.length, n);
    t.true(m.groups.length >= 3, 'a fleet of several kinds of hosts');
  });

  test(`a corrupted v2 report among ${n}: one line naming it, exit 2, nothing written`, async (t) => {
    const d = tmp(t);
    writeMixed(join(d, 'in'), n, (i) => i % 2 === 0);
    const { report } = fleetHost(3, n - 2); // a v2 one, late in the order
    const bad = join(d, 'in', report.host.hostname, 'report.json');
    const text = readFileSync(bad, 'utf8');
    for (const [broken, reason] of [
      [text.slice(0, Math.floor(text.length / 2)), /: not valid JSON \(truncated or corrupt\?\) at character \d+\n$/],
      [text.replace('"status": "pass"', '"status": "maybe"'), /: \/probes\/0\/status must be equal to one of the allowed values \(pass, fail, unsupported, error\)\n$/],
      [text.replace(/"actual":/, '"actuel":'), /: \/probes\/\d+\/assertions\/0 must have required property 'actual'\n$/],
    ] as const) {
      writeFileSync(bad, broken);
      const r = await merge([join(d, 'in'), '--out', join(d, 'out')]);
      t.is(r.code, 2, r.stderr);
      t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
      t.true(r.stderr.startsWith(`nsprobe merge: ${bad}: `), r.stderr);
      t.regex(r.stderr, reason);
      t.is(r.stdout, '');
      t.false(existsSync(join(d, 'out')), 'nothing written, not even the folder');
    }
  });
}
