// Consumer verdicts (issue 15): the model's logic on made-up reports, the CLI flags, and the
// agreement table: in each environment we can build here, nsprobe's prediction for every
// installed consumer against what the real program does (exit status; for firejail, whether CMD
// really ran in a pid namespace of its own). Agreement must be 100%.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONSUMERS, evaluateConsumers, probesFor, consumerExitCode } from '../src/consumers.js';
import { parseArgs } from '../src/cli.js';
import { realHostContext, type HostContext } from '../src/host/hostfs.js';
import type { ConsumerVerdict, Report } from '../src/model.js';
import { validateReport } from '../src/report/validate.js';
import { cli, ROOT, run } from './helpers/run.js';
import { xmllintFile } from './helpers/xml.js';
import { Parser } from 'tap-parser';

function tapFailures(text: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    const p = new Parser({ strict: true }, (results) => resolve(results.failures.filter((f) => f.tapError)));
    p.end(text);
  });
}
import { isRoot, missingTools, needRoot, needTools, REQUIRE_TOOLS, which } from './helpers/tools.js';
import { ENVS, envById, envUnavailable, mapLimit, runIn, type Env, type EnvRun } from './helpers/envs.js';

// ---------- pure logic on made-up reports ----------

function fakeHost(files: Record<string, string>, setuid: string[] = []): HostContext {
  const real = realHostContext();
  return {
    ...real,
    env: { PATH: '/nonexistent' },
    fs: {
      ...real.fs,
      readFile: (p: string) => files[p] ?? null,
      exists: (p: string) => p in files,
      stat: (p: string) => (setuid.includes(p) ? { dev: 1, ino: 1, isFile: true, isDirectory: false, mode: 0o104755, uid: 0, gid: 0 } : null),
    } as HostContext['fs'],
  };
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n';

function fakeReport(over: { euid?: number; failing?: Record<string, { code: string; stage?: string; gate?: string }>; gates?: Record<string, { status: string; value?: unknown }>; cgroup?: 'v2' | 'hybrid'; initial?: boolean } = {}): Report {
  const nss = ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time'] as const;
  const probes = nss.flatMap((ns) =>
    (['privileged', 'rootless'] as const).map((mode) => {
      const id = `${ns}/${mode}`;
      const f = over.failing?.[id];
      return { id, probe: ns, namespace: ns, mode, status: f ? ('unsupported' as const) : ('pass' as const), durationMs: 1, assertions: [], ...(f ? { code: f.code, stage: (f.stage ?? 'clone') as 'clone', gate: f.gate ?? null, cause: `${f.code} at ${f.stage ?? 'clone'}` } : {}) };
    }),
  );
  const gate = (id: string, status = 'ok', value: unknown = null) => ({ id, status: status as 'ok', value, affects: [], cause: id, remedy: '' });
  const gates = [
    gate('max_user_namespaces', 'ok', 1000),
    gate('idmap_helpers', 'ok', { newuidmap: { path: '/usr/bin/newuidmap', setuidRoot: true }, newgidmap: { path: '/usr/bin/newgidmap', setuidRoot: true } }),
    gate('proc_fully_visible', 'ok', []),
    gate('userns_nesting', 'ok', 30),
  ].map((g) => (over.gates?.[g.id] ? { ...g, status: over.gates[g.id]!.status as 'ok', value: over.gates[g.id]!.value ?? g.value } : g));
  for (const [id, g] of Object.entries(over.gates ?? {})) if (!gates.some((x) => x.id === id)) gates.push({ ...gate(id, g.status, g.value ?? null) });
  const euid = over.euid ?? 1000;
  const initial = over.initial ?? true;
  return {
    schemaVersion: 1, tool: { name: 'nsprobe', version: '0' }, startedAt: new Date(0).toISOString(), durationMs: 1,
    host: { hostname: 'h', kernel: { release: '6.1.0', version: '' }, distro: { id: 'debian', versionId: '12', name: 'Debian' }, arch: 'x86_64', euid, capSysAdmin: euid === 0, privileged: euid === 0 && initial, cgroupVersion: over.cgroup ?? 'v2', userNs: { initial, uidMap: null } },
    gates, probes, summary: { pass: 0, fail: 0, unsupported: 0, error: 0 },
    modes: [{ mode: 'privileged', status: euid === 0 ? 'run' : 'skipped', scope: '' }, { mode: 'rootless', status: 'run', scope: '' }],
  } as Report;
}

const verdict = (vs: ConsumerVerdict[], id: string) => vs.find((v) => v.id === id)!;

test('every consumer the issue names is in the model, with a command, a package and the line it prints on EPERM', (t) => {
  for (const id of ['bwrap', 'bwrap-proc', 'flatpak', 'podman-unshare', 'podman-rootless', 'podman-slirp4netns', 'rootlesskit', 'runc-rootless', 'crun-rootless', 'nspawn', 'nspawn-userns', 'firejail', 'lxc-unprivileged', 'lxc-start', 'chromium', 'unshare'])
    t.truthy(CONSUMERS.find((c) => c.id === id), id);
  for (const c of CONSUMERS) t.truthy(c.command && c.package && c.errors.EPERM, c.id);
});

test('a user namespace refused with EPERM blocks bwrap with its own line; podman falls back on no subuid; root runs nspawn', (t) => {
  const host = fakeHost({ '/etc/passwd': PASSWD, '/etc/subuid': '', '/etc/subgid': '' });
  const ok = evaluateConsumers(fakeReport(), { host, lookup: false });
  t.is(verdict(ok, 'bwrap').status, 'works');
  t.is(verdict(ok, 'podman-unshare').status, 'degraded');
  t.regex(verdict(ok, 'podman-unshare').warning!, /single mapping/);
  t.is(verdict(ok, 'rootlesskit').status, 'blocked');
  t.regex(verdict(ok, 'rootlesskit').error!, /No subuid ranges found for user 1000 \("alice"\)/);
  t.regex(verdict(ok, 'rootlesskit').remedy!, /usermod --add-subuids .* alice/);
  t.is(verdict(ok, 'nspawn').status, 'blocked');
  t.is(verdict(ok, 'nspawn').error, 'Need to be root.');
  t.deepEqual(verdict(ok, 'bwrap').for, { user: 'alice', uid: 1000, root: false });

  const eperm = evaluateConsumers(fakeReport({ failing: { 'user/rootless': { code: 'EPERM', gate: 'unprivileged_userns_clone' } } }), { host, lookup: false });
  t.is(verdict(eperm, 'bwrap').status, 'blocked');
  t.regex(verdict(eperm, 'bwrap').error!, /No permissions to create new namespace/);
  t.true(verdict(eperm, 'bwrap').restsOn.probes.some((p) => p.id === 'user/rootless' && p.status === 'unsupported'));
  t.regex(verdict(eperm, 'unshare').error!, /unshare failed: Operation not permitted/);
  t.is(verdict(eperm, 'chromium').status, 'blocked', 'without chrome-sandbox there is no fallback');
  t.regex(verdict(eperm, 'chromium').error!, /No usable sandbox!/);
  const withHelper = evaluateConsumers(fakeReport({ failing: { 'user/rootless': { code: 'EPERM', gate: 'unprivileged_userns_clone' } } }), { host: fakeHost({ '/etc/passwd': PASSWD }, ['/usr/lib/chromium/chrome-sandbox']), lookup: false });
  t.is(verdict(withHelper, 'chromium').status, 'degraded', 'chromium falls back to its setuid sandbox');
  t.regex(verdict(withHelper, 'chromium').fallback!, /chrome-sandbox/);
  const seccomp = evaluateConsumers(fakeReport({ failing: { 'user/rootless': { code: 'EPERM', gate: 'seccomp' } } }), { host: fakeHost({ '/etc/passwd': PASSWD }, ['/usr/lib/chromium/chrome-sandbox']), lookup: false });
  t.is(verdict(seccomp, 'chromium').status, 'blocked', 'a seccomp filter stops the setuid sandbox too');
  t.regex(verdict(seccomp, 'chromium').error!, /Failed to move to new namespace/);

  const root = evaluateConsumers(fakeReport({ euid: 0 }), { host, lookup: false });
  t.is(verdict(root, 'nspawn').status, 'works');
  t.is(verdict(root, 'podman-unshare').error, 'Error: please use unshare with rootless');
  t.regex(verdict(root, 'chromium').error!, /Running as root without --no-sandbox/);
  const asAlice = evaluateConsumers(fakeReport({ euid: 0 }), { host, asUser: 'alice', lookup: false });
  t.is(verdict(asAlice, 'nspawn').status, 'blocked', '--as-user predicts for that user');
});

test('controls: a masked /proc blocks only proc mounters; hybrid cgroups block crun; AppArmor spares profiled paths; a nested userns blocks nspawn', (t) => {
  const host = fakeHost({ '/etc/passwd': PASSWD, '/etc/subuid': 'alice:100000:65536\n', '/etc/subgid': 'alice:100000:65536\n' });
  const masked = evaluateConsumers(fakeReport({ gates: { proc_fully_visible: { status: 'warn', value: ['/proc/kcore'] } } }), { host, lookup: false });
  t.is(verdict(masked, 'bwrap').status, 'works');
  t.is(verdict(masked, 'bwrap-proc').status, 'blocked');
  t.regex(verdict(masked, 'bwrap-proc').error!, /Can't mount proc/);
  t.is(verdict(masked, 'podman-unshare').status, 'works', 'with subuid ranges, no fallback');
  const hybrid = evaluateConsumers(fakeReport({ cgroup: 'hybrid' }), { host, lookup: false });
  t.is(verdict(hybrid, 'crun-rootless').status, 'blocked');
  t.is(verdict(hybrid, 'runc-rootless').status, 'works');
  const aa = evaluateConsumers(fakeReport({ failing: { 'user/rootless': { code: 'EPERM', stage: 'uid_map', gate: 'apparmor_userns' } }, gates: { apparmor_userns: { status: 'blocked' } } }), { host, lookup: false });
  t.is(verdict(aa, 'bwrap').status, 'blocked');
  t.regex(verdict(aa, 'bwrap').error!, /setting up uid map: Permission denied/);
  t.regex(verdict(aa, 'bwrap').remedy!, /profile bwrap \/usr\/bin\/bwrap/);
  t.is(verdict(aa, 'podman-unshare').status, 'works', '/usr/bin/podman has its own profile');
  const inHome = evaluateConsumers(fakeReport({ failing: { 'user/rootless': { code: 'EPERM', stage: 'uid_map', gate: 'apparmor_userns' } }, gates: { apparmor_userns: { status: 'blocked' } } }), { host, lookup: false, binPaths: { 'podman-unshare': '/home/alice/bin/podman' } });
  t.is(verdict(inHome, 'podman-unshare').status, 'blocked', 'a podman in $HOME has no profile');
  t.regex(verdict(inHome, 'podman-unshare').remedy!, /profile podman-unshare \/home\/alice\/bin\/podman flags=\(unconfined\)/);
  const nested = evaluateConsumers(fakeReport({ euid: 0, initial: false }), { host, lookup: false, measured: { ownMntSetns: false } });
  t.is(verdict(nested, 'nspawn').status, 'blocked');
  t.regex(verdict(nested, 'runc-rootless').error!, /failed to setns to host mntns/);
  t.is(evaluateConsumers(fakeReport({ euid: 0, initial: false }), { host, lookup: false, measured: { ownMntSetns: true } }).find((v) => v.id === 'runc-rootless')!.status, 'works');
  t.is(verdict(nested, 'firejail').status, 'blocked');
  t.is(verdict(nested, 'bwrap').status, 'works');
  // firejail: root of a namespace mapping host root over a full range runs it (control: 0 0 1 does not);
  // a /proc without kernel threads makes it run CMD unsandboxed (control: with them it works).
  const wide = fakeReport({ euid: 0, initial: false });
  wide.host.userNs = { initial: false, uidMap: '0 0 65536' };
  t.is(verdict(evaluateConsumers(wide, { host, lookup: false, measured: { ownMntSetns: true, kernelThreads: true } }), 'firejail').status, 'works');
  const narrow = fakeReport({ euid: 0, initial: false });
  narrow.host.userNs = { initial: false, uidMap: '0 0 1' };
  t.is(verdict(evaluateConsumers(narrow, { host, lookup: false, measured: { ownMntSetns: true, kernelThreads: true } }), 'firejail').status, 'blocked');
  const pidns = evaluateConsumers(fakeReport({ euid: 0 }), { host, lookup: false, measured: { kernelThreads: false } });
  t.is(verdict(pidns, 'firejail').status, 'blocked');
  t.regex(verdict(pidns, 'firejail').error!, /an existing sandbox was detected/);
  t.is(verdict(evaluateConsumers(fakeReport({ euid: 0 }), { host, lookup: false, measured: { kernelThreads: true } }), 'firejail').status, 'works');
  // bwrap --unshare-all needs a cgroup namespace (control: flatpak's bwrap call makes none).
  const noCg = evaluateConsumers(fakeReport({ euid: 0, failing: { 'cgroup/privileged': { code: 'ENOSPC' }, 'cgroup/rootless': { code: 'ENOSPC' } } }), { host, lookup: false });
  t.is(verdict(noCg, 'bwrap').status, 'blocked');
  t.is(verdict(noCg, 'flatpak').status, 'works');
});

test('--for resolves names and picks the probes; --require consumer:ID is split from probe requirements; bad names are one line', (t) => {
  const o = parseArgs(['--for', 'podman,bwrap', '--require', 'consumer:podman-rootless,uts', '--out', 'x']);
  t.deepEqual(o.consumers.for, ['podman-unshare', 'podman-rootless', 'podman-slirp4netns', 'bwrap', 'bwrap-proc']);
  t.deepEqual(o.consumers.require, ['podman-rootless']);
  t.deepEqual(o.require, [{ probe: 'uts', mode: null }]);
  t.deepEqual(probesFor(['podman-unshare']).sort(), ['mnt', 'user']);
  t.throws(() => parseArgs(['--for', 'nope']), { message: /unknown consumer 'nope'/ });
  t.throws(() => parseArgs(['--require', 'consumer:nope']), { message: /unknown consumer 'nope'/ });
  t.is(consumerExitCode([{ id: 'x', status: 'blocked' } as ConsumerVerdict], ['x']), 1);
  t.is(consumerExitCode([{ id: 'x', status: 'degraded' } as ConsumerVerdict], ['x']), 0);
  const bad = cli(['--for', 'nope']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^nsprobe: unknown consumer 'nope'/);
  t.notRegex(bad.stderr, /\n\s+at /);
  const who = cli(['--for', 'bwrap', '--as-user', 'no-such-user-here']);
  t.is(who.status, 2);
  t.regex(who.stderr, isRoot ? /^nsprobe: --as-user: no user 'no-such-user-here' in \/etc\/passwd\n$/ : /^nsprobe: --as-user needs root/);
  const list = cli(['consumers']);
  t.is(list.status, 0);
  for (const c of CONSUMERS) t.true(list.stdout.includes(c.id), c.id);
});

test('nsprobe --for runs only the probes those consumers rest on, prints their verdicts first, and writes them into every report', async (t) => {
  const out = mkdtempSync('/tmp/nsprobe-cons-');
  try {
    const r = cli(['--for', 'bwrap,unshare', '--out', out]);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /^(works|degraded|blocked) +bwrap: /);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    t.true(validateReport(report).ok);
    t.deepEqual([...new Set(report.probes.map((p) => p.probe))].sort(), ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'], 'bwrap --unshare-all makes a cgroup namespace too');
    t.deepEqual(report.consumers!.map((v) => v.id), ['bwrap', 'bwrap-proc', 'unshare']);
    t.regex(readFileSync(join(out, 'report.tap'), 'utf8'), /# consumer bwrap: /);
    // In the host's one suite, a test case per consumer (fleet: one testsuite per host).
    for (const v of report.consumers!) t.regex(readFileSync(join(out, 'junit.xml'), 'utf8'), new RegExp(`<testcase classname="nsprobe\\.[^"]+\\.consumer\\.${v.id}" name="consumer/${v.id}"`));
    const xsd = await xmllintFile(join(out, 'junit.xml'));
    t.true(xsd.ok, xsd.output);
    const tap = await tapFailures(readFileSync(join(out, 'report.tap'), 'utf8'));
    t.deepEqual(tap, [], 'the consumer lines keep the TAP stream valid');
    t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /## Consumers \(for /);
    t.regex(readFileSync(join(out, 'report.html'), 'utf8'), /<h2>Consumers \(for /);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

needRoot()('--require consumer:ID fails the exit code when that consumer is blocked (nspawn for nobody), passes when it works', (t) => {
  const out = mkdtempSync('/tmp/nsprobe-cons-');
  try {
    const blocked = cli(['--for', 'nspawn', '--as-user', 'nobody', '--require', 'consumer:nspawn', '--out', out, '--format', 'json']);
    t.is(blocked.status, 1, blocked.stdout + blocked.stderr);
    const works = cli(['--for', 'unshare', '--require', 'consumer:unshare', '--out', out, '--format', 'json']);
    t.is(works.status, 0, works.stdout + works.stderr);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// ---------- agreement with the real programs ----------
//
// In every environment of the differential harness (test/helpers/envs.ts) plus a few of its own
// that the harness lacks (a user with /etc/subuid ranges, alone, under seccomp and under a masked
// /proc; root of a user namespace that owns its mount namespace; uid 65534 where user namespaces
// are refused by max_user_namespaces=0 but setuid programs work, for Chromium's setuid fallback),
// nsprobe runs once and predicts every installed consumer, then each consumer's real program runs
// once in that same place. Environments run side by side (PARALLEL), the consumers of one
// environment one after another.

/** Environments at a time: each is one nsprobe run (~1 s) and ~15 consumer runs (Chromium ~4 s as a user). */
const PARALLEL = 3;

/** What each consumer's real run is (sh; $R = rootfs, $T = a private temp dir, HOME and XDG_RUNTIME_DIR in it). */
const PODMAN = 'podman --root $T/st --runroot $T/rr --storage-driver vfs --cgroup-manager cgroupfs --events-backend none';
const REAL: Record<string, string> = {
  bwrap: 'bwrap --unshare-all --ro-bind / / --dev /dev true',
  'bwrap-proc': 'bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true',
  flatpak: 'bwrap --unshare-pid --unshare-ipc --unshare-net --ro-bind / / --proc /proc --dev /dev true',
  unshare: 'unshare -Urpf --mount-proc true',
  'podman-unshare': `${PODMAN} unshare true`,
  // --rootfs is a flag: the rootfs is the first argument after the options (an option after it
  // would be the command). The user's own copy: with a single id mapping the container's root is
  // the user, and podman writes /etc/mtab, /run/.containerenv ... into the rootfs.
  'podman-rootless': `cp -a --no-preserve=ownership $R $T/pr && ${PODMAN} run --rm --network none --rootfs $T/pr /bin/true`,
  // The default network with no port forwards: the container must see slirp4netns's tap0.
  'podman-slirp4netns': `cp -a --no-preserve=ownership $R $T/pr && ${PODMAN} --runtime runc run --rm --network slirp4netns --rootfs $T/pr /bin/sh -c 'grep -q tap0: /proc/net/dev || { echo "no tap0 from slirp4netns" >&2; exit 99; }'`,
  rootlesskit: 'rootlesskit --state-dir $T/rk true',
  'runc-rootless': `mkdir -p $T/b && cp -a --no-preserve=ownership $R $T/b/rootfs && cd $T/b && runc spec --rootless && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json && runc --root $T/runc run nsp-runc-$$; rc=$?; rmdir /sys/fs/cgroup/*/nsp-runc-$$ 2>/dev/null; exit $rc`,
  'crun-rootless': `mkdir -p $T/b && cp -a --no-preserve=ownership $R $T/b/rootfs && cd $T/b && crun spec --rootless && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json && crun --root $T/crun run nsp-crun-$$`,
  nspawn: 'cp -a --no-preserve=ownership $R $T/r && systemd-nspawn -q --register=no --keep-unit -D $T/r /bin/true',
  'nspawn-userns': 'cp -a --no-preserve=ownership $R $T/r && systemd-nspawn -q --register=no --keep-unit -U -D $T/r /bin/true',
  // Exit 0 is not enough: firejail can run CMD without a sandbox. CMD must see another pid namespace.
  // Not --quiet: that would hide the warning it prints when it takes the place for a sandbox.
  firejail: 'firejail --noprofile readlink /proc/self/ns/pid >$T/fj || exit $?; a=$(grep "^pid:" $T/fj); b=$(readlink /proc/self/ns/pid); echo "pid ns inside $a, outside $b" >&2; [ -n "$a" ] && [ "$a" != "$b" ] || { echo "firejail ran CMD without a pid namespace" >&2; exit 99; }',
  'lxc-unprivileged': 'lxc-usernsexec -- true',
  // A whole unprivileged container from the local rootfs, ids from the caller's /etc/subuid range,
  // no network device (nothing to bridge), /bin/true as its init. The container's root (a subuid)
  // must reach the rootfs through the private temp dir: 711. Its log is copied to stderr (it cannot open /dev/stderr when that is a pipe).
  'lxc-start': `u=$(id -un); s=$(awk -F: -v u="$u" '$1 == u { print $2; exit }' /etc/subuid); g=$(awk -F: -v u="$u" '$1 == u { print $2; exit }' /etc/subgid)
    chmod 711 $T && mkdir -p $T/lxc/c && cp -a --no-preserve=ownership $R $T/lxc/c/rootfs && printf '%s\\n' "lxc.uts.name = c" "lxc.rootfs.path = dir:$T/lxc/c/rootfs" "lxc.idmap = u 0 \${s:-100000} 65536" "lxc.idmap = g 0 \${g:-100000} 65536" "lxc.net.0.type = empty" "lxc.mount.auto = proc:mixed sys:ro" "lxc.init.cmd = /bin/true" > $T/lxc/c/config
    lxc-start -F -P $T/lxc -n c -l ERROR -o $T/lxc.log; rc=$?; cat $T/lxc.log >&2; exit $rc`,
  // The namespace sandbox alone first (--disable-setuid-sandbox); if that fails, the default, which
  // may use the setuid chrome-sandbox: then the real verdict is degraded.
  chromium: `C="chromium --headless=new --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync --dump-dom"
    if $C --user-data-dir=$T/p1 --disable-setuid-sandbox 'data:text/html,<p>sandboxed</p>' >$T/o1 2>$T/e1 && grep -q sandboxed $T/o1; then exit 0; fi
    cat $T/e1 >&2
    if $C --user-data-dir=$T/p2 'data:text/html,<p>sandboxed</p>' >$T/o2 2>$T/e2 && grep -q sandboxed $T/o2; then echo 'nsprobe-real: degraded (setuid chrome-sandbox)' >&2; exit 0; fi
    cat $T/e2 >&2; exit 1`,
};
const BINARY: Record<string, string[]> = {
  'bwrap-proc': ['bwrap'], flatpak: ['bwrap'], 'podman-unshare': ['podman'], 'podman-rootless': ['podman', 'crun'], 'podman-slirp4netns': ['podman', 'runc', 'slirp4netns'],
  'runc-rootless': ['runc'], 'crun-rootless': ['crun'], nspawn: ['systemd-nspawn'], 'nspawn-userns': ['systemd-nspawn'], 'lxc-unprivileged': ['lxc-usernsexec'], 'lxc-start': ['lxc-start'],
};
const binsOf = (id: string) => BINARY[id] ?? [id];

const SCRIPT = `#!/bin/sh
# run-consumer BASE ID: one consumer's real run in a private temp dir, removed after.
BASE=$1; R=$BASE/rootfs
T=$(mktemp -d "$BASE/work/t.XXXXXX") || exit 98
export HOME=$T XDG_RUNTIME_DIR=$T/run; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
case "$2" in
${Object.entries(REAL).map(([id, cmd]) => `${id}) ( ${cmd} ) ;;`).join('\n')}
*) echo "unknown consumer $2" >&2; exit 97 ;;
esac
rc=$?
# rootless podman leaves a pause process (catatonit) per user; end the one this run started.
[ -f "$XDG_RUNTIME_DIR/libpod/tmp/pause.pid" ] && kill "$(cat "$XDG_RUNTIME_DIR/libpod/tmp/pause.pid")" 2>/dev/null
chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T" 2>/dev/null
exit $rc
`;

function buildRootfs(base: string): void {
  const r = join(base, 'rootfs');
  for (const d of ['bin', 'usr', 'etc', 'proc', 'dev', 'sys', 'tmp', 'run']) mkdirSync(join(r, d), { recursive: true });
  copyFileSync(which('busybox') ?? '/bin/busybox', join(r, 'bin', 'busybox'));
  chmodSync(join(r, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'true', 'id', 'cat', 'ls', 'readlink', 'grep']) symlinkSync('busybox', join(r, 'bin', a));
  writeFileSync(join(r, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(r, 'etc', 'group'), 'root:x:0:\n');
  for (const f of ['resolv.conf', 'hosts', 'hostname']) writeFileSync(join(r, 'etc', f), '');
  symlinkSync('/proc/self/mounts', join(r, 'etc', 'mtab'));
}

/** One place of the table: where nsprobe runs (and with which flags), and where the real programs run. */
interface Place {
  id: string;
  describe: string;
  /** Why it cannot be built here, or null. */
  unavailable(): string | null;
  nsprobe: Env;
  flags: string[];
  real: Env;
}

const prefixEnv = (id: string, describe: string, prefix: string[], o: Partial<Env> = {}): Env => ({
  id, describe, needsRoot: true, asNobody: false, tools: [], ...o, wrap: (argv) => ({ argv: [...prefix, ...argv], dispose: () => undefined }),
});
/** `inner` run inside `outer`. */
const within = (outer: Env, id: string, describe: string, inner: string[], o: Partial<Env> = {}): Env => ({
  ...outer, id, describe, ...o, wrap: (argv) => outer.wrap([...inner, ...argv]),
});

function places(user: string, uid: number): Place[] {
  const asUser = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const harness: Place[] = ENVS.map((e) => ({ id: e.id, describe: e.describe, unavailable: () => envUnavailable(e), nsprobe: e, flags: [], real: e }));
  const root = envById('root');
  const seccomp = envById('seccomp');
  const masked = envById('masked-proc');
  const mapped = envById('userns-mapped');
  const own = (e: Env): Place => ({ id: e.id, describe: e.describe, unavailable: () => envUnavailable(e), nsprobe: e, flags: [], real: e });
  // nsprobe runs as root and predicts for the user (--as-user): the user cannot read root's report folder.
  const forUser = (id: string, describe: string, where: Env): Place => {
    const real = within(where, id, describe, asUser);
    return { id, describe, unavailable: () => envUnavailable(where), nsprobe: where, flags: ['--as-user', user], real };
  };
  return [
    ...harness,
    forUser('subuid-user', `a user with /etc/subuid and /etc/subgid ranges (${user}, uid ${uid}), predicted by root with --as-user`, root),
    forUser('subuid-user-seccomp', 'that user under the seccomp filter', seccomp),
    forUser('subuid-user-masked-proc', 'that user under the container-like /proc', masked),
    own(prefixEnv('userns-owns-mnt', 'uid 0 of unshare -Urm: a user namespace that owns its mount namespace', ['unshare', '-Urm'], { needsRoot: false, tools: ['unshare'] })),
    // Chromium's setuid fallback: user namespaces refused (max_user_namespaces=0, set by the
    // namespace's owner) without a seccomp filter, and a setuid root chrome-sandbox that still
    // works, because host root (its owner) is mapped in this namespace (0-65535 mapped).
    own(within(mapped, 'userns-mapped-max-user-nobody', 'uid 65534 in the 65536-id user namespace with user.max_user_namespaces=0 set there (setuid programs still work)',
      ['sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"', 'sh'], { asNobody: true, tools: ['unshare', 'setpriv'] })),
  ];
}

function matches(predicted: string | undefined, stderr: string): boolean | null {
  if (!predicted || predicted.startsWith('(')) return null;
  const piece = predicted.split(' ... ').sort((a, b) => b.length - a.length)[0]!;
  const esc = piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/NNNN|\bN\b|DIR|UID|NAME|CMD/g, '.*');
  return new RegExp(esc).test(stderr.replace(/\\"/g, '"'));
}

const tail = (s: string) => s.trim().split('\n').slice(-2).join(' | ');

// What the table itself needs; each consumer's program is checked on its own (a missing one is a
// row "not installed", and a failure under NSPROBE_REQUIRE_TOOLS=1).
const TOOLS = ['busybox', 'setpriv', 'unshare', 'nsenter', 'useradd', 'userdel', 'usermod', 'newuidmap'];

// Root is no tool: as a normal user the table skips, whatever NSPROBE_REQUIRE_TOOLS says.
(isRoot ? needTools(missingTools(...TOOLS)) : needRoot())('agreement table: every prediction matches what the real program does, in every environment of the harness', async (t) => {
  t.timeout(600000);
  const started = Date.now();
  const base = mkdtempSync('/tmp/nsprobe-consumers-');
  chmodSync(base, 0o755);
  mkdirSync(join(base, 'work'));
  chmodSync(join(base, 'work'), 0o1777);
  buildRootfs(base);
  writeFileSync(join(base, 'run-consumer'), SCRIPT, { mode: 0o755 });
  // A test user with subuid ranges (useradd adds them; userdel removes them): /etc/subuid is restored after.
  const user = `nspc${process.pid % 100000}`;
  const subBefore = [readFileSync('/etc/subuid', 'utf8'), readFileSync('/etc/subgid', 'utf8')];
  const add = run(['useradd', '-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', user]);
  t.is(add.status, 0, add.stderr);
  let uid = -1;
  try {
    uid = Number(run(['id', '-u', user]).stdout.trim());
    const hasSub = readFileSync('/etc/subuid', 'utf8').split('\n').some((l) => l.startsWith(`${user}:`));
    if (!hasSub) run(['usermod', '--add-subuids', '300000-365535', '--add-subgids', '300000-365535', user]);
    const all = places(user, uid);
    const missing = Object.keys(REAL).filter((id) => binsOf(id).some((b) => which(b) === null));
    if (missing.length && REQUIRE_TOOLS) t.fail(`NSPROBE_REQUIRE_TOOLS=1 but not installed: ${missing.map((id) => binsOf(id).join('+')).join(', ')}`);
    if (missing.length) t.log(`not installed, left out of the table: ${missing.map((id) => `${id} (${binsOf(id).join('+')})`).join(', ')}`);
    const ids = Object.keys(REAL).filter((id) => !missing.includes(id));
    const notBuilt = all.map((p) => [p, p.unavailable()] as const).filter(([, why]) => why !== null);
    const usable = all.filter((p) => !notBuilt.some(([q]) => q === p));
    const cli = join(ROOT, 'dist', 'src', 'cli.js');
    const results = await mapLimit(usable, PARALLEL, async (p) => {
      const out = join(base, 'work', `report-${p.id}`);
      const n = await runIn(p.nsprobe, [process.execPath, cli, '--for', ids.join(','), ...p.flags, '--out', out, '--format', 'json', '--json'], { timeoutMs: 120000 });
      let report: Report | null = null;
      try {
        report = JSON.parse(n.stdout) as Report;
      } catch {
        report = null;
      }
      const rows: Array<{ id: string; v: ConsumerVerdict | null; real: EnvRun | null }> = [];
      if (report)
        for (const id of ids) {
          const v = report.consumers!.find((x) => x.id === id) ?? null;
          // A rootless consumer as root is another program (rootful podman, privileged LXC ...): the
          // model says so, in parentheses, and predicts nothing (--as-user NAME does); there is
          // nothing to compare. One that refuses root with a line of its own (Chromium) is run.
          rows.push({ id, v, real: v?.blocker === 'root' && v.error?.startsWith('(') ? null : await runIn(p.real, [join(base, 'run-consumer'), base, id], { timeoutMs: 90000 }) });
        }
      return { p, n, report, rows };
    });
    const table: string[] = [];
    const disagreements: string[] = [];
    let agree = 0;
    let total = 0;
    let msgs = 0;
    let msgTotal = 0;
    let notApplicable = 0;
    for (const { p, n, report, rows } of results) {
      t.true(n.status === 0 || n.status === 1, `${p.id}: nsprobe exit ${n.status}${n.timedOut ? ' (timed out)' : ''}: ${tail(n.stderr)}`);
      if (!report) {
        disagreements.push(`${p.id}: nsprobe printed no report: ${tail(n.stderr)}`);
        continue;
      }
      for (const { id, v, real } of rows) {
        if (v && !real) {
          notApplicable++;
          table.push(`${p.id.padEnd(30)} ${id.padEnd(18)} n/a: ${v.error}`);
          continue;
        }
        total++;
        if (!v || !real) {
          disagreements.push(`${p.id} / ${id}: no verdict in the report`);
          continue;
        }
        if (real.timedOut || real.status === null) {
          disagreements.push(`${p.id} / ${id}: the real program could not be run (${real.timedOut ? 'timed out' : `signal ${real.signal}`}): ${tail(real.stderr)}`);
          table.push(`${p.id.padEnd(30)} ${id.padEnd(18)} predicted ${v.status.padEnd(8)} real NOT RUN (${real.timedOut ? 'timeout' : real.signal})`);
          continue;
        }
        const ok = real.status === 0;
        const realDegraded = /nsprobe-real: degraded/.test(real.stderr);
        const predictedOk = v.status !== 'blocked';
        // Where the run itself can tell a fallback (Chromium's setuid sandbox), degraded must match too.
        const same = ok === predictedOk && (id !== 'chromium' || !ok || realDegraded === (v.status === 'degraded'));
        if (same) agree++;
        else disagreements.push(`${p.id} / ${id}: predicted ${v.status} (${v.cause}), real exit ${real.status}${realDegraded ? ' (setuid fallback)' : ''}: ${tail(real.stderr)}`);
        let m = '';
        if (v.status === 'blocked') {
          const hit = matches(v.error, real.stderr);
          if (hit !== null) {
            msgTotal++;
            if (hit) msgs++;
            m = hit ? ' msg=' : ' msg!';
          }
        } else if (v.status === 'degraded' && v.warning) {
          const hit = real.stderr.includes(v.warning.replace(/^WARN /, '').slice(0, 40)) || (id === 'chromium' && realDegraded);
          msgTotal++;
          if (hit) msgs++;
          m = hit ? ' warn=' : ' warn!';
        }
        table.push(`${p.id.padEnd(30)} ${id.padEnd(18)} predicted ${v.status.padEnd(8)} real ${realDegraded ? 'degraded' : `exit ${String(real.status).padEnd(4)}`} ${same ? 'agree' : 'DISAGREE'}${m}`);
        if (m.endsWith('!')) table.push(`    predicted line: ${v.error ?? v.warning}\n    real stderr: ${tail(real.stderr)}\n    ${real.stderr.split('\n').filter((l) => /error/i.test(l)).slice(0, 4).join('\n    ')}`);
      }
    }
    t.log(`environments: ${usable.length} of ${all.length}${notBuilt.length ? `; not built here: ${notBuilt.map(([p, why]) => `${p.id} (${why})`).join(', ')}` : ''}`);
    t.log(`agreement table (environment x consumer: predicted vs real):\n${table.join('\n')}`);
    t.log(`status agreement ${agree}/${total} (${notApplicable} rows n/a: a rootless consumer run as root); consumer's own line found in its output ${msgs}/${msgTotal}; ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.deepEqual(disagreements, [], 'every prediction agrees with the real program');
    t.is(msgs, msgTotal, 'the line the model says the consumer prints is in its output, wherever it fails or warns');
  } finally {
    // End any process the test user's runs left (by pid), then remove the user and its ranges.
    if (uid > 0)
      for (const pid of readdirSync('/proc').filter((q) => /^\d+$/.test(q))) {
        try {
          const st = readFileSync(`/proc/${pid}/status`, 'utf8');
          if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(st)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
    spawnSync('userdel', [user]);
    const subAfter = [readFileSync('/etc/subuid', 'utf8'), readFileSync('/etc/subgid', 'utf8')];
    if (subAfter[0] !== subBefore[0]) writeFileSync('/etc/subuid', subBefore[0]!);
    if (subAfter[1] !== subBefore[1]) writeFileSync('/etc/subgid', subBefore[1]!);
    spawnSync('chmod', ['-R', 'u+rwX', base]);
    rmSync(base, { recursive: true, force: true });
  }
});
