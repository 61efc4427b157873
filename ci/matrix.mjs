#!/usr/bin/env node
// Runs nsprobe across the Vagrant distro matrix (Vagrantfile + ci/boxes.json) and merges the reports.
//
// Per box: `vagrant up <box> --provider P --no-provision` (retried after a destroy; nothing is
// installed in the guest: no Node, no compiler), `vagrant ssh-config <box>` into a file, then from
// this host `<nsprobe> --ssh <box> --ssh-config FILE --sudo --out <out>/<box>/root` (root through
// sudo -n) and the same without --sudo as the login user into <out>/<box>/user: nsprobe's agent is
// copied over that ssh connection, run and removed (src/remote/). `vagrant destroy -f <box>` always
// runs at the end: on success, failure, per-box timeout and Ctrl-C. Every vagrant and nsprobe
// command runs in its own process group, so a timeout kills it together with its ssh children.
// Finally `<nsprobe> merge <out> --out <out>` builds the matrix and --require cells are checked.
//
// Exit: 0 all boxes probed (both runs wrote a report), merge ok, required cells pass; 1 otherwise;
// 2 bad usage; 130 interrupted.
// See README.md, "Distro matrix (Vagrant)".
import { spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, quietStdout } from './args.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// NSPROBE_BOXES_FILE: another box table (ci/vagrant-local.mjs points it at its locally built box)
const BOXES_FILE = process.env.NSPROBE_BOXES_FILE ? resolve(process.env.NSPROBE_BOXES_FILE) : join(ROOT, 'ci', 'boxes.json');
const PROVIDERS = ['libvirt', 'virtualbox'];
const KILL_GRACE_MS = 5000;
/** The two runs per box: root (the agent through sudo -n) and the login user (vagrant). */
const RUNS = [['root', ['--sudo']], ['user', []]];

const USAGE = `usage: node ci/matrix.mjs [--boxes a,b] [--jobs N] [--timeout SECONDS] [--retries N]
       [--provider libvirt|virtualbox] [--out DIR] [--require FILE] [--vagrant PATH]
       [--nsprobe "node dist/src/cli.js"] [--destroy-timeout SECONDS]`;

