// Issue 14 item 4: what a SIGKILLed run leaves (cgroups nsprobe-<pid>-*, host queues
// nsprobe-mqh-<pid>-*, temporary report files) is removed by the next run, which says so in the
// report notes. Only what a dead run made: a live process's objects stay, a pid that now belongs
// to a process started after the object counts as dead (pid reuse), names nsprobe does not make
// stay, and a normal user removes only its own.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, NOBODY, run } from './helpers/run.js';
import { needRoot, needTools, missingTools } from './helpers/tools.js';
import { listHostQueueNames, ownCgroupDir } from '../src/cleanup.js';
import { enter } from '../src/sandbox.js';
import { native } from '../src/native.js';
import { prng, spawnNode } from '../scripts/harness.js';
import { notesOf } from './helpers/debris.js';

const serial = test.serial as unknown as typeof test;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;

/** A pid that ran and is gone. */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}


async function hostQueue(name: string, op: 'make' | 'remove'): Promise<number> {
  const s = await enter({ namespaces: [], mode: 'privileged', timeoutMs: 2000 });
  try {
    const r = op === 'make' ? await s.mqOpen(name, O_CREAT | O_EXCL | O_RDWR) : await s.mqUnlink(name);
    return r.ok ? 0 : -r.errno;
  } finally {
    await s.close();
  }
}

needRoot(serial)('planted debris of a dead run is removed and noted; live, reused-pid and foreign names are judged right', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  const cg = ownCgroupDir();
  const dead = deadPid();
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  const reused = sleeper.pid!;
  const live = process.pid;
  const made: { cgroups: string[]; queues: string[] } = { cgroups: [], queues: [] };
  t.teardown(async () => {
    sleeper.kill('SIGKILL');
    rmSync(out, { recursive: true, force: true });
    for (const c of made.cgroups) if (existsSync(c)) rmdirSync(c);
    for (const q of made.queues) await hostQueue(q, 'remove').catch(() => undefined);
  });
  const file = (name: string, ageMs = 0) => {
    const p = join(out, name);
    writeFileSync(p, 'partial');
    if (ageMs) utimesSync(p, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
    return p;
  };
  const gone = [file(`.nsprobe-tmp-${dead}-a1b2c3`), file(`.report.json.tmp-${dead}-1`), file(`.nsprobe-tmp-${reused}-r3u5ed`, 3600_000)];
  const stays = [file(`.nsprobe-tmp-${live}-l1v3ab`), file('.nsprobe-tmp-nopid'), file(`keep.tmp-${dead}-1`)];
  mkdirSync(join(out, `.nsprobe-tmp-${dead}-stage1`));
  writeFileSync(join(out, `.nsprobe-tmp-${dead}-stage1`, 'report.json'), '{');
  gone.push(join(out, `.nsprobe-tmp-${dead}-stage1`));
  if (cg) {
    for (const [pid, tok] of [[dead, 'plantdead'], [live, 'plantlive']] as const) {
      const c = join(cg, `nsprobe-${pid}-${tok}`);
      mkdirSync(c);
      made.cgroups.push(c);
      (pid === dead ? gone : stays).push(c);
    }
  }
  const queues = (await listHostQueueNames()) !== null;
  if (queues) {
    for (const [pid, tok] of [[dead, 'plantdead'], [live, 'plantlive']] as const) {
      const q = `nsprobe-mqh-${pid}-${tok}`;
      t.is(await hostQueue(q, 'make'), 0);
      made.queues.push(q);
    }
  }
  const r = run([process.execPath, CLI, '--only', 'uts', '--out', out]);
  t.is(r.status, 0, r.stderr);
  for (const p of gone) t.false(existsSync(p), `removed: ${p}`);
  for (const p of stays) t.true(existsSync(p), `kept: ${p}`);
  const notes = notesOf(out);
  t.log(notes.join('\n'));
  // Cgroups and host queues are shared with every nsprobe run on the machine (other test files',
  // other users'): one of those may have collected them first. The report folder is ours alone.
  const shared = (p: string) => !p.startsWith(out);
  for (const p of gone) {
    const noted = notes.some((n) => n.includes(p) && /^removed a /.test(n));
    if (shared(p) && !noted) t.log(`${p} was collected by another run`);
    else t.true(noted, `a note names ${p}`);
  }
  for (const p of stays) t.false(notes.some((n) => n.includes(p)), `no note names ${p}`);
  if (queues) {
    const now = (await listHostQueueNames())!;
    t.false(now.includes(`nsprobe-mqh-${dead}-plantdead`), 'the dead run\'s host queue is gone');
    t.true(now.includes(`nsprobe-mqh-${live}-plantlive`), 'a live process\'s host queue stays');
    if (!notes.some((n) => n.includes(`nsprobe-mqh-${dead}-plantdead`))) t.log('the queue was collected by another run');
  } else {
    t.log('the host\'s queues cannot be listed here: queue debris not checked');
  }
});

