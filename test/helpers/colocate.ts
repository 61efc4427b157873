// CPU co-location, seen from /proc: which CPUs each thread of this process and each child may
// run on, before, while and after sandboxes are open, with co-location on and off. Prints JSON.
// Runs in a process of its own, so that no other test's sandboxes pin or unpin its threads.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { native } from '../../src/native.js';
import { enter } from '../../src/sandbox.js';

const allowed = (path: string) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(path, 'utf8'))?.[1] ?? '?';
const threads = () => Object.fromEntries(readdirSync(`/proc/${process.pid}/task`).map((t) => [t, allowed(`/proc/${process.pid}/task/${t}/status`)]));
const main = () => allowed(`/proc/${process.pid}/task/${process.pid}/status`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mode = process.geteuid?.() === 0 ? 'privileged' : 'rootless';

const before = { main: main(), threads: threads() };

// On: the main thread, the child and (through the hint) a child after the main thread moved.
const s = await enter({ namespaces: ['uts'], mode });
await s.identity();
const on = { main: main(), child: allowed(`/proc/${s.pid}/status`), moved: null as null | { to: string; child: string } };
const others = before.main.split(/[,-]/).map(Number).filter((c) => String(c) !== on.main);
if (others.length) {
  // Move the main thread elsewhere behind the addon's back; the next request tells the child.
  const to = String(others[0]);
  spawnSync('taskset', ['-p', '-c', to, String(process.pid)], { stdio: 'ignore' });
  await s.identity();
  on.moved = { to: main(), child: allowed(`/proc/${s.pid}/status`) };
}
// Two sandboxes: nothing pinned; each child takes back its own mask at its next request. Back to
// one: together again.
const s2 = await enter({ namespaces: ['uts'], mode });
await s.identity();
await s2.identity();
const two = { main: main(), first: allowed(`/proc/${s.pid}/status`), second: allowed(`/proc/${s2.pid}/status`), back: { main: '', first: '' } };
await s2.close();
await s.identity();
two.back = { main: main(), first: allowed(`/proc/${s.pid}/status`) };
await s.close();
const closedAt = { main: main() };
await sleep(200); // the masks come back 50 ms after the last sandbox is closed
const after = { main: main(), threads: threads() };

// Off: nothing is pinned.
native().setColocate(false);
const o = await enter({ namespaces: ['uts'], mode });
await o.identity();
const off = { main: main(), child: allowed(`/proc/${o.pid}/status`) };
await o.close();
native().setColocate(true);

console.log(JSON.stringify({ before, on, two, closedAt, after, off }));