function usageError(msg) {
  process.stderr.write(`matrix: ${msg.replace(/ \(see --help\)$/, '')} (see --help)\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- options

function readBoxes() {
  const table = JSON.parse(readFileSync(BOXES_FILE, 'utf8'));
  return table.boxes.map((b) => ({ name: b.name, box: b.box, family: b.family }));
}

function parseCli(argv) {
  let parsed;
  try {
    parsed = parseCommand(
      {
        boxes: { type: 'string', value: 'box names' },
        jobs: { type: 'string', value: 'a number' },
        timeout: { type: 'string', value: 'seconds' },
        retries: { type: 'string', value: 'a number' },
        provider: { type: 'string', value: 'a provider' },
        out: { type: 'string', value: 'a folder' },
        require: { type: 'string', value: 'cells' },
        vagrant: { type: 'string', value: 'a program' },
        nsprobe: { type: 'string', value: 'a command' },
        'destroy-timeout': { type: 'string', value: 'seconds' },
        help: { type: 'boolean', short: 'h' },
      },
      argv,
    );
  } catch (e) {
    usageError(String(e.message).split('\n')[0]);
  }
  const defaults = { jobs: '2', timeout: '1800', retries: '1', provider: process.env.VAGRANT_DEFAULT_PROVIDER || 'libvirt', out: 'reports/matrix', vagrant: 'vagrant', nsprobe: 'node dist/src/cli.js', 'destroy-timeout': '600', help: false };
  const v = { ...defaults, ...parsed.values };
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, min) => {
    const s = v[name];
    if (!/^\d+$/.test(s) || Number(s) < min) usageError(`--${name} takes a whole number from ${min} up, not '${s}'`);
    return Number(s);
  };
  const seconds = (name) => {
    const s = v[name];
    if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0) usageError(`--${name} takes a number of seconds above 0, not '${s}'`);
    return Number(s);
  };
  if (!PROVIDERS.includes(v.provider)) usageError(`--provider wants one of ${PROVIDERS.join('|')}, got '${v.provider}'`);

  let all;
  try {
    all = readBoxes();
  } catch (e) {
    usageError(`cannot read ${relative(process.cwd(), BOXES_FILE)}: ${e.message}`);
  }
  const known = new Map(all.map((b) => [b.name, b]));
  let boxes = all;
  if (v.boxes !== undefined) {
    const names = v.boxes.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) usageError('--boxes is empty');
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) usageError(`--boxes: unknown box ${unknown.join(', ')} (known: ${[...known.keys()].join(', ')})`);
    boxes = [...new Set(names)].map((n) => known.get(n));
  }

  const nsprobe = v.nsprobe.trim().split(/\s+/).filter(Boolean);
  if (nsprobe.length === 0) usageError('--nsprobe is empty');

  const opts = {
    boxes,
    known,
    jobs: int('jobs', 1),
    timeoutS: seconds('timeout'),
    retries: int('retries', 0),
    provider: v.provider,
    out: resolve(v.out),
    vagrant: resolveExecutable(v.vagrant),
    nsprobe,
    destroyTimeoutS: seconds('destroy-timeout'),
    require: [],
  };
  if (v.require !== undefined) opts.require = readRequire(v.require, known);
  return opts;
}

function resolveExecutable(name) {
  const ok = (p) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) {
    const p = resolve(name);
    if (!ok(p)) usageError(`--vagrant ${name}: not an executable file`);
    return p;
  }
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    if (dir && ok(join(dir, name))) return join(dir, name);
  }
  usageError(`'${name}' not found on PATH: install Vagrant (README.md, "Distro matrix") or pass --vagrant PATH`);
}

/** --require FILE: lines `<box|*>[/root|/user] <probe>/<mode>`; '#' starts a comment. */
function readRequire(file, known) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    usageError(`--require ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  const cells = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^(\*|[A-Za-z0-9._-]+)(?:\/(root|user))?\s+([a-z0-9-]+\/(?:privileged|rootless))$/.exec(line);
    if (!m) usageError(`--require ${file}:${i + 1}: want '<box|*>[/root|/user] <probe>/<privileged|rootless>', got '${line}'`);
    if (m[1] !== '*' && !known.has(m[1])) usageError(`--require ${file}:${i + 1}: unknown box '${m[1]}'`);
    cells.push({ box: m[1], run: m[2] ?? null, cell: m[3], line: i + 1 });
  });
  return cells;
}

// ---------------------------------------------------------------- processes

const active = new Set(); // running children: { child, kill(reason) }
let interrupted = false;

/**
 * Runs a command in its own process group. Resolves { code, signal, reason, stdout } where reason is
 * 'timeout' or 'interrupted' when we killed it. stdout is captured when capture is set, else logged.
 */
function run(cmd, args, { log, deadline, capture = false, cwd = ROOT, cleanup = false }) {
  return new Promise((resolvePromise) => {
    const now = Date.now();
    if (deadline !== undefined && now >= deadline) return resolvePromise({ code: null, signal: null, reason: 'timeout', stdout: '' });
    if (interrupted && !cleanup) return resolvePromise({ code: null, signal: null, reason: 'interrupted', stdout: '' });
    log.write(`$ ${[cmd, ...args].join(' ')}\n`);
    const child = spawn(cmd, args, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1' },
    });
    const chunks = [];
    child.stdout.on('data', (d) => (capture ? chunks.push(d) : log.write(d)));
    child.stderr.on('data', (d) => log.write(d));
    let reason = null;
    let timer = null;
    let killTimer = null;
    const entry = {
      cleanup,
      kill(why) {
        if (reason) return;
        reason = why;
        signalGroup(child, 'SIGTERM');
        killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_GRACE_MS);
      },
    };
    active.add(entry);
    if (deadline !== undefined) timer = setTimeout(() => entry.kill('timeout'), deadline - now);
    let done = false;
    const finish = (code, signal, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      active.delete(entry);
      // Whatever the leader did, leave no grandchildren behind (vagrant's ssh, provider helpers).
      signalGroup(child, 'SIGKILL');
      clearTimeout(killTimer);
      if (error) log.write(`matrix: cannot run ${cmd}: ${error.message}\n`);
      resolvePromise({ code, signal, reason: reason ?? (error ? 'spawn' : null), stdout: Buffer.concat(chunks).toString('latin1') });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

function signalGroup(child, sig) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* already gone */
  }
}

