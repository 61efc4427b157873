// The OpenSSH client as nsprobe's pipe to a remote host: the argv that reaches a target (so the
// person's ssh_config, keys, agent and ProxyJump all apply), a preflight that learns the target's
// architecture and whether login (and sudo -n) work, and the words that say why a host was not
// reached. The agent itself is copied and run by the bootstrap (src/agent/bootstrap.ts) over the
// same argv: `--ssh` is `--via` with this command.
import { spawn } from 'node:child_process';
import { UsageError } from '../args.js';
import { scrubLine } from '../text.js';
import type { Target } from './targets.js';

export interface SshSettings {
  /** --ssh-config FILE: `ssh -F FILE` (default: the person's own ~/.ssh/config and /etc/ssh/ssh_config). */
  config: string | null;
  /** --ssh-option KEY=VALUE, each `ssh -o KEY=VALUE`, in order. */
  options: string[];
  /** NSPROBE_SSH_ARGS split into words as a shell would (Ansible's ansible_ssh_common_args). */
  extra: string[];
  /** --sudo: run the agent through `sudo -n`. */
  sudo: boolean;
}

/** What stopped a host before any probe ran, as a stable id (also the cells' gate in the matrix). */
export type NotReached = 'unreachable' | 'login-refused' | 'host-key' | 'sudo-refused' | 'arch-missing' | 'no-agent' | 'agent-failed' | 'ssh-failed' | 'stopped';

export const NOT_REACHED_WORDS: Record<NotReached, string> = {
  unreachable: 'host unreachable',
  'login-refused': 'login refused',
  'host-key': 'host key not verified',
  'sudo-refused': 'sudo -n refused',
  'arch-missing': 'no agent for its architecture',
  'no-agent': 'this nsprobe has no agent to copy',
  'agent-failed': 'the agent did not start',
  'ssh-failed': 'ssh failed',
  stopped: 'stopped before it was probed',
};

/** Architectures an agent is built for (issue 17: static x86_64 and aarch64). */
export const AGENT_ARCHES = ['x86_64', 'aarch64'] as const;

/**
 * Splits a string into words as a POSIX shell would (single and double quotes, backslashes), for
 * NSPROBE_SSH_ARGS: `-o ProxyCommand="ssh -W %h:%p jump"` is two words. No expansion of any kind.
 */
export function shellWords(s: string, what = 'NSPROBE_SSH_ARGS'): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new UsageError(`${what}: a ' is not closed`);
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`\n'.includes(s[j + 1])) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new UsageError(`${what}: a " is not closed`);
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < s.length) cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** Quotes one word for a POSIX shell (the remote command ssh hands to the login shell). */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `ssh [-F cfg] EXTRA... -o OPT... -o BatchMode=yes -o ConnectTimeout=10 [-p PORT] [-l USER] -- HOST`: what precedes the remote command. */
export function sshArgv(t: Target, s: SshSettings): string[] {
  const argv = ['ssh'];
  if (s.config) argv.push('-F', s.config);
  argv.push(...s.extra);
  for (const o of s.options) argv.push('-o', o);
  // ssh takes the first value given for an option: the person's own come first, these are defaults.
  // BatchMode: no prompt can hang a run (keys and ssh-agent work; passwords do not).
  argv.push('-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4');
  if (t.port !== null) argv.push('-p', String(t.port));
  if (t.user !== null) argv.push('-l', t.user);
  argv.push('--', t.host);
  return argv;
}

/** Checks --ssh-option values: KEY=VALUE with a plain key. */
export function checkSshOptions(opts: readonly string[]): void {
  for (const o of opts) if (!/^[A-Za-z][A-Za-z0-9]*=./s.test(o)) throw new UsageError(`--ssh-option takes KEY=VALUE (an ssh_config option, e.g. IdentityFile=~/.ssh/id_ed25519), not '${scrubLine(o)}'`);
}

/** The id and the one line that say why ssh (exit 255) did not reach a host. */
export function classifySsh(stderr: string): { kind: NotReached; line: string } {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(Warning: Permanently added|debug\d?:)/.test(l));
  const line = scrubLine(lines.at(-1) ?? 'ssh exited with status 255 and said nothing');
  const all = lines.join('\n');
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No (ED25519|RSA|ECDSA)? ?host key is known/i.test(all)) return { kind: 'host-key', line };
  if (/Permission denied|Too many authentication failures|Authentication failed|no mutual signature|not allowed because/i.test(all)) return { kind: 'login-refused', line };
  if (/Could not resolve hostname|Name or service not known|Connection refused|ECONNREFUSED|No route to host|timed out|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|UNKNOWN port|ProxyCommand|proxy|Broken pipe/i.test(all)) return { kind: 'unreachable', line };
  return { kind: 'ssh-failed', line };
}

