// The one argument parser of every nsprobe command: `nsprobe`, `nsprobe merge`, `nsprobe bench`,
// the `npm run` scripts (scripts/*.ts) and ci/*.mjs (which import the compiled dist/src/args.js:
// `npm ci` builds dist/ in its prepare step, so there is one parser, not a JavaScript twin).
//
// It is Node's util.parseArgs (tokens, non-strict) with nsprobe's rules on top, so that
// `--flag=value`, `--help` and the wording of every usage error are the same everywhere:
//   - every usage error is one line in plain words (UsageError; the command prints it, exit 2);
//   - a value that looks like a flag (`--out -x`, `--only -V`) is an error, not a value;
//   - a list flag (`--only uts --only net`, `--only uts,net`) takes the union of every use;
//   - a flag given twice that is not a list is an error (which one was meant?);
//   - `npm run probe --only net` (no `--`): npm keeps the flag for itself and sets
//     npm_config_only; that is detected and the right command is suggested.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs as nodeParseArgs } from 'node:util';

/** Bad input from the person: one line, no stack trace, exit 2. */
export class UsageError extends Error {}

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** A comma-separated list that may be repeated; the result is the union, in first-seen order. */
  list?: boolean;
  /** May be given more than once; each value is kept whole (no comma split), in order. */
  repeat?: boolean;
  /** What the value is, for messages ("MS", "DIR"). */
  value?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export type Values<S extends FlagSpecs> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : S[K]['list'] extends true ? string[] : S[K]['repeat'] extends true ? string[] : string;
};

export interface Parsed<S extends FlagSpecs> {
  values: Values<S>;
  positionals: string[];
}

export interface ParseOptions {
  /** Positional arguments allowed (default: none). */
  positionals?: boolean;
  /** The command as the person typed it, for the npm hint ("probe" in `npm run probe`). */
  env?: NodeJS.ProcessEnv;
}

const looksLikeFlag = (v: string): boolean => v.length > 1 && v.startsWith('-');

export function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Parses `argv` against `specs`. Throws UsageError with one plain line for: an unknown flag, a
 * missing value, a value that looks like a flag, a value given to a switch, a flag given twice,
 * an unexpected argument.
 */
export function parseCommand<S extends FlagSpecs>(specs: S, argv: readonly string[], opts: ParseOptions = {}): Parsed<S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: boolean }> = {};
  for (const [name, s] of Object.entries(specs)) options[name] = { type: s.type, multiple: true, ...(s.short ? { short: s.short } : {}) };
  let tokens;
  try {
    ({ tokens } = nodeParseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true }));
  } catch (e) {
    throw new UsageError(firstLine(e));
  }
  checkNpmAte(specs, argv, opts.env ?? process.env);
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let afterTerminator = false;
  for (const tok of tokens) {
    if (tok.kind === 'option-terminator') {
      afterTerminator = true;
      continue;
    }
    if (tok.kind === 'positional') {
      if (!opts.positionals) throw new UsageError(`unexpected argument '${tok.value}' (see --help)`);
      if (!afterTerminator && looksLikeFlag(tok.value)) throw new UsageError(`unknown flag '${tok.value}' (see --help)`);
      positionals.push(tok.value);
      continue;
    }
    const spec = specs[tok.name];
    const flag = tok.rawName.startsWith('--') ? `--${tok.name}` : tok.rawName;
    if (!spec) throw new UsageError(`unknown flag '${tok.rawName}' (see --help)`);
    if (spec.type === 'boolean') {
      if (tok.value !== undefined) throw new UsageError(`${flag} takes no value (got '${tok.rawName}=${tok.value}')`);
      values[tok.name] = true;
      continue;
    }
    const what = spec.value ?? 'a value';
    if (tok.value === undefined || tok.value === '') throw new UsageError(`${flag} needs ${what}`);
    if (looksLikeFlag(tok.value)) throw new UsageError(`${flag} needs ${what}, and '${tok.value}' looks like a flag`);
    if (spec.repeat) {
      values[tok.name] = [...((values[tok.name] as string[] | undefined) ?? []), tok.value];
      continue;
    }
    if (spec.list) {
      const list = splitList(tok.value);
      if (!list.length) throw new UsageError(`${flag} needs ${what}`);
      const bad = list.find(looksLikeFlag);
      if (bad) throw new UsageError(`${flag} needs ${what}, and '${bad}' looks like a flag`);
      const prev = (values[tok.name] as string[] | undefined) ?? [];
      values[tok.name] = [...prev, ...list.filter((x) => !prev.includes(x))];
      continue;
    }
    if (values[tok.name] !== undefined && values[tok.name] !== tok.value) throw new UsageError(`${flag} given twice ('${values[tok.name]}' and '${tok.value}'): give it once`);
    values[tok.name] = tok.value;
  }
  return { values: values as Values<S>, positionals };
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/**
 * `npm run probe --only net` (without `--`) hands `--only net` to npm, which sets
 * npm_config_only=net (or npm_config_mode=true for a flag it does not know, the value becoming a
 * plain argument) and runs nsprobe without it. When this process is the script npm ran
 * (npm_lifecycle_script names this program) and one of its flags is set that way, say so.
 */
