// Remote targets as the person gives them: `--ssh [user@]host[:port]` (a comma-separated list,
// repeatable) and `--hosts FILE` (one target per line). Pure parsing; every error is one
// UsageError line (exit 2).
import { UsageError } from '../args.js';
import { readCapped } from '../host/hostfs.js';
import { scrubLine } from '../text.js';

export interface Target {
  /** As given ("root@db1:2222"). */
  spec: string;
  user: string | null;
  host: string;
  port: number | null;
  /** A folder name for the host's reports ("root@db1_2222"): only [A-Za-z0-9._@-]. */
  slug: string;
}

/** Largest --hosts file read (100,000 short lines). */
export const HOSTS_FILE_MAX_BYTES = 4 << 20;

// A user name as OpenSSH and useradd accept it; a host name, an ssh_config alias, an IPv4 address,
// or an IPv6 address in brackets. Nothing that starts with '-' (it would reach ssh as an option).
const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$/;
const HOST = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const HOST6 = /^\[([0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?)\]$/;

/** One target, or a UsageError that names it. */
export function parseTarget(spec: string, where = '--ssh'): Target {
  const s = spec.trim();
  const bad = (why: string): never => {
    throw new UsageError(`${where}: '${scrubLine(s)}' is not a target: ${why} (expected [user@]host[:port])`);
  };
  if (!s) bad('empty');
  let rest = s;
  let user: string | null = null;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) bad(`'${scrubLine(user)}' is not a user name`);
  }
  let host = rest;
  let port: number | null = null;
  const m6 = /^(\[[^\]]*\])(?::(.*))?$/.exec(rest);
  let portText: string | undefined;
  if (m6) {
    if (!HOST6.test(m6[1])) bad(`'${scrubLine(m6[1])}' is not an IPv6 address`);
    host = m6[1].slice(1, -1);
    portText = m6[2];
  } else {
    const colon = rest.indexOf(':');
    if (colon >= 0) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    }
    if (!host) bad('no host name');
    if (!HOST.test(host)) bad(`'${scrubLine(host)}' is not a host name`);
  }
  if (portText !== undefined) {
    const n = Number(portText);
    if (!/^\d{1,5}$/.test(portText) || n < 1 || n > 65535) bad(`port '${scrubLine(portText)}' is not a number from 1 to 65535`);
    port = n;
  }
  const slug = `${user ? `${user}@` : ''}${host.replace(/[^A-Za-z0-9._-]/g, '_')}${port !== null ? `_${port}` : ''}`;
  return { spec: s, user, host, port, slug };
}

/** Targets of a list; the same target twice is an error (its reports would overwrite each other). */
export function parseTargets(specs: readonly string[], where = '--ssh'): Target[] {
  const out: Target[] = [];
  for (const spec of specs) {
    const t = parseTarget(spec, where);
    const twin = out.find((o) => o.slug === t.slug);
    if (twin) throw new UsageError(`${where}: '${scrubLine(t.spec)}' is given twice${twin.spec !== t.spec ? ` (as '${scrubLine(twin.spec)}')` : ''}: give each host once`);
    out.push(t);
  }
  return out;
}

/**
 * The targets of a --hosts file: one per line; `#` starts a comment (whole line or after a target);
 * blank lines are skipped. The file is read as a bounded regular file (no FIFO, device or
 * directory can make this hang). Any bad line is the one error: `hosts file F line N: ...`.
 */
export function readHostsFile(path: string): string[] {
  const r = readCapped(path, { maxBytes: HOSTS_FILE_MAX_BYTES });
  if (!r.ok) throw new UsageError(`--hosts ${scrubLine(path)}: cannot read it (${r.reason})`);
  const text = r.data.toString('utf8');
  if (text.includes('\0')) throw new UsageError(`--hosts ${scrubLine(path)}: a binary file, not a hosts file (one [user@]host[:port] per line)`);
  const specs: string[] = [];
  text.split('\n').forEach((line, i) => {
    const body = line.replace(/#.*$/, '').trim();
    if (!body) return;
    if (/\s/.test(body)) throw new UsageError(`--hosts ${scrubLine(path)} line ${i + 1}: one target per line, got '${scrubLine(body)}'`);
    try {
      parseTarget(body, 'x');
    } catch (e) {
      throw new UsageError(`--hosts ${scrubLine(path)} line ${i + 1}: ${(e as Error).message.replace(/^x: /, '')}`);
    }
    specs.push(body);
  });
  if (!specs.length) throw new UsageError(`--hosts ${scrubLine(path)}: no targets in it (one [user@]host[:port] per line, # for comments)`);
  return specs;
}
