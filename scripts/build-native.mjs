#!/usr/bin/env node
// Builds the native addon and its helper programs with node-gyp against the headers of the Node that
// runs this script. A fresh clone run by any user has no ~/.npmrc with nodedir=..., and node-gyp
// would otherwise try to download headers (which fails offline). Node's own install prefix
// (dirname(execPath)/..) carries include/node/node_api.h on distro and official builds alike; we
// point node-gyp there.
//
// --if-no-prebuild (the package's install script): first look for a prebuilt binary that fits this
// host (prebuilds/<platform>-<arch>/node.napi.<libc>.node, scripts/prebuild-select.mjs) and that
// loads; only when none does, build from source, and when that is impossible say in one line what
// is missing (never a node-gyp stack trace: its output goes to build/nsprobe-build.log).
// npm_config_build_from_source=true or NSPROBE_BUILD_FROM_SOURCE=1 always builds, and so does a git
// checkout (npm ci in a clone): there build/Release must follow native/, whatever prebuilds/ holds.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir } from './node-headers.mjs';
import { findPrebuild, prebuildTag } from './prebuild-select.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const install = process.argv.includes('--if-no-prebuild');
const say = (line) => process.stderr.write(`nsprobe: ${line}\n`);

let why = null; // why we build from source (install mode)
if (install) {
  const checkout = existsSync(join(root, '.git'));
  const forced = checkout || process.env.npm_config_build_from_source === 'true' || process.env.NSPROBE_BUILD_FROM_SOURCE === '1';
  const tag = prebuildTag();
  const pb = forced ? null : findPrebuild(root, tag);
  if (checkout) why = 'a git checkout builds from source';
  else if (forced) why = 'asked to build from source';
  else if (!pb) why = `no prebuilt binary for ${tag.label}`;
  else if (pb.missing.length) why = `the prebuilt binary for ${tag.label} lacks ${pb.missing.join(', ')}`;
  else {
    const r = spawnSync(process.execPath, ['-e', 'process.dlopen({ exports: {} }, process.argv[1])', pb.addon], { encoding: 'utf8' });
    if (r.status === 0) {
      say(`using the prebuilt binary ${relative(root, pb.addon)}`);
      process.exit(0);
    }
    const err = (r.stderr || '').split('\n').find((l) => /Error|error|not found/.test(l))?.trim() ?? `exit ${r.status ?? r.signal}`;
    why = `the prebuilt binary ${relative(root, pb.addon)} does not load here (${err.slice(0, 200)})`;
  }
}

// What node-gyp needs: a C and a C++ compiler, make and python3.
function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
function onPath(cmd) {
  if (!cmd) return false;
  if (cmd.includes('/')) return executable(cmd);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && executable(join(d, cmd)));
}
const first = (env, ...names) => (env ? [env.split(' ')[0]] : names).find(onPath);
const missing = [];
if (!first(process.env.CXX, 'c++', 'g++', 'clang++')) missing.push('C++ compiler');
if (!first(process.env.CC, 'cc', 'gcc', 'clang')) missing.push('C compiler');
if (!onPath('make')) missing.push('make');
if (!first(process.env.npm_config_python || process.env.PYTHON, 'python3', 'python')) missing.push('python3');
if (missing.length) {
  const list = missing.length > 1 ? `${missing.slice(0, -1).join(', ')} or ${missing.at(-1)}` : missing[0];
  say(`${why ? `${why} and` : 'cannot build the native addon:'} no ${list}: install g++ make python3 (Debian/Ubuntu: apt-get install g++ make python3; Alpine: apk add g++ make python3 linux-headers)`);
  process.exit(1);
}
const nodedir = findNodeDir();
if (!nodedir) {
  say(`${why ? `${why}, and ` : ''}cannot find the headers of Node ${process.version} (looked for include/node/node_api.h next to ${process.execPath}); install your distribution's nodejs dev headers (Debian: libnode-dev) or an official Node build`);
  process.exit(1);
}
if (why) say(why === 'asked to build from source' ? 'building from source as asked' : why.endsWith('from source') ? why : `${why}: building from source`);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'];
const env = { ...process.env, npm_config_nodedir: nodedir };
const t0 = performance.now();
if (!install) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) {
    say(`building the native addon failed (node-gyp exit ${r.status ?? r.signal}); needs python3, make and a C/C++ compiler`);
    process.exit(r.status ?? 1);
  }
  // The agent for every architecture a compiler is here for (--via/--ssh to other machines).
  spawnSync(process.execPath, [join(root, 'scripts', 'build-agent.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  process.exit(0);
}
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env, encoding: 'utf8', maxBuffer: 64 << 20 });
const log = join(root, 'build', 'nsprobe-build.log');
mkdirSync(dirname(log), { recursive: true });
writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}`);
if (r.status !== 0) {
  const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /\berror\b/i.test(l) && !/^gyp (ERR|info|verb)/.test(l)).slice(0, 3).map((l) => l.trim());
  say(`building the native addon from source failed (node-gyp exit ${r.status ?? r.signal})${errors.length ? `: ${errors.join(' | ')}` : ''}; the full output is in ${log}`);
  process.exit(1);
}
say(`built the native addon from source in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
spawnSync(process.execPath, [join(root, 'scripts', 'build-agent.mjs')], { cwd: root, stdio: ['ignore', 'ignore', 'ignore'] });
