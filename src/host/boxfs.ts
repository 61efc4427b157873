// HostFS over a host interface whose reads are requests (BoxHost; on a remote run, the agent).
// Host facts and gates read files synchronously; a request is asynchronous. So the reads are
// settled first: `use` (collect the facts, evaluate the gates) runs against a cache that answers
// what it holds and notes what it lacks; the lacking reads are fetched through the host interface
// and `use` runs again, until it asks for nothing new (each round only follows what the last one
// read: a folder listing, a link). The HostContext returned answers from that cache, so the
// run's facts and gates are the target's, read with the same bounds as HostFS's local reads
// (regular files only, at most HOST_FILE_MAX_BYTES).
import { lookUpProgramsOn } from '../consumers.js';
import { evaluateGates } from '../gates.js';
import { collectHostFacts } from './facts.js';
import { HOST_FILE_MAX_BYTES, type FileStat, type HostContext, type HostFS } from './hostfs.js';
import { hostKindFrom, localHost, openHost, type HostIf, type HostKind } from './hostif.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

type Key = `${'file' | 'exists' | 'readdir' | 'readlink' | 'stat'}:${string}`;

/** Rounds before giving up on new reads (each is one batch of requests; facts settle in 2-4). */
const MAX_ROUNDS = 16;

export interface SettledHost {
  ctx: HostContext;
  /** Rounds it took and reads it made (for tests and the bench). */
  rounds: number;
  reads: number;
}

async function fetchOne(hi: HostIf, key: Key): Promise<unknown> {
  const i = key.indexOf(':');
  const op = key.slice(0, i);
  const p = key.slice(i + 1);
  if (op === 'exists') return hi.exists(p);
  if (op === 'readdir') {
    const r = await hi.readdir(p);
    return r.ok ? r.value! : null;
  }
  if (op === 'readlink') {
    const r = await hi.readlink(p);
    return r.ok ? r.value! : null;
  }
  if (op === 'stat') {
    const r = await hi.stat(p);
    if (!r.ok) return null;
    const s = r.value!;
    const st: FileStat = { dev: s.dev, ino: s.ino, mode: s.mode, uid: s.uid, gid: s.gid, isFile: (s.mode & S_IFMT) === S_IFREG, isDirectory: (s.mode & S_IFMT) === S_IFDIR };
    return st;
  }
  // A file: only a regular one (a FIFO or a device is never opened) and never more than the cap.
  const st = await hi.stat(p);
  if (!st.ok || (st.value!.mode & S_IFMT) !== S_IFREG || st.value!.size > HOST_FILE_MAX_BYTES) return null;
  const r = await hi.readBytes(p, HOST_FILE_MAX_BYTES);
  return r.ok ? r.value! : null;
}

/**
 * A HostContext whose file reads are the host interface's, settled for `use` (which must read
 * the same files given the same answers: collecting facts and evaluating gates do). A read `use`
 * did not make reads as missing (null).
 */
export async function settledHostContext(hi: HostIf, base: HostContext, use: (ctx: HostContext) => void): Promise<SettledHost> {
  const cache = new Map<Key, unknown>();
  const missing = new Set<Key>();
  const look = <T>(key: Key, none: T): T => {
    if (cache.has(key)) return cache.get(key) as T;
    missing.add(key);
    return none;
  };
  const fs: HostFS = {
    readFile: (p) => look<Buffer | null>(`file:${p}`, null)?.toString('utf8') ?? null,
    readBinary: (p) => look<Buffer | null>(`file:${p}`, null),
    exists: (p) => look(`exists:${p}`, false),
    readdir: (p) => {
      const v = look<string[] | null>(`readdir:${p}`, null);
      return v ? [...v] : null;
    },
    readlink: (p) => look<string | null>(`readlink:${p}`, null),
    stat: (p) => look<FileStat | null>(`stat:${p}`, null),
  };
  const ctx: HostContext = { ...base, fs, euid: hi.euid, egid: hi.egid };
  let rounds = 0;
  for (; rounds < MAX_ROUNDS; rounds++) {
    missing.clear();
    use(ctx);
    if (!missing.size) break;
    const keys = [...missing];
    const values = await Promise.all(keys.map((k) => fetchOne(hi, k)));
    keys.forEach((k, i) => cache.set(k, values[i]));
  }
  return { ctx, rounds, reads: cache.size };
}

/**
 * The host side of a run: LocalHost and `base` as they are (a local run, nothing added), or, for
 * kind 'box' (the caller's choice: a remote transport; else NSPROBE_HOST=box in `base.env`), a
 * BoxHost and a HostContext settled through it for the host facts and the gates
 * (`kernelConfigPath` as the run will judge kernel_config). The caller closes `hostIf`.
 */
export async function openRunHost(base: HostContext, timeoutMs?: number, kind: HostKind = hostKindFrom(base.env)): Promise<{ hostIf: HostIf; host: HostContext }> {
  if (kind === 'local') return { hostIf: localHost, host: base };
  const hostIf = await openHost(kind, timeoutMs);
  try {
    const kernelConfigPath = base.env.NSPROBE_KERNEL_CONFIG || undefined;
    const { ctx } = await settledHostContext(hostIf, { ...base, remote: true }, (c) => {
      evaluateGates(c, collectHostFacts(c), kernelConfigPath ? { kernelConfigPath } : {});
      lookUpProgramsOn(c.fs);
    });
    return { hostIf, host: { ...ctx, ownMntSetns: await hostIf.ownMntSetns() } };
  } catch (e) {
    await hostIf.close();
    throw e;
  }
}
