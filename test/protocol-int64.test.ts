// The request/reply numbers are int64 on the wire; encodeRequest and decodeReply write and read
// int32-range values without BigInt. Checked here against BigInt's own int64 encoding.
import test from 'ava';
import { decodeReply, encodeRequest, MAGIC_REP, MAX_REQ, Op, REQ_HEADER, sendEncoded } from '../src/protocol.js';

const shared = (op: number, seq: number, nums: (number | bigint)[], strs: (string | Buffer)[]) => sendEncoded(op, seq, nums, strs, (b) => Buffer.from(b));

const EDGES: (number | bigint)[] = [0, 1, -1, 2147483647, -2147483648, 2147483648, -2147483649, 4294967295, 4294967296, 2 ** 53 - 1, -(2 ** 53 - 1), 0x70000000, 9007199254740993n, -5n];

test('encodeRequest writes each number as BigInt would (int32 range, beyond it, negative, bigint)', (t) => {
  for (let i = 0; i < EDGES.length; i += 8) {
    const nums = EDGES.slice(i, i + 8);
    const b = encodeRequest(Op.ECHO, 7, nums, ['ab', Buffer.from([1, 2]), 'ü']);
    nums.forEach((v, k) => t.is(b.readBigInt64LE(16 + 8 * k), BigInt(v), `n[${k}] = ${v}`));
    for (let k = nums.length; k < 8; k++) t.is(b.readBigInt64LE(16 + 8 * k), 0n, `unused n[${k}] is 0`);
    t.is(b.readUInt32LE(12), 0, 'the cpu hint is left 0');
    t.deepEqual([b.readUInt16LE(80), b.readUInt16LE(82), b.readUInt16LE(84), b.readUInt16LE(86)], [2, 2, 2, 0]);
    t.deepEqual([...b.subarray(88)], [...Buffer.from('ab'), 1, 2, ...Buffer.from('ü')]);
  }
  t.throws(() => encodeRequest(Op.ECHO, 1, [1.5]), { instanceOf: RangeError }, 'a fraction is refused, as BigInt refuses it');
});

test('decodeReply reads each number as Number(BigInt) would', (t) => {
  for (const v of [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, 12345678901234n, -98765432109n, 4294967295n, 4294967296n, -4294967296n]) {
    const b = Buffer.alloc(88);
    b.writeUInt32LE(MAGIC_REP, 0);
    b.writeUInt32LE(Op.ECHO, 4);
    for (let i = 0; i < 8; i++) b.writeBigInt64LE(v, 16 + 8 * i);
    t.deepEqual(decodeReply(b).n, new Array(8).fill(Number(v)), String(v));
  }
});

test('the shared encoder writes what encodeRequest writes, and a request over MAX_REQ is refused with its size', (t) => {
  const cases: [number, (number | bigint)[], (string | Buffer)[]][] = [
    [Op.ECHO, [], []],
    [Op.MOUNT, [16384 | 262144], ['none', '/tmp/x/proc', 'proc', '']],
    [Op.READFILE, [1, -2, 2 ** 40], ['ü€😀', Buffer.from([0, 255])]],
  ];
  for (const [op, nums, strs] of cases) {
    const own = encodeRequest(op, 9, nums, strs);
    encodeRequest(Op.ECHO, 1, [7, 7, 7, 7, 7, 7, 7, 7], ['x'.repeat(100), 'y', 'z', 'w']); // dirties the shared buffer
    t.deepEqual([...shared(op, 9, nums, strs)], [...own], `op ${op}`);
  }
  // Exactly MAX_REQ fits, one byte more does not; a multi-byte string near the end is measured exactly.
  t.is(shared(Op.ECHO, 1, [], ['a'.repeat(MAX_REQ - REQ_HEADER)]).length, MAX_REQ);
  t.is(shared(Op.ECHO, 1, [], ['a'.repeat(MAX_REQ - REQ_HEADER - 3), '€']).length, MAX_REQ);
  t.throws(() => shared(Op.ECHO, 1, [], ['a'.repeat(MAX_REQ - REQ_HEADER - 2), '€']), { message: `request of ${MAX_REQ + 1} bytes exceeds ${MAX_REQ}` });
  t.throws(() => encodeRequest(Op.ECHO, 1, [], [Buffer.alloc(MAX_REQ - REQ_HEADER + 1)]), { message: `request of ${MAX_REQ + 1} bytes exceeds ${MAX_REQ}` });
});
