// Bundles the compiled CLI (from tsc, dist/src/) for `bin` and `npm run probe`: Node resolving,
// reading and linking ~40 modules one by one cost a run about a quarter of its CPU (issue 14, "the
// suite near its floor"), and ~15 chunks of a split bundle still ~12 ms of CPU on Node 20. So:
//   dist/bin/nsprobe.js  the entry (src/nsprobe.ts): turns on the code cache, then loads main.js;
//   dist/bin/main.js     the whole program in one file (src/main.ts; bench, the residue check and
//                        --ssh included: their code is compiled only when called);
//   dist/bin/merge.js    `nsprobe merge` (with its validator), loaded only for it, and the script
//                        its worker threads run (a file of its own: they load it whole).
// dist/src/ stays as tsc wrote it, for everything that imports the modules (scripts, tests).
//
// Then, on Node >= 22.1, the V8 code cache of those files (dist/bin/compile-cache/, see
// src/compilecache.ts): made here by one run of the bundle with the cache on, and used by a run
// only when it can be read without anything being written.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'dist', 'src');
const outdir = join(root, 'dist', 'bin');
rmSync(outdir, { recursive: true, force: true }); // nothing of an older build stays

/** Leaves `import('./NAME.js')` of the given importers to the file of that name beside the output. */
const apart = (pairs) => ({
  name: 'apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/[a-z]+\.js$/ }, (a) => {
      const hit = pairs.find(([importer, name]) => a.importer === join(src, importer) && a.path === `./${name}`);
      return hit ? { path: `./${hit[1]}`, external: true } : undefined;
    });
  },
});
const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' };
await build({ ...common, entryPoints: [join(src, 'nsprobe.js')], outfile: join(outdir, 'nsprobe.js'), plugins: [apart([['nsprobe.js', 'main.js']])] });
await build({ ...common, entryPoints: [join(src, 'main.js')], outfile: join(outdir, 'main.js'), plugins: [apart([['cli.js', 'merge.js']])] });
await build({ ...common, entryPoints: [join(src, 'merge.js')], outfile: join(outdir, 'merge.js') });

// The cache: one run of the bundle (--version: every file of the main path compiled), and an
// import of merge.js, with the cache on, write it at their exit. built.json records the folder it
// was made for and the subfolder (Node version, V8 flags, uid) that was made.
const cacheDir = join(outdir, 'compile-cache');
if (typeof nodeModule.enableCompileCache === 'function') {
  const env = { ...process.env, NODE_COMPILE_CACHE: cacheDir };
  delete env.NODE_OPTIONS;
  const tagOf = `process.version + '-' + process.arch + '-' + (await import('node:v8')).cachedDataVersionTag().toString(16) + '-' + process.getuid()`;
  const runs = [
    spawnSync(process.execPath, [join(outdir, 'nsprobe.js'), '--version'], { env, stdio: 'ignore' }),
    spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(join(outdir, 'merge.js'))}); console.log(${tagOf})`], { env, encoding: 'utf8' }),
  ];
  const tag = runs[1].stdout?.trim();
  if (runs.every((r) => r.status === 0) && tag && existsSync(join(cacheDir, tag)) && readdirSync(join(cacheDir, tag)).length) {
    writeFileSync(join(cacheDir, 'built.json'), `${JSON.stringify({ root: outdir, tags: [tag] })}\n`);
  } else {
    // No cache is no error: the bundle runs without it, as on Node 20.
    rmSync(cacheDir, { recursive: true, force: true });
    process.stderr.write(`bundle: no compile cache (${runs.map((r) => r.status).join(', ')})\n`);
  }
}
