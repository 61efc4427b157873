// --via 'CMD ...': the bootstrap (src/agent/bootstrap.ts) through a local wrapper (env) and
// through nsenter into another namespace set gives the verdicts of a local run in that same
// environment; a machine without an agent is one line; killing the controller or Ctrl-C leaves
// no agent process and no file on the target.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bootstrapScript, splitCommand } from '../src/agent/bootstrap.js';
import { agentPath } from '../src/native.js';
import { isRoot, ROOT, tmp } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';
import { verdicts } from './helpers/reports.js';

const execFileP = promisify(execFile);
const CLI = join(ROOT, 'dist', 'bin', 'nsprobe.js');
const noAgent = agentPath() ? null : 'the agent is not built (npm run build)';

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}, prefix: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = [...prefix, process.execPath, CLI, ...argv];
  try {
    const r = await execFileP(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 120000, maxBuffer: 64 << 20, cwd: '/', env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** Agent processes started from a folder under dir (what a --via run with TMPDIR=dir makes). */
function agentsUnder(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // argv[0] must be the agent under dir: the bootstrap's own short-lived helpers (dd of=..., sha256sum
      // FILE, chmod) also name that file, and counting them made the SIGKILL test see an "agent" that was
      // gone before the next look (CI, stop 21).
      const argv0 = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0')[0];
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (argv0.startsWith(dir + '/') && argv0.endsWith('/nsprobe-agent') && !/\) Z /.test(stat)) out.push(Number(e));
    } catch {}
  }
  return out;
}

