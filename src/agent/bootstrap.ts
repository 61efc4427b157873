// Starting an agent on another host through any command that gives a pipe to it (--via 'CMD ...';
// src/remote/ uses the same for ssh): nsprobe runs `CMD sh -c BOOTSTRAP`. The bootstrap, POSIX sh
// and coreutils or busybox only, says which machine it runs on (`uname -m`), reads the agent's
// bytes from the same pipe into a private, unpredictably named 0700 directory (mktemp -d), checks
// their sha256 and execs the agent with --rm, so the agent unlinks its file and the directory
// before it does anything else: nothing stays on disk, even if the shell or the pipe is killed.
// A trap removes the directory when anything before the exec fails.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { agentCandidates, agentPath } from '../native.js';
import type { HostContext } from '../host/hostfs.js';
import { realHostContext } from '../host/hostfs.js';
import type { AgentChannel, AgentClient, Launcher } from './client.js';

export const BOOT_MAGIC = 'NSPROBE-BOOT 1';
export const BOOT_ERR = 'NSPROBE-BOOT-ERR';

/**
 * The bootstrap script (one line per step; no bashisms). Protocol on its stdout/stdin:
 *   -> "NSPROBE-BOOT 1 MACHINE\n"
 *   <- "SIZE SHA256\n" then SIZE bytes (or "NONE\n": no agent for that machine)
 *   -> "NSPROBE-BOOT-ERR reason\n" on failure, else the agent's frames from here on.
 */
export function bootstrapScript(): string {
  return [
    'm=$(uname -m 2>/dev/null) || m=unknown',
    `printf '${BOOT_MAGIC} %s\\n' "$m"`,
    'IFS=" " read -r n sum || exit 3',
    '[ "$n" = NONE ] && exit 4',
    `case "$n" in *[!0-9]*|"") echo "${BOOT_ERR} bad size"; exit 5;; esac`,
    'umask 077',
    `d=$(mktemp -d "\${TMPDIR:-/tmp}/nsprobe-agent.XXXXXXXXXX") || { echo "${BOOT_ERR} mktemp -d failed in \${TMPDIR:-/tmp}"; exit 6; }`,
    "trap 'rm -rf \"$d\"' EXIT",
    "trap 'exit 129' HUP",
    "trap 'exit 130' INT",
    "trap 'exit 143' TERM",
    // The controller gone (ssh dropped) closes our stdout: an error line then raises SIGPIPE, and
    // a shell killed by a signal it does not trap runs no EXIT trap (the folder stayed).
    "trap 'exit 141' PIPE",
    'chmod 700 "$d"',
    'f="$d/nsprobe-agent"',
    // dd with iflag=fullblock reads exactly n bytes from a pipe; where dd lacks it, head -c (the
    // controller sends nothing more until the agent speaks, so head cannot read too far).
    'dd bs="$n" count=1 iflag=fullblock of="$f" 2>/dev/null || head -c "$n" > "$f"',
    'if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum "$f"); elif command -v busybox >/dev/null 2>&1; then s=$(busybox sha256sum "$f"); else s=; fi',
    `[ -n "$s" ] || { echo "${BOOT_ERR} no sha256sum on the target"; exit 7; }`,
    '[ "${s%% *}" = "$sum" ] || { echo "' + BOOT_ERR + ' checksum mismatch"; exit 8; }',
    'chmod 700 "$f"',
    'trap - EXIT HUP INT TERM PIPE',
    // exec: the agent replaces the shell; its --rm removes the file and the directory at once.
    `exec "$f" --rm "$f" || { rm -rf "$d"; echo "${BOOT_ERR} cannot execute the agent in $d (noexec?)"; exit 9; }`,
  ].join('\n');
}

/** argv for running the bootstrap through a command prefix (`kubectl exec -i pod --` ...). */
export function viaArgv(prefix: readonly string[]): string[] {
  return [...prefix, 'sh', '-c', bootstrapScript()];
}

/** Splits a --via command line into words (whitespace; '...' and "..." group; no expansion). */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | null = null;
  let has = false;
  for (const ch of s) {
    if (q) {
      if (ch === q) q = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      q = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
    }
  }
  if (q) throw new Error(`unbalanced ${q} in the command`);
  if (has || cur) out.push(cur);
  return out;
}

export class BootstrapError extends Error {}

/**
 * A launcher that runs argv (a prefix + the bootstrap), sends the agent that matches the machine
 * the bootstrap reports and hands over the pipe. Errors are one line (BootstrapError).
 */
