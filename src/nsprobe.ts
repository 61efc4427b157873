#!/usr/bin/env node
// The nsprobe command's entry. Bundled (dist/bin/nsprobe.js, a few lines), it turns on the V8
// code cache built beside it (src/compilecache.ts) before the program (src/main.ts, bundled
// as dist/bin/main.js) is loaded and compiled.
import { useShippedCompileCache } from './compilecache.js';

useShippedCompileCache(import.meta.url);
await import('./main.js');
