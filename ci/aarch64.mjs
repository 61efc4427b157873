#!/usr/bin/env node
// The native code on aarch64, checked on an x86_64 host: every native source is compiled with
// Debian's cross compiler (the flags come from binding.gyp), and nsprobe-serve, the static
// program that serves time namespaces, is run under qemu-user behind the real (x86_64) addon, in
// real namespaces, through the same request battery as the x86_64 nsprobe-serve. The two must
// answer alike.
//
// What qemu-user cannot show (said in the report, not hidden): the addon itself (Node would have
// to be an aarch64 build too), and a fork with CLONE_PARENT, which qemu-user refuses with
// EINVAL: so a time+pid sandbox must come back as that error, carried by nsprobe-serve's error
// hello, where the x86_64 server serves as PID 1.
//
// Usage: node ci/aarch64.mjs [--check] [--json]
//   --check  only make sure the tools are there (as root: apt-get installs the missing ones)
//   --json   print the results as JSON
// Exit: 0 alike; 1 a difference or a failed build; 2 bad flags; 3 a tool is missing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir } from '../scripts/node-headers.mjs';
import { scriptArgs } from './args.mjs';
import { aptInstall, which } from './tools.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, '.cache', 'aarch64');
const TOOLS = { cxx: 'aarch64-linux-gnu-g++', cc: 'aarch64-linux-gnu-gcc', qemu: 'qemu-aarch64' };
const PACKAGES = ['g++-aarch64-linux-gnu', 'qemu-user'];

const opts = scriptArgs('aarch64', 'node ci/aarch64.mjs [--check] [--json] [--battery]', { check: { type: 'boolean' }, json: { type: 'boolean' }, battery: { type: 'boolean' } }, (v) => v);
if (opts.battery) {
  await battery();
  process.exit(0);
}

const missing = () => Object.values(TOOLS).filter((t) => !which(t));

function ensureTools() {
  if (!missing().length) return;
  if (process.geteuid?.() !== 0 || !which('apt-get')) {
    process.stderr.write(`aarch64: missing ${missing().join(', ')}; as root run: apt-get install -y ${PACKAGES.join(' ')}\n`);
    process.exit(3);
  }
  const r = aptInstall(PACKAGES);
  if (missing().length) {
    process.stderr.write(`aarch64: apt-get install ${PACKAGES.join(' ')} did not provide ${missing().join(', ')}: ${(r.stderr || '').trim().split('\n').pop()}\n`);
    process.exit(3);
  }
}

ensureTools();
if (opts.check) process.exit(0);

// ---- build -------------------------------------------------------------------------------
const gyp = JSON.parse(fs.readFileSync(join(ROOT, 'binding.gyp'), 'utf8'));
const target = (name) => gyp.targets.find((t) => t.target_name === name);
/** A target's flags as node-gyp gives them on arm64 (its own "conditions" for target_arch arm64). */
function flagsOf(t, key) {
  // "<(module_root_dir)" is node-gyp's variable for the package root (the -include of native/glibc-floor.h).
  const own = (t[key] ?? []).map((f) => f.replace('<(module_root_dir)', ROOT));
  const cond = (t.conditions ?? []).filter(([c]) => /target_arch\s*==\s*'arm64'/.test(c)).flatMap(([, v]) => v[key] ?? []);
  return [...own, ...cond];
}
function nodeIncludes() {
  const dir = findNodeDir();
  return dir ? [join(dir, 'include', 'node'), createRequire(import.meta.url)('node-addon-api').include_dir] : null;
}

fs.mkdirSync(OUT, { recursive: true });
const builds = [];
function build(what, argv) {
  const t = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: 'utf8' });
  builds.push({ what, ok: r.status === 0, ms: Math.round(performance.now() - t), error: r.status === 0 ? undefined : (r.stderr || r.stdout).trim().split('\n').slice(0, 6).join('\n') });
  return r.status === 0;
}

const serve = target('nsprobe-serve');
const serveBin = join(OUT, 'nsprobe-serve');
build('nsprobe-serve (static, no libc)', [TOOLS.cxx, ...flagsOf(serve, 'cflags'), ...flagsOf(serve, 'cflags_cc'), ...serve.ldflags, '-o', serveBin, ...serve.sources]);

const addon = target('nsprobe');
const inc = nodeIncludes();
if (!inc) builds.push({ what: 'nsprobe.node', ok: false, ms: 0, error: "no Node headers (include/node/node_api.h) next to this Node or in /usr" });
else
  for (const src of addon.sources) {
    const cflags = flagsOf(addon, 'cflags').filter((f) => !(addon['cflags!'] ?? []).includes(f));
    build(`nsprobe.node: ${src}`, [TOOLS.cxx, '-fPIC', ...cflags, ...flagsOf(addon, 'cflags_cc'), ...(addon.defines ?? []).map((d) => `-D${d}`), ...inc.map((i) => `-I${i}`), '-c', src, '-o', join(OUT, src.replace(/\W/g, '_') + '.o')]);
  }
