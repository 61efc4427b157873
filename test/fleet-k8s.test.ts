// deploy/kubernetes/: the manifests validated offline against the Kubernetes API schemas (the
// kubernetes-models package, pinned; no cluster, no network), the properties the node probe
// rests on checked by name (each with a control), and the DaemonSet's loop run for real here
// with its folders pointed at temporary ones: it publishes the NFD feature file and the
// node_exporter textfile by rename and stops at SIGTERM.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { parseAllDocuments } from 'yaml';
import { packageRoot } from '../src/paths.js';

const DIR = join(packageRoot(), 'deploy', 'kubernetes');
const MODELS = { DaemonSet, Job, Namespace } as const;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function docs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Obj);
}

/** The API schema's verdict on one object: undefined when valid, else the first error. */
function apiError(o: Obj): string | undefined {
  const Model = MODELS[o.kind as keyof typeof MODELS];
  if (!Model) return `kind ${String(o.kind)} is not one this test knows`;
  try {
    new Model(o as never).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function podSpec(o: Obj): Obj {
  return o.spec.template.spec;
}

/** What a node probe needs from its pod; each problem as a sentence. */
function nodeProbeProblems(o: Obj, publishes: boolean): string[] {
  const out: string[] = [];
  const spec = podSpec(o);
  if (spec.hostPID !== true) out.push('not hostPID (nsenter -t 1 cannot reach the node)');
  const c = spec.containers?.[0] ?? {};
  if (c.securityContext?.privileged !== true) out.push('not privileged');
  if (!(spec.tolerations ?? []).some((t: Obj) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined)) out.push('does not tolerate every taint');
  const script = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
  if (!script.includes(`nsprobe --via 'nsenter -t 1 -a --'`)) out.push('does not probe the node through --via nsenter');
  const formats = /--format ([a-z,]+)/.exec(script)?.[1]?.split(',') ?? [];
  if (publishes) {
    for (const f of ['nfd', 'prom']) if (!formats.includes(f)) out.push(`does not write --format ${f}`);
    const paths = (spec.volumes ?? []).map((v: Obj) => v.hostPath?.path).filter(Boolean);
    if (!paths.includes('/etc/kubernetes/node-feature-discovery/features.d')) out.push("does not mount the node's NFD features.d");
    if (!paths.some((p: string) => /textfile/.test(p))) out.push('does not mount a node_exporter textfile folder');
    if (!/sleep/.test(script)) out.push('does not repeat');
  }
  return out;
}

test('every manifest is valid by the Kubernetes API schemas: a Namespace, the DaemonSet and the Job', (t) => {
  const all = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).flatMap(docs);
  t.deepEqual(all.map((o) => o.kind).sort(), ['DaemonSet', 'Job', 'Namespace']);
  for (const o of all) t.is(apiError(o), undefined, `${o.kind} ${o.metadata?.name}`);
  // Controls: the schemas are live (a wrong type, a missing required field).
  const ds = structuredClone(all.find((o) => o.kind === 'DaemonSet')!);
  podSpec(ds).hostPID = 'yes';
  t.regex(apiError(ds) ?? '', /hostPID must be boolean/);
  const job = structuredClone(all.find((o) => o.kind === 'Job')!);
  delete podSpec(job).containers;
  t.regex(apiError(job) ?? '', /containers/);
});

test('the DaemonSet probes its node: privileged, hostPID, every taint tolerated, --via nsenter, nfd and prom into the node folders, repeated', (t) => {
  const ds = docs('daemonset.yaml').find((o) => o.kind === 'DaemonSet')!;
  t.deepEqual(nodeProbeProblems(ds, true), []);
  t.is(podSpec(ds).automountServiceAccountToken, false, 'no API token: the probe needs none');
  const job = docs('job.yaml')[0]!;
  t.deepEqual(nodeProbeProblems(job, false), []);
  t.is(podSpec(job).restartPolicy, 'Never');
  // Controls: each property, removed alone, is seen.
  const broken = (f: (o: Obj) => void) => {
    const o = structuredClone(ds);
    f(o);
    return nodeProbeProblems(o, true);
  };
  t.true(broken((o) => (podSpec(o).hostPID = false)).some((p) => /hostPID/.test(p)));
  t.true(broken((o) => delete podSpec(o).containers[0].securityContext).includes('not privileged'));
  t.true(broken((o) => (podSpec(o).tolerations = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }])).includes('does not tolerate every taint'));
  t.true(broken((o) => (podSpec(o).containers[0].args = [podSpec(o).containers[0].args[0].replace(',prom', '')])).includes('does not write --format prom'));
  t.true(broken((o) => (podSpec(o).volumes = podSpec(o).volumes.filter((v: Obj) => !v.hostPath?.path?.includes('node-feature-discovery')))).includes("does not mount the node's NFD features.d"));
});

