#!/usr/bin/env node
// nsprobe's command line: parse flags, run the suite, write the reports, set the exit code.
// Usage errors are one line on stderr and exit 2, never a stack trace.
import { existsSync, fstatSync, rmdirSync, stat, writeSync } from 'node:fs';
import { intValue, parseCommand, quietStdout, UsageError, type FlagSpecs } from './args.js';
import { dirname, resolve } from 'node:path';
import { PROBES } from '../probes/index.js';
import { MODES, type Mode, type ProbeResult, type Report } from './model.js';
import { prerender } from './report/prerender.js';
import { renderSummary } from './report/summary.js';
import { checkOutputDir, DEFAULT_FORMATS, writeReports, OutputError, type Format } from './report/write.js';
import { scrubLine, scrubText } from './text.js';
import { canRunPrivileged, DEFAULT_TIMEOUT_MS, Interrupted, privilegedSkipReason, runSuite, toolVersion } from './runner.js';
import { collectHostFacts } from './host/facts.js';
import { HOST_FACTS_DEADLINE_MS, realHostContext, withDeadline } from './host/hostfs.js';
import { openRunHost } from './host/boxfs.js';
import { rootlessPlan } from './sandbox.js';
import { collectDebris, debrisNotes, hurriedCleanup, type Debris } from './cleanup.js';
import { nofileConcurrency, raiseNofile } from './limits.js';
import { native, setTransport, transportContext } from './native.js';
import { AgentClient } from './agent/client.js';
import { bootstrapLauncher, splitCommand, targetHostContext } from './agent/bootstrap.js';
import { parseRemote, REMOTE_FLAGS, REMOTE_HELP, type RemoteOptions } from './remote/options.js';
import { CONSUMER_HELP, consumerArgs, consumerRun, ConsumerUsageError, listConsumers, type ConsumerArgs } from './consumers.js';

const FORMATS: readonly Format[] = ['tap', 'junit', 'json', 'md', 'html', 'nfd', 'prom'];
/** nfd and prom are for fleet engines and only written when asked for. */

export { UsageError };

export interface CliOptions {
  only: string[] | null;
  mode: Mode | 'both' | null;
  out: string;
  formats: Format[];
  json: boolean;
  require: { probe: string; mode: Mode | null }[];
  timeoutMs: number;
  help: boolean;
  version: boolean;
  color: boolean | null;
  checkResidue: boolean;
  /** --via 'CMD ...': probe the host CMD gives a pipe to, through the agent (src/agent/bootstrap.ts). */
  via: string[] | null;
  /** Exit 1 unless at least one probe passed and none failed (for CI). */
  strict: boolean;
  /** --for, --as-user and the consumer:ID items of --require. */
  consumers: ConsumerArgs;
  /** --ssh, --hosts, --jobs, --sudo, --ssh-config, --ssh-option (src/remote/); null: this machine. */
  remote: RemoteOptions | null;
}

const HELP = `nsprobe: which Linux namespaces work on this host, whether they isolate, and why not

Usage: nsprobe [options]
       nsprobe merge DIR_OR_FILE... --out DIR
       nsprobe bench [--iterations N] [--runs N] [--json]   (nsprobe bench --help)

Options:
  --only LIST        probes to run, comma-separated or repeated (the union):
                     ${PROBES.map((p) => p.name).join(',')}
  --mode MODE        privileged | rootless | both (default: both; privileged mode needs CAP_SYS_ADMIN
                     in nsprobe's own user namespace and is skipped, with the reason, without it)
  --out DIR          where the reports go (default: reports)
  --format LIST      report formats: ${FORMATS.join(',')} (default: ${DEFAULT_FORMATS.join(',')});
                     nfd: nsprobe.features for Node Feature Discovery, prom: nsprobe.prom for
                     node_exporter's textfile collector (see README, Fleet)
  --json             print report.json on stdout and nothing else there
  --require LIST     probes that must pass, as probe[:mode],... (exit 1 otherwise, saying which
                     and why); without a mode, every mode this caller can run (both with
                     CAP_SYS_ADMIN, as root; rootless otherwise)
  --strict           exit 1 unless at least one probe passed and none failed (a run that tested
                     nothing, every probe unsupported or skipped, always warns on stderr)
  --timeout MS       per-probe timeout (default ${DEFAULT_TIMEOUT_MS})
  --no-color         plain output (also NO_COLOR=1 or when stdout is not a terminal)
  --check-residue    snapshot the host before and after the run; print what the run left
                     (processes, mounts, IPC objects, devices, cgroups, files), exit 1 if any
  --via 'CMD ...'    probe the host CMD gives a pipe to (kubectl exec -i POD --, docker exec -i
                     CTR, vagrant ssh NAME --, nsenter -t 1 -a, ...): nsprobe runs CMD sh -c
                     '<bootstrap>', sends the agent for the target's machine and talks to it
  -h, --help         this help
  -V, --version      the version

Flags take their value as --flag VALUE or --flag=VALUE; a value may not start with '-'.
Through npm, put flags after --: npm run probe -- --only net.

Exit codes: 0 nothing failed; 1 an assertion failed, a probe errored, a required probe did
not pass, --strict found nothing tested or --check-residue found residue; 2 usage error
(unknown probe or flag, unwritable output folder, too few open files allowed); 129 SIGHUP,
130 SIGINT, 131 SIGQUIT, 143 SIGTERM (stopped: everything the run made is removed; a second
signal hurries that, it does not skip it). A closed stdout (nsprobe --json | head -1) is no
error: the run ends as usual, quietly, with its own exit code.

Environment: NSPROBE_COLOCATE=0 lets the scheduler place nsprobe's children (by default a lone
sandbox and the Node thread that talks to it share one CPU; see README, Speed).
`;

