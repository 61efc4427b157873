// Probes never touch the host directly: every host-side observation goes through ctx.host
// (src/host/hostif.ts), so that the same probe code runs locally and against a remote target. This
// fails when a probe file imports node:fs or node:os (or their promise and bare forms), imports the
// addon, calls native(), or reads this process's pid, ids or clock, and when a pure parser reads a
// file in a default argument.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const PROBES_DIR = resolve(import.meta.dirname, '..', 'probes');

/** Lines of a probe's source that reach the host without ctx.host, with what they do. */
export function directHostUse(source: string): string[] {
  const rules: [RegExp, string][] = [
    [/from\s+['"](node:)?(fs|os|fs\/promises|child_process|net|dgram)['"]/, 'imports a host module'],
    [/import\(\s*['"](node:)?(fs|os|fs\/promises|child_process)['"]\s*\)/, 'imports a host module'],
    [/require\(\s*['"](node:)?(fs|os)['"]\s*\)/, 'requires a host module'],
    [/from\s+['"][./]*src\/native(\.js)?['"]/, 'imports the addon'],
    [/\bnative\(\)/, 'calls the addon'],
    [/\bprocess\.(pid|ppid|geteuid|getegid|getuid|getgid|hrtime|cwd|env)\b/, 'reads this process instead of the host side'],
    [/\b(readFileSync|readdirSync|readlinkSync|statSync|lstatSync|existsSync|mkdirSync|rmdirSync|writeFileSync|mkdtempSync)\b/, 'calls node:fs'],
  ];
  const out: string[] = [];
  source.split('\n').forEach((line, i) => {
    if (/^\s*(\/\/|\*)/.test(line)) return; // comments may name what probes must not do
    for (const [re, what] of rules) if (re.test(line)) out.push(`line ${i + 1}: ${what}: ${line.trim()}`);
  });
  return out;
}

test('no probe file reaches the host except through ctx.host', (t) => {
  const files = readdirSync(PROBES_DIR).filter((f) => f.endsWith('.ts'));
  t.true(files.length >= 15, 'the probe files were found');
  const found = files.flatMap((f) => directHostUse(readFileSync(join(PROBES_DIR, f), 'utf8')).map((l) => `probes/${f} ${l}`));
  t.deepEqual(found, []);
});

test('control: the check catches each way of reaching the host directly', (t) => {
  const bad = [
    "import { readFileSync } from 'node:fs';",
    "import { tmpdir } from 'node:os';",
    "import * as fs from 'fs';",
    "const fs = await import('node:fs/promises');",
    "import { native } from '../src/native.js';",
    '  const r = native().mqUnlink(q);',
    '  const dir = `nsprobe-${process.pid}-x`;',
    "export function cgroup2Root(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')) {",
  ];
  for (const line of bad) t.is(directHostUse(line).length > 0, true, line);
  t.deepEqual(directHostUse("import type { HostIf } from '../src/host/hostif.js';\n// never readFileSync here\nconst x = await ctx.host.readFile('/proc/self/cgroup').get();"), []);
});
