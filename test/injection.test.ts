// Gates injected for real on this machine: a seccomp filter like a container runtime's default
// profile, and a chroot. The suite must name the gate, not just the errno.
import test from 'ava';
import { join } from 'node:path';
import type { Report } from '../src/model.js';
import { CLI, ROOT, isRoot, run, tmp } from './helpers/run.js';

const rootOnly = isRoot ? test : test.skip;

test('under a seccomp filter that denies namespace creation every probe is unsupported with gate seccomp', (t) => {
  const out = tmp(t);
  const r = run([join(ROOT, 'build', 'Release', 'nsprobe-seccomp-exec'), process.execPath, CLI, '--out', out, '--json']);
  t.is(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as Report;
  t.is(rep.host.seccomp?.mode, 2);
  // warn from files; blocked once clone returned the filter's signature, with that evidence
  const g = rep.gates.find((x) => x.id === 'seccomp');
  t.is(g?.status, 'blocked');
  t.deepEqual(new Set((g?.evidence ?? []).map((e) => e.probe)), new Set(rep.probes.map((p) => p.id)), 'every blocked probe is evidence');
  t.true((g?.evidence ?? []).filter((e) => e.stage !== 'request').every((e) => e.code === 'EPERM' || e.code === 'ENOSYS'));
  t.true(rep.probes.length >= 8);
  for (const p of rep.probes) {
    if (p.mode === 'privileged' && !isRoot) continue;
    t.is(p.status, 'unsupported', p.id);
    t.is(p.gate, 'seccomp', `${p.id}: ${p.cause}`);
  }
});

rootOnly('in a chroot (a bind of / in a private mount namespace) rootless probes are blamed on the chroot', (t) => {
  const out = tmp(t);
  const script = 'mount --make-rprivate / && mount --rbind / /mnt && exec chroot /mnt "$@"';
  const r = run(['unshare', '-m', 'sh', '-c', script, 'sh', process.execPath, CLI, '--out', out, '--json']);
  t.is(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as Report;
  t.is(rep.gates.find((g) => g.id === 'chroot')?.status, 'blocked');
  for (const p of rep.probes) {
    const needsUserNs = p.mode === 'rootless' || p.probe === 'user';
    if (needsUserNs) {
      t.is(p.status, 'unsupported', p.id);
      t.is(p.gate, 'chroot', `${p.id}: ${p.cause}`);
      t.is(p.code, 'EPERM');
    } else if (['uts', 'ipc', 'pid', 'net', 'mnt', 'cgroup', 'time'].includes(p.probe)) {
      t.is(p.status, 'pass', `${p.id}: ${p.cause}`);
    }
  }
});