const MAIN_FLAGS = {
  only: { type: 'string', list: true, value: 'probe names' },
  mode: { type: 'string', value: 'a mode' },
  out: { type: 'string', value: 'a folder' },
  format: { type: 'string', list: true, value: 'formats' },
  json: { type: 'boolean' },
  require: { type: 'string', list: true, value: 'probes' },
  timeout: { type: 'string', value: 'milliseconds' },
  strict: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  color: { type: 'boolean' },
  'check-residue': { type: 'boolean' },
  via: { type: 'string', value: 'a command' },
  for: { type: 'string', list: true, value: 'consumer names' },
  'as-user': { type: 'string', value: 'a user name' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  ...REMOTE_FLAGS,
} as const satisfies FlagSpecs;

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  const { values: v } = parseCommand(MAIN_FLAGS, argv, { env });
  const o: CliOptions = { only: null, mode: null, out: 'reports', formats: [...DEFAULT_FORMATS], json: !!v.json, require: [], timeoutMs: DEFAULT_TIMEOUT_MS, help: !!v.help, version: !!v.version, color: null, checkResidue: !!v['check-residue'], via: null, strict: !!v.strict, consumers: { for: null, asUser: undefined, require: [] }, remote: null };
  if (o.help || o.version) return o;
  o.remote = parseRemote(v, env);
  if (o.remote && o.checkResidue) throw new UsageError('--check-residue looks at this machine: it cannot be used with --ssh or --hosts');
  const consumerItems = (v.require ?? []).filter((r) => r.startsWith('consumer:'));
  o.consumers = consumerArgs({ for: v.for, asUser: v['as-user'], require: consumerItems.map((r) => r.slice('consumer:'.length)) });
  const names = new Set(PROBES.map((p) => p.name));
  if (v.only) {
    const bad = v.only.filter((n) => !names.has(n));
    if (bad.length) throw new UsageError(`unknown probe ${bad.map((b) => `'${b}'`).join(', ')} (known: ${[...names].join(', ')})`);
    o.only = v.only;
  }
  if (v.mode !== undefined) {
    if (v.mode !== 'both' && !(MODES as readonly string[]).includes(v.mode)) throw new UsageError(`unknown mode '${v.mode}' (privileged, rootless or both)`);
    o.mode = v.mode as CliOptions['mode'];
  }
  if (v.out !== undefined) o.out = v.out;
  if (v.via !== undefined) {
    let words: string[];
    try {
      words = splitCommand(v.via);
    } catch (e) {
      throw new UsageError(`--via: ${(e as Error).message}`);
    }
    if (!words.length) throw new UsageError('--via needs a command, e.g. --via \'kubectl exec -i POD --\'');
    o.via = words;
    if (o.remote) throw new UsageError('--via and --ssh/--hosts both name the target: give one');
  }
  if (v.format) {
    const bad = v.format.filter((f) => !(FORMATS as readonly string[]).includes(f));
    if (bad.length) throw new UsageError(`unknown format '${bad[0]}' (known: ${FORMATS.join(', ')})`);
    o.formats = v.format as Format[];
  }
  for (const item of (v.require ?? []).filter((r) => !r.startsWith('consumer:'))) {
    const [probe, mode, extra] = item.split(':');
    if (!names.has(probe)) throw new UsageError(`--require names unknown probe '${probe}' (known: ${[...names].join(', ')})`);
    if (extra !== undefined || (mode !== undefined && !(MODES as readonly string[]).includes(mode))) throw new UsageError(`--require names unknown mode '${mode}' in '${item}' (privileged or rootless)`);
    if (!o.require.some((r) => r.probe === probe && r.mode === ((mode as Mode) ?? null))) o.require.push({ probe, mode: (mode as Mode) ?? null });
  }
  o.timeoutMs = intValue('--timeout', v.timeout, DEFAULT_TIMEOUT_MS, 100, 600000, 'milliseconds');
  if (v.color && v['no-color']) throw new UsageError('--color and --no-color contradict each other: give one');
  if (v.color) o.color = true;
  if (v['no-color']) o.color = false;
  return o;
}

