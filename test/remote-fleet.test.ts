// Stopping a multi-host run: hosts whose ssh never answers (a ProxyCommand that only sleeps) keep
// every child busy; SIGINT to the controller stops them all (exit 130, no matrix), and SIGKILL of
// the controller stops them too (each child sees its stdin pipe close). No process stays either way.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, tmp } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

const children = (pid: number): number[] =>
  spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .map(Number);
const tree = (pid: number): number[] => children(pid).flatMap((c) => [c, ...tree(c)]);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout);
  } catch {
    return false;
  }
};

for (const how of ['SIGINT', 'SIGKILL'] as const) {
  needTools(missingTools('ssh', 'pgrep'))(`${how} to a multi-host controller stops every host's run; nothing stays`, async (t) => {
    const d = tmp(t);
    const out = join(d, 'out');
    // A unique sleep length marks this test's ProxyCommands among the machine's processes.
    const mark = String(600 + Math.floor(Math.random() * 300));
    const child = spawn(process.execPath, [CLI, '--ssh', 'h1,h2,h3', '--jobs', '2', '--ssh-config', '/dev/null', '--ssh-option', `ProxyCommand=sleep ${mark}`, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    let procs: number[] = [];
    for (const end = Date.now() + 120000; Date.now() < end && child.exitCode === null; ) {
      await new Promise((r) => setTimeout(r, 50));
      procs = tree(child.pid!);
      const sleeps = procs.filter((p) => spawnSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).stdout.includes(`sleep\0${mark}`));
      if (sleeps.length === 2) break;
    }
    t.is(procs.filter((p) => spawnSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).stdout.includes(`sleep\0${mark}`)).length, 2, `two hosts at once (--jobs 2): ${err}`);
    child.kill(how);
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    if (how === 'SIGINT') t.is(child.exitCode, 130, err);
    for (const end = Date.now() + 60000; Date.now() < end && procs.some(alive); ) await new Promise((r) => setTimeout(r, 50));
    const cmd = (p: number) => `${p} ${spawnSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).stdout.replace(/\0/g, ' ').slice(0, 160)}`;
    t.deepEqual(procs.filter(alive).map(cmd), [], 'every child nsprobe, ssh and ProxyCommand is gone');
    t.false(existsSync(join(out, 'matrix.json')), 'a stopped run writes no matrix');
    t.false(existsSync(join(out, 'h3')), 'no host started after the stop');
  });
}