for (const name of ['nsprobe-rawbench', 'nsprobe-seccomp-exec']) {
  const t = target(name);
  build(name, [TOOLS.cc, ...flagsOf(t, 'cflags'), '-o', join(OUT, name), ...t.sources]);
}

// ---- run: the same battery behind the x86_64 and the aarch64 server ------------------------
const wrapper = join(OUT, 'serve-aarch64.sh');
// nsprobe-serve SOCK f|- MASK. With "f" it forks the server of a pid namespace, and the exec'ing
// process has unshared that namespace: there qemu-user cannot start its own threads (the kernel
// refuses CLONE_THREAD while pid_ns_for_children differs) and dies before our code runs. So then
// qemu runs as a child of the shell, the first process of the new pid namespace.
const qemu = which(TOOLS.qemu);
fs.writeFileSync(wrapper, `#!/bin/sh\nif [ "$2" = f ]; then ${qemu} ${serveBin} "$@"; exit $?; fi\nexec ${qemu} ${serveBin} "$@"\n`, { mode: 0o755 });
function runBattery(servePath) {
  const env = { ...process.env };
  if (servePath) env.NSPROBE_SERVE_PATH = servePath;
  else delete env.NSPROBE_SERVE_PATH;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--battery'], { cwd: ROOT, encoding: 'utf8', env, timeout: 120_000 });
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status ?? r.signal}`).trim().split('\n').slice(-3).join(' | ') };
  return JSON.parse(r.stdout);
}
const serveBuilt = builds[0].ok;
const x86 = runBattery(null);
const arm = serveBuilt ? runBattery(wrapper) : { error: 'nsprobe-serve did not build' };

// Answers that differ by design: which program serves, time+pid (see the top), and the
// ioctls on namespace files, which qemu-user does not pass on (ENOSYS for any ioctl it does not
// know; a static aarch64 C program's ioctl(NS_GET_NSTYPE) gets the same).
const EXPECTED_DIFFERENT = new Set(['exe', 'time+pid', 'nsIoctl']);
const rows = [];
for (const key of new Set([...Object.keys(x86.checks ?? {}), ...Object.keys(arm.checks ?? {})])) {
  const a = x86.checks?.[key];
  const b = arm.checks?.[key];
  const same = JSON.stringify(a) === JSON.stringify(b);
  let ok = same;
  if (key === 'exe') ok = /nsprobe-serve$/.test(a) && /qemu-aarch64/.test(b ?? '');
  if (key === 'time+pid') ok = a === 'pid 1' && b === 'clone EINVAL';
  if (key === 'nsIoctl') ok = a?.type === 0x04000000 && a?.err === 0 && b?.err === 38; /* CLONE_NEWUTS; ENOSYS */
  rows.push({ check: key, x86_64: a, aarch64: b, ok, note: EXPECTED_DIFFERENT.has(key) ? 'differs by design' : undefined });
}
const ok = builds.every((b) => b.ok) && !x86.error && !arm.error && rows.length > 0 && rows.every((r) => r.ok);
const result = { ok, builds, x86Error: x86.error, aarch64Error: arm.error, checks: rows };
if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  for (const b of builds) process.stdout.write(`${b.ok ? 'ok  ' : 'FAIL'} build ${b.what} (${b.ms} ms)${b.error ? `\n     ${b.error.replace(/\n/g, '\n     ')}` : ''}\n`);
  if (x86.error) process.stdout.write(`FAIL x86_64 battery: ${x86.error}\n`);
  if (arm.error) process.stdout.write(`FAIL aarch64 battery: ${arm.error}\n`);
  const show = (v) => (v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v));
  for (const r of rows) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.check.padEnd(22)} x86_64 ${show(r.x86_64).padEnd(28)} aarch64 ${show(r.aarch64)}${r.note ? `  (${r.note})` : ''}\n`);
  process.stdout.write(`${ok ? 'aarch64: alike' : 'aarch64: DIFFERENT'}: ${rows.filter((r) => r.ok).length}/${rows.length} checks, ${builds.filter((b) => b.ok).length}/${builds.length} builds\n`);
}
process.exit(ok ? 0 : 1);