const BENCH_FLAGS = {
  iterations: { type: 'string', value: 'a number' },
  runs: { type: 'string', value: 'a number' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpecs;

/** Help of `nsprobe bench` and `npm run bench` (one flag set, different defaults). */
export function benchHelp(cmd: string, d: { iterations: number; runs: number }): string {
  return `usage: ${cmd} [--iterations N] [--runs N] [--json]

What creating each namespace type costs on this host: enter + one request + close through the
addon, next to a raw clone()+wait loop measured in the same run; with --runs, the whole suite
as a process too. \`nsprobe bench\` and \`npm run bench\` take the same flags; npm run bench
also writes reports/bench.json.

  --iterations N   cycles per namespace row, 1 to 1000000 (default ${d.iterations})
  --runs N         time the whole suite N times, 0 to 1000 (default ${d.runs}; 0: namespaces only)
  --json           print the results as JSON instead of tables
  -h, --help       this help
`;
}

/** Parses bench flags (shared by `nsprobe bench` and `npm run bench`). */
export function parseBenchArgs(argv: readonly string[], d: { iterations: number; runs: number }, env: NodeJS.ProcessEnv = process.env): { iterations: number; runs: number; json: boolean; help: boolean } {
  const { values: v } = parseCommand(BENCH_FLAGS, argv, { env });
  return {
    help: !!v.help,
    json: !!v.json,
    iterations: v.help ? d.iterations : intValue('--iterations', v.iterations, d.iterations, 1, 1000000),
    runs: v.help ? d.runs : intValue('--runs', v.runs, d.runs, 0, 1000),
  };
}

/**
 * `nsprobe bench [--iterations N] [--runs N] [--json]`: what creating each namespace type costs
 * on this host (enter + one request + close through the addon, next to a raw clone()+wait loop).
 * Network namespaces are usually the dearest, and their cost bounds container density.
 */
async function bench(argv: readonly string[]): Promise<number> {
  const d = { iterations: 100, runs: 0 };
  let a: ReturnType<typeof parseBenchArgs>;
  try {
    a = parseBenchArgs(argv, d);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`bench: ${e.message}`);
    throw e;
  }
  if (a.help) {
    process.stdout.write(benchHelp('nsprobe bench', d));
    return 0;
  }
  const { iterations, json } = a;
  const { benchNamespaces, benchSuite, renderNsTable, renderSuiteLine } = await import('./bench.js');
  const rows = await benchNamespaces({ iterations, warmup: Math.min(20, iterations), warmupAll: Math.min(1000, 10 * iterations), privileged: process.geteuid?.() === 0 });
  const suite = a.runs ? benchSuite(a.runs) : null;
  // --json without --runs stays the array of rows it always was.
  if (json) process.stdout.write(JSON.stringify(suite ? { namespaces: rows, suite } : rows, null, 2) + '\n');
  else process.stdout.write(renderNsTable(rows) + (suite ? renderSuiteLine(suite) : ''));
  return 0;
}

/** The signals that stop a run, with the exit code each gives (128 + its number, as a shell). */
export const STOP_SIGNALS = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

// stdout and stderr without Node's stream objects where a run can do without them: the first
// read of process.stdout or process.stderr loads Node's streams (and, for a pipe, net): ~5 ms of
// CPU on Node 24 with stdout a pipe, for the lines a run prints at its end.

/** /dev/null's device number (major 1, minor 3): a character device that is no terminal. */
const DEV_NULL_RDEV = (1 << 8) | 3;

/**
 * Whether fd 1 or 2 is a terminal, as process.stdout/stderr.isTTY says, asking the stream only
 * for a character device other than /dev/null (a pipe, a file or a socket is no terminal).
 */
function isTty(fd: 1 | 2): boolean {
  try {
    const st = fstatSync(fd);
    if (!st.isCharacterDevice() || st.rdev === DEV_NULL_RDEV) return false;
  } catch {
    return false; // closed: no terminal
  }
  return !!(fd === 1 ? process.stdout : process.stderr).isTTY;
}

let stdoutStream = false;

/**
 * Writes to stdout as process.stdout.write would (synchronous on Linux for files, pipes and
 * terminals), without creating the stream: a reader that has gone (EPIPE) drops the rest, as
 * quietStdout does; anything else (EAGAIN of a non-blocking pipe, ...) hands the rest, and every
 * later write, to process.stdout, which waits and reports as before.
 */
function print(text: string): void {
  if (stdoutStream) {
    process.stdout.write(text);
    return;
  }
  let buf = Buffer.from(text, 'utf8');
  while (buf.length) {
    try {
      buf = buf.subarray(writeSync(1, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
      stdoutStream = true;
      process.stdout.write(buf);
      return;
    }
  }
}

/**
 * quietStdout, installed when process.stdout is first read instead of now (reading it creates
 * the stream): every command that writes through process.stdout still gets it first.
 */
function quietStdoutWhenUsed(prog: string): void {
  const d = Object.getOwnPropertyDescriptor(process, 'stdout');
  if (!d?.get || !d.configurable) return quietStdout(prog);
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: d.enumerable,
    get() {
      Object.defineProperty(process, 'stdout', d);
      const stream = process.stdout;
      quietStdout(prog, stream);
      return stream;
    },
  });
}

/** Writes to stderr and never throws (a closed pipe or a hung-up terminal must not end a cleanup). */
function say(s: string): void {
  try {
    if (!process.stderr.listenerCount('error')) process.stderr.on('error', () => undefined);
    process.stderr.write(s);
  } catch {
    // nowhere to say it
  }
}

/** The folders `dir` needs that do not exist yet (deepest first), so an interrupted run can remove them. */
function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    out.push(d);
    if (dirname(d) === d) break;
  }
  return out;
}

