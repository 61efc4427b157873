// ci/kernels.mjs for real: boots Debian's 6.1 cloud kernel (the fastest) under QEMU TCG with
// user.max_user_namespaces=0 set on the kernel command line (a real host with the CentOS 7 default)
// and checks every verdict of both runs (root, nobody). The guest runs only the agent: its root is
// busybox and util-linux in a tmpfs, no Node; the controller runs here through `nsprobe --via`.
// Downloads the kernel package into .cache/kernels/ when it is not there (apt must be reachable).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { MODES, NS_TYPES, type Report } from '../src/model.js';
import { validateReport } from '../src/report/validate.js';
import { kernelsCannotRun, kernelsModule, runKernels, type Stage } from './helpers/kernels.js';
import { tmp } from './helpers/run.js';
import { needTools } from './helpers/tools.js';

const reason = kernelsCannotRun();

const title = 'kernels: 6.1 cloud booted with sysctl.user.max_user_namespaces=0 blocks every rootless probe with that gate and its remedy, as root and as nobody';

needTools(reason)(title, async (t) => {
  t.timeout(300_000);
  const out = tmp('nsprobe-kernels-test-', t);
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runKernels(['--kernels', '6.1-cloud', '--scenarios', 'userns0', '--no-host', '--out', out, '--timeout', '240'], 280_000);
  t.log(`ci/kernels.mjs took ${(r.ms / 1000).toFixed(1)} s`);
  t.is(r.code, 0, r.out);

  const summary = JSON.parse(readFileSync(join(out, 'kernels.json'), 'utf8'));
  const k = summary.results[0];
  t.is(k.outcome, 'ok', k.reason);
  t.is(k.scenario, 'userns0');
  t.regex(k.pkg, /^linux-image-6\.1\.0-\d+-cloud-amd64$/);
  t.regex(k.suite, /^bookworm/);
  // the sysctl came from the kernel command line: the guest read 0 before nsprobe started
  t.truthy(k.stages.find((s: { stage: string; arg: string }) => s.stage === 'sysctl' && s.arg === 'user/max_user_namespaces=0'), JSON.stringify(k.stages));
  const { checkScenario, NODE_CHECK } = await kernelsModule();
  // no Node in the guest: nothing on its PATH, nothing named like Node or a checkout on its root;
  // control: the same check here finds this host's node (so it can fail)
  const nodeStage = k.stages.find((s: Stage) => s.stage === 'node')?.arg ?? '';
  t.regex(nodeStage, /^path=none files=none rootfs=\d+$/, JSON.stringify(k.stages));
  const here = spawnSync('busybox', ['sh', '-c', `${NODE_CHECK}\nnodecheck "$1"`, 'sh', dirname(process.execPath)], { encoding: 'utf8', env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` } });
  t.regex(here.stdout, /^path=\S*\/node files=\S*node/, `the control finds node here: ${here.stdout} ${here.stderr}`);

  for (const [mode, euid] of [['root', 0], ['nobody', 65534]] as const) {
    const file = join(out, '6.1-cloud', 'userns0', mode, 'report.json');
    t.true(existsSync(file), `${mode}: no report.json came back`);
    const v = validateReport(JSON.parse(readFileSync(file, 'utf8')));
    if (!v.ok) return t.fail(`${mode}: ${v.error}`);
    const rep: Report = v.report;
    t.is(rep.host.kernel.release, k.release, `${mode} ran on the guest kernel`);
    t.regex(rep.host.kernel.release, /^6\.1\.0-\d+-cloud-amd64$/);
    t.is(rep.host.euid, euid);
    t.is(rep.host.hostname, mode === 'root' ? k.label : `${k.label}, nobody`, 'the matrix row names kernel, suite and scenario');
    t.regex(k.label, /^6\.1 bookworm[-\w]*, max_user_namespaces=0$/);
    const kc = rep.gates.find((g) => g.id === 'kernel_config');
    t.is(kc?.status, 'ok');
    // the package's config, put where a host has it (/boot/config-<release>) in the guest's root, read there through the agent
    t.is((kc?.value as { source?: string } | null)?.source, `/boot/config-${k.release}`);
    t.true(existsSync(k.config), `the package ships ${k.config}`);
    // the gate itself: read 0 in the initial user namespace, blocked, with the sysctl remedy
    const gate = rep.gates.find((g) => g.id === 'max_user_namespaces');
    t.is(gate?.status, 'blocked');
    t.is(gate?.value, 0);
    t.regex(gate?.remedy ?? '', /max_user_namespaces/);
    if (mode === 'nobody') t.is(rep.modes?.find((x) => x.mode === 'privileged')?.status, 'skipped');
    for (const ns of NS_TYPES)
      for (const m of MODES) {
        const p = rep.probes.find((x) => x.id === `${ns}/${m}`);
        if (mode === 'nobody' && m === 'privileged') {
          t.is(p, undefined, `nobody: ${ns}/privileged is not run`);
          continue;
        }
        t.truthy(p, `${mode}: ${ns}/${m} missing`);
      }
    // every verdict: rootless (and root's user/privileged) unsupported with the gate and its remedy ...
    for (const p of rep.probes) {
      const blocked = p.mode === 'rootless' || p.id === 'user/privileged';
      if (blocked) {
        t.is(p.status, 'unsupported', `${mode}: ${p.id}: ${p.cause ?? ''}`);
        t.is(p.gate, 'max_user_namespaces', `${mode}: ${p.id}`);
        t.regex(p.remedy ?? '', /max_user_namespaces/, `${mode}: ${p.id} has the remedy`);
        t.is(p.code, 'ENOSPC', `${mode}: ${p.id}`);
      } else {
        // ... every other probe passes; the deep ones that nest a user namespace skip those checks, naming the gate
        t.is(p.status, 'pass', `${mode}: ${p.id}: ${p.cause ?? ''}`);
        const gated = (p.assertions ?? []).filter((a) => a.status === 'skipped' && a.gate === 'max_user_namespaces');
        if (/^(join|nesting|identity)\//.test(p.id)) t.true(gated.length > 0, `${mode}: ${p.id} skips its user-namespace checks naming the gate`);
        else t.is(gated.length, 0, `${mode}: ${p.id} skips nothing for this gate`);
      }
    }
    t.true(rep.probes.some((p) => p.status === 'unsupported'));
    // the script's own check agrees, and (control) it does flag this report against the no-gate scenario
    t.deepEqual(checkScenario('userns0', mode, rep).mismatches, []);
    t.true(checkScenario('baseline', mode, rep).mismatches.length >= rep.probes.filter((p) => p.mode === 'rootless').length);
  }
  const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8'));
  t.is(matrix.hosts.length, 2);
  const md = readFileSync(join(out, 'matrix.md'), 'utf8');
  t.regex(md, /6\.1 bookworm[-\w]*, max_user_namespaces=0 \| root \d+\/\d+ blocked \(max_user_namespaces\)/);
});
