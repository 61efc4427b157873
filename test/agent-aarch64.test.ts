// The aarch64 agent (scripts/build-agent.mjs) under qemu-user answers like the x86_64 one: its
// hello, a ping, and a uts box (sethostname inside, uname, close) give the same replies but for
// pids. qemu-user 7.2 refuses CLONE_NEW* flags in clone() and a user namespace in its threaded
// process (EINVAL: the emulator's answer, shown as data); so the box is made by stage A's
// unshare(CLONE_NEWUTS), the path the agent takes when it first switches ids.
import test from 'ava';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient, localLauncher } from '../src/agent/client.js';
import { decodeReply, encodeRequest, Op } from '../src/protocol.js';
import { isRoot, ROOT } from './helpers/run.js';
import { missingTools, needTools } from './helpers/tools.js';

const ARM = join(ROOT, 'build', 'agent', 'nsprobe-agent-aarch64');
const X86 = join(ROOT, 'build', 'agent', 'nsprobe-agent-x86_64');
const why = process.arch !== 'x64' ? 'runs on x86_64 hosts' : !existsSync(ARM) || !existsSync(X86) ? 'the agents are not cross-built (node scripts/build-agent.mjs needs g++-aarch64-linux-gnu)' : !isRoot ? 'needs root (sethostname in a uts namespace made without a user namespace)' : missingTools('qemu-aarch64');

async function session(a: AgentClient) {
  await a.start();
  const out: unknown[] = [a.hello!.machine, (await a.ping(Buffer.from('ping'))).toString()];
  const b = await a.enter({ cloneFlags: 0x04000000, noVm: true, drop: true, dropUid: 0, dropGid: 0 });
  const hello = decodeReply(b.hello);
  out.push(hello.n.slice(2, 4)); // uid, gid inside
  for (const [op, strs] of [[Op.SETHOSTNAME, ['nsprobe-arm']], [Op.UNAME, []], [Op.ECHO, ['x'.repeat(3000)]], [Op.READFILE, ['/proc/sys/kernel/hostname']]] as const) {
    const r = decodeReply((await a.request(b.id, encodeRequest(op, 7, op === Op.READFILE ? [0, 4096] : [], strs), 10000)).reply);
    out.push([r.op, r.seq, r.err, r.data.toString().split('\0').slice(0, 2)]);
  }
  const c = await a.close(b.id, 2000);
  out.push([c.reaped, c.killed, c.exitCode]);
  a.shutdown();
  return out;
}

needTools(why)('the aarch64 agent under qemu-user answers like the x86_64 agent (hello, ping, a uts box), and both are under 200 KB', async (t) => {
  for (const f of [ARM, X86]) t.true(statSync(f).size < 200 * 1024, `${f}: ${statSync(f).size} bytes`);
  const arm = await session(new AgentClient(localLauncher('qemu-aarch64', [ARM])));
  const x86 = await session(new AgentClient(localLauncher(X86)));
  t.is(arm[0], 'aarch64');
  t.is(x86[0], 'x86_64');
  t.deepEqual(arm.slice(1), x86.slice(1));
  t.deepEqual(arm.at(-2), [Op.READFILE, 7, 0, ['nsprobe-arm\n']], 'the hostname set inside is read back inside');
  t.log(`sizes: aarch64 ${statSync(ARM).size} B, x86_64 ${statSync(X86).size} B`);
});
