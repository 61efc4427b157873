// Issue 14 item 5: a run reaps everything it forks. Before, every run handed the probe servers
// that cgroup, ipc-mqueue, join and net-veth fork (grandchildren of Node) to init as zombies: 12
// as root, 6 as a normal user. The CLI runs here under a subreaper the test makes (a Node process
// that set PR_SET_CHILD_SUBREAPER through the addon), so every orphan of the run comes to it;
// after the run has exited it counts its zombie children. A control shows the counter sees them.
import test from 'ava';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, NOBODY, ROOT, run } from './helpers/run.js';
import { needRoot, needTools, missingTools } from './helpers/tools.js';
import { prng } from '../scripts/harness.js';

const ADDON = join(ROOT, 'build', 'Release', 'nsprobe.node');

// argv: addon, signal ('' for none), delay ms, command... Prints {code, signal, zombies, children}.
const SUBREAPER = `
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
const [addon, sig, delay, ...cmd] = process.argv.slice(1);
const a = createRequire(import.meta.url)(addon);
if (!a.setSubreaper(true)) throw new Error('PR_SET_CHILD_SUBREAPER failed');
const c = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
let err = '';
c.stderr.on('data', (d) => (err += d));
if (sig) setTimeout(() => c.kill(sig), Number(delay));
const [code, signal] = await new Promise((r) => c.on('exit', (...x) => r(x)));
await new Promise((r) => setTimeout(r, 300));
let zombies = 0, children = 0;
for (const d of readdirSync('/proc')) {
  if (!/^[0-9]+$/.test(d)) continue;
  try {
    const s = readFileSync('/proc/' + d + '/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) !== process.pid) continue;
    children++;
    if (f[0] === 'Z') zombies++;
  } catch {}
}
console.log(JSON.stringify({ code, signal, zombies, children, stderr: err.slice(-300) }));
`;

interface Counted {
  code: number | null;
  signal: string | null;
  zombies: number;
  children: number;
  stderr: string;
}

function underSubreaper(cmd: string[], opts: { as?: string[]; signal?: string; delayMs?: number } = {}): Counted {
  const r = run([...(opts.as ?? []), process.execPath, '--input-type=module', '-e', SUBREAPER, ADDON, opts.signal ?? '', String(opts.delayMs ?? 0), ...cmd], { timeoutMs: 60000 });
  if (r.status !== 0) throw new Error(`subreaper wrapper failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Counted;
}

function outDir(owner?: number): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  if (owner !== undefined) chownSync(d, owner, owner);
  return d;
}

const serial = test.serial as unknown as typeof test;

serial('control: the counter sees an orphan that died under the subreaper', (t) => {
  const c = underSubreaper(['sh', '-c', 'sleep 0.05 & exit 0']);
  t.log(JSON.stringify(c));
  t.true(c.zombies >= 1);
});

needRoot(serial)('a whole run as root leaves no zombie', (t) => {
  const dir = outDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = underSubreaper([process.execPath, CLI, '--out', dir]);
  t.log(JSON.stringify(c));
  t.is(c.code, 0, c.stderr);
  t.is(c.zombies, 0);
  t.is(c.children, 0, 'and no process of the run is left either');
});

needTools(missingTools('setpriv'), serial)('a whole run as nobody leaves no zombie', (t) => {
  if (process.geteuid?.() !== 0) return t.pass('already not root: the root test covers this user');
  const dir = outDir(65534);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = underSubreaper([process.execPath, CLI, '--out', dir], { as: NOBODY });
  t.log(JSON.stringify(c));
  t.is(c.code, 0, c.stderr);
  t.is(c.zombies, 0);
  t.is(c.children, 0);
});

needRoot(serial)('runs interrupted at seeded random points leave no zombie', (t) => {
  const rand = prng(14005);
  for (let i = 0; i < 6; i++) {
    const dir = outDir();
    try {
      const signal = rand() < 0.5 ? 'SIGINT' : 'SIGTERM';
      const delayMs = Math.round(250 + rand() * 500);
      const c = underSubreaper([process.execPath, CLI, '--only', 'cgroup,ipc-mqueue,join,net-veth,pid', '--out', dir], { signal, delayMs });
      t.log(`${signal} at ${delayMs} ms: ${JSON.stringify(c)}`);
      t.is(c.zombies, 0, `${signal} at ${delayMs} ms`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
