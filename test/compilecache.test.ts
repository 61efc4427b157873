// The bundle's V8 code cache (src/compilecache.ts, made by scripts/bundle.mjs) is only ever read:
// a run writes nothing outside its report folder, so neither the cache folder nor anything else
// in dist/bin/ may change when the bundle runs, whichever Node and user run it. The control shows
// that the same watch sees Node write there when its compile cache is turned on unguarded.
import test from 'ava';
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRoot, NOBODY, ROOT, run, tmp } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';
import { CACHE_DIR, CACHE_MANIFEST, cacheTag, shippedCompileCache } from '../src/compilecache.js';

const BIN = join(ROOT, 'dist', 'bin');
const ENTRY = join(BIN, 'nsprobe.js');
const hasApi = typeof (process.getBuiltinModule('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';

/** Every path under `dir` with its size and mtime: what a write would change. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      out.set(p, `${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) out.push(before.has(p) ? `changed ${p}` : `new ${p}`);
  for (const p of before.keys()) if (!after.has(p)) out.push(`removed ${p}`);
  return out;
}

test('the bundle was built with a cache for this Node and user when Node has the API (or without, on Node 20)', (t) => {
  const dir = shippedCompileCache(pathToFileURL(ENTRY).href, {});
  if (!hasApi) {
    t.is(dir, null, 'Node < 22.1 has no module.enableCompileCache: no cache is used');
    return;
  }
  const built = JSON.parse(readFileSync(join(BIN, CACHE_DIR, CACHE_MANIFEST), 'utf8')) as { root: string; tags: string[] };
  t.is(built.root, BIN);
  if (!built.tags.includes(cacheTag()!)) {
    // The bundle was made by another Node or user (CI builds once, tests with three Nodes).
    t.is(dir, null, `the cache was made for ${built.tags.join(', ')}, this process is ${cacheTag()}: not used`);
    t.log(`the bundle's cache is for ${built.tags.join(', ')}, not this process (${cacheTag()})`);
    return;
  }
  t.is(dir, join(BIN, CACHE_DIR));
});

test('the cache is not used by a copy of the bundle elsewhere, nor when the caller set NODE_COMPILE_CACHE', (t) => {
  t.is(shippedCompileCache(pathToFileURL(ENTRY).href, { NODE_COMPILE_CACHE: '/tmp/x' }), null);
  if (!existsSync(join(BIN, CACHE_DIR))) return t.pass('no cache in this build (Node < 22.1 built it)');
  const copy = tmp();
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(BIN, copy, { recursive: true });
  t.is(shippedCompileCache(pathToFileURL(join(copy, 'nsprobe.js')).href, {}), null, 'the manifest names another folder');
});

test('a run of the bundle writes nothing into dist/bin (as this user, with this Node)', (t) => {
  const out = tmp();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const before = tree(BIN);
  const v = run([process.execPath, ENTRY, '--version']);
  t.is(v.status, 0, v.stderr);
  const r = run([process.execPath, ENTRY, '--only', 'uts,ipc', '--out', out]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(changes(before, tree(BIN)), []);
});

needTools(missingTools('setpriv'))('as nobody a run of the bundle writes nothing into dist/bin either', (t) => {
  if (!isRoot) return t.pass('already not root: the test above is this one');
  const out = join('/tmp', `nsprobe-test-cc-${process.pid}`);
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const before = tree(BIN);
  const r = run([...NOBODY, process.execPath, ENTRY, '--only', 'uts', '--mode', 'rootless', '--out', out]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(changes(before, tree(BIN)), []);
});

test('control: Node writes into the folder when its compile cache is turned on unguarded', (t) => {
  if (!hasApi) return t.pass('Node < 22.1: no compile cache to turn on');
  const copy = tmp();
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(BIN, copy, { recursive: true, filter: (src) => !src.includes(CACHE_DIR) });
  const before = tree(copy);
  const r = run([process.execPath, join(copy, 'nsprobe.js'), '--version'], { env: { ...process.env, NODE_COMPILE_CACHE: join(copy, CACHE_DIR) } });
  t.is(r.status, 0, r.stderr);
  t.true(changes(before, tree(copy)).some((c) => c.startsWith('new ') && c.includes(CACHE_DIR)), 'the watch sees the cache Node wrote');
});
