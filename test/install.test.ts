// The package's install script (scripts/build-native.mjs --if-no-prebuild), run in a copy of the
// package without .git, as npm runs it: it uses a prebuilt binary that fits this host and loads,
// compiles only when none does, and when it cannot compile says in one line what is missing. And
// the run-time loader (src/native.ts) picks the same libc as the install script.
// The whole install on a host without a compiler (a minimal Debian root) is `npm run check:install`
// (scripts/check-install.mjs), too slow for npm test.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonCandidates, hostLibc } from '../src/native.js';
import { ROOT } from './helpers/run.js';

// The helper programs a prebuild ships, from the install script's own list.
const { HELPERS } = (await import(join(ROOT, 'scripts', 'prebuild-select.mjs'))) as { HELPERS: string[] };
const TAG = `${process.platform}-${process.arch}`;
const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of what the install script needs (no .git: it behaves as in an installed package). */
function pkgCopy(prebuild: 'none' | 'good' | 'broken'): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-install-'));
  dirs.push(d);
  for (const f of ['package.json', 'binding.gyp']) copyFileSync(join(ROOT, f), join(d, f));
  for (const f of ['native', 'scripts']) cpSync(join(ROOT, f), join(d, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(d, 'node_modules'));
  if (prebuild !== 'none') {
    const pb = join(d, 'prebuilds', TAG);
    mkdirSync(pb, { recursive: true });
    if (prebuild === 'good') copyFileSync(join(ROOT, 'build', 'Release', 'nsprobe.node'), join(pb, 'node.napi.glibc.node'));
    else writeFileSync(join(pb, 'node.napi.glibc.node'), 'not an ELF file\n');
    for (const h of HELPERS) {
      copyFileSync(join(ROOT, 'build', 'Release', h), join(pb, h));
      chmodSync(join(pb, h), 0o755);
    }
  }
  return d;
}

/** PATH with node only: no compiler, make or python. */
function nodeOnlyPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'nsprobe-test-path-'));
  dirs.push(d);
  symlinkSync(process.execPath, join(d, 'node'));
  return d;
}

function install(dir: string, env: NodeJS.ProcessEnv = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_config_build_from_source|NSPROBE_BUILD_FROM_SOURCE|LIBC|CC|CXX)$/.test(k)));
  return spawnSync(process.execPath, [join(dir, 'scripts', 'build-native.mjs'), '--if-no-prebuild'], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...clean, ...env } });
}
const lines = (s: string) => s.split('\n').filter(Boolean);

test('a prebuilt binary that fits and loads is used: nothing is compiled, even with no compiler', (t) => {
  t.is(hostLibc(), 'glibc', 'this host is glibc (Debian)');
  const d = pkgCopy('good');
  const r = install(d, { PATH: nodeOnlyPath() });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(lines(r.stderr), [`nsprobe: using the prebuilt binary prebuilds/${TAG}/node.napi.glibc.node`]);
  t.false(existsSync(join(d, 'build')), 'no build/ directory');
});

test('no prebuilt binary and no compiler: one line says what is missing and what to install, exit 1', (t) => {
  const r = install(pkgCopy('none'), { PATH: nodeOnlyPath() });
  t.is(r.status, 1);
  t.deepEqual(lines(r.stderr), [`nsprobe: no prebuilt binary for ${TAG} (glibc) and no C++ compiler, C compiler, make or python3: install g++ make python3 (Debian/Ubuntu: apt-get install g++ make python3; Alpine: apk add g++ make python3 linux-headers)`]);
  t.notRegex(r.stderr + r.stdout, /gyp|\n\s+at /, 'no node-gyp output, no stack trace');
});

test('only make is missing: the line names make alone (the control: the compiler is found)', (t) => {
  const p = nodeOnlyPath();
  for (const c of ['c++', 'cc', 'python3']) {
    const w = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
    if (w) symlinkSync(w, join(p, c));
  }
  const r = install(pkgCopy('none'), { PATH: p });
  t.is(r.status, 1);
  t.regex(r.stderr, /^nsprobe: no prebuilt binary for \S+ \(glibc\) and no make: install g\+\+ make python3/);
  t.is(lines(r.stderr).length, 1);
});

test('a musl host never takes the glibc prebuild (LIBC=musl stands in for one)', (t) => {
  const r = install(pkgCopy('good'), { PATH: nodeOnlyPath(), LIBC: 'musl' });
  t.is(r.status, 1);
  t.regex(r.stderr, new RegExp(`^nsprobe: no prebuilt binary for ${TAG} \\(musl\\) and no C\\+\\+ compiler`));
  process.env.LIBC = 'musl';
  try {
    t.true(addonCandidates(ROOT).at(-1)!.endsWith(`prebuilds/${TAG}/node.napi.musl.node`), 'the run-time loader looks for the musl file too');
  } finally {
    delete process.env.LIBC;
  }
});

test('a prebuild that does not load falls back to a build, and says why in the same line', (t) => {
  const r = install(pkgCopy('broken'), { PATH: nodeOnlyPath() });
  t.is(r.status, 1);
  t.regex(r.stderr, new RegExp(`^nsprobe: the prebuilt binary prebuilds/${TAG}/node.napi.glibc.node does not load here \\(.+\\) and no C\\+\\+ compiler`));
  t.is(lines(r.stderr).length, 1);
});

test('npm_config_build_from_source=true skips a fitting prebuild (then, without a compiler, says so)', (t) => {
  const r = install(pkgCopy('good'), { PATH: nodeOnlyPath(), npm_config_build_from_source: 'true' });
  t.is(r.status, 1);
  t.regex(r.stderr, /^nsprobe: asked to build from source and no C\+\+ compiler/);
});

test('the run-time loader and the install script agree on the libc and the file name', async (t) => {
  const sel = (await import(join(ROOT, 'scripts', 'prebuild-select.mjs'))) as { hostLibc(): string; prebuildTag(): { dir: string; file: string } };
  t.is(sel.hostLibc(), hostLibc());
  const tag = sel.prebuildTag();
  const saved = process.env.NSPROBE_PREBUILDS_ONLY;
  process.env.NSPROBE_PREBUILDS_ONLY = '1';
  try {
    t.deepEqual(addonCandidates(ROOT), [join(ROOT, 'prebuilds', tag.dir, tag.file)]);
  } finally {
    if (saved === undefined) delete process.env.NSPROBE_PREBUILDS_ONLY;
    else process.env.NSPROBE_PREBUILDS_ONLY = saved;
  }
  t.is(addonCandidates(ROOT)[0], join(ROOT, 'build', 'Release', 'nsprobe.node'), 'a build from source comes first');
});
