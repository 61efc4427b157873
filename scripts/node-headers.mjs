// Where the headers of the running Node are: the directory holding include/node/node_api.h
// (and common.gypi, which node-gyp wants too), or null. Used by build-native.mjs and by
// ci/aarch64.mjs, which compiles the same sources with a cross compiler.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export function findNodeDir() {
  const candidates = [];
  if (process.env.npm_config_nodedir) candidates.push(process.env.npm_config_nodedir);
  candidates.push(resolve(dirname(process.execPath), '..'));
  candidates.push('/usr', '/usr/local');
  for (const dir of candidates) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h')) && existsSync(join(dir, 'include', 'node', 'common.gypi'))) return dir;
  }
  return null;
}
