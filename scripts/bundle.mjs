// Bundles the compiled CLI (its entry dist/src/nsprobe.js, from tsc) into dist/bin/nsprobe.js, which `bin` and
// `npm run probe` start: Node resolving, reading and linking ~40 modules one by one cost a run
// about a quarter of its CPU (issue 14, "the suite near its floor"). merge, with ajv, and the
// residue check are chunks of their own, loaded only when asked for. dist/src/ stays as tsc wrote
// it, for everything that imports the modules (scripts, tests).
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bin');
rmSync(outdir, { recursive: true, force: true }); // no chunk of an older build stays
await build({
  entryPoints: { nsprobe: join(root, 'dist', 'src', 'nsprobe.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir,
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
});
