#!/usr/bin/env node
// Builds the matrix's "kernel without the options": Debian's linux-source (the 6.1 source of the
// bookworm kernels) configured from `make tinyconfig` plus ci/kernel-noopts.config (virtio, virtiofs,
// overlayfs, the serial console, proc/sys/tmpfs/devtmpfs, every namespace but user and time, no veth,
// /proc/config.gz on). The result is cached in .cache/kernels/noopts-<hash>/ in the layout of an
// unpacked kernel package (boot/vmlinuz-<release>, lib/modules/<release>/), keyed by a hash of the
// source version, the fragment and this recipe, so a second run does not rebuild.
//
//   node ci/kernel-build.mjs [--cache .cache/kernels] [--jobs 2] [--check]
//
// --check: exit 0 and print the kernel's folder when it is built, 1 when it is not (nothing is built).
// Exit: 0 built (or already cached); 1 the build failed; 2 bad flags; 3 a tool or the source is missing.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, quietStdout } from './args.mjs';
import { aptInstall, which } from './tools.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCE_PKG = 'linux-source-6.1';
export const FRAGMENT = path.join(ROOT, 'ci/kernel-noopts.config');
/** Bump when the steps below change what comes out for the same source and fragment. */
const RECIPE = 'tinyconfig+fragment+olddefconfig v1';
/** Build tools (Debian packages) besides gcc/make: the source tarball, Kconfig's parsers, objtool's libelf. */
const BUILD_PKGS = [SOURCE_PKG, 'flex', 'bison', 'bc', 'libelf-dev', 'libssl-dev', 'xz-utils', 'make', 'gcc', 'cpio'];

class UsageError extends Error {}
class MissingError extends Error {}
const log = (msg) => process.stdout.write(`${msg}\n`);

export function sourceVersion() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version} ${Status}', SOURCE_PKG], { encoding: 'utf8' });
  const m = /^(\S+) .*installed$/.exec(r.stdout ?? '');
  return m ? m[1] : null;
}

/** The fragment's options: [{ name, value }] with value 'n' for "# CONFIG_X is not set". */
export function fragmentOptions(text = fs.readFileSync(FRAGMENT, 'utf8')) {
  const out = [];
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line.trim());
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line.trim());
    if (set) out.push({ name: set[1], value: set[2] });
    else if (unset) out.push({ name: unset[1], value: 'n' });
  }
  return out;
}

/** Where the kernel for this source version + fragment + recipe lives (built or not). */
export function customKernelDir(cache, version = sourceVersion()) {
  if (!version) return null;
  const key = crypto.createHash('sha256').update(`${RECIPE}\n${version}\n${fs.readFileSync(FRAGMENT, 'utf8')}`).digest('hex').slice(0, 12);
  return path.join(cache, `noopts-${version}-${key}`);
}

/** The built kernel ({ dir, release, vmlinuz, config, build }) or null. */
export function builtKernel(cache) {
  const dir = customKernelDir(cache);
  if (!dir) return null;
  try {
    const build = JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8'));
    if (!fs.existsSync(path.join(dir, 'boot', `vmlinuz-${build.release}`))) return null;
    return { dir, release: build.release, vmlinuz: path.join(dir, 'boot', `vmlinuz-${build.release}`), config: path.join(dir, 'config'), build };
  } catch {
    return null;
  }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-4).join(' | ')}`);
  return r;
}

let current = null; // the running make, killed on Ctrl-C
function runLogged(cmd, args, logFile, opts = {}) {
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...opts });
    current = child;
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      current = null;
      fs.closeSync(fd);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}; last lines of ${logFile}: ${fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-6).join(' | ')}`));
    });
  });
}

function ensureTools() {
  const missing = () => [...(sourceVersion() ? [] : [SOURCE_PKG]), ...['make', 'gcc', 'flex', 'bison', 'bc', 'xz'].filter((t) => !which(t))];
  if (missing().length === 0 && fs.existsSync('/usr/include/libelf.h')) return;
  if (process.geteuid?.() !== 0) throw new MissingError(`missing: ${missing().join(', ') || 'libelf-dev'}; as root run: apt-get install -y ${BUILD_PKGS.join(' ')}`);
  const r = aptInstall(BUILD_PKGS);
  if (r.status !== 0 || missing().length) throw new MissingError(`apt-get install ${BUILD_PKGS.join(' ')} failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}`);
}

