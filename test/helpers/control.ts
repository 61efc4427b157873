// Runs one probe with its namespaces taken away (privileged mode, plain children) and prints the
// assertions as JSON. Meant to run inside disposable namespaces made by `unshare`, which then act
// as "the host", so that the probe's isolation assertions can be seen to fail.
import { PROBES } from '../../probes/index.js';
import { ProbeContext, type ProbeDef } from '../../src/probe.js';

const name = process.argv[2];
const probe = PROBES.find((p) => p.name === name);
if (!probe) throw new Error(`unknown probe ${name}`);
const without: ProbeDef = { ...probe, namespaces: () => [] };
const ctx = new ProbeContext(without, 'privileged', 5000);
let error: string | null = null;
try {
  await without.run(ctx);
} catch (e) {
  error = e instanceof Error ? e.message : String(e);
}
await ctx.dispose();
process.stdout.write(JSON.stringify({ error, assertions: ctx.assertions.map((a) => ({ name: a.name, status: a.status, side: a.side })) }) + '\n');