/** Removes the folders a run made and never filled (rmdir: only empty ones). */
function removeEmpty(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** What the run was asked to do, to explain an unmet --require. */
export interface RunScope {
  /** --only, or null for every probe. */
  only: string[] | null;
  /** The modes this run ran. */
  modes: readonly Mode[];
  /** The modes this caller can run (a requirement without a mode means these). */
  runnable: readonly Mode[];
}

const quote = (v: unknown): string => scrubLine(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));

/** Why one probe result does not meet a requirement, or null when it passed. */
function whyNot(p: ProbeResult): string | null {
  if (p.status === 'pass') return null;
  if (p.status === 'fail') {
    const a = p.assertions.find((x) => x.status === 'fail');
    return a ? `failed: ${scrubLine(a.name)} (expected ${quote(a.expected)}, got ${quote(a.actual)})` : `failed${p.cause ? `: ${scrubLine(p.cause)}` : ''}`;
  }
  const why = [p.gate, p.cause].filter(Boolean).map((x) => scrubLine(String(x))).join(': ');
  return why ? `${p.status} (${why})` : p.status;
}

/** One line per unmet --require: `required net/rootless: not run (--only uts)`. */
export function requireFailures(report: Report, require: CliOptions['require'], scope: RunScope): string[] {
  const out: string[] = [];
  for (const r of require) {
    const modes = r.mode ? [r.mode] : scope.runnable;
    if (!modes.length) {
      out.push(`required ${r.probe}: no mode can be run by this caller (privileged needs root; name a mode, e.g. ${r.probe}:rootless)`);
      continue;
    }
    for (const m of modes) {
      const id = `${r.probe}/${m}`;
      const hit = report.probes.find((p) => p.probe === r.probe && p.mode === m);
      const skipped = report.modes?.find((x) => x.mode === m && x.status === 'skipped');
      if (!hit && skipped) {
        out.push(`required ${id}: skipped (${scrubLine((skipped.reason ?? 'mode not run').split(':')[0])})`);
        continue;
      }
      if (!hit) {
        const why = scope.only && !scope.only.includes(r.probe) ? `--only ${scope.only.join(',')}` : !scope.modes.includes(m) ? `this run's modes: ${scope.modes.join(', ') || 'none'}` : 'not in the report';
        out.push(`required ${id}: not run (${why})`);
        continue;
      }
      const why = whyNot(hit);
      if (why) out.push(`required ${id}: ${why}`);
    }
  }
  return out;
}

