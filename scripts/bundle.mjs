// Bundles the compiled CLI (from tsc, dist/src/) for `bin` and `npm run probe`: Node resolving,
// reading and linking ~40 modules one by one cost a run about a quarter of its CPU (issue 14, "the
// suite near its floor"), and ~15 chunks of a split bundle still ~12 ms of CPU on Node 20. So:
//   dist/bin/nsprobe.js  the entry (src/nsprobe.ts): runs main.cjs with its code cache;
//   dist/bin/main.cjs    the whole program in one script (src/main.ts; bench, the residue check and
//                        --ssh included: their code is compiled only when called);
//   dist/bin/merge.js    `nsprobe merge` (with its validator), loaded only for it, and the script
//                        its worker threads run (a file of its own: they load it whole).
// dist/src/ stays as tsc wrote it, for everything that imports the modules (scripts, tests).
//
// Then, on Node >= 22.1, the V8 code cache of those files (dist/bin/compile-cache/, see
// src/compilecache.ts): made here by one run of the bundle with the cache on, and used by a run
// only when it can be read without anything being written.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
// Node builtins through process.getBuiltinModule (Node >= 20.16, 22.3; engines asks for 20.17)
// instead of `import ... from 'node:fs'`, each loaded only when a function of it is first called.
// An ES import of a builtin builds its namespace from every export, which runs every lazy getter
// (node:fs's `promises` loads fs/promises, readline and the streams; node:util's TextDecoder the
// assert diff and worker_threads, ...), and esbuild's CommonJS interop reads every property too:
// a plain run loaded ~80 builtins it never used (issue 14). So each builtin is a module of stubs:
// a function (lower-case name) is `(...a) => module.fn(...a)`, loading the module on its first
// call; anything else (classes, constants) is read when the importing file is initialised, and is
// marked pure so that only the names the bundle uses are kept.
const builtins = {
  name: 'builtins',
  setup(b) {
    // import('node:x') stays Node's: a namespace esbuild built would be every stub's value at once.
    b.onResolve({ filter: /^node:/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : { path: a.path, namespace: 'builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (a) => {
      const id = JSON.stringify(a.path);
      const mod = process.getBuiltinModule(a.path);
      process.noDeprecation = true; // reading fs.F_OK or crypto.fips here is no use of them
      const names = Object.getOwnPropertyNames(mod).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
      const lines = [`let m;`, `const l = () => (m ??= process.getBuiltinModule(${id}));`, `export default /* @__PURE__ */ l();`];
      for (const k of names) {
        lines.push(typeof mod[k] === 'function' && /^[a-z]/.test(k) ? `export function ${k}(...a) { return l().${k}(...a); }` : `export const ${k} = /* @__PURE__ */ (() => l().${k})();`);
      }
      return { contents: `${lines.join('\n')}\n`, loader: 'js' };
    });
  },
};
// The global `performance` is scripts/bundle-performance.mjs's (performance.now() only).
const otherUse = (dir) => readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.js'))
  .flatMap((e) => (/\bperformance\.(?!now\()\w+/.test(readFileSync(join(e.parentPath ?? e.path, e.name), 'utf8')) ? [join(e.parentPath ?? e.path, e.name)] : []));
const odd = [src, join(root, 'dist', 'probes')].flatMap(otherUse);
if (odd.length) throw new Error(`bundle: performance.* other than now() in ${odd.join(', ')}: extend scripts/bundle-performance.mjs`);
const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning', inject: [join(root, 'scripts', 'bundle-performance.mjs')] };
await build({ ...common, entryPoints: [join(src, 'nsprobe.js')], outfile: join(outdir, 'nsprobe.js'), plugins: [apart([['nsprobe.js', 'main.js']]), builtins] });
// The program as a script (CommonJS shape, run by src/compilecache.ts through vm.Script with its
// code cache): import.meta.url is the wrapper's __nsprobe_url, and import() (of ./merge.js and of
// builtins) its __nsprobe_import, which loads them as the entry's own import() would.
// merge.ts is in it too (the fleet's merge): its worker threads start the module merge.ts is, which
// in the script is merge.js beside it, not the script (a worker running main.cjs would run the CLI).
const mergeBeside = {
  name: 'merge-beside',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]src[\\/]merge\.js$/ }, (a) => ({
      contents: readFileSync(a.path, 'utf8').replaceAll('import.meta.url', 'new URL("./merge.js", __nsprobe_url).href'),
      resolveDir: dirname(a.path),
      loader: 'js',
    }));
  },
};
const script = join(outdir, 'main.cjs');
await build({ ...common, format: 'cjs', define: { 'import.meta.url': '__nsprobe_url' }, entryPoints: [join(src, 'main.js')], outfile: script, plugins: [apart([['cli.js', 'merge.js']]), mergeBeside, builtins] });
let body = readFileSync(script, 'utf8');
let imports = 0;
body = body.replace(/\bimport\(("(?:\.\/merge\.js|node:[a-z_/]+)")\)/g, (_, spec) => (imports++, `__nsprobe_import(${spec})`));
if (!imports || /\bimport\(\s*["'`\w]/.test(body.replace(/\/\/.*$/gm, ''))) throw new Error('bundle: main.cjs has an import() the script wrapper does not serve');
writeFileSync(script, body);
await build({ ...common, entryPoints: [join(src, 'merge.js')], outfile: join(outdir, 'merge.js'), plugins: [builtins] });

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

// The script's code cache (src/compilecache.ts): one whole run of the bundle (every probe, every
// report) with NSPROBE_CODE_CACHE_OUT set writes script.createCachedData() and its tag at exit,
// when V8 has compiled what a run compiles. Its reports go to a temporary folder, removed after.
{
  const runOut = mkdtempSync(join(tmpdir(), 'nsprobe-bundle-'));
  mkdirSync(cacheDir, { recursive: true });
  const env = { ...process.env, NSPROBE_CODE_CACHE_OUT: cacheDir };
  delete env.NODE_OPTIONS;
  delete env.NODE_COMPILE_CACHE;
  const r = spawnSync(process.execPath, [join(outdir, 'nsprobe.js'), '--out', join(runOut, 'out')], { env, stdio: 'ignore', timeout: 120000 });
  rmSync(runOut, { recursive: true, force: true });
  if (!existsSync(join(cacheDir, 'main.cache'))) process.stderr.write(`bundle: no code cache for main.cjs (run: ${r.status ?? r.signal ?? r.error?.message})\n`);
}
