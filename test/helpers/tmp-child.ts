// For cleanup.test.ts: makes two tmp folders (one with a teardown that never runs), prints their
// paths, and exits (or, with `wait`, waits to be signalled). The hooks of helpers/run.ts must
// remove both on exit and on SIGINT/SIGTERM/SIGHUP.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from './run.js';

const a = tmp();
const b = tmp('nsprobe-test-child-', { teardown: () => {} });
writeFileSync(join(a, 'file'), 'x');
process.stdout.write(`${a}\n${b}\n`);
if (process.argv[2] === 'wait') setInterval(() => {}, 1 << 30);
