// ci/kernels.mjs on the kernel built here without CONFIG_USER_NS, CONFIG_TIME_NS and CONFIG_VETH
// (ci/kernel-build.mjs, `npm run kernel:build`): with /proc/config.gz readable the kernel_config gate
// names each missing option and exactly the probes that need them are unsupported with it; with the
// config hidden (an empty file over /proc/config.gz) the gate is unknown, never "every option missing",
// and the same probes are unsupported with EINVAL and no gate. util-linux unshare in the same guest
// gives the real program's verdict for each type.
//
// npm test does not build the kernel (minutes of both cores): this test runs when it is cached and
// skips naming the command otherwise, also under NSPROBE_REQUIRE_TOOLS=1 (it is a build product, not
// a program CI installs; CI that wants it runs `npm run kernel:build` first, and then it must pass).
import test, { type ImplementationFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../src/model.js';
import { validateReport } from '../src/report/validate.js';
import { kernelsCannotRun, kernelsModule, runKernels, type Stage } from './helpers/kernels.js';
import { ROOT, tmp } from './helpers/run.js';
import { needTools } from './helpers/tools.js';

const BUILD = join(ROOT, 'ci', 'kernel-build.mjs');

const reason = kernelsCannotRun();
const built = reason ? null : spawnSync(process.execPath, [BUILD, '--check'], { encoding: 'utf8', timeout: 60_000 });
const notBuilt = built && built.status !== 0 ? `the noopts kernel is not built (${built.stdout.trim()}): run npm run kernel:build` : null;

const title = 'kernels: the kernel built without USER_NS/TIME_NS/VETH blocks exactly the probes needing them with kernel_config (named options), and with the config hidden the gate is unknown';
const run = (t: string, impl: ImplementationFn<[]>) => (notBuilt ? test.skip(`${t} (skipped: ${notBuilt})`, impl) : needTools(reason)(t, impl));

run(title, async (t) => {
  t.timeout(900_000);
  const out = tmp('nsprobe-kernels-noopts-', t);
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runKernels(['--kernels', 'noopts', '--no-host', '--out', out, '--timeout', '400'], 880_000);
  t.is(r.code, 0, r.out);
  const { checkScenario, NOOPTS_MISSING } = await kernelsModule();
  const summary = JSON.parse(readFileSync(join(out, 'kernels.json'), 'utf8'));
  t.deepEqual(summary.results.map((x: { scenario: string }) => x.scenario), ['noopts', 'noopts-hidden']);
  const reports: Record<string, Record<string, Report>> = {};
  for (const k of summary.results) {
    t.is(k.outcome, 'ok', k.reason);
    t.regex(k.release, /^6\.1\.\d+-nsprobe-noopts$/);
    // the real program, in the same guest: user and time namespaces fail with EINVAL, net and uts work
    const un = Object.fromEntries(k.stages.filter((s: Stage) => s.stage === 'unshare').map((s: Stage) => [s.arg.split(' ')[0], s.arg]));
    t.regex(un.user ?? '', /exit=1 .*Invalid argument/, JSON.stringify(k.stages));
    t.regex(un.time ?? '', /exit=1 .*Invalid argument/);
    t.regex(un.net ?? '', /exit=0/);
    t.regex(un.uts ?? '', /exit=0/);
    const cfg = k.stages.find((s: Stage) => s.stage === 'config')?.arg ?? '';
    if (k.scenario === 'noopts') t.regex(cfg, /^\/proc\/config\.gz [1-9]\d* bytes$/);
    else t.is(cfg, '/proc/config.gz 0 bytes');
    reports[k.scenario] = {};
    for (const mode of ['root', 'nobody']) {
      const file = join(out, 'noopts', k.scenario, mode, 'report.json');
      t.true(existsSync(file), `${k.scenario}/${mode}: no report`);
      const v = validateReport(JSON.parse(readFileSync(file, 'utf8')));
      if (!v.ok) return t.fail(`${k.scenario}/${mode}: ${v.error}`);
      const rep = v.report;
      reports[k.scenario]![mode] = rep;
      t.is(rep.host.kernel.release, k.release);
      const kc = rep.gates.find((g) => g.id === 'kernel_config')!;
      const user = rep.probes.find((p) => p.id === 'user/rootless')!;
      const userPriv = rep.probes.find((p) => p.id === 'user/privileged');
      t.is(user.status, 'unsupported', `${mode}: user/rootless`);
      // rootless runs as an unprivileged uid (also under root): the kernel says EPERM (no user
      // namespace, so no CAP_SYS_ADMIN for the rest); root's privileged user probe gets EINVAL (no such namespace type)
      t.is(user.code, 'EPERM', `${mode}: ${user.cause ?? ''}`);
      if (mode === 'root') t.is(userPriv?.code, 'EINVAL', userPriv?.cause ?? 'no user/privileged');
      if (k.scenario === 'noopts') {
        t.is(kc.status, 'blocked', kc.cause);
        t.is((kc.value as { source?: string }).source, '/proc/config.gz');
        for (const o of NOOPTS_MISSING) {
          t.true(kc.cause.includes(o), `${mode}: the gate names ${o}: ${kc.cause}`);
          t.true((kc.remedy ?? '').includes(`${o}=y`), `${mode}: the remedy names ${o}=y`);
          t.is((kc.value as { options: Record<string, string | null> }).options[o], 'n');
        }
        t.is(user.gate, 'kernel_config');
        if (mode === 'root') t.is(userPriv?.gate, 'kernel_config');
        // the options the kernel has are not blamed: uts/net work
        for (const id of ['uts', 'net', 'ipc', 'pid', 'mnt', 'cgroup'].map((n) => `${n}/${mode === 'root' ? 'privileged' : 'rootless'}`)) {
          const p = rep.probes.find((x) => x.id === id)!;
          t.is(p.status, mode === 'root' ? 'pass' : 'unsupported', `${mode}: ${id}: ${p.cause ?? ''}`);
        }
      } else {
        // an empty /proc/config.gz is read as nothing (value null), never as "every option missing";
        // root's run then sees probes refused with EINVAL put on it, and the runner reports it blocked by that evidence
        t.is(kc.value, null);
        t.regex(kc.cause, /^no kernel config found/);
        t.is(kc.status, mode === 'root' ? 'blocked' : 'unknown', kc.cause);
        if (mode === 'root') t.true((kc.evidence ?? []).some((e) => e.probe === 'user/privileged' && e.code === 'EINVAL'));
        // EINVAL at clone is put on the unknown gate (remedy: make the config readable); an EPERM is not
        t.is(user.gate, null);
        t.regex(user.cause ?? '', /EPERM.*no known host gate/);
        if (mode === 'root') {
          t.is(userPriv?.gate, 'kernel_config');
          t.regex(userPriv?.cause ?? '', /EINVAL.*no kernel config found/);
        }
      }
      t.deepEqual(checkScenario(k.scenario, mode, rep).mismatches, [], `${k.scenario}/${mode}`);
    }
  }
  // controls: each scenario's check rejects the other's reports, and the no-gate scenario rejects both
  for (const mode of ['root', 'nobody']) {
    t.true(checkScenario('noopts-hidden', mode, reports.noopts![mode]!).mismatches.length > 0);
    t.true(checkScenario('noopts', mode, reports['noopts-hidden']![mode]!).mismatches.length > 0);
    t.true(checkScenario('baseline', mode, reports.noopts![mode]!).mismatches.length > 0);
  }
});
