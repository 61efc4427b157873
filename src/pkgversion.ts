// The version of an installed program read from the package database, without running it.
//
// Running every consumer program's --version cost ~120 ms of CPU per run in child processes
// (Chromium's wrapper script alone ~55 ms, podman ~20), more than the probes themselves. On a dpkg
// host (Debian, Ubuntu and their derivatives) the database already says which package put a file
// there and at which version: /var/lib/dpkg/info/<package>.list names every file a package
// installed, /var/lib/dpkg/status the version of each installed package. Reading those is a few
// file reads, and leaves nothing behind (no cache file outside the report folder).
//
// The answer is used only when it is sure to describe the file on disk: the path (or the path it
// resolves to, or its /usr-merged twin) is listed by one of the candidate packages, the package is
// "install ok installed", and the file's inode has not changed (ctime) since dpkg wrote the list,
// so a binary copied or patched over the packaged one is not named by the package's version.
// Otherwise (rpm hosts, /usr/local, a program built by hand) the caller runs --version as before.
import { realpathSync, statSync } from 'node:fs';
import { readCapped } from './host/hostfs.js';

const DPKG = '/var/lib/dpkg';
/** The status file of a desktop with every package is a few MB; a list file a few hundred KB. */
const STATUS_MAX_BYTES = 64 << 20;
const LIST_MAX_BYTES = 8 << 20;

/** Debian's architecture name for Node's (multi-arch packages have lists named <pkg>:<arch>.list). */
function dpkgArch(nodeArch: string): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64el' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** The names a file may be listed under: as given, as it resolves, and its twin across the /usr merge. */
export function pathAliases(p: string, real: string | null): string[] {
  const out = new Set<string>();
  for (const x of [p, real]) {
    if (!x) continue;
    out.add(x);
    const m = /^\/(bin|sbin|lib|lib64)\//.exec(x);
    if (m) out.add(`/usr${x}`);
    else if (/^\/usr\/(bin|sbin|lib|lib64)\//.test(x)) out.add(x.slice(4));
  }
  return [...out];
}

/** One package's stanza fields from a dpkg status file's text (null when it has none for this architecture). */
export function statusStanza(status: string, pkg: string, arch?: string): Map<string, string> | null {
  let at = 0;
  for (;;) {
    const i = status.indexOf(`Package: ${pkg}\n`, at);
    if (i < 0) return null;
    at = i + 1;
    if (i > 0 && status[i - 1] !== '\n') continue;
    const end = status.indexOf('\n\n', i);
    const fields = new Map<string, string>();
    for (const line of status.slice(i, end < 0 ? undefined : end).split('\n')) {
      const c = line.indexOf(': ');
      if (c > 0 && line[0] !== ' ') fields.set(line.slice(0, c), line.slice(c + 2).trim());
    }
    const a = fields.get('Architecture');
    if (arch && a && a !== 'all' && a !== arch) continue;
    return fields;
  }
}

export interface PkgDb {
  /** A package's fields in /var/lib/dpkg/status for this architecture (null: none, or not a dpkg host). */
  stanza(pkg: string): Map<string, string> | null;
  /** The file list of a package and its mtime (ms), or null. */
  list(pkg: string): { text: string; mtimeMs: number } | null;
  /** ctime (ms) of a file, following links, or null. */
  ctimeMs(p: string): number | null;
  realpath(p: string): string | null;
}

/** Where each package's stanza starts in a status file: one pass over its "Package: " lines (every package). */
export function stanzaIndex(buf: Buffer): Map<string, number[]> {
  const index = new Map<string, number[]>();
  const key = Buffer.from('Package: ');
  for (let at = 0; at < buf.length; ) {
    const i = buf.indexOf(key, at);
    if (i < 0) break;
    const eol = buf.indexOf(0x0a, i);
    const end = eol < 0 ? buf.length : eol;
    if (i === 0 || buf[i - 1] === 0x0a) {
      const name = buf.toString('latin1', i + key.length, end);
      index.set(name, [...(index.get(name) ?? []), i]);
    }
    at = end + 1;
  }
  return index;
}

/**
 * Where the stanzas of the packages `wanted` start: what stanzaIndex(buf).get(name) says for each
 * of them (the offsets of the lines "Package: <name>" at the start of the file or after a "\n",
 * the name running to the next "\n" or the end), found by one regular expression over the file
 * instead of a map of every package (~1200 on a small host: 4-10 ms).
 */
export function wantedStanzas(buf: Buffer, wanted: readonly string[]): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (wanted.length === 0) return found;
  const alt = [...new Set(wanted)].map((w) => w.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')).join('|');
  // Without the m flag: ^ and $ are the file's ends only, and no "\r" counts as a line break.
  const re = new RegExp(`(?:^|\n)Package: (${alt})(?=\n|$)`, 'g');
  const text = buf.toString('latin1');
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const at = m.index + (text.charCodeAt(m.index) === 0x0a ? 1 : 0);
    const list = found.get(m[1]!);
    if (list) list.push(at);
    else found.set(m[1]!, [at]);
  }
  return found;
}

