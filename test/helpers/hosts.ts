// Load a fixture host (test/fixtures/hosts/<name>) and evaluate it.
import { fileURLToPath } from 'node:url';
import { collectHostFacts } from '../../src/host/facts.js';
import { fixtureHostContext, type HostContext } from '../../src/host/hostfs.js';
import { evaluateGates, type GateOptions } from '../../src/gates.js';
import type { Gate, HostFacts } from '../../src/model.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/hosts/', import.meta.url));

export interface Host {
  ctx: HostContext;
  facts: HostFacts;
  gates: Gate[];
  gate(id: string): Gate;
}

export function loadHost(name: string, over: Partial<Omit<HostContext, 'fs'>> = {}, opts: GateOptions = {}): Host {
  const ctx = fixtureHostContext(FIXTURES + name, over);
  const facts = collectHostFacts(ctx);
  const gates = evaluateGates(ctx, facts, opts);
  return {
    ctx,
    facts,
    gates,
    gate(id) {
      const g = gates.find((x) => x.id === id);
      if (!g) throw new Error(`no gate ${id} on ${name}`);
      return g;
    },
  };
}
