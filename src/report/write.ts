// Writes report files so a reader sees the set whole or not at all, into a folder reached without
// following links another user could have planted.
//
// The output folder is walked one component at a time from "/", each folder held open by a file
// descriptor and named through /proc/self/fd/N (the openat(2) Node lacks), so nothing can be
// swapped between the check and the write. Missing folders are made one mkdir at a time (Node's
// recursive mkdir loops forever where mkdir says ENOENT, as under /proc). A symbolic link is
// followed only where no other user could have put it there (OpenSSH's StrictModes rule): not in a
// folder that belongs to another user, and not in one other users can write unless it is sticky
// and the link is ours (or root's). The files are written to unpredictable temporary names
// (.nsprobe-tmp-<pid>-<random>), the old ones kept as hard links (or copies) until every new file
// is in place, and on any failure the old set is put back.

import { randomBytes } from '../random.js';
import { localPidTag } from '../pidns.js';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import type { Report } from '../model.js';
import { reportJson, sharedLayout } from './common.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { renderNfd } from './nfd.js';
import { renderProm } from './prom.js';
import { renderTap } from './tap.js';

export const FORMATS = ['tap', 'junit', 'json', 'md', 'html', 'nfd', 'prom'] as const;
export type Format = (typeof FORMATS)[number];

/** What a run writes unless --format says otherwise (nfd and prom are for fleets, asked for by name). */
export const DEFAULT_FORMATS: readonly Format[] = ['tap', 'junit', 'json', 'md', 'html'];

export const REPORT_FILES: Readonly<Record<Format, string>> = {
  tap: 'report.tap',
  junit: 'junit.xml',
  json: 'report.json',
  md: 'report.md',
  html: 'report.html',
  nfd: 'nsprobe.features',
  prom: 'nsprobe.prom',
};

/** Every temporary file or folder nsprobe makes starts with this, then `<pid>-` (see cleanup of dead runs). */
export const TEMP_PREFIX = '.nsprobe-tmp-';

export function isFormat(s: string): s is Format {
  return (FORMATS as readonly string[]).includes(s);
}

/** Reports could not be written; the CLI prints the message as one line and exits 2. */
export class OutputError extends Error {
  override name = 'OutputError';
}

export interface OutputFile {
  /** File name inside the output directory. */
  name: string;
  /** The contents, or what makes them: called when the file is written, so a set of big files is never all in memory at once. */
  data: string | (() => string);
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const O_CLOEXEC = 0o2000000;
// O_PATH (x86, arm, riscv, ...): a folder that can be searched but not listed (0711) can still be held.
const O_PATH = ['alpha', 'hppa', 'parisc', 'sparc', 'sparc64'].includes(process.arch) ? O_RDONLY : 0o10000000;
const DIR_FLAGS = O_PATH | O_DIRECTORY | O_CLOEXEC;

/** An unpredictable name for a temporary file: `.nsprobe-tmp-<pid>-<16 hex>` (`<pid>@<pid namespace inode>` outside the initial one, src/pidns.ts). */
export function tempName(): string {
  return `${TEMP_PREFIX}${localPidTag()}-${randomBytes(8).toString('hex')}`;
}

const WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
  EBUSY: 'the file is busy',
  EEXIST: 'something else appeared there while writing',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a folder',
  EXDEV: 'on another file system',
};

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** An errno in words, e.g. "read-only file system"; unknown codes as themselves. */
export function inWords(e: unknown): string {
  const c = code(e);
  if (c) return WORDS[c] ?? c;
  return e instanceof Error ? e.message : String(e);
}

// statfs(2) f_type of file systems that take no new files, by name.
const VIRTUAL_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x63677270: 'cgroup2',
  0x27e0eb: 'cgroup',
  0x64626720: 'debugfs',
  0x73636673: 'securityfs',
  0x74726163: 'tracefs',
  0xcafe4a11: 'bpf',
};

function virtualFs(path: string): string | undefined {
  try {
    return VIRTUAL_FS[Number(fs.statfsSync(path).type)];
  } catch {
    return undefined;
  }
}

/** Where the output folder went wrong; the message is the part after "cannot write reports to DIR: ". */
class Refused extends Error {}

// Without /proc (a bare chroot) folders are named by path: the checks still hold, only the
// guarantee that nothing is swapped between check and write is lost.
let procFd: boolean | undefined;
const pathOf = new Map<number, string>();

function openDir(path: string, flags: number, shown: string): number {
  const fd = fs.openSync(path, flags);
  pathOf.set(fd, shown);
  return fd;
}

