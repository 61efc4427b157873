#!/usr/bin/env node
// Builds nsprobe-agent (native/agent.cc, no libc) for every architecture a compiler is here for:
// build/agent/nsprobe-agent-x86_64 and build/agent/nsprobe-agent-aarch64 (Debian's
// g++-aarch64-linux-gnu / g++-x86-64-linux-gnu), so --via and --ssh can send the agent that fits
// the target's `uname -m`. The native one is also built by binding.gyp (build/Release/nsprobe-agent).
// A missing cross compiler is a line on stderr, not a failure.
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'agent');
const SOURCES = ['agent.cc', 'enter.cc', 'child.cc', 'clone.cc', 'netlink.cc'].map((f) => join(root, 'native', f));
const FLAGS = ['-std=c++17', '-O2', '-Wall', '-fno-exceptions', '-fno-rtti', '-fno-stack-protector', '-ffreestanding', '-fno-pie', '-fno-asynchronous-unwind-tables', '-ffunction-sections', '-fdata-sections', '-nostdlib', '-static', '-no-pie', '-Wl,--gc-sections', '-s'];
const native = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const TARGETS = {
  x86_64: { cxx: native === 'x86_64' ? 'g++' : 'x86_64-linux-gnu-g++', extra: [] },
  aarch64: { cxx: native === 'aarch64' ? 'g++' : 'aarch64-linux-gnu-g++', extra: ['-mno-outline-atomics'] },
};
mkdirSync(out, { recursive: true });
let failed = 0;
for (const [machine, t] of Object.entries(TARGETS)) {
  const dest = join(out, `nsprobe-agent-${machine}`);
  const r = spawnSync(t.cxx, [...FLAGS, ...t.extra, ...SOURCES, '-o', dest], { encoding: 'utf8' });
  if (r.error) {
    process.stderr.write(`nsprobe: no ${t.cxx}: no agent for ${machine} (Debian: apt-get install g++-${machine === 'aarch64' ? 'aarch64' : 'x86-64'}-linux-gnu)\n`);
    continue;
  }
  if (r.status !== 0) {
    process.stderr.write(`nsprobe: building the ${machine} agent failed:\n${r.stderr}`);
    failed++;
    continue;
  }
  process.stderr.write(`nsprobe: built ${dest} (${statSync(dest).size} bytes)\n`);
}
process.exit(failed ? 1 : 0);