test('--via: the command is split into words without a shell; the bootstrap is POSIX sh', (t) => {
  t.deepEqual(splitCommand(`kubectl exec -i 'my pod' --`), ['kubectl', 'exec', '-i', 'my pod', '--']);
  t.deepEqual(splitCommand('nsenter -t 1 -a'), ['nsenter', '-t', '1', '-a']);
  t.throws(() => splitCommand(`a 'b`));
  t.notRegex(bootstrapScript(), /\[\[|\bfunction\b|\$\{[^}]*\/\/|<<<|\bsource\b/, 'no bashisms');
});

needTools(noAgent ?? missingTools('sh', 'mktemp', 'sha256sum'))('--via env: the same verdicts as a local run, and nothing left in the tmp dir or the process table', async (t) => {
  const tdir = tmp(t);
  const local = await cli(['--json', '--out', tmp(t)]);
  const via = await cli(['--via', 'env', '--json', '--out', tmp(t)], { TMPDIR: tdir });
  t.is(via.code, local.code, via.stderr);
  const a = verdicts(local.stdout), b = verdicts(via.stdout);
  t.true(Object.keys(a.probes).length >= 14);
  t.deepEqual(b.probes, a.probes);
  t.deepEqual(b.assertions, a.assertions);
  t.deepEqual(readdirSync(tdir), [], 'the private folder is gone');
  t.deepEqual(agentsUnder(tdir), [], 'no agent left');
});

needTools(noAgent ?? (isRoot ? missingTools('unshare', 'nsenter') : 'needs root (nsenter into another user namespace)'))(
  '--via nsenter into unshare -Ur with max_user_namespaces=0: the verdicts of a local run inside that same environment',
  async (t) => {
    const tdir = tmp(t);
    chmodSync(tdir, 0o777);
    const holder = spawn('unshare', ['-Ur', '--fork', '--kill-child', 'sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces && echo $$ && exec sleep 300'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => {
      holder.kill('SIGKILL');
      holder.stdout.destroy();
    });
    const pid = await new Promise<number>((resolve, reject) => {
      holder.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      holder.once('exit', () => reject(new Error('the holder ended')));
    });
    t.is(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), '0 0 1', 'the holder is in its own user namespace');
    const enterIt = ['nsenter', '-t', String(pid), '-U'];
    const inside = await cli(['--json', '--out', tmp(t)], {}, enterIt);
    const via = await cli(['--via', enterIt.join(' '), '--json', '--out', tmp(t)], { TMPDIR: tdir });
    t.not(inside.stdout, '', inside.stderr);
    t.not(via.stdout, '', via.stderr);
    const a = verdicts(inside.stdout), b = verdicts(via.stdout);
    // Control: the environment does differ from the host (its user namespaces are capped at 0).
    t.notDeepEqual(a.probes, verdicts((await cli(['--json', '--out', tmp(t)])).stdout).probes, 'the capped environment gives other verdicts than the host');
    t.deepEqual(b.probes, a.probes);
    t.deepEqual(b.assertions, a.assertions);
    t.deepEqual(readdirSync(tdir), []);
    t.deepEqual(agentsUnder(tdir), []);
  },
);

needTools(noAgent)('--via to a machine this package has no agent for: one line, exit 2, nothing left', async (t) => {
  const d = tmp(t);
  mkdirSync(join(d, 'bin'));
  writeFileSync(join(d, 'bin', 'uname'), '#!/bin/sh\necho riscv64\n', { mode: 0o755 });
  writeFileSync(join(d, 'fake.sh'), `#!/bin/sh\nPATH=${d}/bin:$PATH exec "$@"\n`, { mode: 0o755 });
  const tdir = tmp(t);
  const r = await cli(['--via', join(d, 'fake.sh'), '--out', tmp(t)], { TMPDIR: tdir });
  t.is(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], /no agent for riscv64/);
  t.deepEqual(readdirSync(tdir), []);
});

for (const [how, sig] of [['killing the controller (SIGKILL)', 'SIGKILL'], ['Ctrl-C (SIGINT)', 'SIGINT']] as const) {
  // Serial: the poll for the agent must not be blocked by another test's spawnSync (cli()) in this
  // worker for as long as the whole run lasts.
  needTools(noAgent, test.serial)(`--via env: ${how} in the middle of a run leaves no agent process and no file on the target`, async (t) => {
    const tdir = tmp(t);
    const p = spawn(process.execPath, [CLI, '--via', 'env', '--out', tmp(t)], { env: { ...process.env, TMPDIR: tdir }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let exited: string | null = null;
    const exitedP = new Promise<number | null>((r) =>
      p.on('exit', (c, s) => {
        exited = `code ${c} signal ${s}`;
        r(c ?? (s === 'SIGKILL' ? -9 : null));
      }),
    );
    // Wait until the agent runs there (or the controller ends on its own), then stop the controller.
    const start = Date.now();
    let agents = agentsUnder(tdir);
    while (!agents.length && exited === null && Date.now() - start < 60000) {
      await new Promise((r) => setTimeout(r, 5));
      agents = agentsUnder(tdir);
    }
    t.true(agents.length >= 1, `the agent (and the children it made, which show its command line) was running; the controller: ${exited ?? 'still running'}, stderr: ${stderr.trim().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 150));
    p.kill(sig);
    const code = await exitedP;
    if (sig === 'SIGINT') t.is(code, 130);
    const end = Date.now() + 5000;
    while (agentsUnder(tdir).length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(agentsUnder(tdir), [], 'no agent left');
    t.deepEqual(readdirSync(tdir), [], 'no file left');
  });
}

// The controller gone during the transfer (ssh dropped, the --via command killed): the target's
// stdout closes, and the bootstrap's error line raises SIGPIPE. A shell killed by a signal it does
// not trap runs no EXIT trap, so the mktemp folder stayed (remote-ssh's "kill ssh", clean-clone CI).
async function bootstrapWithStdoutClosed(script: string, dir: string): Promise<{ code: number | null; signal: string | null; left: string[] }> {
  const c = spawn('sh', ['-c', script], { env: { TMPDIR: dir, PATH: process.env.PATH }, stdio: ['pipe', 'pipe', 'ignore'] });
  // After the first line (the machine): close our read end, then send a size and bytes whose sum is wrong.
  c.stdout.once('data', () => {
    c.stdout.destroy();
    c.stdin.end('10 0000\n0123456789');
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => c.on('exit', (x, s) => r([x, s])));
  return { code, signal, left: readdirSync(dir) };
}

test('--via: a bootstrap whose controller went away mid-transfer (stdout closed, SIGPIPE) removes its folder', async (t) => {
  const r = await bootstrapWithStdoutClosed(bootstrapScript(), tmp(t));
  t.deepEqual(r.left, [], JSON.stringify(r));
  t.is(r.code, 141, JSON.stringify(r));
  // Control: without its PIPE trap the same shell dies of SIGPIPE and leaves the folder.
  const bare = bootstrapScript().replace("trap 'exit 141' PIPE", ':');
  t.not(bare, bootstrapScript());
  const c = await bootstrapWithStdoutClosed(bare, tmp(t));
  t.is(c.signal, 'SIGPIPE', JSON.stringify(c));
  t.is(c.left.length, 1, JSON.stringify(c));
});
