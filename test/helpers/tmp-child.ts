// For cleanup.test.ts: makes two tmp folders (one with a teardown that never runs) and exits;
// prints their paths. The exit hook of helpers/run.ts must remove both.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from './run.js';

const a = tmp();
const b = tmp('nsprobe-test-child-', { teardown: () => {} });
writeFileSync(join(a, 'file'), 'x');
process.stdout.write(`${a}\n${b}\n`);