/**
 * The package database of this host. `wanted`: the packages it will mostly be asked about (a
 * run's consumer packages): their stanzas are found in one pass; any other falls back to an
 * index of every package, made when first needed.
 */
export function realPkgDb(nodeArch: string = process.arch, wanted?: readonly string[]): PkgDb {
  let status: { buf: Buffer; index?: Map<string, number[]>; wanted?: Map<string, number[]> } | null | undefined;
  const wantedSet = new Set(wanted ?? []);
  const lists = new Map<string, { text: string; mtimeMs: number } | null>();
  const stanzas = new Map<string, Map<string, string> | null>();
  const arch = dpkgArch(nodeArch);
  const readList = (f: string) => {
    const r = readCapped(f, { maxBytes: LIST_MAX_BYTES });
    return r.ok ? { text: r.data.toString('utf8'), mtimeMs: r.mtimeMs } : null;
  };
  return {
    stanza(pkg) {
      if (status === undefined) {
        const r = readCapped(`${DPKG}/status`, { maxBytes: STATUS_MAX_BYTES });
        status = r.ok ? { buf: r.data } : null;
      }
      if (!status) return null;
      if (!stanzas.has(pkg)) {
        let starts: number[] | undefined;
        if (wantedSet.has(pkg)) starts = (status.wanted ??= wantedStanzas(status.buf, [...wantedSet])).get(pkg);
        else starts = (status.index ??= stanzaIndex(status.buf)).get(pkg);
        let found: Map<string, string> | null = null;
        for (const start of starts ?? []) {
          const end = status.buf.indexOf('\n\n', start, 'latin1');
          const f = statusStanza(status.buf.toString('utf8', start, end < 0 ? status.buf.length : end), pkg, arch);
          if (f) {
            found = f;
            break;
          }
        }
        stanzas.set(pkg, found);
      }
      return stanzas.get(pkg)!;
    },
    list(pkg) {
      if (!lists.has(pkg)) lists.set(pkg, readList(`${DPKG}/info/${pkg}.list`) ?? readList(`${DPKG}/info/${pkg}:${arch}.list`));
      return lists.get(pkg)!;
    },
    ctimeMs(p) {
      try {
        return statSync(p).ctimeMs;
      } catch {
        return null;
      }
    },
    realpath(p) {
      try {
        return realpathSync(p);
      } catch {
        return null;
      }
    },
  };
}

/** Package names in a ConsumerDef's `package` text ("podman crun uidmap", "chromium (chromium-sandbox for ...)"). */
export function packageWords(text: string): string[] {
  return text.replace(/\([^)]*\)/g, ' ').split(/\s+/).filter((w) => /^[a-z0-9][a-z0-9+.-]+$/.test(w));
}

/**
 * "<package> <version>" of the dpkg package among `candidates` that installed the program at
 * `path`, when the file is still the one it installed; null when that cannot be said (the caller
 * then asks the program itself).
 */
const padded = new WeakMap<object, string>();

export function dpkgVersion(path: string, candidates: readonly string[], db: PkgDb): string | null {
  const real = db.realpath(path);
  const aliases = pathAliases(path, real);
  const ctime = db.ctimeMs(real ?? path);
  if (ctime === null) return null;
  for (const pkg of candidates) {
    const l = db.list(pkg);
    if (!l) continue;
    // One padded copy per list (a run asks each list about every program: 18 paths x 13 lists).
    let lines = padded.get(l);
    if (lines === undefined) padded.set(l, (lines = `\n${l.text}\n`));
    if (!aliases.some((a) => lines.includes(`\n${a}\n`))) continue;
    // The file changed after dpkg wrote its list (replaced, patched, chmod-ed): not the package's any more.
    if (ctime > l.mtimeMs + 1000) return null;
    const f = db.stanza(pkg);
    if (!f || f.get('Status') !== 'install ok installed') return null;
    const v = f.get('Version');
    return v ? `${pkg} ${v}`.slice(0, 120) : null;
  }
  return null;
}
