#!/usr/bin/env node
// The nsprobe command's entry. Bundled (dist/bin/nsprobe.js, a few lines), it runs the program
// (src/main.ts, bundled as the script dist/bin/main.cjs) through vm.Script with the V8 code cache
// made when the bundle was built (src/compilecache.ts); `merge` turns on Node's compile cache for
// the merge module first. Unbundled (dist/src/nsprobe.js), it imports main.js.
import { runMainScript, useShippedCompileCache } from './compilecache.js';

if (process.argv[2] === 'merge') useShippedCompileCache(import.meta.url);
if (!runMainScript(import.meta.url)) await import('./main.js');
