// The V8 code cache of the bundle, made when it is built and used read-only.
//
// The program (dist/bin/main.cjs, a script) is compiled through vm.Script with the code V8 kept
// after a representative run at build time (script.createCachedData() at exit, which holds every
// function that run compiled, the lazily compiled ones too: ~670 KB for a 480 KB script). Node's
// own compile cache (below) saves the cache right after compiling a module, so it held only what V8
// compiles eagerly (110 KB), and every other function was parsed and compiled again in every run.
// The script's cache (compile-cache/main.cache) is used only when its tag (compile-cache/
// main.cache.json) names this Node (version, arch, V8 version) and this very file (device, inode,
// size, mtime, ctime: a rebuilt or copied main.cjs is another file, and so is one rewritten in place
// with its old size and its mtime set back, which only the ctime, set by the kernel, tells), and the cache file is no more
// writable than the script (same owner, no group or other write the script lacks): otherwise it is
// not read at all. V8 then checks its own tag (version and flags) and the source's length, and a
// cache it rejects (cachedDataRejected) costs only the compile it would have cost anyway. Nothing is
// written by a run: the cache is made only when NSPROBE_CODE_CACHE_OUT names where (the build).
//
// Node's compile cache is still used for merge.js (`nsprobe merge`):
//
// Compiling the ~0.5 MB of JavaScript a run loads cost ~27 ms of CPU on Node 24 (issue 14). Node
// >= 22.1 can keep V8's code cache in a folder (module.enableCompileCache), but it writes there:
// a subfolder per Node version, V8 flags and uid (`v24.22.3-x64-964aae3f-0`), created when the
// cache is turned on, and at exit an entry for every module it compiled that the folder did not
// hold or whose source changed. A run writes nothing outside its report folder, so the cache is
// made by scripts/bundle.mjs (it loads every chunk once with the cache on, then records where the
// bundle is and for which subfolder) and a run turns it on only when nothing can be written: this
// very bundle (same folder, as recorded) and the subfolder of this Node, V8 flags and uid already
// there (hence every chunk in it, unchanged). Otherwise (Node 20, another Node or user, a copy of
// the bundle elsewhere, NODE_COMPILE_CACHE set by the caller) the run compiles as before.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The cache folder beside the bundle's entry, and the file that says what it was made for. */
export const CACHE_DIR = 'compile-cache';
export const CACHE_MANIFEST = 'built.json';

interface CompileCacheApi {
  enableCompileCache?: (dir: string) => { status: number };
}

/** The subfolder Node uses for this process: version, arch, V8's cache tag in hex, uid. */
export function cacheTag(): string | null {
  const v8 = process.getBuiltinModule?.('node:v8') as typeof import('node:v8') | undefined;
  if (!v8?.cachedDataVersionTag || !process.getuid) return null;
  return `${process.version}-${process.arch}-${v8.cachedDataVersionTag().toString(16)}-${process.getuid()}`;
}

/**
 * The cache folder a run of the bundle whose entry is `entryUrl` may turn on, or null when it
 * cannot be used read-only (see above).
 */
export function shippedCompileCache(entryUrl: string, env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    if (env.NODE_COMPILE_CACHE) return null; // the caller's own cache is on already
    const mod = process.getBuiltinModule?.('node:module') as CompileCacheApi | undefined;
    if (!mod?.enableCompileCache) return null; // Node < 22.1
    const here = dirname(fileURLToPath(entryUrl));
    const dir = join(here, CACHE_DIR);
    const tag = cacheTag();
    if (!tag || !existsSync(join(dir, tag))) return null;
    const built = JSON.parse(readFileSync(join(dir, CACHE_MANIFEST), 'utf8')) as { root?: unknown; tags?: unknown };
    return built.root === here && Array.isArray(built.tags) && built.tags.includes(tag) ? dir : null;
  } catch {
    return null; // an optimisation only
  }
}

/** Turns on the shipped code cache when it can only be read; returns whether it did. */
export function useShippedCompileCache(entryUrl: string): boolean {
  const dir = shippedCompileCache(entryUrl);
  if (!dir) return false;
  try {
    (process.getBuiltinModule('node:module') as CompileCacheApi).enableCompileCache!(dir);
    return true;
  } catch {
    return false;
  }
}

/** The program as a script, beside the entry, and its code cache and tag in CACHE_DIR. */
export const MAIN_SCRIPT = 'main.cjs';
export const CODE_CACHE = 'main.cache';
export const CODE_CACHE_TAG = 'main.cache.json';

