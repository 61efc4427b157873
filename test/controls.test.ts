// Each probe's isolation assertions must be able to fail: the same probe, run with its
// namespaces taken away inside disposable namespaces (which play the host), has to report them
// as failed. The real run (test/suite.test.ts) shows the same assertions passing.
import test from 'ava';
import { run, tsxArgv } from './helpers/run.js';
import { isRoot, missingTools, needRoot, needTools } from './helpers/tools.js';

const MUST_FAIL: Record<string, RegExp[]> = {
  uts: [/^the host does not see the hostname set inside$/, /^a sibling UTS namespace does not see the hostname$/, /^a sibling UTS namespace does not see the domainname$/],
  ipc: [/^the host's \/proc\/sysvipc\/(msg|shm|sem) does not list key K$/, /^a sibling IPC namespace looking up key K of (msg|shm|sem) gets ENOENT$/, /^a (msg|shm|sem) object the host created with key K2 is invisible inside$/, /^a queue the host created is invisible inside$/, /^a host process opening the queue name gets ENOENT$/],
  pid: [/^the first process is PID 1$/, /^its parent pid is 0$/, /^the fresh \/proc lists only the namespace's processes$/, /^when PID 1 exits the rest of the namespace is killed$/],
  net: [/^lo starts DOWN$/, /^inside binds the same port the host listens on$/, /^the port listening inside is not reached from the host$/],
  mnt: [/^the host's mountinfo does not show the tmpfs$/, /^a sibling mount namespace does not show the tmpfs$/],
  // In `unshare -Ur` nsprobe's user namespace maps one id, so the privileged map is that id and
  // reads like the namespace's own: only the namespace identity tells them apart there. The
  // id-map assertions are shown to fail in a namespace with a block of ids (below).
  user: [/^the process is in a user namespace of its own, not Node's$/],
  cgroup: [/^inside, every hierarchy the process sits below the root of shows the namespace root \/$/],
  time: [/^CLOCK_MONOTONIC inside is ahead of the host's by 86400 s$/, /^CLOCK_BOOTTIME inside is ahead of the host's by 86400 s$/],
};

interface Out {
  error: string | null;
  assertions: { name: string; status: 'pass' | 'fail'; side?: string }[];
}

const USER_BLOCK: RegExp[] = [
  /^the process is in a user namespace of its own, not Node's$/,
  /^uid_map inside shows exactly the written mapping$/,
  /^gid_map inside shows exactly the written mapping$/,
  /^the host sees the process with the mapped host uid$/,
];

// As root of a user namespace mapping 65536 ids (a rootless container's map, made by
// test/helpers/userns-block.py), the privileged map is a block of them, and without the namespace
// the id-map assertions fail too.
// Writing such a map needs root (needRoot skips, never fails, without it); python3 is a tool.
(isRoot ? needTools(missingTools('python3')) : needRoot())('user: without its namespace, its id-map assertions fail (as root of a user namespace with 65536 ids)', (t) => {
  const r = run(['python3', 'test/helpers/userns-block.py', 'unshare', '--uts', '--ipc', '--net', '--mount', '--pid', '--fork', '--mount-proc', ...tsxArgv('test/helpers/control.ts', 'user')]);
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Out;
  t.is(out.error, null);
  for (const re of USER_BLOCK) {
    const hits = out.assertions.filter((a) => re.test(a.name));
    t.true(hits.length > 0, `no assertion matches ${re}`);
    for (const a of hits) t.is(a.status, 'fail', `"${a.name}" must fail without the namespace`);
  }
});

for (const [probe, patterns] of Object.entries(MUST_FAIL)) {
  test(`${probe}: without its namespace, its isolation assertions fail`, (t) => {
    // A disposable user namespace with its own uts/ipc/net/mount/pid namespaces and /proc plays the host.
    const r = run(['unshare', '-Ur', '--uts', '--ipc', '--net', '--mount', '--pid', '--fork', '--mount-proc', 'sh', '-c', 'ip link set lo up 2>/dev/null || true; exec "$@"', 'sh', ...tsxArgv('test/helpers/control.ts', probe)]);
    t.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Out;
    t.is(out.error, null);
    for (const re of patterns) {
      const hits = out.assertions.filter((a) => re.test(a.name));
      t.true(hits.length > 0, `no assertion matches ${re}`);
      for (const a of hits) t.is(a.status, 'fail', `"${a.name}" must fail without the namespace`);
    }
  });
}