needRoot(serial)('runs SIGKILLed at seeded random points: the next run removes all they left', async (t) => {
  const rand = prng(14006);
  let left = 0;
  for (let i = 0; i < 6; i++) {
    const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
    try {
      const { child, done } = spawnNode([CLI, '--only', 'cgroup,ipc-mqueue', '--out', out]);
      const pid = child.pid!;
      const delay = Math.round(250 + rand() * 400);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      await done;
      clearTimeout(timer);
      await new Promise((r) => setTimeout(r, 100)); // its children die by their parent-death signal
      const cg = ownCgroupDir();
      const debris = () => [
        ...(cg ? readdirSync(cg).filter((n) => n.startsWith(`nsprobe-${pid}-`)) : []),
        ...readdirSync(out).filter((n) => n.includes(`-${pid}-`)),
      ];
      // Old names carry the pid; slot names (nsprobe-mqh-u<uid>-<slot>) are the killed run's when
      // no live process holds them (other runs' live queues are held).
      const queues = async () => {
        const all = (await listHostQueueNames()) ?? [];
        const dead: string[] = [];
        for (const n of all) if (/^nsprobe-mqh-u\d+-\d+$/.test(n) && (await native().mqReap!(n, true)) === 0) dead.push(n);
        return [...all.filter((n) => n.startsWith(`nsprobe-mqh-${pid}-`)), ...dead];
      };
      const before = [...debris(), ...(await queues())];
      left += before.length;
      const r = run([process.execPath, CLI, '--only', 'uts', '--out', out]);
      t.is(r.status, 0, r.stderr);
      const after = [...debris(), ...(await queues())];
      t.log(`SIGKILL at ${delay} ms left ${JSON.stringify(before)}; after the next run: ${JSON.stringify(after)}`);
      t.deepEqual(after, []);
      const notes = notesOf(out);
      const inOut = new Set(readdirSync(out));
      for (const d of before) {
        // (A cgroup or host queue may have been collected by another run on the machine first.)
        if (notes.some((n) => n.includes(d))) continue;
        if (inOut.has(d) || d.startsWith('.')) t.fail(`no note names ${d}`);
        else t.log(`${d} was collected by another run`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  t.log(`${left} objects left by the killed runs`);
});

needTools(missingTools('setpriv'), serial)('as nobody: its own dead-run files go, root\'s stay', (t) => {
  if (process.geteuid?.() !== 0) return t.pass('needs root to plant a root-owned file');
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  chownSync(out, 65534, 65534);
  const dead = deadPid();
  const mine = join(out, `.nsprobe-tmp-${dead}-n0b0dy`);
  const roots = join(out, `.nsprobe-tmp-${dead}-r00tfl`);
  writeFileSync(mine, 'x');
  chownSync(mine, 65534, 65534);
  writeFileSync(roots, 'x');
  const r = run([...NOBODY, process.execPath, CLI, '--only', 'uts', '--out', out]);
  t.is(r.status, 0, r.stderr);
  t.false(existsSync(mine));
  t.true(existsSync(roots), 'a file of another user is not this caller\'s to remove');
  const notes = notesOf(out);
  t.true(notes.some((n) => n.includes(mine)));
  t.false(notes.some((n) => n.includes(roots)));
});
