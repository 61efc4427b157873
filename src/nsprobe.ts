#!/usr/bin/env node
// The nsprobe command's entry. Bundled (dist/bin/nsprobe.js), it first turns on the V8 code cache
// built beside it (src/compilecache.ts; nothing else is imported statically here, so every chunk
// of the program compiles after that). Then it raises the open-file limit before the rest of the
// program is loaded (the ESM loader reads its modules in parallel, and with `ulimit -n` below
// about 46 that alone ended in EMFILE stack traces), and runs the CLI.
import { useShippedCompileCache } from './compilecache.js';

useShippedCompileCache(import.meta.url);
const { raiseNofile } = await import('./limits.js');
const problem = raiseNofile();
if (problem) {
  process.stderr.write(`nsprobe: ${problem}\n`);
  process.exitCode = 2;
} else {
  const { runCli } = await import('./cli.js');
  runCli(process.argv.slice(2));
}
