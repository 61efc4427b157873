// The program the entry (src/nsprobe.ts) starts: raises the open-file limit before the rest of
// the program is loaded (the ESM loader reads its modules in parallel, and with `ulimit -n` below
// about 46 that alone ended in EMFILE stack traces), then runs the CLI.
import { raiseNofile } from './limits.js';

const problem = raiseNofile();
if (problem) {
  process.stderr.write(`nsprobe: ${problem}\n`);
  process.exitCode = 2;
} else {
  // No top-level await: the bundle loads this file as a script (scripts/bundle.mjs).
  void import('./cli.js').then(({ runCli }) => runCli(process.argv.slice(2)));
}
