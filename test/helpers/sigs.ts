// Signal dispositions of a fresh child as /proc shows them (SigCgt: caught, SigIgn: ignored), next
// to this Node process's own, which has handlers installed here. Prints JSON.
import { readFileSync } from 'node:fs';
import { native } from '../../src/native.js';

process.on('SIGUSR2', () => undefined);
process.on('SIGHUP', () => undefined);
const masks = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { caught: /SigCgt:\s*(\w+)/.exec(s)![1], ignored: /SigIgn:\s*(\w+)/.exec(s)![1] };
};
// No namespaces: this also runs where a seccomp filter refuses them (and clone3).
const box = await native().enter({ cloneFlags: 0, timeoutMs: 5000 });
const child = masks(box.pid);
await native().close(box.id, 1000);
console.log(JSON.stringify({ self: masks(process.pid), child }));
