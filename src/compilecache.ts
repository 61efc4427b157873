// The V8 code cache of the bundle, made when it is built and used read-only.
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
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