function describe(r) {
  if (r.reason === 'spawn') return 'could not start';
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.code}`;
}

// ---------------------------------------------------------------- one box

class BoxFailure extends Error {}

function say(box, msg) {
  process.stdout.write(`[${box}] ${msg}\n`);
}

async function runBox(box, opts) {
  const name = box.name;
  const logDir = join(opts.out, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${name}.log`);
  const log = createWriteStream(logPath);
  const deadline = Date.now() + opts.timeoutS * 1000;
  const v = (args, extra = {}) => run(opts.vagrant, args, { log, deadline, ...extra });
  const check = (r, what) => {
    if (r.reason === 'timeout') throw new BoxFailure(`timeout after ${opts.timeoutS} s (during ${what})`);
    if (r.reason === 'interrupted') throw new BoxFailure(`interrupted (during ${what})`);
    return r.code === 0 && !r.signal;
  };
  const result = { name, ok: false, reports: 0, error: null, log: logPath };
  const boxOut = join(opts.out, name);
  rmSync(boxOut, { recursive: true, force: true });
  let created = false;
  try {
    const attempts = opts.retries + 1;
    for (let attempt = 1; ; attempt++) {
      say(name, `up (attempt ${attempt}/${attempts})`);
      created = true;
      const r = await v(['up', name, '--provider', opts.provider, '--no-provision']);
      if (check(r, 'up')) break;
      if (attempt >= attempts) throw new BoxFailure(`vagrant up failed ${attempts} time(s), last: ${describe(r)}`);
      say(name, `up failed (${describe(r)}); destroying before the next attempt`);
      const d = await run(opts.vagrant, ['destroy', '-f', name], { log, deadline });
      check(d, 'destroy before retry');
    }

    // how to reach the box: Vagrant's own ssh settings (address, port, user, key), for nsprobe's ssh
    const c = await v(['ssh-config', name], { capture: true });
    check(c, 'ssh-config');
    if (c.code !== 0) throw new BoxFailure(`vagrant ssh-config failed (${describe(c)})`);
    if (!new RegExp(`^Host\\s+${name.replace(/[.]/g, '\\.')}\\s*$`, 'm').test(c.stdout)) throw new BoxFailure(`vagrant ssh-config printed no 'Host ${name}' entry`);
    const sshConfig = join(logDir, `${name}.ssh-config`);
    writeFileSync(sshConfig, c.stdout, { mode: 0o600 });

    const [cmd, ...pre] = opts.nsprobe;
    const failures = [];
    for (const [runName, flags] of RUNS) {
      say(name, `probe ${runName}`);
      const dir = join(boxOut, runName);
      mkdirSync(dir, { recursive: true });
      const p = await run(cmd, [...pre, '--ssh', name, '--ssh-config', sshConfig, ...flags, '--out', dir], { log, deadline });
      check(p, `probe ${runName}`);
      const got = existsSync(join(dir, 'report.json'));
      if (got) result.reports++;
      // 0: all pass, 1: some probe did not; 4 (the host was not probed: login, sudo, no agent) and the rest: a failed run
      if (!got || (p.code !== 0 && p.code !== 1)) failures.push(`${runName}: nsprobe ${describe(p)}${got ? '' : ', no report.json'}`);
    }
    say(name, `collected ${result.reports} report${result.reports === 1 ? '' : 's'}`);
    if (failures.length) throw new BoxFailure(`probe failed (${failures.join('; ')}), collected ${result.reports} report(s)`);
    result.ok = true;
  } catch (e) {
    result.error = e instanceof BoxFailure ? e.message : `internal error: ${e.stack || e}`;
  } finally {
    if (created) {
      // Own deadline: a box that timed out must still be destroyed.
      const d = await run(opts.vagrant, ['destroy', '-f', name], { log, deadline: Date.now() + opts.destroyTimeoutS * 1000, cleanup: true });
      if (d.code === 0) say(name, 'destroyed');
      else {
        say(name, `destroy failed (${d.reason ?? describe(d)}): remove it by hand with 'vagrant destroy -f ${name}'`);
        result.error ??= 'vagrant destroy failed';
        result.ok = false;
      }
    }
    await new Promise((r) => log.end(r));
  }
  if (result.error) say(name, `FAILED: ${result.error} (log: ${relative(process.cwd(), logPath)})`);
  return result;
}

function findReports(dir) {
  const found = [];
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findReports(p));
    else if (entry.name === 'report.json') found.push(p);
  }
  return found;
}

