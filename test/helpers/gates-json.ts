// Prints {facts, gates} as JSON for a host: the real one, or a fixture root given as argv[2].
// Used by the fault-injection tests, which run it under `unshare -Ur` with a lowered limit.
import { collectHostFacts } from '../../src/host/facts.js';
import { fixtureHostContext, realHostContext } from '../../src/host/hostfs.js';
import { evaluateGates } from '../../src/gates.js';

const root = process.argv[2];
const ctx = root ? fixtureHostContext(root) : realHostContext();
const facts = collectHostFacts(ctx);
process.stdout.write(JSON.stringify({ facts, gates: evaluateGates(ctx, facts) }, null, 1) + '\n');