/** What a code cache must have been made for to be read: this Node and this very file. */
export function scriptTag(st: Stats): Record<string, string | number> {
  return { node: process.version, arch: process.arch, v8: process.versions.v8, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export type CacheUse = 'used' | 'rejected' | 'absent' | 'foreign' | 'loose';

/** The code cache for the script `file` (stat `st`) when its tag fits and it is no looser than the script. */
export function codeCacheFor(file: string, st: Stats): { data?: Buffer; use: CacheUse } {
  const dir = join(dirname(file), CACHE_DIR);
  let tag: unknown;
  try {
    tag = JSON.parse(readFileSync(join(dir, CODE_CACHE_TAG), 'utf8'));
  } catch {
    return { use: 'absent' };
  }
  const want = scriptTag(st);
  if (!tag || typeof tag !== 'object' || Object.keys(want).some((k) => (tag as Record<string, unknown>)[k] !== want[k])) return { use: 'foreign' };
  let fd: number;
  try {
    fd = openSync(join(dir, CODE_CACHE), 'r');
  } catch {
    return { use: 'absent' };
  }
  try {
    const c = fstatSync(fd);
    if (!c.isFile() || c.uid !== st.uid || (c.mode & 0o022 & ~st.mode) !== 0) return { use: 'loose' };
    return { data: readFileSync(fd), use: 'used' };
  } finally {
    closeSync(fd);
  }
}

type Wrapped = (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string, url: string, load: (s: string) => Promise<unknown>) => void;

/**
 * Compiles the script (with its code cache where codeCacheFor gives one) and, unless `run` is
 * false, runs it. Returns null when there is no script beside the entry (unbundled).
 */
export function mainScript(entryUrl: string, run = true): { use: CacheUse } | null {
  const file = join(dirname(fileURLToPath(entryUrl)), MAIN_SCRIPT);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    // No script beside the entry: the unbundled entry (dist/src), whose main.js is beside it.
    // Beside the bundled entry it is a broken install: one line, not the loader's stack trace.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(join(dirname(file), 'main.js'))) return null;
    process.stderr.write(`nsprobe: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}): the installation is incomplete; reinstall nsprobe\n`);
    process.exit(3);
  }
  let source: string;
  let st: Stats;
  try {
    st = fstatSync(fd);
    // esbuild writes ASCII only (non-ASCII escaped): as latin1, the bytes are the string as they
    // are (a copy), where a UTF-8 decode of the ~0.5 MB cost ~1 ms. Anything else is decoded.
    const bytes = readFileSync(fd);
    source = (process.getBuiltinModule('node:buffer') as typeof import('node:buffer')).isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  } finally {
    closeSync(fd);
  }
  let cache: { data?: Buffer; use: CacheUse } = { use: 'absent' };
  try {
    cache = codeCacheFor(file, st);
  } catch {
    // an optimisation only
  }
  const vm = process.getBuiltinModule('node:vm') as typeof import('node:vm');
  // The wrapper on the script's first line: its line numbers and file name are the file's.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __nsprobe_url, __nsprobe_import) {"use strict";${source}\n})`, { filename: file, cachedData: cache.data });
  const use: CacheUse = cache.data && script.cachedDataRejected ? 'rejected' : cache.use;
  if (!run) return { use };
  const out = process.env.NSPROBE_CODE_CACHE_OUT;
  if (out) process.on('exit', () => writeCodeCache(out, script.createCachedData(), st));
  const { createRequire } = process.getBuiltinModule('node:module') as typeof import('node:module');
  const url = pathToFileURL(file).href;
  const module = { exports: {} };
  // import() in the script: a relative name is the bundle's file beside it (merge.js), else a builtin.
  const load = (s: string) => import(s.startsWith('./') ? new URL(s, url).href : s);
  (script.runInThisContext() as Wrapped)(module.exports, createRequire(file), module, file, dirname(file), url, load);
  return { use };
}

/** The build's step (scripts/bundle.mjs): the cache and its tag, written at the exit of a run. */
function writeCodeCache(out: string, data: Buffer, st: Stats): void {
  try {
    writeFileSync(join(out, CODE_CACHE), data);
    writeFileSync(join(out, CODE_CACHE_TAG), `${JSON.stringify(scriptTag(st))}\n`);
  } catch (e) {
    // (at exit: a stack trace here would end the build's run with a confusing message)
    process.stderr.write(`nsprobe: no code cache written to ${out}: ${(e as Error).message}\n`);
  }
}