/** True when nothing was tested: no probe passed or failed (every one unsupported or skipped). */
export function testedNothing(report: Report): boolean {
  return report.probes.every((p) => p.status !== 'pass' && p.status !== 'fail' && p.status !== 'error');
}

/**
 * The exit code a report earns: 1 for failures, errors and unmet --require; with --strict also 1
 * unless at least one probe passed and none failed.
 */
export function exitCode(report: Report, require: CliOptions['require'], scope?: RunScope, strict = false): number {
  if (report.summary.fail || report.summary.error) return 1;
  const sc: RunScope = scope ?? { only: null, modes: [...new Set(report.probes.map((p) => p.mode))], runnable: [...new Set(report.probes.map((p) => p.mode))] };
  if (requireFailures(report, require, sc).length) return 1;
  if (strict && !report.probes.some((p) => p.status === 'pass')) return 1;
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'merge') {
    const { runMerge } = await import('./merge.js');
    return runMerge(argv.slice(1));
  }
  if (argv[0] === 'bench') return bench(argv.slice(1));
  if (argv[0] === 'consumers') return listConsumers(argv.slice(1));
  const o = parseArgs(argv);
  const cons = consumerRun(o.consumers); // --for, --as-user, --require consumer:ID
  if (cons.probes && !o.only) o.only = cons.probes;
  if (o.help) {
    process.stdout.write(HELP + REMOTE_HELP + CONSUMER_HELP);
    return 0;
  }
  if (o.version) {
    process.stdout.write(`nsprobe ${toolVersion()}\n`);
    return 0;
  }
  const out = resolve(o.out);
  const nofile = raiseNofile();
  if (nofile) throw new UsageError(nofile);
  const tty = !o.json && isTty(2);
  let made: string[] = [];
  const ac = new AbortController();
  let caught: StopSignal | undefined;
  const interrupted = () => STOP_SIGNALS[caught ?? 'SIGINT'];
  // SIGINT, SIGTERM, SIGHUP (terminal closed, ssh dropped) and SIGQUIT all stop the run the same
  // way: kill the sandboxes, let every probe clean up, write no report, remove a report folder
  // this run made. Installed before anything is made. A second signal hurries: no waiting for
  // the probes, but the children are still killed and reaped and this run's cgroups, host
  // queues and temporary files removed (synchronously).
  let writing = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (!caught) {
      caught = sig as StopSignal;
      say(`${tty ? '\r\x1b[K' : '\n'}nsprobe: ${sig}, stopping\n`);
      ac.abort();
    } else if (!writing) {
      // (While the reports are written, a few ms, the second signal waits for them: the folder
      // then holds the whole set, never a part of it.)
      hurriedCleanup(out);
      removeEmpty(made);
      process.exit(interrupted());
    }
  };
  const signals = Object.keys(STOP_SIGNALS) as StopSignal[];
  for (const s of signals) process.on(s, onSignal);
  // What SIGKILLed runs left on this machine (cgroups, host queues, temporary report files) goes
  // first, while the host facts are read (before a --check-residue snapshot, which would count it
  // as a change), and is over before an agent becomes the transport (--ssh, --via): its queue
  // requests would then reach the target's queues, not this machine's.
  let debris: Promise<Debris[]> | undefined;
  if (o.remote) {
    // --ssh/--hosts (src/remote/): a fleet runs here whole; one host gets a preflight login, and
    // a host not reached ends here with a report that says why.
    const { remoteStart, connectAgent } = await import('./remote/cli.js');
    const start = await remoteStart(o, o.remote, argv, ac.signal);
    if (start.done) {
      for (const s of signals) process.off(s, onSignal);
      return caught ? interrupted() : start.code;
    }
    debris = collectDebris({ outDir: out });
    const code = await connectAgent(o, start, debris);
    if (code !== null) {
      for (const s of signals) process.off(s, onSignal);
      return caught ? interrupted() : code;
    }
  }
  debris ??= collectDebris({ outDir: out });
  if (o.checkResidue) await debris;
  const residue = o.checkResidue ? await import('./residue.js') : null;
  const before = residue ? await residue.snapshot({ exclude: [out] }) : null;
  made = missingDirs(out);
  checkOutputDir(out); // before any probe: one mkdir per component, no link another user planted
  let agent: AgentClient | null = null;
  if (o.via) {
    // The transport for the whole run: every sandbox is the target's, made by its agent.
    agent = new AgentClient(bootstrapLauncher(o.via, `--via '${o.via.join(' ')}'`));
    process.on('exit', () => agent!.shutdown());
    const started = agent.start();
    started.catch(() => undefined); // (answered below)
    await debris; // this machine's pass, through this machine's addon, while the agent starts
    setTransport(agent, { remote: true });
    try {
      await started;
    } catch (e) {
      removeEmpty(made);
      throw new UsageError(scrubLine((e as Error).message));
    }
  }
  // The probes' host side and the host facts: this host, or (NSPROBE_HOST=box, and always with
  // --via and --ssh: a remote transport) through a sandbox without namespaces, as a remote run reads them (src/host/boxfs.ts).
  const base = agent ? targetHostContext(agent) : realHostContext();
  const { hostIf, host } = await openRunHost(base, o.timeoutMs, transportContext().remote ? 'box' : undefined);
  // --via: sandboxes are made as the agent's user there (its euid, egid, id maps), as --ssh does;
  // as this process's, a root controller's rootless sandboxes would setgroups on a nobody target (EPERM)
  // (a kernel without CONFIG_USER_NS has no uid_map: its one namespace maps every id to itself)
  if (agent) {
    const all = '0 0 4294967295\n';
    const [u, g] = await Promise.all([hostIf.readFile('/proc/self/uid_map'), hostIf.readFile('/proc/self/gid_map')]);
    setTransport(agent, { remote: true, caller: { euid: hostIf.euid, egid: hostIf.egid, uidMap: u.ok ? u.value! : all, gidMap: g.ok ? g.value! : all } });
  }
  // The same for the target (--via, --ssh), through its host interface and the agent: its cgroups,
  // its makers, its ids, the agent user's host queues; nothing of this machine's.
  const targetDebris = transportContext().remote ? collectDebris({ host: hostIf }) : Promise.resolve([]);
  // The consumer programs' versions (the package database, else --version in one shell) are
  // needed only after the probes: asked once the first probe result is in, in the JS thread's idle
  // time while the others run, not before the first probe starts (~10 ms of reading on a dpkg host).
  let programs: Promise<void> | undefined;
  const askPrograms = () => (programs ??= cons.prefetch(host));
  const facts = collectHostFacts(withDeadline(host, HOST_FACTS_DEADLINE_MS)); // every read is bounded; all of them together too
  const notes: string[] = [];
  // Both modes unless one is asked for; the runner skips privileged mode once, with the reason,
  // when this process lacks CAP_SYS_ADMIN in its user namespace (report.modes).
  const modes: Mode[] = o.mode === 'privileged' ? ['privileged'] : o.mode === 'rootless' ? ['rootless'] : ['privileged', 'rootless'];
  if (!canRunPrivileged(facts) && modes.includes('privileged')) notes.push(`privileged mode not run: ${privilegedSkipReason(facts)}`);
  const nested = rootlessPlan().note;
  if (nested && modes.includes('rootless')) notes.push(nested);
  // Orphaned grandchildren of killed sandboxes come to us and are reaped at exit, not left to init.
  try {
    native().setSubreaper(true);
  } catch {
    // no addon: every probe says so
  }
  const probes = o.only ? PROBES.filter((p) => o.only!.includes(p.name)) : PROBES;
  // Colour goes to stdout, so stdout decides (`nsprobe > file` on a terminal writes no ANSI codes).
  const color = o.color ?? (!o.json && !process.env.NO_COLOR && isTty(1));
  notes.push(...debrisNotes(await debris), ...debrisNotes(await targetDebris, 'on the target'));
  if (caught) {
    removeEmpty(made);
    return interrupted();
  }
  let report: Report;
  try {
    let done = 0;
    const total = probes.length * modes.length;
    report = await runSuite({
      probes,
      modes,
      timeoutMs: o.timeoutMs,
      concurrency: nofileConcurrency(),
      signal: ac.signal,
      host,
      hostIf,
      facts,
      notes,
      onResult: (r) => {
        done++;
        if (done === 1) setImmediate(() => caught || askPrograms());
        // Its parts of report.tap and report.json, while the other probes run.
        if (o.formats.includes('tap') || o.formats.includes('json')) setImmediate(() => caught || prerender(r, o.formats));
        // After a stop the probes that end are not shown (a killed probe is no verdict).
        if (tty && !caught) say(`\r\x1b[K[${done}/${total}] ${r.id} ${r.status}`);
      },
    });
    if (tty && !caught) say('\r\x1b[K');
  } catch (e) {
    await hostIf.close();
    if (e instanceof Interrupted) {
      removeEmpty(made);
      return interrupted();
    }
    throw e;
  }
  // The handlers stay while the reports are written: a signal then lets the writing finish (a
  // few ms), so the folder holds every report or none, never a temporary file.
  await askPrograms();
  cons.evaluate(report, host);
  await hostIf.close();
  let files: string[];
  let summary = '';
  try {
    writing = true;
    files = await writeReports(report, out, o.formats, true, o.json ? undefined : () => (summary = renderSummary(report, { color })));
  } finally {
    writing = false;
    // A stopped run keeps them until runCli's process.exit: its 'exit' listeners (the agent's
    // shutdown waits for the agent to end) ran without a handler, and a second signal then
    // killed the process by its default action, with no exit code.
    if (!caught) for (const s of signals) process.off(s, onSignal);
  }
  if (caught) return interrupted();
  if (o.json) {
    print(JSON.stringify(report, null, 2) + '\n');
  } else {
    print(cons.verdictsFirst(report) + summary + `reports: ${scrubLine(files.join(', '))}\n`);
  }
  if (residue && before) {
    const left = (await residue.residueSince(before)).residue;
    process.stderr.write(residue.formatResidue(left) || 'residue: none\n');
    if (left.length) return 1;
  }
  const scope: RunScope = { only: o.only, modes, runnable: canRunPrivileged(facts) ? modes : modes.filter((m) => m !== 'privileged') };
  for (const line of requireFailures(report, o.require, scope)) process.stderr.write(`nsprobe: ${line}\n`);
  if (testedNothing(report)) {
    process.stderr.write(`nsprobe: warning: nothing was tested: ${report.probes.length ? `all ${report.probes.length} probe results are unsupported or skipped` : 'no probe ran'} (causes above and in the reports)${o.strict ? '; --strict: exit 1' : '; --strict makes this exit 1'}\n`);
  }
  return Math.max(exitCode(report, o.require, scope, o.strict), cons.exitCode(report));
}