/** Builds (unless cached) and returns builtKernel(cache). `jobs`: make -j. */
export async function buildKernel({ cache = path.join(ROOT, '.cache/kernels'), jobs = 2, say = log } = {}) {
  const have = builtKernel(cache);
  if (have) {
    say(`[noopts] cached: ${have.dir} (${have.release}, built in ${have.build.seconds} s on ${have.build.date})`);
    return have;
  }
  ensureTools();
  const version = sourceVersion();
  const dir = customKernelDir(cache, version);
  const work = path.join(path.dirname(cache), 'kbuild');
  const srcDir = path.join(work, `linux-source-${version}`);
  const outDir = path.join(work, `out-${path.basename(dir)}`);
  fs.mkdirSync(work, { recursive: true });
  const logFile = path.join(work, `${path.basename(dir)}.log`);
  fs.writeFileSync(logFile, '');
  const t0 = Date.now();
  if (!fs.existsSync(path.join(srcDir, '.unpacked'))) {
    const tarball = fs.readdirSync('/usr/src').find((f) => /^linux-source-6\.1\.tar\.(xz|bz2|gz)$/.test(f));
    if (!tarball) throw new MissingError(`${SOURCE_PKG} is installed but /usr/src has no linux-source-6.1.tar.*`);
    say(`[noopts] unpacking /usr/src/${tarball} into ${srcDir}`);
    fs.rmSync(srcDir, { recursive: true, force: true });
    fs.mkdirSync(srcDir, { recursive: true });
    run('tar', ['-xf', `/usr/src/${tarball}`, '-C', srcDir, '--strip-components=1']);
    fs.writeFileSync(path.join(srcDir, '.unpacked'), `${version}\n`);
  }
  const tUnpacked = Date.now();
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const make = (args) => runLogged('nice', ['-n', '10', 'make', '-C', srcDir, `O=${outDir}`, ...args], logFile);
  say(`[noopts] configuring: tinyconfig + ${path.relative(ROOT, FRAGMENT)} (log ${logFile})`);
  await make(['tinyconfig']);
  const want = fragmentOptions();
  fs.appendFileSync(path.join(outDir, '.config'), `${want.map((o) => (o.value === 'n' ? `# ${o.name} is not set` : `${o.name}=${o.value}`)).join('\n')}\nCONFIG_LOCALVERSION="-nsprobe-noopts"\n# CONFIG_LOCALVERSION_AUTO is not set\n`);
  await make(['olddefconfig']);
  const got = new Map(fragmentOptions(fs.readFileSync(path.join(outDir, '.config'), 'utf8')).map((o) => [o.name, o.value]));
  const dropped = want.filter((o) => (got.get(o.name) ?? 'n') !== o.value);
  if (dropped.length) throw new Error(`Kconfig did not keep ${dropped.map((o) => `${o.name}=${o.value} (got ${got.get(o.name) ?? 'unset'})`).join(', ')}: a dependency is missing from ${path.relative(ROOT, FRAGMENT)}`);
  say(`[noopts] make -j${jobs} bzImage modules (nice 10); this takes a while on a small machine`);
  const tBuild = Date.now();
  await make([`-j${jobs}`, 'bzImage', 'modules']);
  const buildSeconds = Math.round((Date.now() - tBuild) / 1000);
  const release = fs.readFileSync(path.join(outDir, 'include/config/kernel.release'), 'utf8').trim();
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'boot'), { recursive: true });
  await make([`INSTALL_MOD_PATH=${tmp}`, 'modules_install']);
  for (const f of ['build', 'source']) fs.rmSync(path.join(tmp, 'lib/modules', release, f), { force: true });
  fs.copyFileSync(path.join(outDir, 'arch/x86/boot/bzImage'), path.join(tmp, 'boot', `vmlinuz-${release}`));
  // the config sits beside boot/, not in it: the guests must find it only at /proc/config.gz
  fs.copyFileSync(path.join(outDir, '.config'), path.join(tmp, 'config'));
  const build = {
    release,
    source: `${SOURCE_PKG} ${version}`,
    fragment: path.relative(ROOT, FRAGMENT),
    jobs,
    seconds: Math.round((Date.now() - t0) / 1000),
    unpackSeconds: Math.round((tUnpacked - t0) / 1000),
    makeSeconds: buildSeconds,
    cpus: (await import('node:os')).cpus().length,
    date: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(tmp, 'build.json'), `${JSON.stringify(build, null, 2)}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  fs.rmSync(outDir, { recursive: true, force: true }); // the objects are 100s of MB; the source stays for the next hash
  say(`[noopts] built ${release} in ${build.seconds} s (make -j${jobs}: ${buildSeconds} s): ${dir}`);
  return builtKernel(cache);
}

const HELP = `usage: node ci/kernel-build.mjs [--cache DIR] [--jobs N] [--check]
  builds the matrix's kernel without CONFIG_USER_NS, CONFIG_TIME_NS and CONFIG_VETH from ${SOURCE_PKG}
  --cache  where it is kept (default .cache/kernels; rebuilt only when the source or ci/kernel-noopts.config changes)
  --jobs   make -j (default 2)
  --check  only say whether it is built (exit 0) or not (exit 1)
`;

async function main(argv) {
  let values;
  try {
    ({ values } = parseCommand({ cache: { type: 'string', value: 'a folder' }, jobs: { type: 'string', value: 'a number' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, argv));
  } catch (e) {
    throw new UsageError(e.message);
  }
  if (values.help) return process.stdout.write(HELP), 0;
  const jobs = values.jobs ?? '2';
  if (!/^\d+$/.test(jobs) || Number(jobs) < 1) throw new UsageError(`--jobs takes a whole number from 1 up, not '${jobs}'`);
  const cache = path.resolve(values.cache ?? path.join(ROOT, '.cache/kernels'));
  if (values.check) {
    const k = builtKernel(cache);
    log(k ? `${k.dir} (${k.release})` : `not built (${customKernelDir(cache) ?? `${SOURCE_PKG} is not installed`})`);
    return k ? 0 : 1;
  }
  await buildKernel({ cache, jobs: Number(jobs) });
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(sig, () => {
      current?.kill('SIGKILL');
      process.stderr.write(`\nkernel-build: ${sig}: stopped\n`);
      process.exit(130);
    });
  quietStdout('kernel-build');
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`kernel-build: ${e.message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : e instanceof MissingError ? 3 : 1;
    },
  );
}
