// Consumer programs' versions from the package database (src/pkgversion.ts) instead of running
// --version: the logic on a made-up database, and on this host against what each real program
// prints about itself, with the controls that must not be named by a package (a copy of a packaged
// binary elsewhere; a packaged file changed after dpkg installed it).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSUMERS } from '../src/consumers.js';
import { dpkgVersion, packageWords, pathAliases, realPkgDb, stanzaIndex, statusStanza, wantedStanzas, type PkgDb } from '../src/pkgversion.js';
import { existsSync, readFileSync } from 'node:fs';
import { missingTools, needTools } from './helpers/tools.js';

const STATUS = [
  'Package: bubblewrap\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.8.0-2+deb12u1\nDescription: x\n continued: line\n',
  'Package: podman\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 4.3.1+ds1-8\n',
  'Package: lxc\nStatus: install ok installed\nArchitecture: i386\nVersion: 1:5.0.2-1\n',
  'Package: lxc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:5.0.2-1+deb12u4\n',
  'Package: xlxc\nStatus: install ok installed\nVersion: 9\n',
].join('\n');

function fakeDb(over: Partial<{ ctime: number; lists: Record<string, string>; status: string | null }> = {}): PkgDb {
  const lists = over.lists ?? { bubblewrap: '/.\n/usr\n/usr/bin\n/usr/bin/bwrap\n', podman: '/usr/bin/podman\n', lxc: '/usr/bin/lxc-start\n/usr/bin/lxc-usernsexec' };
  return {
    stanza: (pkg) => (over.status === null ? null : statusStanza(over.status ?? STATUS, pkg, 'amd64')),
    list: (pkg) => (pkg in lists ? { text: lists[pkg]!, mtimeMs: 1000_000 } : null),
    ctimeMs: () => over.ctime ?? 500_000,
    realpath: (p) => p,
  };
}

test('pkgversion: the package that lists the path names it, with its installed version', (t) => {
  t.is(dpkgVersion('/usr/bin/bwrap', ['podman', 'bubblewrap'], fakeDb()), 'bubblewrap 0.8.0-2+deb12u1');
  // The /usr merge: /bin/bwrap is the file dpkg lists as /usr/bin/bwrap.
  t.is(dpkgVersion('/bin/bwrap', ['bubblewrap'], fakeDb()), 'bubblewrap 0.8.0-2+deb12u1');
  // The stanza of this architecture, and a last list line without a newline.
  t.is(dpkgVersion('/usr/bin/lxc-usernsexec', ['lxc'], fakeDb()), 'lxc 1:5.0.2-1+deb12u4');
});

test('pkgversion: no answer it cannot vouch for (the caller then runs --version)', (t) => {
  t.is(dpkgVersion('/usr/local/bin/bwrap', ['bubblewrap'], fakeDb()), null, 'a path no package lists');
  t.is(dpkgVersion('/usr/bin/bwrap', ['podman'], fakeDb()), null, 'listed only by a package not asked about');
  t.is(dpkgVersion('/usr/bin/podman', ['podman'], fakeDb()), null, 'a package removed (config files left)');
  t.is(dpkgVersion('/usr/bin/bwrap', ['bubblewrap'], fakeDb({ ctime: 1000_000 + 5000 })), null, 'the file changed after dpkg wrote its list');
  t.is(dpkgVersion('/usr/bin/bwrap', ['bubblewrap'], fakeDb({ status: null })), null, 'no status for the package');
  t.is(dpkgVersion('/usr/bin/bwrap-x', ['bubblewrap'], fakeDb({ lists: { bubblewrap: '/usr/bin/bwrap-xy\n/usr/bin/bwrap\n' } })), null, 'a prefix of a listed path');
});

test('pkgversion: helpers', (t) => {
  t.deepEqual(packageWords('chromium (chromium-sandbox for the setuid fallback)'), ['chromium']);
  t.deepEqual(packageWords('podman runc slirp4netns uidmap'), ['podman', 'runc', 'slirp4netns', 'uidmap']);
  t.deepEqual(pathAliases('/bin/x', '/usr/lib/x/y').sort(), ['/bin/x', '/usr/bin/x', '/usr/lib/x/y', '/lib/x/y'].sort());
  t.is(statusStanza(STATUS, 'lxc', 'amd64')?.get('Version'), '1:5.0.2-1+deb12u4');
  t.is(statusStanza(STATUS, 'lxc', 'i386')?.get('Version'), '1:5.0.2-1');
  t.is(statusStanza(STATUS, 'lxc', 'amd64')?.get('Package'), 'lxc', 'not xlxc');
  t.is(statusStanza(STATUS, 'missing'), null);
});