function fdPath(fd: number, name?: string): string {
  procFd ??= fs.existsSync(`/proc/self/fd/${fd}`);
  if (!procFd) return name === undefined ? pathOf.get(fd)! : join(pathOf.get(fd)!, name);
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

function closeQuietly(fd: number): void {
  pathOf.delete(fd);
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

function isTrustedOwner(uid: number, euid: number): boolean {
  return uid === euid || uid === 0;
}

/**
 * Why a symbolic link found in folder `parent` could have been planted by another user, or null
 * when it could not: the folder is ours or root's, and no other user can write it, or it is
 * sticky and the link is ours or root's.
 */
export function untrustedLink(parent: fs.Stats, link: fs.Stats, euid: number, egid: number): string | null {
  if (!isTrustedOwner(parent.uid, euid)) return `which belongs to uid ${parent.uid}`;
  const othersWrite = (parent.mode & 0o002) !== 0 || ((parent.mode & 0o020) !== 0 && parent.gid !== 0 && parent.gid !== egid);
  if (!othersWrite) return null;
  const sticky = (parent.mode & 0o1000) !== 0;
  if (sticky && isTrustedOwner(link.uid, euid)) return null;
  if (sticky) return `which other users can write, and the link belongs to uid ${link.uid}`;
  return 'which other users can write (and it is not sticky)';
}

export interface OutputDir {
  /** The folder as given (resolved to an absolute path). */
  path: string;
  /** The folder reached, with every link resolved. */
  real: string;
  /** An open descriptor of the folder; name files in it with fdPath(fd, name). */
  fd: number;
  /** Folders this call created, outermost first. */
  created: string[];
}

const MAX_LINKS = 40;

/**
 * Walks to `dir` from "/", creating missing folders one at a time and refusing links another
 * user could have planted. Throws Refused (the reason) on anything else; returns an open folder.
 */
function walk(dir: string, euid: number, egid: number): OutputDir {
  const path = resolve(dir);
  const created: string[] = [];
  let comps = path.split('/').filter(Boolean);
  let fd = openDir('/', DIR_FLAGS, '/');
  let real = '/';
  let links = 0;
  try {
    while (comps.length > 0) {
      const c = comps.shift()!;
      if (c === '.') continue;
      const shown = c === '..' ? resolve(real, '..') : join(real, c);
      const here = fdPath(fd, c);
      let checked: fs.Stats | undefined;
      if (c !== '..') {
        let st: fs.Stats | undefined;
        try {
          st = fs.lstatSync(here, { throwIfNoEntry: false });
        } catch (e) {
          throw new Refused(`cannot look into ${real}: ${inWords(e)}`);
        }
        if (st === undefined) {
          try {
            fs.mkdirSync(here, 0o755);
            created.push(shown);
          } catch (e) {
            if (code(e) !== 'EEXIST') {
              const fsName = virtualFs(fdPath(fd));
              if (fsName) throw new Refused(`cannot create ${shown}: ${real} is a ${fsName} file system, which takes no new folders`);
              throw new Refused(`cannot create ${shown}: ${inWords(e)}`);
            }
          }
          st = fs.lstatSync(here);
        }
        if (st.isSymbolicLink()) {
          const why = untrustedLink(fs.fstatSync(fd), st, euid, egid);
          if (why) throw new Refused(`${shown} is a symbolic link in ${real}, ${why}: not following it (give the folder it points to, or remove the link)`);
          if (++links > MAX_LINKS) throw new Refused(`${shown}: too many symbolic links`);
          const target = fs.readlinkSync(here);
          comps = [...target.split('/').filter(Boolean), ...comps];
          if (target.startsWith('/')) {
            const root = openDir('/', DIR_FLAGS, '/');
            closeQuietly(fd);
            fd = root;
            real = '/';
          }
          continue;
        }
        if (!st.isDirectory()) throw new Refused(`${shown} is ${st.isFile() ? 'a file' : 'a special file'}, not a folder`);
        checked = st;
      }
      let next: number;
      try {
        next = openDir(here, DIR_FLAGS | O_NOFOLLOW, shown);
      } catch (e) {
        throw new Refused(`cannot enter ${shown}: ${inWords(e)}`);
      }
      closeQuietly(fd);
      fd = next;
      real = shown;
      const held = fs.fstatSync(fd);
      if (checked && (held.dev !== checked.dev || held.ino !== checked.ino)) throw new Refused(`${shown} was replaced while being checked`);
    }
    return { path, real, fd, created };
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}

function fail(dir: string, reason: string, cause?: unknown): OutputError {
  return new OutputError(`cannot write reports to ${resolve(dir)}: ${reason}`, cause === undefined ? undefined : { cause });
}

/** Throws Refused unless a new file can be made in the open folder. */
function checkWritable(out: OutputDir): void {
  const probe = tempName();
  try {
    fs.closeSync(fs.openSync(fdPath(out.fd, probe), 'wx', 0o600));
    fs.unlinkSync(fdPath(out.fd, probe));
  } catch (e) {
    const fsName = virtualFs(fdPath(out.fd));
    if (fsName) throw new Refused(`${out.real} is a ${fsName} file system, which takes no new files`);
    throw new Refused(`${out.real} is not writable: ${inWords(e)}`);
  }
}

/** Opens (creating as needed) the output folder and checks that files can be made in it. The caller closes `fd`. */
export function openOutputDir(dir: string, ids: { euid: number; egid: number } = { euid: process.geteuid?.() ?? -1, egid: process.getegid?.() ?? -1 }, check = true): OutputDir {
  let out: OutputDir;
  try {
    out = walk(dir, ids.euid, ids.egid);
  } catch (e) {
    if (e instanceof Refused) throw fail(dir, e.message);
    throw fail(dir, inWords(e), e);
  }
  if (!check) return out;
  try {
    checkWritable(out);
  } catch (e) {
    closeQuietly(out.fd);
    throw fail(dir, e instanceof Refused ? e.message : inWords(e), e);
  }
  return out;
}

/**
 * Checks, before any probe runs, that reports can be written to `dir` (creating it); throws
 * OutputError with one line in words. Returns the folders it created, outermost first.
 */
export function checkOutputDir(dir: string): string[] {
  const out = openOutputDir(dir);
  closeQuietly(out.fd);
  return out.created;
}

/** fsync(2) on the thread pool: the fsyncs of the files written side by side overlap. */
function fsyncAsync(fd: number): Promise<void> {
  return new Promise((ok, no) => fs.fsync(fd, (e) => (e ? no(e) : ok())));
}

/**
 * Writes and fsyncs `data` to a fresh temporary file in the folder; returns its name. The open and
 * the write are synchronous (the write lands in the page cache), only the fsync waits on the pool:
 * node:fs/promises (FileHandle) would load readline, the REPL history and the streams for this.
 */
async function writeTemp(dirFd: number, contents: string | (() => string)): Promise<string> {
  const data = typeof contents === 'function' ? contents() : contents;
  for (let attempt = 0; ; attempt++) {
    const name = tempName();
    let fd: number;
    try {
      fd = fs.openSync(fdPath(dirFd, name), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644);
    } catch (e) {
      if (code(e) === 'EEXIST' && attempt < 5) continue;
      throw e;
    }
    try {
      fs.writeFileSync(fd, data, 'utf8');
      await fsyncAsync(fd);
    } catch (e) {
      closeQuietly(fd);
      fs.rmSync(fdPath(dirFd, name), { force: true });
      throw e;
    }
    fs.closeSync(fd);
    return name;
  }
}

/** Keeps the file at `name` under a temporary name (a hard link, else a copy); returns that name. */
function keep(dirFd: number, name: string, st: fs.Stats): string {
  const saved = tempName();
  try {
    fs.linkSync(fdPath(dirFd, name), fdPath(dirFd, saved));
    return saved;
  } catch (e) {
    if (!st.isFile()) throw e;
  }
  // No hard links here (or not to this file): a copy, read without following links or blocking.
  const src = fs.openSync(fdPath(dirFd, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  try {
    const s = fs.fstatSync(src);
    if (!s.isFile() || s.size > 64 << 20) throw Object.assign(new Error('not a small regular file'), { code: 'EPERM' });
    const dst = fs.openSync(fdPath(dirFd, saved), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW | O_CLOEXEC, s.mode & 0o777);
    try {
      fs.writeFileSync(dst, fs.readFileSync(src));
    } finally {
      fs.closeSync(dst);
    }
  } finally {
    fs.closeSync(src);
  }
  return saved;
}

/**
 * Writes every file into `dir` (created if needed) as one set: after it returns, every file is
 * new; after it throws (OutputError naming the file), every file is as it was before, and no
 * temporary file is left. Returns the written paths in order.
 */
export async function writeFilesAtomic(dir: string, files: readonly OutputFile[]): Promise<string[]> {
  // Writing the temporary files proves the folder writable: no separate check (it costs a create and an unlink).
  const out = openOutputDir(dir, undefined, false);
  const at = (name: string) => fdPath(out.fd, name);
  const shown = (name: string) => join(out.real, name);
  const temps = new Map<string, string>();
  const saved = new Map<string, string>();
  const placed: string[] = [];
  let step = '';
  try {
    for (const f of files) {
      const st = fs.lstatSync(at(f.name), { throwIfNoEntry: false });
      if (st?.isDirectory()) throw new Refused(`${shown(f.name)} is a folder, not a file`);
    }
    // The files whose text is at hand are written side by side (their fsyncs overlap: one journal
    // commit instead of five in a row); those made on demand one at a time, so that a set of big
    // files is never all in memory at once. The first failure by file order is the one named.
    const failed = (f: OutputFile, e: unknown): Error => {
      step = `cannot write ${shown(f.name)}`;
      const fsName = virtualFs(fdPath(out.fd));
      return fsName ? new Refused(`${out.real} is a ${fsName} file system, which takes no new files`) : (e as Error);
    };
    const ready = files.filter((f) => typeof f.data === 'string');
    const settled = await Promise.allSettled(ready.map((f) => writeTemp(out.fd, f.data)));
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') temps.set(ready[i]!.name, r.value);
    });
    const bad = settled.findIndex((r) => r.status === 'rejected');
    if (bad >= 0) throw failed(ready[bad]!, (settled[bad] as PromiseRejectedResult).reason);
    for (const f of files) {
      if (typeof f.data === 'string') continue;
      try {
        temps.set(f.name, await writeTemp(out.fd, f.data));
      } catch (e) {
        throw failed(f, e);
      }
    }
    for (const f of files) {
      const st = fs.lstatSync(at(f.name), { throwIfNoEntry: false });
      if (st === undefined) continue;
      step = `cannot keep the old ${shown(f.name)} while replacing it`;
      saved.set(f.name, keep(out.fd, f.name, st));
    }
    for (const f of files) {
      step = `cannot replace ${shown(f.name)}`;
      fs.renameSync(at(temps.get(f.name)!), at(f.name));
      temps.delete(f.name);
      placed.push(f.name);
    }
  } catch (e) {
    const unrestored: string[] = [];
    for (const name of placed.reverse()) {
      try {
        const old = saved.get(name);
        if (old === undefined) fs.unlinkSync(at(name));
        else {
          fs.renameSync(at(old), at(name));
          saved.delete(name);
        }
      } catch {
        unrestored.push(shown(name));
      }
    }
    for (const t of [...temps.values(), ...saved.values()]) fs.rmSync(at(t), { force: true });
    closeQuietly(out.fd);
    const tail = unrestored.length ? ` (could not put back the old ${unrestored.join(', ')})` : placed.length ? ' (the old reports were put back)' : '';
    if (e instanceof Refused) throw fail(dir, e.message + tail);
    throw fail(dir, `${step}: ${inWords(e)}${tail}`, e);
  }
  for (const t of saved.values()) fs.rmSync(at(t), { force: true });
  closeQuietly(out.fd);
  return files.map((f) => join(dir, f.name));
}

/** Atomically replaces `path` with `data` (temporary file in the same folder, then rename). */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const abs = resolve(path);
  const slash = abs.lastIndexOf('/');
  await writeFilesAtomic(abs.slice(0, slash) || '/', [{ name: abs.slice(slash + 1), data }]);
}

/**
 * One report file's text. `prerendered`: the probe results are final, so the parts made for them
 * while the run went on (src/report/prerender.ts) are used, and made now where missing.
 */
export function renderReport(r: Report, format: Format, prerendered = false): string {
  switch (format) {
    case 'tap':
      return renderTap(r, prerendered);
    case 'junit':
      return renderJunit(r);
    case 'json':
      return reportJson(r, prerendered);
    case 'md':
      return renderMarkdown(r);
    case 'html':
      return renderHtml(r);
    case 'nfd':
      return renderNfd(r);
    case 'prom':
      return renderProm(r);
  }
}

/**
 * Writes the requested formats into `outDir` (created if needed); returns the paths written.
 * `alsoRender` (the terminal summary) runs inside the same shared layout, after the files are
 * rendered, so it reuses their probe grid, cause and skip groups and headline.
 */
export async function writeReports(r: Report, outDir: string, formats: readonly Format[], prerendered = false, alsoRender?: () => void): Promise<string[]> {
  const unique = [...new Set(formats)];
  const files = sharedLayout(r, () => {
    const made = unique.map((f): OutputFile => ({ name: REPORT_FILES[f], data: renderReport(r, f, prerendered) }));
    alsoRender?.();
    return made;
  });
  return writeFilesAtomic(outDir, files);
}