export function bootstrapLauncher(prefix: readonly string[], label: string, opts: { timeoutMs?: number; agentFor?: (machine: string) => string | null; wrap?: (cmd: string[]) => string[] } = {}): Launcher {
  return () =>
    new Promise<AgentChannel>((resolve, reject) => {
      // wrap: how the prefix takes the command (ssh joins its words into one shell line: --ssh
      // quotes `sh -c SCRIPT` as one word there, behind sudo -n with --sudo).
      const argv = opts.wrap ? [...prefix, ...opts.wrap(['sh', '-c', bootstrapScript()])] : viaArgv(prefix);
      const proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let out: Buffer = Buffer.alloc(0);
      let err = '';
      let settled = false;
      let sent = false;
      const timer = setTimeout(() => fail(`no answer within ${Math.round((opts.timeoutMs ?? 30000) / 1000)} s`), opts.timeoutMs ?? 30000);
      const cleanup = () => {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
      };
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        cleanup();
        const tail = err.trim().split('\n').filter(Boolean).at(-1);
        proc.kill('SIGKILL');
        reject(new BootstrapError(`${label}: ${why}${tail && !why.includes(tail) ? ` (${tail.slice(0, 200)})` : ''}`));
      };
      proc.stderr!.on('data', (d: Buffer) => {
        err = (err + d.toString()).slice(-4096);
      });
      proc.stdin!.on('error', () => undefined);
      proc.once('error', (e) => fail(`cannot run ${prefix[0]}: ${(e as Error).message}`));
      proc.once('exit', (code, sig) => {
        const line = out.toString('latin1').split('\n').find((l) => l.startsWith(BOOT_ERR));
        fail(line ? line.slice(BOOT_ERR.length + 1) : `the command ended (${sig ?? `exit code ${code}`}) before the agent started`);
      });
      const onData = (d: Buffer) => {
        out = Buffer.concat([out, d]);
        if (sent) {
          // After the agent's bytes: a bootstrap error line, or the agent's first frame.
          const s = out.toString('latin1');
          if (s.startsWith(BOOT_ERR.slice(0, Math.min(s.length, BOOT_ERR.length)))) {
            // (The agent's frames start "NSAG": this is, or may yet be, an error line.)
            if (s.length >= BOOT_ERR.length && s.includes('\n')) fail(s.slice(BOOT_ERR.length + 1, s.indexOf('\n')));
            if (s.length < BOOT_ERR.length || s.startsWith(BOOT_ERR)) return;
          }
          if (out.length >= 4) {
            settled = true;
            cleanup();
            proc.stdout!.pause();
            proc.removeAllListeners('exit');
            // Its stderr is still read (the last line names a failure) but keeps Node alive no more.
            (proc.stderr as unknown as { unref?: () => void }).unref?.();
            resolve({ stdin: proc.stdin!, stdout: proc.stdout!, proc, leftover: out, label });
          }
          return;
        }
        const nl = out.indexOf(10);
        if (nl < 0) {
          if (out.length > 4096) fail('the command printed something other than the bootstrap');
          return;
        }
        const line = out.subarray(0, nl).toString('latin1');
        // Some commands print a banner first (a login message): skip lines until ours.
        if (!line.startsWith(BOOT_MAGIC)) {
          out = out.subarray(nl + 1);
          if (line.startsWith(BOOT_ERR)) fail(line.slice(BOOT_ERR.length + 1));
          else onData(Buffer.alloc(0));
          return;
        }
        const machine = line.slice(BOOT_MAGIC.length + 1).trim();
        out = out.subarray(nl + 1);
        const path = (opts.agentFor ?? agentPath)(machine);
        if (!path) {
          proc.stdin!.write('NONE\n');
          fail(`no agent for ${machine || 'an unknown machine'} in this package (looked for ${agentCandidates(machine).join(', ')})`);
          return;
        }
        const bytes = readFileSync(path);
        const sum = createHash('sha256').update(bytes).digest('hex');
        sent = true;
        proc.stdin!.write(`${bytes.length} ${sum}\n`);
        proc.stdin!.write(bytes);
        if (out.length) onData(Buffer.alloc(0));
      };
      proc.stdout!.on('data', onData);
    });
}

/**
 * The base host context of a --via/--ssh run: the target's machine and euid, from the agent's
 * hello. (The run reads the host facts and runs the probes' host side through a box with no
 * namespaces on the target because its transport is remote: src/cli.ts, src/host/boxfs.ts.)
 */
export function targetHostContext(agent: AgentClient): HostContext {
  const h = realHostContext();
  if (agent.hello) {
    h.arch = agent.hello.machine || h.arch;
    h.euid = agent.hello.euid;
  }
  return h;
}
