// npm run fuzz [-- --cases 100000 --seed N]: random, truncated and mutated requests through
// native().request() to sandboxes, and random, truncated and mutated replies to decodeReply().
// Node must never crash; a sandbox may die (it is recreated); decodeReply must either return or
// throw ProtocolError, nothing else.
//
// The target sandbox can do no harm whatever it is asked: rootless (uid 65534 on the host) in new
// user, pid, mount, network, IPC and UTS namespaces, chrooted by pivot_root into an empty tmpfs,
// so no host file, process, interface or IPC object is reachable from it.
import { pathToFileURL } from 'node:url';
import { MNT_DETACH, MS } from '../src/errno.js';
import { native } from '../src/native.js';
import { decodeReply, encodeRequest, MAGIC_REP, MAX_DATA, MAX_REQ, Op, ProtocolError, REP_HEADER } from '../src/protocol.js';
import { enter, type Sandbox } from '../src/sandbox.js';
import { intValue, scriptArgs } from '../src/args.js';
import { prng } from './harness.js';

const OPS = Object.values(Op).filter((o) => o !== Op.HANG && o !== Op.EXIT);
// Requests that wait (HANG, or a long poll) cost a request timeout each: keep it short.
const REQUEST_TIMEOUT_MS = 150;

export interface FuzzResult {
  seed: number;
  requests: number;
  replies: number;
  okReplies: number;
  errReplies: number;
  requestErrors: number;
  sandboxesCreated: number;
  decodeOk: number;
  decodeProtocolError: number;
  badThrows: string[];
  ms: number;
}

