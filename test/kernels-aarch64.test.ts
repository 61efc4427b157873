// The suite on aarch64 for real: ci/kernels.mjs boots Debian's arm64 cloud kernel (trixie, fetched
// with a private arm64 apt configuration in .cache/apt-arm64) under qemu-system-aarch64 TCG with
// user.max_user_namespaces=0 on its command line; the guest runs only the aarch64 agent, which
// `nsprobe --via` on this host sends through the guest's virtio port. Every verdict of both runs
// (root, nobody) is checked against the scenario; as the control, the same reports fail the
// no-gate scenario's check. Skipped, naming the command, when that kernel is not cached
// (`node ci/kernels.mjs --kernels arm64-cloud` fetches it: a download, not a program .ci/run
// installs), or when there is no aarch64 agent or qemu-system-aarch64.
import test, { type ImplementationFn } from 'ava';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { validateReport } from '../src/report/validate.js';
import { kernelsCannotRun, kernelsModule, runKernels, type Stage } from './helpers/kernels.js';
import { ROOT, tmp } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

const CACHE = join(ROOT, '.cache', 'kernels');
const cached = existsSync(CACHE) && readdirSync(CACHE).some((f) => /^linux-image-.*-cloud-arm64_/.test(f));
const agent = existsSync(join(ROOT, 'build', 'agent', 'nsprobe-agent-aarch64'));
const notCached = !cached
  ? 'the arm64 kernel is not in .cache/kernels: run node ci/kernels.mjs --kernels arm64-cloud'
  : !agent
    ? 'no aarch64 agent (build/agent/nsprobe-agent-aarch64): run node scripts/build-agent.mjs'
    : null;
const reason = notCached ? null : (kernelsCannotRun() ?? missingTools('qemu-system-aarch64'));
const run = (title: string, f: ImplementationFn<[]>) => (notCached ? test.skip(`${title} (skipped: ${notCached})`, f) : needTools(reason)(title, f));

run('kernels aarch64: the arm64 cloud kernel under qemu-system-aarch64 with max_user_namespaces=0, probed through the aarch64 agent: every verdict as declared, as root and as nobody', async (t) => {
  t.timeout(900_000);
  const out = tmp('nsprobe-test-kernels-aarch64-', t);
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runKernels(['--kernels', 'arm64-cloud', '--scenarios', 'userns0', '--no-host', '--out', out, '--timeout', '600'], 880_000);
  t.is(r.code, 0, r.out);
  const { checkScenario } = await kernelsModule();
  const k = JSON.parse(readFileSync(join(out, 'kernels.json'), 'utf8')).results[0];
  t.is(k.outcome, 'ok', k.reason);
  t.regex(k.release, /-cloud-arm64$/);
  t.regex(k.label, /^\d+\.\d+ trixie arm64, max_user_namespaces=0$/);
  t.regex(k.stages.find((s: Stage) => s.stage === 'node')?.arg ?? '', /^path=none files=none /);
  for (const [mode, euid] of [['root', 0], ['nobody', 65534]] as const) {
    const v = validateReport(JSON.parse(readFileSync(join(out, 'arm64-cloud', 'userns0', mode, 'report.json'), 'utf8')));
    if (!v.ok) return t.fail(`${mode}: ${v.error}`);
    const rep = v.report;
    // the target's facts: the guest's machine, kernel and user, not this host's
    t.is(rep.host.arch, 'aarch64');
    t.is(rep.host.kernel.release, k.release);
    t.is(rep.host.euid, euid);
    t.is(rep.gates.find((g) => g.id === 'max_user_namespaces')?.status, 'blocked');
    t.true(rep.probes.some((p) => p.status === 'unsupported' && p.gate === 'max_user_namespaces'));
    t.deepEqual(checkScenario('userns0', mode, rep).mismatches, [], mode);
    // control: the same report is not what a host without the gate gives
    t.true(checkScenario('baseline', mode, rep).mismatches.length > 0, `${mode}: the baseline check flags it`);
  }
});