// ---- the battery (a process of its own: NSPROBE_SERVE_PATH is read when the addon loads) ----
async function battery() {
  const { enter, AF_INET, IFF_UP, NS_IOCTL } = await import(join(ROOT, 'dist', 'src', 'sandbox.js'));
  const YEAR = 365 * 86400;
  const checks = {};
  const s = await enter({ namespaces: ['time', 'uts', 'ipc', 'net', 'mnt'], mode: 'rootless', timeOffsets: { monotonic: YEAR, boottime: YEAR } });
  try {
    checks.exe = fs.readlinkSync(`/proc/${s.pid}/exe`);
    const id = await s.identity().get();
    checks.identity = { uid: id.uid, euid: id.euid, gid: id.gid, capEffNonZero: id.capEff > 0n, pidIsHostPid: id.pid === s.pid };
    await s.sethostname('nsprobe-a64').get();
    await s.setdomainname('a64.example').get();
    const u = await s.uname().get();
    checks.uname = { hostname: u.hostname, domainname: u.domainname, releaseIsHost: u.release === fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim() };
    const hostMono = Number(process.hrtime.bigint()) / 1e9;
    const c = await s.clocks().get();
    checks.clocks = { monotonicAhead: Math.round((c.monotonic - hostMono) / 86400), boottimeAhead: c.boottime - hostMono > YEAR - 60, realtimeNow: Math.abs(c.realtime - Date.now() / 1000) < 60 };
    checks.readlink = (await s.readlink('/proc/self/ns/time').get()).replace(/\d+/, 'N');
    const st = await s.stat('/').get();
    const hs = fs.statSync('/');
    checks.stat = { sameRootAsHost: st.ino === hs.ino, isDir: (st.mode & 0o170000) === 0o040000 };
    await s.mount('none', '/', '', 0x4000 | 0x40000); // MS_REC | MS_PRIVATE
    const m = await s.mount('tmpfs', '/mnt', 'tmpfs', 0, 'size=1m');
    await s.mkdir('/mnt/d').get();
    await s.writeFile('/mnt/d/f', 'hello from inside', 0x40 | 0x1 /* O_CREAT|O_WRONLY */).get();
    checks.files = { mount: m.errno, read: await s.readFile('/mnt/d/f').get(), list: await s.listdir('/mnt/d').get(), unlink: (await s.unlink('/mnt/d/f')).errno, umount: (await s.umount('/mnt')).errno };
    // Requests resolve to an Outcome (src/sandbox.ts): -errno here keeps this script's output as it was.
    const idOr = (o) => (o.ok ? o.value : -o.errno);
    const msg = idOr(await s.msgget(0x4e53a64, 0o1000 | 0o600));
    const shm = idOr(await s.shmget(0x4e53a64, 4096, 0o1000 | 0o600));
    const sem = idOr(await s.semget(0x4e53a64, 1, 0o1000 | 0o600));
    checks.sysvipc = { msg: msg >= 0, shm: shm >= 0, sem: sem >= 0, rm: [(await s.ipcrm('msg', msg)).errno, (await s.ipcrm('shm', shm)).errno, (await s.ipcrm('sem', sem)).errno] };
    // "/name": qemu-user hands the name to the host's mq_open(3) from one byte before the pointer
    // it got, where libc's slash would be.
    checks.mqueue = { open: -(await s.mqOpen('/nsprobe-a64', 0o100 | 0o2)).errno || 0, unlink: -(await s.mqUnlink('/nsprobe-a64')).errno || 0 };
    checks.linksBefore = (await s.links().get()).map((l) => `${l.name}:${l.flags & IFF_UP ? 'up' : 'down'}`);
    await s.linkSet('lo', IFF_UP).get();
    checks.linksAfter = (await s.links().get()).map((l) => `${l.name}:${l.flags & IFF_UP ? 'up' : 'down'}`);
    checks.tcpLoopback = (await s.tcpSelftest(AF_INET, Buffer.from([127, 0, 0, 1]))).errno;
    const nst = await s.nsIoctl('/proc/self/ns/uts', NS_IOCTL.GET_NSTYPE);
    checks.nsIoctl = { type: nst.ok ? nst.value[0] : undefined, err: nst.errno };
    const child = await s.forkServe().get();
    checks.fork = { childPpidIsServer: (await child.identity().get()).ppid === id.pid, close: (await child.close()).exitCode };
    const paused = await s.forkPause().get();
    const killed = -(await s.kill(paused, 9)).errno || 0;
    const w = await s.wait(paused).get();
    checks.killWait = { kill: killed, reaped: w.pid === paused, signal: w.status & 0x7f };
    const big = 'x'.repeat(4000);
    checks.echo = (await s.echo(big).get()).toString() === big;
  } finally {
    checks.close = (await s.close()).exitCode;
  }
  try {
    const p = await enter({ namespaces: ['time', 'pid'], mode: 'rootless' });
    checks['time+pid'] = `pid ${(await p.identity().get()).pid}`;
    await p.close();
  } catch (e) {
    checks['time+pid'] = `${e.stage} ${e.code}`;
  }
  process.stdout.write(JSON.stringify({ checks }) + '\n');
}
