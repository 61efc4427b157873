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
  /**
   * UTF-8 text of a file; null when missing or unreadable (EACCES, EISDIR, ...), not a regular
   * file (a FIFO, /dev/zero) or larger than HOST_FILE_MAX_BYTES. Never blocks on the file.
   */
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
  /**
   * The files are another process's view, read through the host interface (src/host/boxfs.ts;
   * a remote target's): nothing of this host (its programs, their --version) stands for it.
   */
  remote?: boolean;
  /** Remote only: whether the host side may setns() into its own mount namespace (tried there; null: not known). */
  ownMntSetns?: boolean | null;
}

/** Largest host file read (a mountinfo of thousands of mounts is a few MB; a kernel config ~300 KB). */
export const HOST_FILE_MAX_BYTES = 16 << 20;

const O_CLOEXEC = 0o2000000;

/** `mtimeMs`: the file's mtime, from the fstat the read makes anyway (a caller needs no stat of its own). */
export type ReadResult = { ok: true; data: Buffer; mtimeMs: number } | { ok: false; reason: string; code: string };

function kind(s: fs.Stats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

const READ_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'a folder, not a file',
  EIO: 'input/output error',
  ENXIO: 'no such device',
};

/**
 * Reads a regular file without ever blocking on it or holding more than `maxBytes`: opened with
 * O_NONBLOCK (a FIFO opens at once, then is refused), and O_NOFOLLOW unless `follow`; only
 * regular files are read (files of /proc and /sys are regular with size 0 or 4096: the byte cap,
 * not st_size, bounds them). Never throws; a refusal says why in words, never quoting content.
 */
export function readCapped(p: string, opts: { follow?: boolean; maxBytes?: number } = {}): ReadResult {
  const max = opts.maxBytes ?? HOST_FILE_MAX_BYTES;
  const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | O_CLOEXEC | (opts.follow === false ? fs.constants.O_NOFOLLOW : 0);
  let fd: number;
  try {
    fd = fs.openSync(p, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ELOOP' && opts.follow === false) return { ok: false, code, reason: 'a symbolic link (not followed)' };
    return { ok: false, code, reason: READ_WORDS[code] ?? code };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { ok: false, code: 'ENOTREG', reason: `${kind(st)}, not a regular file` };
    if (st.size > max) return { ok: false, code: 'EFBIG', reason: `larger than ${max >> 20} MB` };
    const chunks: Buffer[] = [];
    let total = 0;
    // A regular file in one read (st_size + 1 sees growth); /proc and /sys files (size 0 or 4096) in growing chunks.
    let size = st.size > 0 ? st.size + 1 : 8192;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(size, max + 1 - total));
      size = Math.min(size * 2, 1 << 20);
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (total > max) return { ok: false, code: 'EFBIG', reason: `larger than ${max >> 20} MB` };
    }
    return { ok: true, data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total), mtimeMs: st.mtimeMs };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return { ok: false, code, reason: READ_WORDS[code] ?? code };
  } finally {
    fs.closeSync(fd);
  }
}

function readOrNull(p: string): Buffer | null {
  const r = readCapped(p);
  return r.ok ? r.data : null;
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
    readFile: (p) => readOrNull(map(p))?.toString('utf8') ?? null,
    readBinary: (p) => readOrNull(map(p)),
    // throwIfNoEntry: a missing file (the usual answer of exists) makes no Error with its stack.
    exists: (p) => tryOr(() => fs.lstatSync(map(p), { throwIfNoEntry: false }) !== undefined, false),
    readdir: (p) => tryOr(() => fs.readdirSync(map(p)), null),
    readlink: (p) => tryOr(() => fs.readlinkSync(map(p)), null),
    stat: (p) =>
      tryOr(() => {
        const s = fs.statSync(map(p), { throwIfNoEntry: false });
        return s === undefined ? null : toStat(s);
      }, null),
  };
}

export function realHostFS(): HostFS {
  return mappedFS((p) => p);
}

/** How long collecting host facts may take before further reads answer null (it takes ~2 ms). */
export const HOST_FACTS_DEADLINE_MS = 2000;

/**
 * The same context, but once `ms` have passed since this call every read answers null (as
 * unreadable): bounds the time of collecting host facts on a host whose files are slow (each read
 * is itself bounded: regular files only, never blocking on open, at most HOST_FILE_MAX_BYTES).
 */
export function withDeadline(ctx: HostContext, ms: number, now: () => number = () => performance.now()): HostContext {
  const end = now() + ms;
  const live = () => now() < end;
  const f = ctx.fs;
  return {
    ...ctx,
    fs: {
      readFile: (p) => (live() ? f.readFile(p) : null),
      readBinary: (p) => (live() ? f.readBinary(p) : null),
      exists: (p) => (live() ? f.exists(p) : false),
      readdir: (p) => (live() ? f.readdir(p) : null),
      readlink: (p) => (live() ? f.readlink(p) : null),
      stat: (p) => (live() ? f.stat(p) : null),
    },
  };
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
