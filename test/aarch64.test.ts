// ci/aarch64.mjs for real: the native code cross-compiled for aarch64, and nsprobe-serve run under
// qemu-user behind the real addon in real namespaces, answering like the x86_64 build. As root the
// script installs the cross compiler and qemu-user when they are missing (as ci/kernels.mjs does).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers/run.js';
import { needTools } from './helpers/tools.js';

const SCRIPT = join(ROOT, 'ci', 'aarch64.mjs');

function cannotRun(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `needs an x86_64 Linux host (this is ${process.platform}/${process.arch})`;
  const r = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8', timeout: 600_000 });
  return r.status === 0 ? null : `ci/aarch64.mjs --check: ${(r.stderr || r.stdout).trim().split('\n').pop()}`;
}
const reason = cannotRun();

interface Row {
  check: string;
  x86_64: unknown;
  aarch64: unknown;
  ok: boolean;
}

needTools(reason)('aarch64: every native source builds, and nsprobe-serve under qemu-user answers as on x86_64', (t) => {
  t.timeout(300_000);
  const r = spawnSync(process.execPath, [SCRIPT, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 280_000 });
  t.true(r.status === 0 || r.status === 1, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; builds: { what: string; ok: boolean; error?: string }[]; checks: Row[]; x86Error?: string; aarch64Error?: string };
  for (const b of out.builds) t.true(b.ok, `build ${b.what}: ${b.error ?? ''}`);
  t.is(out.x86Error, undefined);
  t.is(out.aarch64Error, undefined);
  const by = new Map(out.checks.map((c) => [c.check, c]));
  // The battery ran its whole length on both servers, and served from the right programs.
  for (const name of ['identity', 'uname', 'clocks', 'files', 'sysvipc', 'mqueue', 'linksAfter', 'tcpLoopback', 'fork', 'killWait', 'echo', 'close', 'time+pid'])
    t.true(by.has(name), `check ${name} ran`);
  t.regex(String(by.get('exe')?.aarch64), /qemu-aarch64$/, 'the aarch64 server really ran under qemu-user');
  t.deepEqual(by.get('clocks')?.aarch64, { monotonicAhead: 365, boottimeAhead: true, realtimeNow: true }, 'the aarch64 server sees the time offsets');
  t.is(by.get('time+pid')?.aarch64, 'clone EINVAL', "the aarch64 error hello carries qemu-user's refusal");
  for (const c of out.checks) t.true(c.ok, `${c.check}: x86_64 ${JSON.stringify(c.x86_64)} aarch64 ${JSON.stringify(c.aarch64)}`);
  t.true(out.ok);
});
