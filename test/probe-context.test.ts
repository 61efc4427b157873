// ProbeContext's cleanup bookkeeping (pure logic: no sandbox is entered). After a timeout or
// Ctrl-C a probe's run() goes on for a while; whatever it registers for cleanup then must still
// be cleaned up, or an interrupted CLI can be kept alive by, say, a host listener.
import test from 'ava';
import { NsError } from '../src/errors.js';
import { isDeepStrictEqual, inspect } from 'node:util';
import { ProbeContext, createdNamespaces, sameValue, type ProbeDef } from '../src/probe.js';
import { Outcome, attempt, mappedRanges, pickIdBlock } from '../src/sandbox.js';
import { PROBES } from '../probes/index.js';
import { ownPidNsLevel, procIsInitialPidNs } from '../probes/nesting.js';

const def: ProbeDef = { name: 'ctx', namespace: 'uts', cloneFlag: 'CLONE_NEWUTS', since: '2.6.19', summary: 'test', run: async () => undefined };
const tick = () => new Promise((r) => setImmediate(r));

test('cleanups registered before dispose run at dispose, in reverse order (control)', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  const ran: string[] = [];
  ctx.defer(() => ran.push('a'));
  ctx.defer(() => ran.push('b'));
  ctx.deferAfterClose(() => ran.push('after'));
  await tick();
  t.deepEqual(ran, []);
  await ctx.dispose();
  t.deepEqual(ran, ['b', 'a', 'after']);
});

test('a cleanup registered after dispose (the probe went on after an interrupt) runs at once', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  await ctx.dispose();
  const ran: string[] = [];
  ctx.defer(() => ran.push('late'));
  ctx.deferAfterClose(() => ran.push('late-after-close'));
  await tick();
  t.deepEqual(ran, ['late', 'late-after-close']);
});

test('a cleanup registered while dispose runs the others is not lost', async (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  const ran: string[] = [];
  ctx.defer(async () => {
    await tick();
    ctx.defer(() => ran.push('during'));
  });
  await ctx.dispose();
  await tick();
  t.deepEqual(ran, ['during']);
});

// ---------- one result convention; expectOk/expectErrno/skip/helper (issue 12, items 2 and 4) ----------
// Outcomes are built by hand here (pure logic); test/deep.test.ts drives the same paths against the
// real kernel in the environments that block helper steps.

const failed = (step: string, errno: number, syscall = 'mount') => new Outcome<void>(step, errno, syscall, undefined);

test('a failed request reads as a sentence that names the step, and get() throws it as an NsError at stage request', (t) => {
  const o = failed('mount proc on /tmp/root/proc', 1);
  t.false(o.ok);
  t.is(o.code, 'EPERM');
  t.is(o.sentence, 'mount proc on /tmp/root/proc: EPERM');
  const e = t.throws(() => o.get(), { instanceOf: NsError });
  t.is(e?.stage, 'request');
  t.is(e?.syscall, 'mount');
  t.is(e?.message, 'mount proc on /tmp/root/proc: EPERM');
  // control: a successful one gives its value
  t.is(Outcome.ok('read /x', 'v').get(), 'v');
});

test('expectOk records a failed step as "<step>: ERRNO", never as bare numbers', (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  t.false(ctx.expectOk('a fresh proc mounts inside', failed('mount proc on /proc', 1)));
  t.true(ctx.expectOk('it works (control)', Outcome.ok('mount proc on /proc', undefined)));
  const [a, b] = ctx.assertions;
  t.is(a.status, 'fail');
  t.is(a.actual, 'mount proc on /proc: EPERM');
  t.is(a.expected, 'mount proc on /proc: ok');
  t.is(b.status, 'pass');
});

test('expectErrno passes only for that errno (by name or number) and fails on success', (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  t.true(ctx.expectErrno('refused', failed('setns into U1', 1, 'setns'), 'EPERM'));
  t.true(ctx.expectErrno('refused by number', failed('setns into U1', 1, 'setns'), 1));
  t.false(ctx.expectErrno('wrong errno', failed('setns into U1', 22, 'setns'), 'EPERM'));
  t.false(ctx.expectErrno('succeeded', Outcome.ok('setns into U1', undefined), 'EPERM'));
  t.deepEqual(ctx.assertions.map((a) => a.status), ['pass', 'pass', 'fail', 'fail']);
  t.is(ctx.assertions[3].actual, 'setns into U1: succeeded');
});

