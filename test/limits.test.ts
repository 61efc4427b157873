// Resource limits are the caller's, not the host's: a run under a low RLIMIT_NPROC must end in
// errors that name the limit (exit 1), never in `unsupported` verdicts blamed on a host gate, and
// the user-namespace depth measurement must not read the limit as "no level left".
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Report } from '../src/model.js';
import { CLI, ROOT, run } from './helpers/run.js';
import { isRoot, missingTools, needRoot, needTools } from './helpers/tools.js';

// Runs as nobody through setpriv, so it needs root to start; prlimit and setpriv are util-linux.
const asRoot = isRoot ? needTools(missingTools('prlimit', 'setpriv')) : needRoot();

// RLIMIT_NPROC counts every process and thread of the uid: a uid that nothing else on the machine
// runs as (not nobody, which other tests use at the same time) keeps the count this run's own.
const UID = 47000 + (process.pid % 1000);

// The bundled entry (bin, npm run probe) first: a script, it did not start libuv's pool before the
// sandboxes took the room, and Node aborted (SIGABRT) at every limit from 14 to 28.
const BUNDLE = join(ROOT, 'dist', 'bin', 'nsprobe.js');

function probeUnder(limit: string, entry = BUNDLE): { status: number | null; rep: Report | null; stderr: string } {
  const out = mkdtempSync(join(tmpdir(), 'nsprobe-test-limits-'));
  try {
    chownSync(out, UID, UID);
    const r = run(['setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', 'prlimit', limit, process.execPath, entry, '--out', out, '--format', 'json', '--only', 'uts,ipc,net,user,nesting']);
    let rep: Report | null = null;
    try {
      rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    } catch {
      // no report: Node itself could not start its threads under this limit
    }
    return { status: r.status, rep, stderr: `exit ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}` };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

asRoot('a low RLIMIT_NPROC for an unprivileged uid: probes error naming the limit, none is unsupported, no gate is blamed', (t) => {
  // The lowest limit under which Node itself still starts (it counts Node's own threads, more
  // in Node 22 and 24 than in 20) and the probes' clones do not all fit.
  let low = 0;
  let got: ReturnType<typeof probeUnder> | null = null;
  for (const n of [14, 16, 18, 20, 24, 28]) {
    got = probeUnder(`--nproc=${n}:${n}`);
    if (got.rep) {
      low = n;
      break;
    }
    t.log(`nproc ${n}: Node did not start (${got.stderr.split('\n')[0]})`);
  }
  if (!got?.rep) return t.fail(`no limit from 14 to 28 let Node start: ${got?.stderr}`);
  // The unbundled CLI (dist/src/cli.js) under the same limit reports too.
  const plain = probeUnder(`--nproc=${low}:${low}`, CLI);
  t.not(plain.rep, null, `dist/src/cli.js under RLIMIT_NPROC ${low}: ${plain.stderr}`);
  const { status, rep } = got;
  t.log(`RLIMIT_NPROC ${low}`);
  t.is(status, 1);
  const bad = rep.probes.filter((p) => p.status !== 'pass');
  t.true(bad.length > 0, 'the limit bites');
  for (const p of bad) {
    t.is(p.status, 'error', p.id);
    t.is(p.gate ?? null, null, p.id);
    t.regex(p.cause ?? '', new RegExp(`RLIMIT_NPROC is ${low} for uid ${UID} \\(ulimit -u`), p.id);
  }
  t.not(rep.gates.find((g) => g.id === 'userns_nesting')?.status, 'blocked', 'EAGAIN is not "no level left"');
  // A limit that lets most probes run still stops the nesting probe's forks before the kernel's
  // depth limit: an error naming the limit, not a failed depth assertion.
  const mid = probeUnder('--nproc=35:35');
  const nest = mid.rep?.probes.find((p) => p.id === 'nesting/rootless');
  t.is(nest?.status, 'error', nest?.cause);
  t.regex(nest?.cause ?? '', /RLIMIT_NPROC is 35/);
  // Control: with room to fork, the same probes pass.
  const ok = probeUnder('--nproc=4096:4096');
  t.is(ok.status, 0, ok.stderr);
  t.true(ok.rep !== null && ok.rep.probes.every((p) => p.status === 'pass'));
});
