// A consumer program's --version runs in a private home that goes when it is done: podman run
// without HOME/XDG_RUNTIME_DIR makes /tmp/podman-run-<uid> and /tmp/containers-user-<uid> and
// leaves them, so a local run as a normal user changed the host. The podman copied into a folder of
// the test is not the file dpkg installed, so nsprobe must run its --version (not read the package
// database), the path this test is about.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, NOBODY, tmp } from './helpers/run.js';
import { isRoot, missingTools, needRoot, needTools, which } from './helpers/tools.js';
import { nobodyCannotRun } from './helpers/envs.js';

const UID = 65534;
const left = [`/tmp/podman-run-${UID}`, `/tmp/containers-user-${UID}`];
const scratchDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('nsprobe-ver-'));

const runner = isRoot ? needTools(missingTools('podman', 'setpriv') ?? nobodyCannotRun()) : needRoot();

runner('podman --version of a run as nobody leaves nothing in /tmp (control: podman itself, run as before, does)', (t) => {
  // Only the ones this test makes are removed: if they are there already, the test cannot tell.
  const before = left.filter((p) => existsSync(p));
  if (before.length) return t.pass(`skipped: ${before.join(', ')} already exist (not this test's to remove)`);
  const bin = tmp(t);
  chmodSync(bin, 0o755);
  copyFileSync(which('podman')!, join(bin, 'podman'));
  chmodSync(join(bin, 'podman'), 0o755);
  const out = tmp(t);
  chmodSync(out, 0o777);
  try {
    // Control: --version in the environment nsprobe used to give it makes both folders.
    const ctl = spawnSync(NOBODY[0], [...NOBODY.slice(1), 'env', '-i', 'PATH=/usr/bin:/bin', 'LANG=C', join(bin, 'podman'), '--version'], { encoding: 'utf8', timeout: 30000 });
    t.regex(ctl.stdout, /podman version/);
    t.true(left.some((p) => existsSync(p)), 'control: podman --version without a home leaves its folders in /tmp');
    for (const p of left) rmSync(p, { recursive: true, force: true });

    const scratchBefore = scratchDirs();
    const r = spawnSync(NOBODY[0], [...NOBODY.slice(1), 'env', `PATH=${bin}:/usr/bin:/bin`, 'HOME=/nonexistent', process.execPath, CLI, '--for', 'podman-unshare', '--out', join(out, 'r'), '--no-color'], { encoding: 'utf8', timeout: 60000, cwd: out });
    t.true(r.status === 0 || r.status === 1, r.stderr);
    t.log(r.stdout.split('\n')[0]);
    t.regex(r.stdout, new RegExp(`${bin}/podman, podman version`), 'the version came from running the copy');
    t.deepEqual(left.filter((p) => existsSync(p)), [], 'nothing of podman stays in /tmp');
    t.deepEqual(scratchDirs().filter((d) => !scratchBefore.includes(d)), [], 'the private home is gone');
  } finally {
    for (const p of left) rmSync(p, { recursive: true, force: true });
  }
});
