// A host nsprobe could not probe (unreachable, login refused, sudo refused, no agent for its
// architecture) is still a result: a report of its own whose every probe/mode is an `error` with
// the reason as its cause and its kind as the gate id, so `nsprobe merge` shows it in the matrix as
// its own group ("14 probes error (unreachable)") next to the hosts that were probed, and never
// mistakes it for a host where something passed.
import { PROBES } from '../../probes/index.js';
import { MODES, SCHEMA_VERSION, summarize, type Mode, type ProbeResult, type Report } from '../model.js';
import { toolVersion } from '../runner.js';
import { NOT_REACHED_WORDS, type NotReached } from './ssh.js';
import type { Target } from './targets.js';


export function unreachedReport(t: Target, kind: NotReached, line: string, opts: { startedAt: Date; durationMs: number; modes?: readonly Mode[]; only?: readonly string[] | null; arch?: string; uid?: number }): Report {
  const words = NOT_REACHED_WORDS[kind];
  const cause = `not probed: ${words}: ${line}`;
  const modes = opts.modes ?? MODES;
  const probes: ProbeResult[] = [];
  for (const mode of modes)
    for (const p of PROBES.filter((x) => !opts.only || opts.only.includes(x.name)))
      probes.push({ id: `${p.name}/${mode}`, probe: p.name, namespace: p.namespace, mode, status: 'error', durationMs: 0, assertions: [], cause, gate: kind, remedy: REMEDY[kind] });
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'nsprobe', version: toolVersion() },
    startedAt: opts.startedAt.toISOString(),
    durationMs: opts.durationMs,
    host: {
      hostname: t.host,
      kernel: { release: 'unknown', version: '' },
      distro: { id: 'unknown', versionId: '', name: `not probed (${words})` },
      arch: opts.arch ?? 'unknown',
      euid: opts.uid ?? 0,
    },
    gates: [{ id: kind, status: 'blocked', value: line, affects: probes.map((p) => p.id), cause: `${t.spec}: ${words}: ${line}`, remedy: REMEDY[kind] }],
    probes,
    summary: summarize(probes),
    notes: [`${t.spec} was not probed: ${words}: ${line}`],
    modes: modes.map((mode) => ({ mode, status: 'run' as const, scope: `not probed (${words})` })),
  };
}

const REMEDY: Record<NotReached, string> = {
  unreachable: 'Check that `ssh HOST true` works from this machine (name, port, ProxyJump, firewall), then run nsprobe again.',
  'login-refused': 'Give ssh a key the host accepts (ssh-agent, IdentityFile in ~/.ssh/config, or --ssh-option IdentityFile=PATH); nsprobe runs ssh with BatchMode=yes, so it never asks for a password.',
  'host-key': "Verify the host's key and add it to known_hosts (ssh HOST once by hand), then run nsprobe again.",
  'sudo-refused': 'Allow the login user to run commands through sudo without a password (sudoers NOPASSWD), or run without --sudo (rootless mode only).',
  'arch-missing': 'The agent is built for x86_64 and aarch64 only; probe this host with a local nsprobe (npm i -g nsprobe) instead.',
  'no-agent': 'Build the agent (npm run build) or install an nsprobe package that ships it.',
  'agent-failed': 'The line above is what the target said while the agent was copied and started (a full or noexec tmp: set TMPDIR for the login; no sha256sum: install coreutils or busybox).',
  'ssh-failed': 'Run the same ssh command by hand (see the line above) and fix what it says.',
  stopped: 'Run nsprobe again.',
};
