// Median time of collectHostFacts + evaluateGates on this host (target: < 20 ms together).
// Run: node --import tsx scripts/bench-gates.ts [--runs N]
import { performance } from 'node:perf_hooks';
import { intValue, scriptArgs } from '../src/args.js';
import { collectHostFacts } from '../src/host/facts.js';
import { realHostContext } from '../src/host/hostfs.js';
import { evaluateGates } from '../src/gates.js';

const runs = scriptArgs('bench-gates', 'node --import tsx scripts/bench-gates.ts [--runs N]', { runs: { type: 'string', value: 'a number' } }, (v) => intValue('--runs', v.runs, 50, 1, 100000));
const ctx = realHostContext();
const facts: number[] = [];
const gates: number[] = [];
const total: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const f = collectHostFacts(ctx);
  const t1 = performance.now();
  evaluateGates(ctx, f);
  const t2 = performance.now();
  facts.push(t1 - t0);
  gates.push(t2 - t1);
  total.push(t2 - t0);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(`runs: ${runs}`);
console.log(`collectHostFacts median: ${ms(median(facts))}`);
console.log(`evaluateGates    median: ${ms(median(gates))}`);
console.log(`total            median: ${ms(median(total))}  (first run: ${ms(total[0]!)}, max: ${ms(Math.max(...total))})`);
const ok = median(total) < 20;
console.log(ok ? 'within the 20 ms target' : 'OVER the 20 ms target');
process.exitCode = ok ? 0 : 1;