/** An empty, private root: nothing of the host is reachable from the sandbox. */
async function jail(): Promise<Sandbox> {
  const s = await enter({ namespaces: ['pid', 'mnt', 'net', 'ipc', 'uts'], mode: 'rootless', timeoutMs: 3000 });
  const steps = [
    () => s.mount('', '/', '', MS.REC | MS.PRIVATE),
    () => s.mount('fuzz', '/tmp', 'tmpfs', 0, 'size=1m'),
    () => s.mkdir('/tmp/root'),
    () => s.mount('fuzzroot', '/tmp/root', 'tmpfs', 0, 'size=1m'),
    () => s.mkdir('/tmp/root/old'),
    () => s.chdir('/tmp/root'),
    () => s.pivotRoot('.', 'old'),
    () => s.umount('/old', MNT_DETACH),
  ];
  for (const step of steps) {
    const r = await step();
    if (!r.ok) {
      await s.close();
      throw new Error(`cannot jail the fuzz sandbox: ${r.sentence}`);
    }
  }
  return s;
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

function mutate(rand: () => number, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const k = 1 + ((rand() * 8) | 0);
  for (let i = 0; i < k && out.length; i++) {
    const at = (rand() * out.length) | 0;
    const how = rand();
    if (how < 0.5) out[at] = (rand() * 256) | 0;
    else if (how < 0.75) out[at] ^= 1 << ((rand() * 8) | 0);
    else out.writeUInt8([0, 0xff, 0x7f, 0x80][(rand() * 4) | 0], at);
  }
  return out;
}

function randomString(rand: () => number): Buffer {
  const pick = rand();
  if (pick < 0.3) return Buffer.from(['/', '/tmp', '.', '..', 'x', '/proc/self', '/old', 'lo', ''][(rand() * 9) | 0]);
  return randomBytes(rand, (rand() * (pick < 0.9 ? 64 : 2000)) | 0);
}

/** A request: valid, mutated, truncated, oversized-in-fields or pure noise. */
export function makeRequest(rand: () => number, seq: number): Buffer {
  const kind = rand();
  const op = rand() < 0.9 ? OPS[(rand() * OPS.length) | 0] : (rand() * 2 ** 32) >>> 0;
  const nums = Array.from({ length: (rand() * 9) | 0 }, () => {
    const r = rand();
    if (r < 0.4) return (rand() * 16) | 0;
    if (r < 0.6) return -((rand() * 16) | 0);
    if (r < 0.8) return BigInt.asIntN(64, BigInt(Math.floor(rand() * 2 ** 53)) << BigInt((rand() * 11) | 0));
    return (rand() * 2 ** 31) | 0;
  });
  const strs = Array.from({ length: (rand() * 5) | 0 }, () => randomString(rand));
  let req: Buffer;
  try {
    req = encodeRequest(op, seq, nums, strs);
  } catch {
    req = encodeRequest(op, seq, nums.slice(0, 8), []);
  }
  if (kind < 0.4) return req;
  if (kind < 0.7) return mutate(rand, req);
  if (kind < 0.85) return req.subarray(0, (rand() * req.length) | 0);
  if (kind < 0.95) {
    // Lengths that lie: the header claims more or less string bytes than follow.
    const b = Buffer.from(req);
    b.writeUInt16LE((rand() * 65536) | 0, 80 + 2 * ((rand() * 4) | 0));
    return b;
  }
  return randomBytes(rand, (rand() * MAX_REQ) | 0);
}

/** A reply to decode: valid, mutated, truncated, extended or noise. */
export function makeReply(rand: () => number): Buffer {
  const dlen = rand() < 0.8 ? (rand() * 200) | 0 : (rand() * MAX_DATA) | 0;
  const b = Buffer.alloc(REP_HEADER + dlen);
  b.writeUInt32LE(MAGIC_REP, 0);
  b.writeUInt32LE((rand() * 45) | 0, 4);
  b.writeUInt32LE((rand() * 2 ** 32) >>> 0, 8);
  b.writeInt32LE(rand() < 0.8 ? 0 : (rand() * 200) | 0, 12);
  for (let i = 0; i < 8; i++) b.writeBigInt64LE(BigInt.asIntN(64, BigInt(Math.floor(rand() * 2 ** 53))), 16 + 8 * i);
  b.writeUInt32LE(dlen, 80);
  b.writeUInt16LE((rand() * 60) | 0, 84);
  const kind = rand();
  if (kind < 0.3) return b;
  if (kind < 0.6) return mutate(rand, b);
  if (kind < 0.8) return b.subarray(0, (rand() * b.length) | 0);
  if (kind < 0.9) return Buffer.concat([b, randomBytes(rand, 1 + ((rand() * 16) | 0))]);
  return randomBytes(rand, (rand() * 300) | 0);
}

export async function runFuzz(opts: { cases: number; seed: number; log?: (s: string) => void }): Promise<FuzzResult> {
  const rand = prng(opts.seed);
  const t0 = performance.now();
  const r: FuzzResult = { seed: opts.seed, requests: 0, replies: 0, okReplies: 0, errReplies: 0, requestErrors: 0, sandboxesCreated: 0, decodeOk: 0, decodeProtocolError: 0, badThrows: [], ms: 0 };
  const nRequests = Math.ceil(opts.cases / 2);
  const nReplies = opts.cases - nRequests;

  // Replies first: pure JS, fast.
  for (let i = 0; i < nReplies; i++) {
    const buf = makeReply(rand);
    try {
      decodeReply(buf);
      r.decodeOk++;
    } catch (e) {
      if (e instanceof ProtocolError) r.decodeProtocolError++;
      else r.badThrows.push(`decodeReply threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} on ${buf.toString('hex').slice(0, 200)}`);
    }
    r.replies++;
  }

  // Requests: several sandboxes at once, so the fuzzing keeps the CPUs busy; a sandbox that dies
  // (exit, kill, timeout) is replaced; every 2000 requests each is replaced anyway (forks inside).
  const lanes = 4;
  let next = 0;
  const lane = async () => {
    let s: Sandbox | null = null;
    let used = 0;
    while (next < nRequests) {
      const i = next++;
      if (!s || used >= 2000) {
        await s?.close(0).catch(() => undefined);
        s = await jail();
        r.sandboxesCreated++;
        used = 0;
      }
      used++;
      const req = makeRequest(rand, i + 1);
      try {
        const rep = await native().request(s.id, req, REQUEST_TIMEOUT_MS);
        for (const fd of rep.fds) native().closeFd(fd);
        r.okReplies++;
        try {
          decodeReply(rep.reply);
        } catch (e) {
          if (!(e instanceof ProtocolError)) r.badThrows.push(`decodeReply threw ${(e as Error).message} on a real reply`);
          r.errReplies++;
        }
      } catch (e) {
        r.requestErrors++;
        const ne = e as { native?: boolean };
        if (!ne?.native) r.badThrows.push(`request threw a non-native error: ${(e as Error)?.message}`);
        // The child may be dead or stuck: replace it.
        await s.close(0).catch(() => undefined);
        s = null;
      }
      r.requests++;
      if (opts.log && r.requests % 10000 === 0) opts.log(`${r.requests}/${nRequests} requests, ${r.sandboxesCreated} sandboxes, ${Math.round(performance.now() - t0)} ms`);
    }
    await s?.close(0).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  r.ms = performance.now() - t0;
  return r;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { seed, cases } = scriptArgs('fuzz', 'npm run fuzz -- [--seed N] [--cases N]', { seed: { type: 'string', value: 'a number' }, cases: { type: 'string', value: 'a number' } }, (v) => ({
    seed: intValue('--seed', v.seed, Date.now() % 2 ** 31, 0, 2 ** 31 - 1),
    cases: intValue('--cases', v.cases, 100000, 1, 100000000),
  }));
  console.log(`fuzz: seed ${seed}, ${cases} cases`);
  const r = await runFuzz({ cases, seed, log: (l) => console.log(l) });
  console.log(`seed ${seed}: ${r.requests} requests (${r.okReplies} answered, ${r.requestErrors} failed: child gone, timeout or refused; ${r.sandboxesCreated} sandboxes created), ${r.replies} replies decoded (${r.decodeOk} ok, ${r.decodeProtocolError} ProtocolError) in ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`open sandboxes at the end: ${native().openCount()}`);
  if (r.badThrows.length) console.log(`BAD (${r.badThrows.length}):\n${r.badThrows.slice(0, 20).join('\n')}`);
  process.exitCode = r.badThrows.length || native().openCount() ? 1 : 0;
}
