// Synthetic fleets for `nsprobe merge` at fleet size: N host reports, deterministic by seed.
//   node dist/scripts/fleet-gen.js --hosts 10000 --seed 1 --out /tmp/fleet
// writes <out>/<hostname>/report.json, laid out like a real run's (reportJson: schemaVersion 2).
//
// Each host is one of a few real runs (test/fixtures/fleet: root and nobody on Debian 12 with
// kernel 6.18, and root where max_user_namespaces is 0; test/fixtures/reports: CentOS 7 as a user,
// an Ubuntu Docker host with a failure and an error, a container with skipped checks), in
// proportions a fleet might show, with its own host name, start time and durations: the verdicts
// are real, only the identity and timing are made up.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intValue, runProgram, scriptArgs, UsageError } from '../src/args.js';
import type { Report } from '../src/model.js';
import { packageRoot } from '../src/paths.js';
import { reportJson } from '../src/report/common.js';
import { reportFromJson } from '../src/report/validate.js';
import { prng } from './harness.js';

export interface Profile {
  name: string;
  /** Path below the package root. */
  file: string;
  /** Relative share of the fleet. */
  weight: number;
  /** Kernel releases this kind of host runs (one is picked per host). */
  kernels?: string[];
}

export const PROFILES: readonly Profile[] = [
  { name: 'root-full', file: 'test/fixtures/fleet/root-full.json', weight: 70, kernels: ['6.1.0-28-amd64', '6.1.0-31-amd64', '6.12.12-amd64'] },
  { name: 'nobody-full', file: 'test/fixtures/fleet/nobody-full.json', weight: 9, kernels: ['6.1.0-28-amd64', '6.1.0-31-amd64'] },
  { name: 'userns-limit-zero', file: 'test/fixtures/fleet/userns-limit-zero.json', weight: 6, kernels: ['5.14.0-503.el9.x86_64', '4.18.0-553.el8.x86_64'] },
  { name: 'centos7-user', file: 'test/fixtures/reports/centos7-user/report.json', weight: 5 },
  { name: 'ubuntu-docker-failing', file: 'test/fixtures/reports/ubuntu-docker-failing/report.json', weight: 4 },
  { name: 'container-skips', file: 'test/fixtures/reports/container-skips/report.json', weight: 6 },
];

// mulberry32 (scripts/harness.ts): the same seed gives the same fleet on every machine.
export { prng };

const templates = new Map<string, Report>();
/** The profile's report, read once (v1 or v2, as the full model); a fresh copy each call. */
function template(p: Profile): Report {
  let t = templates.get(p.file);
  if (t === undefined) {
    t = reportFromJson(readFileSync(join(packageRoot(), p.file), 'utf8'));
    templates.set(p.file, t);
  }
  return structuredClone(t);
}

const SITES = ['fra1', 'ams3', 'iad2', 'sfo1', 'sin1'];
const ROLES = ['web', 'db', 'ci', 'k8s-node', 'batch', 'edge'];
const BASE_MS = Date.UTC(2026, 11, 1, 6, 0, 0);

export interface FleetHost {
  profile: string;
  report: Report;
}

/** The i-th host (0-based) of the fleet of `seed`: the same whatever n is. */
export function fleetHost(seed: number, i: number): FleetHost {
  const rnd = prng((seed * 0x9e3779b1) ^ (i + 1));
  const total = PROFILES.reduce((s, p) => s + p.weight, 0);
  let pick = rnd() * total;
  const profile = PROFILES.find((p) => (pick -= p.weight) < 0) ?? PROFILES[0];
  const r = template(profile);
  const role = ROLES[Math.floor(rnd() * ROLES.length)];
  const site = SITES[Math.floor(rnd() * SITES.length)];
  r.host.hostname = `${role}-${String(i + 1).padStart(5, '0')}.${site}.example.net`;
  if (profile.kernels) r.host.kernel.release = profile.kernels[Math.floor(rnd() * profile.kernels.length)];
  r.startedAt = new Date(BASE_MS + Math.floor(rnd() * 3600_000)).toISOString();
  const scale = 0.7 + rnd() * 0.8;
  for (const p of r.probes) p.durationMs = Math.round(p.durationMs * scale * 1000) / 1000;
  r.durationMs = Math.round(r.durationMs * scale);
  return { profile: profile.name, report: r };
}

/** Writes n hosts below `out` as <hostname>/report.json; returns how many hosts of each profile. */
export function writeFleet(out: string, n: number, seed: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const h = fleetHost(seed, i);
    counts[h.profile] = (counts[h.profile] ?? 0) + 1;
    const dir = join(out, h.report.host.hostname);
    mkdirSync(dir);
    writeFileSync(join(dir, 'report.json'), reportJson(h.report));
  }
  return counts;
}

const USAGE = 'node dist/scripts/fleet-gen.js --hosts N [--seed S] --out NEW_FOLDER';

async function main(): Promise<number> {
  const a = scriptArgs('fleet-gen', USAGE, { hosts: { type: 'string', value: 'a number' }, seed: { type: 'string', value: 'a number' }, out: { type: 'string', value: 'a folder' } }, (v) => {
    if (!v.out) throw new UsageError('missing --out NEW_FOLDER');
    return { out: resolve(v.out), n: intValue('--hosts', v.hosts, 1000, 1, 1_000_000, 'a number of hosts'), seed: intValue('--seed', v.seed, 1, 0, 2 ** 31 - 1, 'a seed') };
  });
  try {
    mkdirSync(a.out); // a new folder: one mkdir, never recursive on a user-given path
  } catch (e) {
    throw new UsageError(`cannot create ${a.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (give a folder that does not exist yet)`);
  }
  const counts = writeFleet(a.out, a.n, a.seed);
  process.stdout.write(`${a.n} host reports (seed ${a.seed}) in ${a.out}: ${Object.entries(counts).map(([k, c]) => `${c} ${k}`).join(', ')}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]).endsWith('fleet-gen.js')) runProgram('fleet-gen', main, 1);
