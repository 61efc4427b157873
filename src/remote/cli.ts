// `nsprobe --ssh [user@]host[:port][,...]`, `--hosts FILE`, `--jobs N`, `--sudo`, `--ssh-config FILE`,
// `--ssh-option KEY=VALUE` (repeatable) and NSPROBE_SSH_ARGS: the remote half of the command line.
//
// One target: a preflight login (architecture, uid, sudo -n), then the ordinary run with the
// agent's transport over `ssh ... HOST` (the bootstrap copies, checks, runs and removes the agent);
// a host not reached is a report saying why and exit 4. Several targets: one child nsprobe per
// host, --jobs at a time, one folder per host under --out, then the merged matrix (fleet.ts).
import { resolve } from 'node:path';
import { UsageError } from '../args.js';
import type { Mode } from '../model.js';
import { checkOutputDir, writeReports, type Format } from '../report/write.js';
import { scrubLine } from '../text.js';
import { EXIT_NOT_PROBED, mergeFleet, renderOutcomes, runFleet } from './fleet.js';
import type { RemoteOptions } from './options.js';
import { NOT_REACHED_WORDS, preflight, shq, sshArgv } from './ssh.js';
import type { Target } from './targets.js';
import { unreachedReport } from './unreached.js';

/** Drops the flags a fleet's parent handles itself from the person's argv (each child gets the rest). */
export function childArgv(argv: readonly string[]): string[] {
  const drop = new Set(['--ssh', '--hosts', '--jobs', '--out', '--json']);
  const takesValue = new Set(['--ssh', '--hosts', '--jobs', '--out']);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (drop.has(name)) {
      if (!a.includes('=') && takesValue.has(name)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

export interface RemoteRun {
  only: string[] | null;
  mode: Mode | 'both' | null;
  out: string;
  formats: Format[];
  json: boolean;
}

export type RemoteStart =
  /** The run is over (a fleet, or a host not reached): exit with this code. */
  | { done: true; code: number }
  /** A reached host: run the suite through the agent over `command` (ssh ... HOST). */
  | { done: false; command: string[]; sudo: boolean; arch: string; agent: string; target: Target; started: Date; identity?: { euid: number; egid: number; uidMap: string; gidMap: string } };

const modesOf = (m: RemoteRun['mode']): Mode[] => (m === 'privileged' ? ['privileged'] : m === 'rootless' ? ['rootless'] : ['privileged', 'rootless']);

/** Writes the report of a host that was not probed; exit 4. */
async function notProbed(o: RemoteRun, t: Target, kind: keyof typeof NOT_REACHED_WORDS, line: string, started: Date, extra: { arch?: string; uid?: number } = {}): Promise<number> {
  const out = resolve(o.out);
  checkOutputDir(out);
  const report = unreachedReport(t, kind, line, { startedAt: started, durationMs: Date.now() - started.getTime(), modes: modesOf(o.mode), only: o.only, ...extra });
  const files = await writeReports(report, out, o.formats);
  process.stderr.write(`nsprobe: ${scrubLine(t.spec)}: not probed: ${NOT_REACHED_WORDS[kind]}: ${scrubLine(line)}\n`);
  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(`reports: ${scrubLine(files.join(', '))}\n`);
  return EXIT_NOT_PROBED;
}

/** A stopped fleet child or host: the signal's exit code, as a local run. */
const STOPPED = 130;

/**
 * Starts a remote run. Several targets: the whole fleet run, here. One target: the preflight; a
 * host not reached ends here with its report; a reached one comes back as the ssh command for
 * the agent's transport.
 */
export async function remoteStart(o: RemoteRun, r: RemoteOptions, argv: readonly string[], signal: AbortSignal): Promise<RemoteStart> {
  if (process.env.NSPROBE_FLEET_CHILD === '1') watchParent();
  const say = (s: string) => {
    try {
      process.stderr.write(s);
    } catch {
      // nowhere to say it
    }
  };
  if (r.targets.length > 1) {
    const out = resolve(o.out);
    checkOutputDir(out);
    const entry = process.argv[1];
    if (!entry) throw new UsageError('cannot find the nsprobe program to run for each host');
    const { outcomes, stopped } = await runFleet({ targets: r.targets, jobs: r.jobs, out, childArgs: childArgv(argv), entry, signal, say });
    if (stopped) return { done: true, code: STOPPED };
    const merged = await mergeFleet(out, outcomes.filter(Boolean), say);
    if (o.json) {
      const { readFileSync } = await import('node:fs');
      try {
        process.stdout.write(readFileSync(resolve(out, 'matrix.json'), 'utf8'));
      } catch {
        // no matrix: said above
      }
    } else process.stdout.write(renderOutcomes(outcomes));
    if (outcomes.some((x) => !x.reached)) return { done: true, code: EXIT_NOT_PROBED };
    if (merged !== 0) return { done: true, code: merged };
    return { done: true, code: outcomes.some((x) => x.exit !== 0) ? 1 : 0 };
  }
  const t = r.targets[0];
  const started = new Date();
  const pre = await preflight(t, r.ssh, signal);
  if (signal.aborted) return { done: true, code: STOPPED };
  if (!pre.ok) return { done: true, code: await notProbed(o, t, pre.kind ?? 'ssh-failed', pre.line ?? 'failed', started, { arch: pre.arch, uid: pre.uid }) };
  const command = sshArgv(t, r.ssh);
  const { agentPath, agentCandidates } = await import('../native.js');
  const agent = agentPath(pre.arch);
  if (!agent) return { done: true, code: await notProbed(o, t, 'arch-missing', `the target is ${pre.arch} and this package has no agent for it (none of ${agentCandidates(pre.arch).join(', ')})`, started, { arch: pre.arch, uid: pre.uid }) };
  return { done: false, command, sudo: r.ssh.sudo, arch: pre.arch!, agent, target: t, started, identity: pre.identity };
}

/**
 * Copies and starts the agent on a reached host and makes it this run's transport (the sandboxes
 * and, with the host interface, the host facts are the target's from here on). Returns null when
 * the run goes on, or the exit code of a host whose agent did not start (its report says why).
 */
export async function connectAgent(o: RemoteRun, s: Extract<RemoteStart, { done: false }>, before?: Promise<unknown>): Promise<number | null> {
  const { AgentClient } = await import('../agent/client.js');
  const { setTransport } = await import('../native.js');
  const { bootstrapLauncher } = await import('../agent/bootstrap.js');
  // The agent's bootstrap (src/agent/bootstrap.ts), as for --via, with ssh as the pipe: ssh joins
  // the remote command's words into one line for the login shell, so it goes quoted, as one word.
  const wrap = (cmd: string[]) => [(s.sudo ? ['sudo', '-n', ...cmd] : cmd).map(shq).join(' ')];
  const client = new AgentClient(bootstrapLauncher(s.command, s.target.spec, { wrap, timeoutMs: 60000 }));
  // `before` (this machine's debris pass, src/cleanup.ts) ends before the agent is the transport;
  // the agent starts meanwhile.
  const started = client.start();
  started.catch(() => undefined); // (answered below)
  await before?.catch(() => undefined);
  try {
    await started;
  } catch (e) {
    client.shutdown();
    return notProbed(o, s.target, 'agent-failed', (e instanceof Error ? e.message : String(e)).replace(`${s.target.spec}: `, ''), s.started, { arch: s.arch });
  }
  // Sandboxes are made as the agent's user there, with its id maps, not as this process; the host
  // interface (src/host/boxfs.ts) reads the host facts through a sandbox of the agent (remote).
  setTransport(client, { remote: true, caller: s.identity ?? null });
  process.on('exit', () => client.shutdown());
  return null;
}

/** A fleet child stops (as on SIGHUP) when its parent's pipe on stdin closes: the parent is gone. */
function watchParent(): void {
  const stdin = process.stdin as NodeJS.ReadStream & { unref?: () => void };
  stdin.on('end', () => process.kill(process.pid, 'SIGHUP'));
  stdin.on('error', () => process.kill(process.pid, 'SIGHUP'));
  stdin.resume();
  stdin.unref?.();
}