export function checkNpmAte(specs: FlagSpecs, argv: readonly string[], env: NodeJS.ProcessEnv): void {
  const event = env.npm_lifecycle_event;
  const script = env.npm_lifecycle_script;
  // Only the script npm ran for this very program (its file name in the script line), not a
  // process that merely inherited npm's environment (npm test running the CLI in a test).
  const self = process.argv[1] ? basename(process.argv[1]) : '';
  if (!event || !script || !self || !new RegExp(`(^|[\\s/])${self.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`).test(script)) return;
  const given = (name: string) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const hint = (name: string, value: string | null): never => {
    const shown = `--${name}${specs[name].type === 'string' ? ` ${value ?? specs[name].value ?? 'VALUE'}` : ''}`;
    throw new UsageError(`npm kept --${name} for itself, so it never reached this command: use \`npm run ${event} -- ${shown}\``);
  };
  for (const [name, spec] of Object.entries(specs)) {
    const v = env[`npm_config_${name.replace(/-/g, '_')}`];
    if (v === undefined || given(name)) continue;
    hint(name, spec.type === 'string' ? (v !== 'true' && v !== '' ? v : (argv.find((a) => !a.startsWith('-')) ?? null)) : null);
  }
  // npm drops a flag it knows but rejects (`--only net`: only must be prod or production) without
  // a trace in the environment, and renames its process ("npm run probe"), hiding its argv; its
  // debug log (on by default) records that argv, so read it there.
  const npm = npmArgvFromLog(env, event);
  if (!npm) return;
  const end = npm.indexOf('--');
  const before = end < 0 ? npm : npm.slice(0, end);
  for (let i = 0; i < before.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(before[i]);
    if (!m || !specs[m[1]] || given(m[1])) continue;
    const next = before[i + 1];
    hint(m[1], m[2] ?? (next !== undefined && !next.startsWith('-') ? next : null));
  }
}

/** When the npm process that ran this one started (ms since the epoch), from /proc; or null. */
function npmStartedAt(): number | null {
  try {
    let pid = process.ppid;
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    for (let depth = 0; depth < 3 && pid > 1; depth++) {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (/^npm( |\0|$)/.test(cmd) || /(^|\/)npm(-cli\.js)?\0/.test(cmd)) return btime * 1000 + Number(fields[19]) * 10; // starttime in clock ticks (100 Hz)
      pid = Number(fields[1]);
    }
  } catch {
    // no /proc: no hint
  }
  return null;
}

