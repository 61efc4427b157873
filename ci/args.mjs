// ci/*.mjs parse their arguments with nsprobe's one parser (src/args.ts), compiled to dist/ by
// `npm ci` (its prepare step runs tsc): one parser and one error wording for every command,
// not a JavaScript twin to keep in step. Without dist/ this says what to run instead of a trace.
import path from 'node:path';

let mod;
try {
  mod = await import('../dist/src/args.js');
} catch {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'ci')}: dist/src/args.js is missing: run npm ci (or npm run build) first\n`);
  process.exit(2);
}
export const { parseCommand, scriptArgs, intValue, splitList, quietStdout, UsageError } = mod;