// ---------------------------------------------------------------- merge and requirements

async function merge(opts) {
  const [cmd, ...pre] = opts.nsprobe;
  const logPath = join(opts.out, 'logs', 'merge.log');
  mkdirSync(dirname(logPath), { recursive: true });
  const log = createWriteStream(logPath);
  process.stdout.write(`[merge] ${[...opts.nsprobe, 'merge', relative(process.cwd(), opts.out) || '.', '--out', relative(process.cwd(), opts.out) || '.'].join(' ')}\n`);
  const r = await run(cmd, [...pre, 'merge', opts.out, '--out', opts.out], { log, deadline: Date.now() + 600_000 });
  await new Promise((res) => log.end(res));
  if (r.code === 0) {
    process.stdout.write(`[merge] wrote ${relative(process.cwd(), join(opts.out, 'matrix.json'))} (.md, .html, matrix-junit.xml)\n`);
    return true;
  }
  const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n  ');
  process.stdout.write(`[merge] FAILED: ${r.reason ?? describe(r)}\n  ${tail}\n`);
  return false;
}

function readReport(p) {
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
}

/** Returns the number of required cells that are not pass. */
function checkRequire(opts) {
  if (opts.require.length === 0) return 0;
  const selected = new Set(opts.boxes.map((b) => b.name));
  let bad = 0;
  let checked = 0;
  for (const req of opts.require) {
    const names = req.box === '*' ? [...selected] : [req.box];
    for (const name of names) {
      const label = `${name}${req.run ? `/${req.run}` : ''} ${req.cell}`;
      if (!selected.has(name)) {
        process.stdout.write(`[require] ${label}: not checked (box not in --boxes)\n`);
        continue;
      }
      checked++;
      const runs = req.run ? [req.run] : ['root', 'user'];
      const seen = [];
      for (const runName of runs) {
        const rep = readReport(join(opts.out, name, runName, 'report.json'));
        const probe = rep?.probes?.find?.((p) => p.id === req.cell);
        if (probe) seen.push(`${runName}=${probe.status}`);
      }
      const ok = seen.length > 0 && seen.every((s) => s.endsWith('=pass'));
      if (!ok) {
        bad++;
        process.stdout.write(`[require] ${label}: NOT PASS (${seen.length ? seen.join(' ') : 'no result'})\n`);
      }
    }
  }
  process.stdout.write(`[require] ${checked} required cell(s) checked, ${bad} not pass\n`);
  return bad;
}

// ---------------------------------------------------------------- main

async function main() {
  quietStdout('matrix');
  const opts = parseCli(process.argv.slice(2));
  mkdirSync(opts.out, { recursive: true });

  let sigints = 0;
  const onSignal = (sig) => {
    sigints++;
    interrupted = true;
    if (sigints === 1) {
      process.stderr.write(`matrix: ${sig}: stopping running boxes and destroying them (again to quit at once)\n`);
      for (const a of active) if (!a.cleanup) a.kill('interrupted');
    } else {
      for (const a of active) a.kill('interrupted');
      process.exit(130);
    }
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  process.stdout.write(`matrix: ${opts.boxes.length} box(es) with ${opts.provider}, ${opts.jobs} at a time, ${opts.timeoutS} s each: ${opts.boxes.map((b) => b.name).join(' ')}\n`);
  const queue = [...opts.boxes];
  const results = [];
  const worker = async () => {
    while (queue.length && !interrupted) {
      const box = queue.shift();
      results.push(await runBox(box, opts));
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.jobs, opts.boxes.length) }, worker));
  if (interrupted) {
    process.stdout.write('matrix: interrupted\n');
    process.exit(130);
  }

  const failed = results.filter((r) => !r.ok);
  let mergeOk = true;
  if (findReports(opts.out).length > 0) mergeOk = await merge(opts);
  else process.stdout.write('[merge] skipped: no report.json collected\n');
  const notPass = checkRequire(opts);

  const ok = results.length - failed.length;
  process.stdout.write(`matrix: ${ok} box(es) ok, ${failed.length} failed${failed.length ? ` (${failed.map((r) => r.name).join(', ')})` : ''}; reports in ${relative(process.cwd(), opts.out) || '.'}\n`);
  process.exit(failed.length || !mergeOk || notPass ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`matrix: internal error: ${e.stack || e}\n`);
  process.exit(1);
});
