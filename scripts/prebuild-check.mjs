// The symbol versions a binary needs from the C and C++ runtime (readelf -V: the version needs
// that the dynamic loader checks when it loads the file), against the floor of the prebuilt
// binaries: glibc 2.28, the floor of official Node builds; libstdc++ and libgcc of GCC 8, the
// oldest a glibc-2.28 distribution ships (RHEL 8, Debian 10). Used by scripts/prebuild.mjs (a
// prebuild above the floor is not written) and by test/package.test.ts.
import { spawnSync } from 'node:child_process';

export const FLOOR = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11', GCC: '8.0.0' };

const cmp = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/**
 * { needs: [{file, name, family, version}], highest: {GLIBC: '2.17', ...}, staticExe, machine,
 *   over: [...needs above FLOOR], symbols: {version: [symbol names]} } of an ELF file.
 */
export function symbolVersions(path) {
  const v = spawnSync('readelf', ['-V', '-W', path], { encoding: 'utf8' });
  if (v.status !== 0) throw new Error(`readelf -V ${path}: ${(v.stderr || '').trim()}`);
  const needs = [];
  let file = null;
  let inNeeds = false;
  for (const line of v.stdout.split('\n')) {
    if (/^Version needs section/.test(line)) inNeeds = true;
    else if (/^Version (symbols|definition) section/.test(line)) inNeeds = false;
    if (!inNeeds) continue;
    const f = /File: (\S+)/.exec(line);
    if (f) file = f[1];
    const n = /Name: (\S+)/.exec(line);
    if (n && file) {
      const m = /^([A-Z]+)_(\d+(?:\.\d+)*)$/.exec(n[1]);
      needs.push({ file, name: n[1], family: m?.[1] ?? n[1], version: m?.[2] ?? '' });
    }
  }
  const highest = {};
  for (const n of needs) if (n.version && (!highest[n.family] || cmp(n.version, highest[n.family]) > 0)) highest[n.family] = n.version;
  const over = needs.filter((n) => FLOOR[n.family] && cmp(n.version, FLOOR[n.family]) > 0);
  const s = spawnSync('readelf', ['--dyn-syms', '-W', path], { encoding: 'utf8' });
  const symbols = {};
  for (const line of s.stdout.split('\n')) {
    const m = /\sUND\s+(\S+?)@([A-Z]+_[\d.]+)/.exec(line);
    if (m) (symbols[m[2]] ??= []).push(m[1]);
  }
  const h = spawnSync('readelf', ['-h', '-l', '-W', path], { encoding: 'utf8' }).stdout;
  const machine = /Machine:\s+(.+)/.exec(h)?.[1].trim() ?? '?';
  const staticExe = /Type:\s+EXEC/.test(h) && !/INTERP/.test(h);
  return { needs, highest, over, symbols, machine, staticExe };
}

/** One line per need above the floor, naming the symbols that need it. */
export function describeOver(r) {
  return r.over.map((n) => `${n.name} (${n.file}: ${(r.symbols[n.name] ?? ['?']).join(', ')}) is above the floor ${n.family}_${FLOOR[n.family]}`);
}
