#!/usr/bin/env node
// Builds the prebuilt binaries that the npm package carries (npm pack runs this as "prepack"):
// prebuilds/linux-x64/ and prebuilds/linux-arm64/, each with node.napi.glibc.node (N-API, so one
// binary serves Node 20, 22 and 24) and the helper programs nsprobe-serve (static, no libc),
// nsprobe-seccomp-exec and nsprobe-rawbench (static). arm64 is cross-compiled with Debian's
// g++-aarch64-linux-gnu, as ci/aarch64.mjs does. Each build runs node-gyp in its own copy of
// binding.gyp and native/ under .cache/prebuild/, so build/ (the developer's own build) is left
// alone. A binary that needs a glibc or libstdc++ symbol above the floor (scripts/prebuild-check.mjs)
// is not written: the prebuild fails.
//
// Usage: node scripts/prebuild.mjs [--arch x64,arm64] [--out DIR]   (DIR defaults to ./prebuilds;
// the tests build into a temporary one)
// Exit: 0 built; 1 a build failed or a binary is above the floor; 2 bad arguments; 3 a tool is missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir } from './node-headers.mjs';
import { describeOver, symbolVersions } from './prebuild-check.mjs';
import { HELPERS, prebuildTag } from './prebuild-select.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const TOOLCHAINS = {
  x64: { prefix: process.arch === 'x64' ? '' : 'x86_64-linux-gnu-', machine: /X86-64/, apt: 'g++-x86-64-linux-gnu' },
  arm64: { prefix: process.arch === 'arm64' ? '' : 'aarch64-linux-gnu-', machine: /AArch64/, apt: 'g++-aarch64-linux-gnu' },
};

function fail(code, msg) {
  process.stderr.write(`prebuild: ${msg}\n`);
  process.exit(code);
}

let arches = ['x64', 'arm64'];
let outRoot = join(ROOT, 'prebuilds');
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--arch' && argv[i + 1]) arches = argv[++i].split(',');
  else if (argv[i] === '--out' && argv[i + 1]) outRoot = resolve(argv[++i]);
  else fail(2, `unknown argument '${argv[i]}' (node scripts/prebuild.mjs [--arch x64,arm64] [--out DIR])`);
}
for (const a of arches) if (!TOOLCHAINS[a]) fail(2, `unknown architecture '${a}' (x64 or arm64)`);
if (process.platform !== 'linux') fail(3, 'prebuilds are made on Linux');

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const nodedir = findNodeDir();
if (!nodedir) fail(3, `cannot find the headers of Node ${process.version} next to ${process.execPath}`);
for (const a of arches) {
  const p = TOOLCHAINS[a].prefix;
  const missing = [`${p}g++`, `${p}gcc`, `${p}strip`, 'make', 'python3', 'readelf'].filter((c) => !onPath(c));
  if (missing.length) fail(3, `missing ${missing.join(', ')} for linux-${a}: apt-get install ${p ? TOOLCHAINS[a].apt : 'g++'} make python3 binutils`);
}

const gyp = require.resolve('node-gyp/bin/node-gyp.js');
for (const arch of arches) {
  const t0 = performance.now();
  const { prefix, machine } = TOOLCHAINS[arch];
  const tag = prebuildTag('linux', arch, 'glibc');
  const work = join(ROOT, '.cache', 'prebuild', `${tag.dir}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(join(ROOT, 'binding.gyp'), join(work, 'binding.gyp'));
  cpSync(join(ROOT, 'native'), join(work, 'native'), { recursive: true });
  const env = { ...process.env, npm_config_nodedir: nodedir, CC: `${prefix}gcc`, CXX: `${prefix}g++`, LINK: `${prefix}g++`, AR: `${prefix}ar` };
  const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, `--arch=${arch}`, '--jobs=max'], { cwd: work, env, encoding: 'utf8' });
  writeFileSync(join(work, 'build.log'), `${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (r.status !== 0) {
    const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /error/i.test(l) && !/^gyp (ERR|info)/.test(l)).slice(0, 3);
    fail(1, `linux-${arch}: node-gyp failed (exit ${r.status ?? r.signal}): ${errors.join(' | ') || 'see ' + join(work, 'build.log')}`);
  }
  const out = join(outRoot, tag.dir);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const files = [['nsprobe.node', tag.file], ...HELPERS.map((h) => [h, h])];
  const problems = [];
  for (const [from, to] of files) {
    const dest = join(out, to);
    copyFileSync(join(work, 'build', 'Release', from), dest);
    const s = spawnSync(`${prefix}strip`, [from.endsWith('.node') ? '--strip-unneeded' : '--strip-all', dest], { encoding: 'utf8' });
    if (s.status !== 0) problems.push(`${to}: strip failed: ${s.stderr.trim()}`);
    chmodSync(dest, 0o755);
    const v = symbolVersions(dest);
    if (!machine.test(v.machine)) problems.push(`${to} is for ${v.machine}, not ${arch}`);
    problems.push(...describeOver(v).map((l) => `${to}: ${l}`));
  }
  if (problems.length) {
    rmSync(out, { recursive: true, force: true });
    fail(1, `linux-${arch}: ${problems.join('; ')}`);
  }
  const size = files.reduce((n, [, to]) => n + readFileSync(join(out, to)).length, 0);
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`prebuild: ${out}/ (${files.map(([, to]) => to).join(', ')}; ${(size / 1024).toFixed(0)} KiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