/** Runs the command line and sets the exit code (the nsprobe entry, src/nsprobe.ts, calls it). */
export function runCli(argv: readonly string[]): void {
  // libuv makes its thread pool at its first use and aborts the process (SIGABRT, no message)
  // when a thread cannot be made. Under a low RLIMIT_NPROC (it counts the user's threads and
  // processes) that first use came after the probes' sandboxes had taken the room, and the run
  // died instead of ending in errors that name the limit (issue 14 item 12). The ESM loader of
  // Node 20 used the pool at once; the bundle and Node 22's loader do not: it is started here.
  stat('/', () => undefined);
  quietStdoutWhenUsed('nsprobe');
  main(argv).then(
    (code) => {
      // A stopped run has cleaned up: leave now, with the handlers still in place. Left to the
      // event loop's end, Node's teardown restores the default actions, and a second signal in
      // that window killed the process (no exit code) although nothing was left to hurry.
      if ((Object.values(STOP_SIGNALS) as number[]).includes(code)) process.exit(code);
      process.exitCode = code;
    },
    (e) => {
      if (e instanceof UsageError || e instanceof OutputError || e instanceof ConsumerUsageError) {
        process.stderr.write(`nsprobe: ${scrubLine(e.message)}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`nsprobe: internal error: ${scrubText(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
        process.exitCode = 3;
      }
    },
  );
}

const invoked = process.argv[1] && /(^|\/)cli\.(js|ts)$/.test(process.argv[1]);
if (invoked) runCli(process.argv.slice(2));
