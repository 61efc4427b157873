#!/usr/bin/env node
// The nsprobe command's entry. Bundled (dist/bin/nsprobe.js, a few lines), it runs the program
// (src/main.ts, bundled as the script dist/bin/main.cjs) through vm.Script with the V8 code cache
// made when the bundle was built (src/compilecache.ts); `merge` turns on Node's compile cache for
// the merge module first. Unbundled (dist/src/nsprobe.js), it imports main.js.
import { mainScript, useShippedCompileCache } from './compilecache.js';

// A Node older than package.json's engines (npm does not enforce them): one line, before the
// bundle's builtins (process.getBuiltinModule, Node >= 20.16 / 22.3) are first called.
if (typeof process.getBuiltinModule !== 'function') {
  process.stderr.write(`nsprobe: Node ${process.version} is too old: nsprobe needs Node ^20.17.0 or >= 22.9.0\n`);
  process.exit(2);
}
if (process.argv[2] === 'merge') useShippedCompileCache(import.meta.url);
if (mainScript(import.meta.url) === null) await import('./main.js');