// The upstream part of a Debian version ("1:5.0.2-1+deb12u4" -> "5.0.2"), which the program's own
// --version line carries.
function upstream(debVersion: string): string {
  return debVersion.replace(/^\d+:/, '').replace(/[-+~].*$/, '');
}

const PROGRAMS = [...new Set(CONSUMERS.flatMap((c) => c.binaries))];

needTools(missingTools('dpkg-query', 'bwrap'))('pkgversion: on this host every answer is what dpkg-query says and what the program prints', (t) => {
  // As a run asks: the consumers' packages found in one pass (the other answers of this test come from the full index).
  const db = realPkgDb(process.arch, [...new Set(CONSUMERS.flatMap((c) => packageWords(c.package)))]);
  let checked = 0;
  for (const name of PROGRAMS) {
    const path = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (!path) continue;
    const cands = [...new Set(CONSUMERS.flatMap((c) => packageWords(c.package)))];
    const v = dpkgVersion(path, cands, db);
    const owner = spawnSync('dpkg-query', ['-S', path], { encoding: 'utf8' }).stdout.split(':')[0]?.trim();
    if (!owner || !cands.includes(owner)) {
      t.is(v, null, `${path}: no candidate package owns it`);
      continue;
    }
    const q = spawnSync('dpkg-query', ['-W', '-f', '${Version}', owner], { encoding: 'utf8' }).stdout.trim();
    t.is(v, `${owner} ${q}`, path);
    const own = spawnSync(path, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' }, timeout: 10000 });
    const line = `${own.stdout}${own.stderr}`;
    if (own.status === 0 && line.trim()) t.true(line.includes(upstream(q)), `${path} --version says ${JSON.stringify(line.split('\n')[0])}, dpkg ${q}`);
    checked++;
  }
  t.true(checked > 0, 'at least bwrap is a packaged program here');
  // Controls: a copy of a packaged binary elsewhere is named by no package; neither is the
  // packaged file once changed after dpkg installed it (a later ctime).
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-pkgv-'));
  try {
    const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
    copyFileSync(bwrap, join(dir, 'bwrap'));
    t.is(dpkgVersion(join(dir, 'bwrap'), ['bubblewrap'], db), null, 'a copy outside the package');
    t.not(dpkgVersion(bwrap, ['bubblewrap'], db), null, 'the packaged file itself');
    const touched: PkgDb = { ...db, ctimeMs: () => Date.now() };
    t.is(dpkgVersion(bwrap, ['bubblewrap'], touched), null, 'changed after dpkg wrote its list');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A run finds the stanzas of the consumers' packages by one pass (wantedStanzas), not by an index
// of every package: the same offsets as the index, on odd status text and on this host's.
test('pkgversion: the stanzas of the wanted packages are where the index of every package has them', (t) => {
  const odd = Buffer.from([
    'Package: lxc', 'Version: 1', '', 'Package: lxcfs', 'Version: 2', '', 'Package: crun\r', 'Version: 3', '', ' Package: runc', '',
    'Description: Package: podman', '', 'Package: a.b+c', '', 'XPackage: lxc', '', 'Package: lxc', 'Architecture: i386', '', 'Package: podman',
  ].join('\n'), 'latin1');
  const names = ['lxc', 'lxcfs', 'crun', 'runc', 'podman', 'a.b+c', 'axb+c', 'missing', 'lx'];
  const index = stanzaIndex(odd);
  const got = wantedStanzas(odd, names);
  for (const n of names) t.deepEqual(got.get(n), index.get(n), n);
  t.is(got.get('lxc')?.length, 2);
  t.deepEqual(got.get('podman'), [odd.lastIndexOf('Package: podman')], 'the last line, without a newline');
  t.is(got.get('crun'), undefined, 'control: a name with \\r is another name');
  t.deepEqual([...wantedStanzas(odd, [])], []);
  const status = '/var/lib/dpkg/status';
  if (!existsSync(status)) return;
  const buf = readFileSync(status);
  const all = stanzaIndex(buf);
  const some = [...all.keys()].filter((_, i) => i % 7 === 0).concat([...new Set(CONSUMERS.flatMap((c) => packageWords(c.package)))], ['no-such-package']);
  const picked = wantedStanzas(buf, some);
  for (const n of some) t.deepEqual(picked.get(n), all.get(n), n);
  const full = realPkgDb();
  const wanted = realPkgDb(process.arch, some);
  for (const n of some) t.deepEqual(wanted.stanza(n), full.stanza(n), n);
  t.deepEqual(wanted.stanza('coreutils'), full.stanza('coreutils'), 'a package not wanted comes from the index');
  t.not(full.stanza('coreutils'), null, 'control: coreutils is installed here');
});
