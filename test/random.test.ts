// src/random.ts: the random bytes of names that must not be guessed, read from /dev/urandom.
import test from 'ava';
import { randomBytes } from '../src/random.js';

test('randomBytes gives n bytes, different each time', (t) => {
  for (const n of [0, 1, 2, 8, 16, 4096]) t.is(randomBytes(n).length, n);
  const seen = new Set(Array.from({ length: 64 }, () => randomBytes(8).toString('hex')));
  t.is(seen.size, 64, 'no two of 64 draws of 64 bits alike');
  const ones = [...randomBytes(4096)].reduce((s, b) => s + b.toString(2).split('1').length - 1, 0);
  t.true(ones > 4096 * 4 - 600 && ones < 4096 * 4 + 600, `${ones} bits set of ${4096 * 8}: not random`);
});