test("the DaemonSet's loop, run here: it publishes nsprobe.features and nsprobe.prom by rename and stops at SIGTERM", async (t) => {
  const ds = docs('daemonset.yaml').find((o) => o.kind === 'DaemonSet')!;
  const c = podSpec(ds).containers[0];
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-k8s-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  for (const sub of ['features.d', 'textfile', 'work', 'bin']) mkdirSync(join(d, sub));
  // The pod's folders, here; `nsprobe` is the real CLI, run on this host directly (--via is the
  // agent's: the loop's own command line is checked above) and on two probes to keep it short.
  const script = (c.args[0] as string).replaceAll('/host/features.d', join(d, 'features.d')).replaceAll('/host/textfile', join(d, 'textfile')).replaceAll('/work', join(d, 'work'));
  const cli = join(packageRoot(), 'dist', 'bin', 'nsprobe.js');
  writeFileSync(
    join(d, 'bin', 'nsprobe'),
    `#!/bin/sh\n[ "$1" = --via ] && shift 2\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} --only uts,ipc "$@"\n`,
  );
  chmodSync(join(d, 'bin', 'nsprobe'), 0o755);
  t.is(spawnSync('sh', ['-n', '-c', script]).status, 0, 'the script parses');
  const env = { ...process.env, PATH: `${join(d, 'bin')}:${process.env.PATH}`, INTERVAL_SECONDS: '600', NODE_NAME: 'node-a' };
  const child = spawn('/bin/sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b: Buffer) => (log += b));
  child.stderr.on('data', (b: Buffer) => (log += b));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Running means present and not a zombie (a killed orphan waits for its reaper a moment).
  const running = (pid: string) => {
    try {
      return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const loopSleeps: string[] = [];
  const deadline = Date.now() + 120_000;
  while (!/nsprobe exited \d+ on node node-a/.test(log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  // The two renames come after that line, then the loop's sleep: wait for the sleep (an event, not a fixed pause).
  const sleepsOfLoop = () => spawnSync('pgrep', ['-P', String(child.pid), 'sleep'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  while (!sleepsOfLoop().length && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  try {
    t.regex(log, /nsprobe exited [01] on node node-a/);
    t.deepEqual(readdirSync(join(d, 'features.d')), ['nsprobe.features'], 'no temporary file left beside it');
    t.deepEqual(readdirSync(join(d, 'textfile')), ['nsprobe.prom']);
    const features = readFileSync(join(d, 'features.d', 'nsprobe.features'), 'utf8');
    t.regex(features, /^# \+expiry-time=/m);
    t.regex(features, /^feature\.node\.kubernetes\.io\/nsprobe-utsns\.(privileged|rootless)=(true|false)$/m);
    t.regex(readFileSync(join(d, 'textfile', 'nsprobe.prom'), 'utf8'), /^# TYPE nsprobe_/m);
    loopSleeps.push(...sleepsOfLoop());
    t.is(loopSleeps.length, 1, 'the loop sleeps between runs');
    t.true(loopSleeps.every(running), 'control: its sleep is seen running');
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0, log);
  // The sleep went with it: no process of the loop is left (the control: it is seen while running).
  for (let i = 0; i < 50 && loopSleeps.some(running); i++) await new Promise((r) => setTimeout(r, 100));
  t.false(loopSleeps.some(running), "the loop's sleep was stopped");
  t.false(existsSync(join(d, 'work', 'run', 'nsprobe.features.tmp')));
});
