// The residue checker finds planted debris of every kind and nothing once it is removed; a full
// CLI run leaves nothing (root), and a rootless run as nobody writes nothing outside its report
// folder and changes no host state.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../src/native.js';
import { formatResidue, residueSince, snapshot, type Residue } from '../src/residue.js';
import { IPC, O } from '../src/errno.js';
import { enter } from '../src/sandbox.js';
import { cgroup2Root } from '../probes/cgroup.js';
import { foreign } from '../scripts/harness.js';
import { cli, isRoot, NOBODY, run, tmp } from './helpers/run.js';

const rootOnly = isRoot ? test.serial : test.serial.skip;
const IPC_CREAT = IPC.CREAT;
const O_CREAT = O.CREAT;
const O_RDWR = O.RDWR;

function waitGone(pid: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (!existsSync(`/proc/${pid}`)) return resolve();
      if (Date.now() > deadline) return reject(new Error(`pid ${pid} still there`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

rootOnly('finds a planted mount, SysV queue, POSIX queue, veth, cgroup, stray process and /tmp file; none after removal', async (t) => {
  const tag = `nsprobe-plant-${process.pid}`;
  const mnt = tmp('nsprobe-plant-mnt-');
  const before = await snapshot();
  const found = (r: Residue[], kind: string, needle: string) => r.some((x) => x.kind === kind && x.what.includes(needle));

  // Plant.
  t.is(run(['mount', '-t', 'tmpfs', tag, mnt]).status, 0);
  const host = await enter({ namespaces: [], mode: 'privileged' });
  const key = 0x4e7e0000 | (process.pid & 0xffff);
  const msqid = await host.msgget(key, IPC_CREAT | 0o600).get();
  t.true(msqid >= 0);
  t.true((await host.mqOpen(tag, O_CREAT | O_RDWR)).ok);
  // Not a name the net-veth probe makes (nsp<token>a/b): tests running beside this one look for those on the host.
  const veth = `nsr${process.pid % 100000}`;
  t.is(native().netlink('vethCreate', `${veth}a`, `${veth}b`, 0), 0);
  const cg2 = cgroup2Root(readFileSync('/proc/self/mountinfo', 'utf8'));
  const cgdir = cg2 ? join(cg2, tag) : null;
  if (cgdir) mkdirSync(cgdir);
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  const file = join('/tmp', `${tag}.txt`);
  writeFileSync(file, 'debris');

  try {
    const { residue } = await residueSince(before, { settleMs: 0 });
    t.log(formatResidue(residue));
    t.true(found(residue, 'mount', `${mnt} tmpfs ${tag}`), 'the tmpfs mount');
    t.true(found(residue, 'sysvipc', `msg key 0x${(key >>> 0).toString(16)} id ${msqid}`), 'the SysV message queue');
    t.true(found(residue, 'mqueue', `/${tag}`), 'the POSIX message queue');
    t.true(found(residue, 'netdev', `${veth}a`) && found(residue, 'netdev', `${veth}b`), 'both ends of the veth pair');
    if (cgdir) t.true(found(residue, 'cgroup', cgdir), 'the cgroup');
    t.true(residue.some((r) => r.kind === 'process' && r.pid === sleeper.pid), 'the stray sleeping child');
    t.true(found(residue, 'file', file), 'the file in /tmp');
  } finally {
    // Remove.
    run(['umount', mnt]);
    await host.ipcrm('msg', msqid).catch(() => undefined);
    await host.mqUnlink(tag);
    await host.close();
    native().netlink('linkDel', `${veth}a`);
    if (cgdir) rmdirSync(cgdir);
    sleeper.kill('SIGKILL');
    await waitGone(sleeper.pid!);
    unlinkSync(file);
    rmSync(mnt, { recursive: true, force: true });
  }
  const { residue } = await residueSince(before, { ignore: foreign, settleMs: 3000 });
  t.deepEqual(residue, [], formatResidue(residue));
});

test.serial('a snapshot is taken twice in a row without residue (no planted debris)', async (t) => {
  const before = await snapshot();
  const { residue } = await residueSince(before, { ignore: foreign, settleMs: 3000 });
  t.deepEqual(residue, [], formatResidue(residue));
});

rootOnly('a full CLI run as root leaves zero residue; --check-residue says so and exits 0', async (t) => {
  const out = tmp(t);
  const before = await snapshot({ exclude: [out] });
  const r = cli(['--out', out, '--check-residue']);
  // The CLI's own check has no filter: another test's folder in /tmp at the same time makes it
  // exit 1, so its lines are judged with the same filter as ours.
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('residue: ') && l !== 'residue: none');
  const theirs = lines.map((l) => /^residue: (\w+): (.*)$/.exec(l)!).map((m) => ({ kind: m[1], what: m[2] }) as Residue);
  t.deepEqual(theirs.filter((x) => !foreign(x)), [], r.stderr);
  t.is(r.status, lines.length ? 1 : 0, r.stdout + r.stderr);
  const { residue } = await residueSince(before, { ignore: foreign, settleMs: 3000 });
  t.deepEqual(residue, [], formatResidue(residue));
});

rootOnly('a rootless run as nobody writes nothing outside its report folder and changes no host state', async (t) => {
  const out = tmp(t);
  chmodSync(out, 0o777);
  const before = await snapshot({ exclude: [out] });
  const r = cli(['--out', out, '--mode', 'rootless'], NOBODY);
  t.is(r.status, 0, r.stdout + r.stderr);
  // A file nobody owns is never someone else's: only other users' entries in shared temp
  // folders are left to the foreign filter.
  const { residue } = await residueSince(before, { ignore: (x) => foreign(x) && x.uid !== 65534, settleMs: 3000 });
  t.deepEqual(residue, [], formatResidue(residue));
});
