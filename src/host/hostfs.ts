// The one door through which host state is read. Gates and facts never touch node:fs or
// process directly: they get a HostContext, so tests can point them at a fixture root
// (test/fixtures/hosts/<name>/) and fake a non-root user.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileStat {
  dev: number;
  ino: number;
  /** Full st_mode (type and permission bits, including setuid 0o4000). */
  mode: number;
  uid: number;
  gid: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface HostFS {
  /** UTF-8 text of a file; null when missing or unreadable (EACCES, EISDIR, ...). */
  readFile(p: string): string | null;
  readBinary(p: string): Buffer | null;
  /** True when the path exists, even when it cannot be read (lstat succeeds). */
  exists(p: string): boolean;
  readdir(p: string): string[] | null;
  readlink(p: string): string | null;
  /** stat (following symlinks); null when missing or not permitted. */
  stat(p: string): FileStat | null;
}

export interface HostContext {
  fs: HostFS;
  euid: number;
  egid: number;
  env: Record<string, string | undefined>;
  /** uname -m style ("x86_64", "aarch64"). */
  arch: string;
  nodeVersion: string;
  /** Real path of the node binary (named in the AppArmor profile remedy). */
  execPath: string;
}

function tryOr<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

function toStat(s: fs.Stats): FileStat {
  return { dev: s.dev, ino: s.ino, mode: s.mode, uid: s.uid, gid: s.gid, isFile: s.isFile(), isDirectory: s.isDirectory() };
}

/** HostFS over the paths it is given; `map` turns an absolute host path into a real path. */
function mappedFS(map: (p: string) => string): HostFS {
  return {
    readFile: (p) => tryOr(() => fs.readFileSync(map(p), 'utf8'), null),
    readBinary: (p) => tryOr(() => fs.readFileSync(map(p)), null),
    exists: (p) => tryOr(() => (fs.lstatSync(map(p)), true), false),
    readdir: (p) => tryOr(() => fs.readdirSync(map(p)), null),
    readlink: (p) => tryOr(() => fs.readlinkSync(map(p)), null),
    stat: (p) => tryOr(() => toStat(fs.statSync(map(p))), null),
  };
}

export function realHostFS(): HostFS {
  return mappedFS((p) => p);
}

const UNAME_ARCH: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  ia32: 'i686',
  arm: 'armv7l',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loongarch64',
  mips: 'mips',
  mipsel: 'mips',
};

export function unameArch(nodeArch: string): string {
  return UNAME_ARCH[nodeArch] ?? nodeArch;
}

export function realHostContext(): HostContext {
  return {
    fs: realHostFS(),
    euid: process.geteuid?.() ?? -1,
    egid: process.getegid?.() ?? -1,
    env: { ...process.env },
    arch: unameArch(process.arch),
    nodeVersion: process.versions.node,
    execPath: tryOr(() => fs.realpathSync(process.execPath), process.execPath),
  };
}

/**
 * `.nsprobe-fixture.json` at a fixture root. Git cannot carry setuid bits, owners or
 * unreadable files, so a fixture declares them here:
 *   {
 *     "stat": { "/usr/bin/newuidmap": { "mode": "4755", "uid": 0 } },   // mode: octal string or number
 *     "unreadable": ["/proc/1/environ"],                                 // exists, but reads give null
 *     "context": { "euid": 1000, "egid": 1000, "env": { "USER": "alice" }, "arch": "x86_64" }
 *   }
 * Everything else is read from the files under the root.
 */
export interface FixtureManifest {
  stat?: Record<string, { mode?: string | number; uid?: number; gid?: number }>;
  unreadable?: string[];
  context?: Partial<Omit<HostContext, 'fs'>>;
}

export const FIXTURE_MANIFEST = '.nsprobe-fixture.json';

function readManifest(root: string): FixtureManifest {
  const text = tryOr(() => fs.readFileSync(path.join(root, FIXTURE_MANIFEST), 'utf8'), null);
  return text === null ? {} : (JSON.parse(text) as FixtureManifest);
}

function parseMode(m: string | number): number {
  return typeof m === 'number' ? m : parseInt(m, 8);
}

/** HostFS that maps absolute host paths under `root`, with the overrides of its manifest. */
export function fixtureHostFS(root: string, manifest: FixtureManifest = readManifest(root)): HostFS {
  const map = (p: string) => path.join(root, path.resolve('/', p));
  const base = mappedFS(map);
  const norm = (p: string) => path.resolve('/', p);
  const unreadable = new Set((manifest.unreadable ?? []).map(norm));
  const denied = (p: string) => unreadable.has(norm(p));
  return {
    readFile: (p) => (denied(p) ? null : base.readFile(p)),
    readBinary: (p) => (denied(p) ? null : base.readBinary(p)),
    exists: (p) => denied(p) || base.exists(p),
    readdir: (p) => (denied(p) ? null : base.readdir(p)),
    readlink: (p) => (denied(p) ? null : base.readlink(p)),
    stat: (p) => {
      if (denied(p)) return null;
      const s = base.stat(p);
      const o = manifest.stat?.[norm(p)];
      if (s === null || o === undefined) return s;
      const mode = o.mode === undefined ? s.mode : (s.mode & ~0o7777) | parseMode(o.mode);
      return { ...s, mode, uid: o.uid ?? s.uid, gid: o.gid ?? s.gid };
    },
  };
}

/** A HostContext for a fixture host: root uid, x86_64 and an empty env unless the manifest or `over` say otherwise. */
export function fixtureHostContext(root: string, over: Partial<Omit<HostContext, 'fs'>> = {}): HostContext {
  const manifest = readManifest(root);
  const c = manifest.context ?? {};
  return {
    fs: fixtureHostFS(root, manifest),
    euid: over.euid ?? c.euid ?? 0,
    egid: over.egid ?? c.egid ?? 0,
    env: over.env ?? c.env ?? {},
    arch: over.arch ?? c.arch ?? 'x86_64',
    nodeVersion: over.nodeVersion ?? c.nodeVersion ?? '20.0.0',
    execPath: over.execPath ?? c.execPath ?? '/usr/bin/node',
  };
}
