// scripts/check-install.mjs as a test: the packed package in a minimal Debian root without a
// compiler (npx and npm install -g, nsprobe as root and as nobody, Node 20, 22 and 24). About two
// minutes with the root cached, so it is opt-in (NSPROBE_CHECK_INSTALL=1, which .ci/run sets;
// `npm run check:install` runs the same by hand). Skips with the reason when debootstrap is missing or not root.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, isRoot } from './helpers/run.js';
import { missingTools, needRoot, needTools } from './helpers/tools.js';

const title = 'the packed package installs and runs without a compiler in a minimal Debian root (Node 20, 22, 24; root and nobody)';
if (process.env.NSPROBE_CHECK_INSTALL !== '1') test.skip(`${title} (skipped: slow, opt-in with NSPROBE_CHECK_INSTALL=1; npm run check:install runs it)`, () => {});
else if (!isRoot) needRoot()(title, () => {});
else
  needTools(missingTools('debootstrap', 'unshare', 'npm'))(title, (t) => {
    t.timeout(900_000);
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'check-install.mjs'), '--node', '20,22,24', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 880_000 });
    if (r.status === 3) return t.fail(`check-install could not run: ${r.stderr.trim()}`);
    const out = JSON.parse(r.stdout) as { ok: boolean; failures: string[]; tarballBytes: number; host: Record<string, { installMs: number }>; nodes: Record<string, { install_ms: string }> };
    t.log(`tarball ${out.tarballBytes} B; host install prebuilt ${out.host.prebuilt?.installMs} ms, from source ${out.host.source?.installMs} ms; minimal root ${Object.entries(out.nodes).map(([m, n]) => `Node ${m} ${n.install_ms} ms`).join(', ')}`);
    t.deepEqual(out.failures, []);
    t.true(out.ok);
  });
