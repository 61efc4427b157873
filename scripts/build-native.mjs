#!/usr/bin/env node
// Builds the native addon with node-gyp against the headers of the Node that runs this script.
// A fresh clone run by any user has no ~/.npmrc with nodedir=..., and node-gyp would otherwise try
// to download headers (which fails offline). Node's own install prefix (dirname(execPath)/..)
// carries include/node/node_api.h on distro and official builds alike; we point node-gyp there.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir } from './node-headers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const nodedir = findNodeDir();
if (!nodedir) {
  console.error(`nsprobe: cannot find the headers of Node ${process.version} (looked for include/node/node_api.h next to ${process.execPath}); install your distribution's nodejs dev headers (Debian: libnode-dev) or an official Node build`);
  process.exit(1);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_nodedir: nodedir } });
if (r.status !== 0) {
  console.error(`nsprobe: building the native addon failed (node-gyp exit ${r.status ?? r.signal}); needs python3, make and a C/C++ compiler`);
  process.exit(r.status ?? 1);
}
