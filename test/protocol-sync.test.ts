// The wire format is written down twice, in native/proto.h (+ the syscall names in addon.cc) and in
// src/protocol.ts. These checks read the C sources as text and compare, so that the two cannot
// drift apart unnoticed (the C side checks its own counts and header sizes with static_assert).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Op, SYSCALLS } from '../src/protocol.js';
import { ROOT } from './helpers/run.js';

const proto = readFileSync(join(ROOT, 'native', 'proto.h'), 'utf8');
const addon = readFileSync(join(ROOT, 'native', 'enter.cc'), 'utf8'); // kSysNames lives with the shared entering code

test('syscall names: src/protocol.ts SYSCALLS equals kSysNames in native/enter.cc', (t) => {
  const body = /kSysNames\[\] = \{([^}]*)\}/.exec(addon)?.[1];
  t.truthy(body, 'kSysNames not found in enter.cc');
  const names = [...body!.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  t.true(names.length > 40);
  t.deepEqual([...SYSCALLS], names);
});

test('syscall names: as many as enum nsp_sys has entries before SC_COUNT', (t) => {
  const body = /enum nsp_sys \{([^}]*)\}/.exec(proto)![1];
  const entries = body.split(',').map((s) => s.trim()).filter(Boolean);
  t.is(entries.indexOf('SC_COUNT'), SYSCALLS.length);
});

test('op codes: every op in src/protocol.ts has the same number in native/proto.h', (t) => {
  const c = new Map([...proto.matchAll(/\bOP_(\w+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  for (const [name, n] of Object.entries(Op)) t.is(c.get(name), n, `OP_${name}`);
  // The only op the TS side does not send or read: the child's message while entering.
  t.deepEqual([...c.keys()].filter((k) => !(k in Op)), ['READY']);
});