test('a helper step blocked by a gate skips its dependents with the reason and the gate; unexplained, it is a failure', (t) => {
  const gated = new ProbeContext(def, 'rootless', 1000, (e) => ({ gate: e.code === 'EPERM' ? 'proc_fully_visible' : null, cause: 'a fresh /proc cannot be mounted here' }));
  t.false(gated.helper(failed('mount proc on /proc', 1), ['/proc/self inside is 1', 'the fresh /proc lists only the namespace\'s processes'], { name: 'a fresh proc mounts inside' }));
  t.deepEqual(gated.assertions.map((a) => [a.name, a.status, a.gate]), [
    ['a fresh proc mounts inside', 'skipped', 'proc_fully_visible'],
    ['/proc/self inside is 1', 'skipped', 'proc_fully_visible'],
    ['the fresh /proc lists only the namespace\'s processes', 'skipped', 'proc_fully_visible'],
  ]);
  t.is(gated.assertions[1].reason, 'mount proc on /proc: EPERM (a fresh /proc cannot be mounted here)');
  // The same hook, an errno it does not explain: a real failure.
  gated.helper(failed('mount proc on /proc', 22), ['dep'], { name: 'again' });
  t.deepEqual(gated.assertions.slice(3).map((a) => [a.name, a.status]), [['again', 'fail'], ['dep', 'skipped']]);
  // Default explain (no runner): no gate, so a failure.
  const plain = new ProbeContext(def, 'rootless', 1000);
  plain.helper(failed('write /proc/sys/net/ipv4/ip_forward', 30, 'write'), ['reads 1'], { name: 'ip_forward can be set inside' });
  t.deepEqual(plain.assertions.map((a) => [a.name, a.status]), [['ip_forward can be set inside', 'fail'], ['reads 1', 'skipped']]);
  t.is(plain.assertions[0].actual, 'write /proc/sys/net/ipv4/ip_forward: EROFS');
  // Succeeded: the named step passes, dependents are the probe's to assert.
  const ok = new ProbeContext(def, 'rootless', 1000);
  t.true(ok.helper(Outcome.ok('mount proc on /proc', undefined), ['dep'], { name: 'a fresh proc mounts inside' }));
  t.deepEqual(ok.assertions.map((a) => [a.name, a.status]), [['a fresh proc mounts inside', 'pass']]);
});

test('attempt() turns an NsError thrown by a step (entering, forking) into a failed Outcome; other errors still throw', async (t) => {
  const o = await attempt('enter a second user namespace level', async () => {
    throw new NsError('clone', 'clone', 28);
  });
  t.is(o.sentence, 'enter a second user namespace level: ENOSPC');
  t.is((await attempt('ok', async () => 5)).value, 5);
  await t.throwsAsync(attempt('bug', async () => {
    throw new TypeError('a bug');
  }), { instanceOf: TypeError });
});

test('ctx.skip records status skipped with reason, gate and a stable id', (t) => {
  const ctx = new ProbeContext(def, 'rootless', 1000);
  ctx.skip('the exact depth', 'the start level is unknown here');
  t.like(ctx.assertions[0], { id: 'ctx.the-exact-depth', status: 'skipped', reason: 'the start level is unknown here', gate: null });
});

// ---------- declarations (item 5, the probe side) ----------

test('every probe declares what it creates and uses; createdNamespaces adds user in rootless mode', (t) => {
  t.is(PROBES.length, 14);
  for (const p of PROBES) {
    t.truthy(p.creates, `${p.name} declares creates`);
    t.truthy(p.uses, `${p.name} declares uses`);
    for (const mode of ['privileged', 'rootless'] as const) {
      const c = createdNamespaces(p, mode);
      t.true(c.includes(p.namespace), `${p.name}/${mode} creates its own namespace`);
      t.is(c.includes('user'), mode === 'rootless' || (p.creates!(mode).includes('user')), `${p.name}/${mode}: user`);
      t.is(new Set(c).size, c.length);
    }
  }
  const by = (n: string) => PROBES.find((p) => p.name === n)!;
  for (const n of ['pid', 'mnt', 'join']) t.true(by(n).uses!.procMount, `${n} mounts a fresh /proc`);
  t.true(by('net-veth').uses!.veth && by('net-veth').uses!.sysctlWrite);
  t.true(by('cgroup').uses!.cgroupWrite);
  t.true(by('nesting').uses!.userNsNesting && by('nesting').uses!.pidNsNesting);
  t.true(by('pid-signals').uses!.hostPidVisibility);
  t.deepEqual(createdNamespaces(by('uts'), 'privileged'), ['uts']);
  t.deepEqual(createdNamespaces(by('uts'), 'rootless').sort(), ['user', 'uts']);
});

