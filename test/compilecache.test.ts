// The bundle's V8 code cache (src/compilecache.ts, made by scripts/bundle.mjs) is only ever read:
// a run writes nothing outside its report folder, so neither the cache folder nor anything else
// in dist/bin/ may change when the bundle runs, whichever Node and user run it. The control shows
// that the same watch sees Node write there when its compile cache is turned on unguarded.
import test from 'ava';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRoot, NOBODY, ROOT, run, tmp } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';
import { CACHE_DIR, CACHE_MANIFEST, CODE_CACHE, CODE_CACHE_TAG, cacheTag, MAIN_SCRIPT, mainScript, scriptTag, shippedCompileCache } from '../src/compilecache.js';

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

// The program script's code cache (src/compilecache.ts, mainScript): each test makes its own
// copy of the bundle, in a package folder of its own (package.json, schema, build and prebuilds
// linked to this checkout's, so that the addon and the schema are found; any user may make it),
// and its own cache with this Node, as the build does, so the control (the cache used) holds
// whichever Node built dist/bin.
function bundleCopy(t: { teardown: (f: () => void) => void }): { dir: string; url: string; cache: string } {
  const pkg = tmp();
  t.teardown(() => rmSync(pkg, { recursive: true, force: true }));
  for (const f of ['package.json', 'schema', 'build', 'prebuilds']) if (existsSync(join(ROOT, f))) symlinkSync(join(ROOT, f), join(pkg, f));
  const dir = join(pkg, 'dist', 'bin');
  cpSync(BIN, dir, { recursive: true, filter: (src) => !src.includes(CACHE_DIR) });
  const cache = join(dir, CACHE_DIR);
  mkdirSync(cache);
  const out = tmp();
  const r = run([process.execPath, join(dir, 'nsprobe.js'), '--only', 'uts,ipc', '--out', out], { env: { ...process.env, NSPROBE_CODE_CACHE_OUT: cache } });
  rmSync(out, { recursive: true, force: true });
  if (r.status !== 0 || !existsSync(join(cache, CODE_CACHE))) throw new Error(`making the cache: exit ${r.status}: ${r.stderr}`);
  return { dir, url: pathToFileURL(join(dir, 'nsprobe.js')).href, cache };
}
const useOf = (url: string) => mainScript(url, false)?.use;

test('the script cache of a whole run holds the lazily compiled functions, and is used when its tag fits (control)', (t) => {
  const c = bundleCopy(t);
  t.is(useOf(c.url), 'used');
  const size = statSync(join(c.cache, CODE_CACHE)).size;
  const eager = new (process.getBuiltinModule('node:vm') as typeof import('node:vm')).Script(readFileSync(join(c.dir, MAIN_SCRIPT), 'utf8')).createCachedData().length;
  t.true(size > eager * 2, `the run's cache (${size} B) is more than what V8 compiles eagerly (${eager} B)`);
});

