// The agent onto a target through any command that gives a pipe to it (`ssh ... HOST`): one
// connection carries the agent program and then its protocol. The remote side is a POSIX sh
// script, so the target needs nothing but sh, mktemp, head and sha256sum (coreutils or busybox):
//   1. umask 077; a private folder from mktemp -d (0700, an unpredictable name) under $TMPDIR
//      or /tmp; a trap removes it on exit, hang-up, Ctrl-C and TERM;
//   2. exactly SIZE bytes from stdin into it (nothing else is sent before the agent's hello);
//   3. its size and sha256 checked against this side's (a mismatch is one line and exit 98);
//   4. the agent run (through `sudo -n` with --sudo), not exec'd, so the trap runs after it;
//      when the connection drops its stdin closes, it kills and reaps every child and exits.
// The controller's AgentClient (src/agent/client.ts) then speaks to it over the same pipe.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Launcher } from '../agent/client.js';
import { shq } from './ssh.js';

export const BOOT_MARK = 'nsprobe-boot';

/** The remote script for an agent of `size` bytes with this sha256. */
export function bootScript(size: number, sha256: string, sudo: boolean): string {
  return [
    'umask 077',
    `d=$(mktemp -d "\${TMPDIR:-/tmp}/.nsprobe-agent.XXXXXXXXXX") || { echo "${BOOT_MARK}: cannot make a private folder (mktemp -d)" >&2; exit 97; }`,
    `trap 'rm -rf "$d"' EXIT`,
    "trap 'exit 129' HUP",
    "trap 'exit 130' INT",
    "trap 'exit 143' TERM",
    `head -c ${size} > "$d/nsprobe-agent" || { echo "${BOOT_MARK}: cannot write the agent into $d" >&2; exit 97; }`,
    `n=$(wc -c < "$d/nsprobe-agent")`,
    `[ "$n" -eq ${size} ] || { echo "${BOOT_MARK}: the agent arrived short ($n of ${size} bytes)" >&2; exit 98; }`,
    `s=$( (sha256sum "$d/nsprobe-agent" || busybox sha256sum "$d/nsprobe-agent") 2>/dev/null)`,
    `case "$s" in ${sha256}*) ;; *) echo "${BOOT_MARK}: checksum mismatch (or no sha256sum on the target): not run" >&2; exit 98 ;; esac`,
    `chmod 700 "$d/nsprobe-agent"`,
    `${sudo ? 'sudo -n ' : ''}"$d/nsprobe-agent"`,
  ].join('\n');
}

/**
 * A launcher for the agent at `agent` (a file of this package) on the target `cmd` reaches:
 * `cmd` is the argv up to the remote command (`ssh ... -- HOST`); the script goes as one word
 * `sh -c '...'`, run by the login shell. The pipe's process (ssh) leads its own process group, so
 * the controller ends it in order and Ctrl-C on a terminal reaches the controller only.
 */
export function bootstrapLauncher(cmd: readonly string[], opts: { agent: string; sudo: boolean; label: string }): Launcher {
  return async () => {
    const bin = readFileSync(opts.agent);
    const sha = createHash('sha256').update(bin).digest('hex');
    const remote = `sh -c ${shq(bootScript(bin.length, sha, opts.sudo))}`;
    const proc = spawn(cmd[0], [...cmd.slice(1), remote], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', () => resolve());
      proc.once('error', (e) => reject(new Error(`cannot run ${cmd[0]}: ${(e as Error).message}`)));
    });
    let said = '';
    proc.stderr!.on('data', (d: Buffer) => (said = (said + d.toString('utf8')).slice(-4096)));
    // What the target says is kept for a failure's message; it never keeps this process alive
    // (the client refs the channel while a reply is awaited).
    (proc.stderr as unknown as { unref?: () => void }).unref?.();
    proc.stdin!.on('error', () => undefined);
    proc.stdin!.write(bin);
    const ch = { stdin: proc.stdin!, stdout: proc.stdout!, proc, label: opts.label, said: () => said };
    return ch;
  };
}