/** npm's own argv ("run" "probe" "--only" "net") from the debug log of the npm that ran us. */
function npmArgvFromLog(env: NodeJS.ProcessEnv, event: string): string[] | null {
  const dir = env.npm_config_logs_dir || (env.npm_config_cache ? join(env.npm_config_cache, '_logs') : null);
  const started = npmStartedAt();
  if (!dir || started === null) return null;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.log'));
  } catch {
    return null;
  }
  const when = (n: string) => Date.parse(n.slice(0, 24).replace(/T(\d\d)_(\d\d)_(\d\d)_(\d+)Z/, 'T$1:$2:$3.$4Z'));
  for (const n of names.filter((x) => when(x) >= started - 2000).sort().reverse()) {
    let head: string;
    try {
      head = readFileSync(join(dir, n), 'utf8').slice(0, 8192);
    } catch {
      continue;
    }
    if (!new RegExp(`verbose title npm (run|run-script) ${event.replace(/[^\w:-]/g, '.')}$`, 'm').test(head)) continue;
    const line = /verbose argv (.*)$/m.exec(head)?.[1];
    if (!line) return null;
    return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => {
      try {
        return JSON.parse(`"${m[1]}"`) as string;
      } catch {
        return m[1];
      }
    });
  }
  return null;
}

/** A whole number in [min, max] from flag `flag`, or a UsageError saying the value is the problem. */
export function intValue(flag: string, raw: string | undefined, dflt: number, min: number, max: number, unit = 'a whole number'): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`${flag} takes ${unit} from ${min} to ${max}, not '${raw}'`);
  return n;
}

/**
 * Makes a closed stdout (`nsprobe --json | head -1`, `nsprobe | true`) a normal end instead of
 * an EPIPE stack trace: the reader has gone, so what is left to print is dropped, and the command
 * goes on to its normal end (its children reaped, its reports written, its exit code the verdict).
 * Any other stdout error is one line on stderr and exit 1.
 */
export function quietStdout(prog: string, stream: NodeJS.WriteStream = process.stdout): void {
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    try {
      process.stderr.write(`${prog}: cannot write to stdout: ${e.code ?? e.message}\n`);
    } catch {
      // stderr gone too: nothing to say it on
    }
    process.exitCode = 1;
  };
  if (!stream.listeners('error').includes(onError as never)) stream.on('error', onError);
}

/**
 * Runs `main` as a program: a UsageError is `prog: message` and exit 2; anything else is an
 * internal error (exit 3); stdout closed by the reader is no error (see quietStdout).
 */
export function runProgram(prog: string, main: () => Promise<number> | number, internalExit = 3): void {
  quietStdout(prog);
  Promise.resolve()
    .then(main)
    .then(
      (code) => {
        if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = code;
      },
      (e) => {
        if (e instanceof UsageError) {
          process.stderr.write(`${prog}: ${e.message}\n`);
          process.exitCode = 2;
        } else {
          process.stderr.write(`${prog}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
          process.exitCode = internalExit;
        }
      },
    );
}

/**
 * The arguments of an `npm run` script or a ci/*.mjs program, parsed like every nsprobe command:
 * `--help` prints `usage` and exits 0; a usage error is `prog: message` on one line and exit 2.
 * `convert` turns the raw values into the script's options (and may throw UsageError too).
 */
export function scriptArgs<S extends FlagSpecs, T>(prog: string, usage: string, specs: S, convert: (v: Values<S>, positionals: string[]) => T, opts: ParseOptions & { argv?: readonly string[] } = {}): T {
  quietStdout(prog);
  const all = { ...specs, help: { type: 'boolean', short: 'h' } } as S & { help: { type: 'boolean'; short: 'h' } };
  try {
    const { values, positionals } = parseCommand(all, opts.argv ?? process.argv.slice(2), opts);
    if ((values as { help?: boolean }).help) {
      process.stdout.write(`usage: ${usage}\n`);
      process.exit(0);
    }
    return convert(values as Values<S>, positionals);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${prog}: ${e.message.replace(/ \(see --help\)$/, '')} (usage: ${usage})\n`);
    process.exit(2);
  }
}
