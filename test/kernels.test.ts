// ci/kernels.mjs for real: boots Debian's 6.1 cloud kernel (the fastest) under QEMU TCG over the
// host root and checks that both guest runs (root, nobody) come back complete and merge.
// Downloads the kernel package into .cache/kernels/ when it is not there (apt must be reachable).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MODES, NS_TYPES, type Report } from '../src/model.js';
import { validateReport } from '../src/report/validate.js';
import { ROOT, tmp } from './helpers/run.js';
import { needTools } from './helpers/tools.js';

const SCRIPT = join(ROOT, 'ci', 'kernels.mjs');
const STATUSES = ['pass', 'fail', 'unsupported', 'error'];

/** Why QEMU cannot run here at all (null: it can). As root this installs missing tools, like the script. */
function cannotRun(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `needs x86_64 Linux (this is ${process.platform}/${process.arch})`;
  const r = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return null;
  return `ci/kernels.mjs --check: ${(r.stderr || r.stdout).trim().split('\n').pop()}`;
}

const reason = cannotRun();

function runScript(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    // its own process group, so a timeout kills QEMU and virtiofsd with it
    const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
}

const title = 'kernels: 6.1 cloud boots under QEMU TCG and returns a full report as root and as nobody';

needTools(reason)(title, async (t) => {
  t.timeout(240_000);
  const out = tmp('nsprobe-kernels-test-', t);
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runScript(['--kernels', '6.1-cloud', '--no-host', '--out', out, '--timeout', '180'], 220_000);
  t.log(`ci/kernels.mjs took ${(r.ms / 1000).toFixed(1)} s`);
  t.is(r.code, 0, r.out);

  const summary = JSON.parse(readFileSync(join(out, 'kernels.json'), 'utf8'));
  const k = summary.results[0];
  t.is(k.outcome, 'ok');
  t.regex(k.pkg, /^linux-image-6\.1\.0-\d+-cloud-amd64$/);

  for (const [mode, euid] of [['root', 0], ['nobody', 65534]] as const) {
    const file = join(out, '6.1-cloud', mode, 'report.json');
    t.true(existsSync(file), `${mode}: no report.json came back`);
    const v = validateReport(JSON.parse(readFileSync(file, 'utf8')));
    if (!v.ok) return t.fail(`${mode}: ${v.error}`);
    const rep: Report = v.report;
    t.is(rep.host.kernel.release, k.release, `${mode} ran on the guest kernel`);
    t.regex(rep.host.kernel.release, /^6\.1\.0-\d+-cloud-amd64$/);
    t.is(rep.host.euid, euid);
    // the kernel_config gate was judged by the package's own config (the guest has no /proc/config.gz)
    const kc = rep.gates.find((g) => g.id === 'kernel_config');
    t.is(kc?.status, 'ok');
    t.is((kc?.value as { source?: string } | null)?.source, k.config);
    // this kernel supports every namespace: as root all pass (not in a chroot, so user namespaces
    // work); as nobody the rootless ones pass and privileged mode is skipped once, for CAP_SYS_ADMIN
    if (mode === 'nobody') t.is(rep.modes?.find((x) => x.mode === 'privileged')?.status, 'skipped');
    for (const ns of NS_TYPES)
      for (const m of MODES) {
        const p = rep.probes.find((x) => x.id === `${ns}/${m}`);
        if (mode === 'nobody' && m === 'privileged') {
          t.is(p, undefined, `nobody: ${ns}/privileged is not run`);
          continue;
        }
        t.truthy(p, `${mode}: ${ns}/${m} missing`);
        t.true(STATUSES.includes(p!.status), `${mode}: ${ns}/${m} has status ${p?.status}`);
        t.is(p!.status, 'pass', `${mode}: ${ns}/${m}: ${p!.cause ?? ''}`);
      }
  }
  const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8'));
  t.is(matrix.hosts.length, 2);
  t.true(existsSync(join(out, 'matrix.md')));
});