test('a cache whose tag names another Node, or another file, is not read', (t) => {
  const c = bundleCopy(t);
  const tagFile = join(c.cache, CODE_CACHE_TAG);
  const tag = JSON.parse(readFileSync(tagFile, 'utf8')) as Record<string, unknown>;
  t.is(useOf(c.url), 'used', 'control: as made');
  for (const [k, v] of [['node', 'v0.0.0'], ['arch', 'sparc'], ['v8', '1.0'], ['ino', 1], ['mtimeMs', 0], ['ctimeMs', 0], ['size', 1]] as const) {
    writeFileSync(tagFile, JSON.stringify({ ...tag, [k]: v }));
    t.is(useOf(c.url), 'foreign', `${k} differs`);
  }
  writeFileSync(tagFile, JSON.stringify(tag));
  t.is(useOf(c.url), 'used', 'control: the tag restored');
  // The same bytes rewritten (a rebuild): another inode and mtime, so another file.
  const main = join(c.dir, MAIN_SCRIPT);
  const body = readFileSync(main);
  rmSync(main);
  writeFileSync(main, body);
  t.is(useOf(c.url), 'foreign', 'main.cjs rewritten');
  t.is(run([process.execPath, join(c.dir, 'nsprobe.js'), '--version']).stdout, `nsprobe ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

test('a script rewritten in place with its old size and mtime set back does not reuse the cache (control: untouched, it does)', (t) => {
  const c = bundleCopy(t);
  const main = join(c.dir, MAIN_SCRIPT);
  // A whole-second mtime (utimes takes seconds as a double: a finer one would not come back
  // exactly), and the tag the build would have written for the file so stamped.
  const stamp = 1_700_000_000;
  utimesSync(main, stamp, stamp);
  writeFileSync(join(c.cache, CODE_CACHE_TAG), `${JSON.stringify(scriptTag(statSync(main)))}\n`);
  t.is(useOf(c.url), 'used', 'control: the file as the cache was made for it');
  t.is(useOf(c.url), 'used', 'control: still untouched, still used');
  const before = statSync(main);
  const body = readFileSync(main, 'utf8');
  // Other bytes of the same length (V8 checks only the length): a comment's letter changed.
  const at = body.indexOf('//');
  t.true(at >= 0);
  const changed = `${body.slice(0, at + 2)}${body[at + 2] === 'x' ? 'y' : 'x'}${body.slice(at + 3)}`;
  t.is(Buffer.byteLength(changed), before.size);
  // Written in place (same inode), then its times set back: only the ctime tells.
  writeFileSync(main, changed);
  utimesSync(main, stamp, stamp);
  const after = statSync(main);
  t.deepEqual([after.ino, after.size, after.mtimeMs], [before.ino, before.size, before.mtimeMs], 'inode, size and mtime as before');
  t.not(after.ctimeMs, before.ctimeMs, 'the kernel moved the ctime');
  t.is(useOf(c.url), 'foreign');
});

test('a cache V8 rejects (made for another source) is ignored and the program runs as without it', (t) => {
  const c = bundleCopy(t);
  const other = new (process.getBuiltinModule('node:vm') as typeof import('node:vm')).Script('(function () { return 1; })').createCachedData();
  writeFileSync(join(c.cache, CODE_CACHE), other);
  t.is(useOf(c.url), 'rejected');
  const v = run([process.execPath, join(c.dir, 'nsprobe.js'), '--version']);
  t.is(v.status, 0, v.stderr);
  t.regex(v.stdout, /^nsprobe \d/);
  t.is(v.stderr, '');
  const bad = run([process.execPath, join(c.dir, 'nsprobe.js'), '--no-such-flag']);
  t.is(bad.status, 2);
  t.is(bad.stderr, "nsprobe: unknown flag '--no-such-flag' (see --help)\n");
});

test('a cache more writable than the script is not read', (t) => {
  const c = bundleCopy(t);
  t.is(useOf(c.url), 'used', 'control');
  chmodSync(join(c.cache, CODE_CACHE), 0o666);
  t.is(useOf(c.url), 'loose');
});

test('a run with the script cache writes nothing outside --out: not the bundle, TMPDIR or HOME (control: the build step does)', (t) => {
  const c = bundleCopy(t);
  t.is(useOf(c.url), 'used');
  const scratch = tmp();
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  for (const d of ['tmp', 'home', 'out']) mkdirSync(join(scratch, d));
  const env = { ...process.env, TMPDIR: join(scratch, 'tmp'), HOME: join(scratch, 'home') };
  const before = tree(c.dir);
  const r = run([process.execPath, join(c.dir, 'nsprobe.js'), '--only', 'uts,ipc', '--out', join(scratch, 'out', 'r')], { env });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(changes(before, tree(c.dir)), []);
  t.deepEqual([...tree(join(scratch, 'tmp')).keys(), ...tree(join(scratch, 'home')).keys()], []);
  t.true(existsSync(join(scratch, 'out', 'r', 'report.json')));
  const made = run([process.execPath, join(c.dir, 'nsprobe.js'), '--version'], { env: { ...env, NSPROBE_CODE_CACHE_OUT: c.cache } });
  t.is(made.status, 0, made.stderr);
  t.true(changes(before, tree(c.dir)).some((x) => x.includes(CODE_CACHE)), 'the watch sees the cache written');
});
