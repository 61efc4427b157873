// A short seeded fuzz sample (2,000 cases: 1,000 requests to jailed sandboxes, 1,000 replies to
// decodeReply): Node does not crash, decodeReply throws only ProtocolError, nothing stays open.
// The full run is `npm run fuzz` (100,000 cases).
import test from 'ava';
import { native } from '../src/native.js';
import { runFuzz } from '../scripts/fuzz.js';

test('2,000 fuzz cases (seed 12345): no crash, only ProtocolError, no sandbox left open', async (t) => {
  const r = await runFuzz({ cases: 2000, seed: 12345 });
  t.log(`${r.requests} requests (${r.okReplies} answered, ${r.requestErrors} failed, ${r.sandboxesCreated} sandboxes), ${r.decodeOk} replies ok, ${r.decodeProtocolError} ProtocolError, ${Math.round(r.ms)} ms`);
  t.deepEqual(r.badThrows, []);
  t.is(r.requests + r.replies, 2000);
  t.true(r.decodeProtocolError > 0 && r.decodeOk > 0, 'both valid and invalid replies were tried');
  t.is(native().openCount(), 0);
});
