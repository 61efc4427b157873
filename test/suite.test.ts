// The real suite through the compiled CLI: as root all 28 probes pass and every report is
// valid; as nobody rootless passes and privileged is explained; host gates injected for real.
import test from 'ava';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateReport } from '../src/report/validate.js';
import type { Report } from '../src/model.js';
import { cli, isRoot, NOBODY, run, tmp, CLI } from './helpers/run.js';
import { xmllintFile } from './helpers/xml.js';

const rootOnly = isRoot ? test : test.skip;

function readReport(dir: string): Report {
  const v = validateReport(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')));
  if (!v.ok) throw new Error(v.error);
  return v.report;
}

rootOnly('as root: all 28 probes pass and all five reports are written and valid', async (t) => {
  const out = tmp(t);
  const r = cli(['--out', out]);
  t.is(r.status, 0, r.stdout + r.stderr);
  const rep = readReport(out);
  t.is(rep.probes.length, 28);
  t.deepEqual(rep.summary, { pass: 28, fail: 0, unsupported: 0, error: 0 });
  for (const p of rep.probes) t.true(p.assertions.length >= 5, `${p.id} has assertions`);
  t.deepEqual(readdirSync(out).sort(), ['junit.xml', 'report.html', 'report.json', 'report.md', 'report.tap']);
  const x = await xmllintFile(join(out, 'junit.xml'));
  t.true(x.ok, x.output);
  const { Parser } = await import('tap-parser');
  const res = await new Promise<{ ok: boolean; count: number; plan: { end: number } }>((resolve) => {
    const p = new Parser((results) => resolve(results as never));
    p.end(readFileSync(join(out, 'report.tap'), 'utf8'));
  });
  t.true(res.ok);
  t.is(res.count, 28);
  t.is(res.plan.end, 28);
});

rootOnly('as nobody: 14 rootless pass; privileged mode is skipped once, with the kernel\'s reason, not as 14 results', (t) => {
  const out = tmp(t);
  run(['chmod', '0777', out]);
  const r = cli(['--out', out, '--no-color'], NOBODY);
  t.is(r.status, 0, r.stdout + r.stderr);
  const rep = readReport(out);
  t.is(rep.host.euid, 65534);
  t.is(rep.probes.length, 14);
  for (const p of rep.probes) t.is(p.status, 'pass', `${p.id}: ${p.cause}`);
  t.true(rep.probes.every((p) => p.mode === 'rootless'));
  const priv = rep.modes?.find((m) => m.mode === 'privileged');
  t.is(priv?.status, 'skipped');
  t.regex(priv?.reason ?? '', /needs CAP_SYS_ADMIN in its own user namespace/);
  t.is(rep.modes?.find((m) => m.mode === 'rootless')?.status, 'run');
  // The kernel agrees: without CAP_SYS_ADMIN, creating a UTS namespace is refused.
  t.regex(run([...NOBODY, 'unshare', '--uts', 'true']).stderr, /Operation not permitted/);
});

rootOnly('--require turns an unsupported probe into exit 1', (t) => {
  const out = tmp(t);
  run(['chmod', '0777', out]);
  const r = cli(['--out', out, '--only', 'uts', '--require', 'uts:privileged'], NOBODY);
  t.is(r.status, 1, r.stderr);
  const ok = cli(['--out', out, '--only', 'uts', '--require', 'uts:rootless'], NOBODY);
  t.is(ok.status, 0, ok.stderr);
});

for (const [args, msg] of [
  [['--only', 'nope'], /unknown probe 'nope'/],
  [['--frobnicate'], /unknown flag '--frobnicate'/],
  [['--mode', 'sideways'], /unknown mode 'sideways'/],
  [['--timeout', 'soon'], /--timeout takes milliseconds/],
  [['--out', '/proc/version/reports'], /cannot write reports to/],
  [['--format', 'pdf'], /unknown format 'pdf'/],
] as const) {
  test(`usage error ${args.join(' ')}: one line, exit 2`, (t) => {
    const r = cli([...args]);
    t.is(r.status, 2);
    t.is(r.stdout, '');
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, msg);
    t.notRegex(r.stderr, /\n\s+at /);
  });
}

test('--json prints the report on stdout and nothing else', (t) => {
  const out = tmp(t);
  const r = cli(['--out', out, '--only', 'uts', '--mode', 'rootless', '--json']);
  t.is(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as Report;
  t.deepEqual(rep.probes.map((p) => p.id), ['uts/rootless']);
});

// Real fault injection: each user.max_<type>_namespaces lowered to 0 in an outer user namespace.
const AFFECTED: Record<string, string[]> = {
  user: ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time', 'net-veth', 'join', 'nesting', 'identity', 'pid-signals', 'ipc-mqueue'],
  uts: ['uts', 'join', 'identity'],
  ipc: ['ipc', 'join', 'identity', 'ipc-mqueue'],
  pid: ['pid', 'mnt', 'join', 'nesting', 'identity', 'pid-signals'],
  net: ['net', 'net-veth', 'join', 'identity'],
  mnt: ['pid', 'mnt', 'join', 'identity', 'ipc-mqueue'],
  cgroup: ['cgroup', 'identity'],
  time: ['time', 'identity'],
};
for (const [type, affected] of Object.entries(AFFECTED)) {
  test(`max_${type}_namespaces = 0: exactly the affected probes are unsupported, with that gate`, (t) => {
    const out = tmp(t);
    const r = run(['unshare', '-Ur', 'sh', '-c', `echo 0 > /proc/sys/user/max_${type}_namespaces && exec "$@"`, 'sh', process.execPath, CLI, '--out', out, '--mode', 'rootless', '--json']);
    t.true(r.status === 0 || r.status === 1, r.stderr);
    const rep = JSON.parse(r.stdout) as Report;
    const gate = rep.gates.find((g) => g.id === `max_${type}_namespaces`);
    t.is(gate?.status, 'blocked');
    for (const p of rep.probes) {
      if (affected.includes(p.probe) && p.status === 'pass') {
        // A probe whose own namespace still works passes on what it showed and skips the part
        // the gate blocks (nesting with max_pid_namespaces = 0 still measures user namespaces).
        const gated = p.assertions.filter((a) => a.status === 'skipped' && a.gate === `max_${type}_namespaces`);
        t.true(gated.length > 0, `${p.id} should be blocked or skip what the gate blocks`);
      } else if (affected.includes(p.probe)) {
        t.is(p.status, 'unsupported', `${p.id} should be blocked`);
        t.is(p.gate, `max_${type}_namespaces`, `${p.id}: ${p.cause}`);
        t.is(p.code, 'ENOSPC');
      } else {
        t.is(p.status, 'pass', `${p.id}: ${p.cause}`);
      }
    }
  });
}

test('the suite leaves no child process and no report temp file behind', (t) => {
  const out = tmp(t);
  const r = cli(['--out', out, '--mode', 'rootless']);
  t.is(r.status, 0, r.stderr);
  t.false(readdirSync(out).some((f) => f.startsWith('.')), 'no temporary file (.nsprobe-tmp-*) is left');
  t.true(existsSync(join(out, 'report.json')));
});