export interface Preflight {
  ok: boolean;
  /** Who the agent will run as there (after sudo -n with --sudo): what its sandboxes are made as. */
  identity?: { euid: number; egid: number; uidMap: string; gidMap: string };
  kind?: NotReached;
  line?: string;
  arch?: string;
  uid?: number;
}

const MARK = 'nsprobe-preflight';

/**
 * One short login before anything is copied: the target's architecture and uid (and, with --sudo,
 * whether `sudo -n` works). Any failure is the host's result, in words, never an exception.
 */
export function preflight(t: Target, s: SshSettings, signal?: AbortSignal, timeoutMs = 60000): Promise<Preflight> {
  // The agent's identity (euid, egid, id maps), as the login or, with --sudo, as sudo -n gives it.
  const id = `echo ${MARK}-id "$(id -u)" "$(id -g)"; echo ${MARK}-uid_map $(cat /proc/self/uid_map); echo ${MARK}-gid_map $(cat /proc/self/gid_map)`;
  const remote = `echo ${MARK} "$(uname -m)" "$(id -u)"${s.sudo ? ` && { sudo -n true 2>&1 | head -n 2 | sed 's/^/${MARK}-sudo: /'; sudo -n true >/dev/null 2>&1 && echo ${MARK}-sudo-ok && sudo -n sh -c ${shq(id)}; }` : `; ${id}`}`;
  const argv = [...sshArgv(t, s), remote];
  return new Promise((resolve) => {
    // Its own process group, so that a stop or a timeout ends ssh and its ProxyCommand together
    // (ssh leaves a ProxyCommand running when it is killed).
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    const cap = (a: string, d: Buffer) => (a + d.toString('utf8')).slice(-16384);
    child.stdout.on('data', (d: Buffer) => (out = cap(out, d)));
    child.stderr.on('data', (d: Buffer) => (err = cap(err, d)));
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // gone
      }
    };
    const timer = setTimeout(() => killGroup('SIGKILL'), timeoutMs);
    const onAbort = () => killGroup('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    child.on('error', (e) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({ ok: false, kind: 'ssh-failed', line: `cannot run ssh: ${(e as NodeJS.ErrnoException).code ?? e.message}` });
    });
    // 'exit', not 'close': a ProxyCommand that outlives ssh holds its stderr open. What ssh wrote
    // is read until its pipes end, or for 200 ms at most; then the group is ended.
    child.on('exit', (code) => {
      clearTimeout(timer);
      const ended = Promise.all([child.stdout, child.stderr].map((s) => (s.readableEnded ? null : new Promise((r) => s.once('end', r)))));
      void Promise.race([ended, new Promise((r) => setTimeout(r, 200))]).then(() => {
        killGroup('SIGKILL');
        child.stdout.destroy();
        child.stderr.destroy();
        if (!settled) finish(code);
      });
    });
    const finish = (code: number | null) => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return resolve({ ok: false, kind: 'stopped', line: 'stopped' });
      const m = new RegExp(`^${MARK} (\\S+) (\\d+)$`, 'm').exec(out);
      if (!m) {
        if (code === 255 || code === null) {
          const c = code === null ? { kind: 'unreachable' as const, line: `no answer within ${Math.round(timeoutMs / 1000)} s` } : classifySsh(err);
          return resolve({ ok: false, ...c });
        }
        return resolve({ ok: false, kind: 'ssh-failed', line: scrubLine(`the login shell did not run the preflight (exit ${code}): ${err.trim().split('\n').at(-1) ?? ''}`) });
      }
      const arch = m[1];
      const uid = Number(m[2]);
      if (s.sudo && !new RegExp(`^${MARK}-sudo-ok$`, 'm').test(out)) {
        const said = [...out.matchAll(new RegExp(`^${MARK}-sudo: (.*)$`, 'gm'))].map((x) => x[1]).join(' ').trim();
        return resolve({ ok: false, kind: 'sudo-refused', arch, uid, line: scrubLine(said || 'sudo -n true failed') });
      }
      if (!(AGENT_ARCHES as readonly string[]).includes(arch)) return resolve({ ok: false, kind: 'arch-missing', arch, uid, line: scrubLine(`the target is ${arch}; the agent is built for ${AGENT_ARCHES.join(' and ')}`) });
      const idm = new RegExp(`^${MARK}-id (\\d+) (\\d+)$`, 'm').exec(out);
      const map = (n: string) => {
        const w = (new RegExp(`^${MARK}-${n}(.*)$`, 'm').exec(out)?.[1] ?? '').trim().split(/\\s+/).filter(Boolean);
        const lines: string[] = [];
        for (let i = 0; i + 2 < w.length; i += 3) lines.push(`${w[i]} ${w[i + 1]} ${w[i + 2]}`);
        return lines.join('\\n');
      };
      const identity = idm ? { euid: Number(idm[1]), egid: Number(idm[2]), uidMap: map('uid_map'), gidMap: map('gid_map') } : undefined;
      resolve({ ok: true, arch, uid, identity });
    };
  });
}