// ---------- environment facts as pure functions ----------

test('the pid namespace level is known only through the initial pid namespace\'s /proc (kthreadd visible)', (t) => {
  const status = 'Name:\tnode\nNSpid:\t4242\n';
  const kthreadd = '2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0';
  const user = '2 (sh) S 1 2 2 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0';
  t.true(procIsInitialPidNs(kthreadd));
  t.false(procIsInitialPidNs(user));
  t.false(procIsInitialPidNs(null));
  t.is(ownPidNsLevel(status, true), 0);
  t.is(ownPidNsLevel('NSpid:\t9 1\n', true), 1);
  t.is(ownPidNsLevel(status, false), null, 'a container\'s /proc: one NSpid entry at any depth');
});

test('the privileged id block comes from the ids the caller\'s own namespace maps', (t) => {
  t.deepEqual(pickIdBlock(mappedRanges('0 0 4294967295\n'), 0), { block: { base: 100000, count: 65536 }, single: false });
  t.deepEqual(pickIdBlock(mappedRanges('0 100000 65536\n'), 0), { block: { base: 1, count: 65535 }, single: false });
  t.deepEqual(pickIdBlock(mappedRanges('0 1000 1\n'), 0), { block: { base: 0, count: 1 }, single: true });
  t.deepEqual(pickIdBlock(mappedRanges('0 1000 1\n1 100000 200000\n'), 0), { block: { base: 1, count: 65536 }, single: false });
});

test('expect compares as isDeepStrictEqual does (sameValue), on plain data and on what it hands over', (t) => {
  const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
  const extra = Object.assign([1, 2], { more: 1 });
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  const cyc2: Record<string, unknown> = { a: 1 };
  cyc2.self = cyc2;
  const sym = Symbol('s');
  let deep: unknown = 1, deep2: unknown = 1;
  for (let i = 0; i < 50; i++) ((deep = [deep]), (deep2 = [deep2]));
  const values: unknown[] = [
    0, -0, 1, NaN, '1', '', true, false, null, undefined, 1n, -5n, 'pingpong',
    [], [1, 2], [1, '2'], [1, 2, 3], [undefined], sparse, [1, undefined, 3], extra, [[1], [2]], [[1], [2, 3]],
    {}, { a: 1 }, { a: 1, b: 2 }, { b: 2, a: 1 }, { a: undefined }, { b: undefined }, { a: [1, { c: 'x' }] }, { a: [1, { c: 'y' }] },
    Object.create(null), Object.assign(Object.create(null), { a: 1 }), { [sym]: 1 }, { [sym]: 2 },
    Buffer.from('ab'), Buffer.from('ab'), new Map([[1, 2]]), new Map([[1, 2]]), new Set([1]), new Date(0), new Date(0), new Number(1),
    cyc, cyc2, deep, deep2,
  ];
  const ctx = new ProbeContext(def, 'rootless', 1000);
  let equalPairs = 0;
  for (const a of values) {
    for (const b of values) {
      const want = isDeepStrictEqual(a, b);
      equalPairs += want && a !== b ? 1 : 0;
      t.is(sameValue(a, b), want, `${inspect(a)} vs ${inspect(b)}`);
    }
  }
  t.true(equalPairs >= 8, 'some distinct values are equal (the test would pass vacuously otherwise)');
  t.true(ctx.expect('same', { x: [1, 'a'] }, { x: [1, 'a'] }));
  t.false(ctx.expect('differs', { x: [1, 'a'] }, { x: [1, 'b'] }));
  t.deepEqual(ctx.assertions.map((a) => a.status), ['pass', 'fail']);
});
