// Bundles the compiled CLI (its entry dist/src/nsprobe.js, from tsc) into dist/bin/nsprobe.js, which `bin` and
// `npm run probe` start: Node resolving, reading and linking ~40 modules one by one cost a run
// about a quarter of its CPU (issue 14, "the suite near its floor"). merge, with ajv, and the
// residue check are chunks of their own, loaded only when asked for. dist/src/ stays as tsc wrote
// it, for everything that imports the modules (scripts, tests).
//
// Then, on Node >= 22.1, the V8 code cache of every chunk (dist/bin/compile-cache/, see
// src/compilecache.ts): made here by loading each chunk once with the cache on, and used by a run
// only when it can be read without anything being written.
import { spawnSync } from 'node:child_process';
import * as nodeModule from 'node:module';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

// The cache: a Node of this version loads every chunk (their top levels only declare things) with
// the cache on, in a process of its own, and writes the cache at its exit. built.json records the
// folder it was made for and the subfolder (Node version, V8 flags, uid) it made.
const cacheDir = join(outdir, 'compile-cache');
const chunks = readdirSync(outdir).filter((f) => /^chunk-.*\.js$/.test(f)).map((f) => pathToFileURL(join(outdir, f)).href);
const fill = `
import * as mod from 'node:module';
import { readdirSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
const r = mod.enableCompileCache(${JSON.stringify(cacheDir)});
if (!r.directory) process.exit(0);
for (const c of ${JSON.stringify(chunks)}) await import(c);
mod.flushCompileCache?.();
const tag = process.version + '-' + process.arch + '-' + v8.cachedDataVersionTag().toString(16) + '-' + process.getuid();
if (!readdirSync(${JSON.stringify(cacheDir)}).includes(tag)) process.exit(0);
writeFileSync(${JSON.stringify(join(cacheDir, 'built.json'))}, JSON.stringify({ root: ${JSON.stringify(outdir)}, tags: [tag] }) + '\\n');
`;
const env = { ...process.env };
delete env.NODE_COMPILE_CACHE;
delete env.NODE_OPTIONS;
// Node < 22.1 has no compile cache: the bundle is all.
const r = typeof nodeModule.enableCompileCache !== 'function' ? { status: 0 } : spawnSync(process.execPath, ['--input-type=module', '-e', fill], { env, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  // No cache is no error: the bundle runs without it, as on Node 20.
  rmSync(cacheDir, { recursive: true, force: true });
  process.stderr.write(`bundle: no compile cache (exit ${r.status})\n`);
}
