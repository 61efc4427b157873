// sshd test hosts: real OpenSSH servers (Debian's openssh-server) on this machine, each in
// namespaces the test makes, so `--ssh` and the Ansible role meet a real sshd without any network
// beyond those namespaces and without touching ~/.ssh, /etc/ssh or the host's /tmp.
//
// Each host is a holder process (`unshare -u -m -n`, plus `-U` for the CentOS-7-like one) whose
// namespaces hold: its own hostname; a loopback interface, the only address sshd listens on; a
// tmpfs on /run (sshd's privilege-separation dir) and on /tmp (the target's whole writable area:
// its tmp and the login user's home, /tmp/home), so "nothing is left on the target" is "that
// tmpfs holds only the empty home"; a sysfs of its own network namespace (with the machine's
// cgroup tree below it); and a bind-mounted /etc/passwd giving the login user that home
// (and nobody a shell). The client reaches sshd through a ProxyCommand that enters the network
// namespace (`nsenter -t HOLDER -n node ssh-relay.mjs 127.0.0.1 PORT`). Keys (host and user),
// sshd_config, ssh_config and known_hosts are made by the test in one nsprobe-test-* folder.
//
// Kinds:
//   plain         login root, sshd as root;
//   userns-limit  sshd as root of a user namespace (ids 0-65535 mapped to themselves) in which
//                 user.max_user_namespaces=0 was written: a CentOS 7 target, where the knob is 0;
//   unprivileged  sshd runs as nobody (uid 65534) on port 2222, the login user is nobody.
// And one unreachable alias: the plain host's namespace, a port nothing listens on.
//
// close() kills every process in each host's network namespace (sshd, its sessions, anything a
// run left) and removes the folder; the same happens at the worker's exit if a test failed first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './run.js';

/** The top folder under /tmp that holds the checkout or this Node, when one does (else null). */
const KEEP_TOP = [ROOT, process.execPath].map((p) => /^\/tmp\/([^/]+)(?:\/|$)/.exec(p)?.[1]).find(Boolean) ?? null;

export type SshdKind = 'plain' | 'userns-limit' | 'unprivileged';

export interface SshdHost {
  kind: SshdKind;
  /** The ssh_config alias (also the host's hostname). */
  name: string;
  user: string;
  port: number;
  /** `user@name:port`, as `--ssh` takes it. */
  target: string;
  /** The holder of the host's namespaces. */
  holder: number;
  /** The listening sshd. */
  sshd: number;
  /** The host's folder (keys, config), seen from outside. */
  dir: string;
  /** The same folder as the host sees it. */
  inside: string;
  /** argv prefix that runs a program as the login user in the host's namespaces (a local run "on" the host). */
  enter: string[];
  /** ssh options (each `-o K=V` as two items) that reach this host without the lab's ssh_config. */
  options: string[];
  /** The client key. */
  key: string;
  /** The last lines sshd wrote (for a failure's message). */
  log(): string;
}

export interface SshdLab {
  dir: string;
  /** ssh_config with every host (and `unreachable`). */
  config: string;
  hosts: SshdHost[];
  /** An alias that resolves to a port nobody listens on (connection refused). */
  unreachable: { name: string; target: string; options: string[] };
  /** Processes in the host's network namespace other than its holder and sshd ("PID cmdline"), after they had settleMs to end. */
  strays(h: SshdHost, settleMs?: number): Promise<string[]>;
  /** What the host's /tmp holds besides the login user's empty home (its tmp and home, recursively). */
  leftovers(h: SshdHost): string[];
  close(): Promise<void>;
}

/** Why the sshd hosts cannot be made here, or null. */
export function sshdMissing(): string | null {
  if (process.geteuid?.() !== 0) return 'needs root';
  // (not tools.ts's missingTools: that module loads ava, and this one is also used outside tests)
  const gone = ['/usr/sbin/sshd', 'ssh', 'ssh-keygen', 'unshare', 'nsenter', 'setpriv', 'ip'].filter((c) => {
    for (const d of c.includes('/') ? [''] : (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
      try {
        accessSync(d ? join(d, c) : c, 1);
        return false;
      } catch {
        // not here
      }
    }
    return true;
  });
  return gone.length ? `${gone.join(' and ')} ${gone.length > 1 ? 'are' : 'is'} not installed (Debian: openssh-server, openssh-client, util-linux, iproute2)` : null;
}

const live = new Set<SshdLab>();
const pending = new Set<() => void>();
process.on('exit', () => {
  for (const f of pending) f();
});

function netnsOf(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

/** Every process whose network namespace is `ns`. */
function processesIn(ns: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    if (netnsOf(Number(e)) === ns) out.push(Number(e));
  }
  return out;
}

function killAll(ns: string | null, also: number[]): void {
  const pids = new Set([...(ns ? processesIn(ns) : []), ...also]);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

function ok(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

/** Resolves when the host's netns has a listening TCP socket on `port` (read from /proc/PID/net/tcp). */
async function listening(holder: number, port: number, sshd: ChildProcess, log: () => string): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (let i = 0; i < 200; i++) {
    const tcp = readFileSync(`/proc/${holder}/net/tcp`, 'utf8');
    if (tcp.split('\n').some((l) => l.includes(hex) && / 0A /.test(l))) return;
    if (sshd.exitCode !== null) throw new Error(`sshd exited (${sshd.exitCode}): ${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sshd did not listen on port ${port}: ${log()}`);
}

function passwdFor(kind: SshdKind): string {
  const lines = readFileSync('/etc/passwd', 'utf8').split('\n');
  return lines
    .map((l) => {
      const f = l.split(':');
      if (f.length < 7) return l;
      if (kind !== 'unprivileged' && f[0] === 'root') f[5] = '/tmp/home';
      if (kind === 'unprivileged' && f[2] === '65534') {
        f[5] = '/tmp/home';
        f[6] = '/bin/sh';
      }
      return f.join(':');
    })
    .join('\n');
}

async function startHost(lab: string, kind: SshdKind, key: string, pub: string, cleanup: Set<() => void>, children: ChildProcess[], extra: readonly string[]): Promise<SshdHost> {
  const name = `nsprobe-${kind}`;
  const dir = join(lab, kind);
  const inside = '/run/host';
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const unpriv = kind === 'unprivileged';
  const uid = unpriv ? 65534 : 0;
  const user = unpriv ? 'nobody' : 'root';
  const port = unpriv ? 2222 : 22;
  ok(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, 'host_ed25519')]);
  if (unpriv) chownSync(join(dir, 'host_ed25519'), 65534, 65534);
  writeFileSync(join(dir, 'authorized_keys'), pub, { mode: 0o644 });
  writeFileSync(join(dir, 'passwd'), passwdFor(kind), { mode: 0o644 });
  // A shadow entry for the login user only, readable by it: a sshd running as nobody cannot read
  // the real one and then counts the account as locked.
  writeFileSync(join(dir, 'shadow'), `${user}:*:20000:0:99999:7:::\n`, { mode: 0o644 });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${inside}/host_ed25519`,
      `AuthorizedKeysFile ${inside}/authorized_keys`,
      'PidFile none',
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'PrintMotd no',
      'PrintLastLog no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'LogLevel INFO',
      ...extra,
      '',
    ].join('\n'),
  );
  // The checkout (and the Node in it, .cache/node) must stay visible when it lies under /tmp (a
  // fresh clone in /tmp/x): the host's own tmpfs on /tmp would hide it. It is bound back at the
  // same path, and leftovers() does not count it.
  const keep = KEEP_TOP ? [`mkdir /run/keep && mount --rbind /tmp/${KEEP_TOP} /run/keep`] : [];
  const keepBack = KEEP_TOP ? [`mkdir /tmp/${KEEP_TOP} && mount --rbind /run/keep /tmp/${KEEP_TOP} && umount -l /run/keep && rmdir /run/keep`] : [];
  const setup = [
    'set -e',
    'read _go',
    'mount -t tmpfs -o mode=755 nsprobe-test-run /run',
    `mkdir -m 755 /run/sshd ${inside}`,
    `mount --bind "$1" ${inside}`,
    `mount --bind ${inside}/passwd /etc/passwd`,
    `mount --bind ${inside}/shadow /etc/shadow`,
    // A sysfs of the host's own network namespace (what /sys is on a real host: its interfaces in
    // /sys/class/net are those netlink lists), with the machine's cgroup tree kept below it.
    'mkdir /run/oldsys && mount --rbind /sys /run/oldsys',
    'mount -t sysfs nsprobe-test-sys /sys',
    'mount --rbind /run/oldsys/fs/cgroup /sys/fs/cgroup',
    'umount -l /run/oldsys && rmdir /run/oldsys',
    ...keep,
    'mount -t tmpfs -o mode=1777 nsprobe-test-tmp /tmp',
    ...keepBack,
    `mkdir -m 700 /tmp/home && chown ${uid}:${uid} /tmp/home`,
    `hostname ${name}`,
    'ip link set lo up',
    // (in a child: this shell was exec'd before its uid was mapped, so it holds no capabilities;
    // a program it execs now, as uid 0 of the namespace, holds them all)
    kind === 'userns-limit' ? "sh -c 'echo 0 > /proc/sys/user/max_user_namespaces'" : 'true',
    'echo ready',
    'exec sleep 2147483647',
  ].join('\n');
  const nsFlags = kind === 'userns-limit' ? ['-U', '-u', '-m', '-n'] : ['-u', '-m', '-n'];
  const holderProc = spawn('setpriv', ['--pdeathsig', 'KILL', 'unshare', ...nsFlags, 'sh', '-c', setup, 'sh', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(holderProc);
  const holder = holderProc.pid!;
  let holderErr = '';
  holderProc.stderr!.on('data', (d: Buffer) => (holderErr += d.toString()));
  const ns0 = netnsOf(holder);
  cleanup.add(() => killAll(netnsOf(holder) !== ns0 ? netnsOf(holder) : null, [holder]));
  // setpriv execs unshare, which execs sh: one pid throughout. Wait for the namespaces to exist
  // (the net namespace link changes), map ids for the user-namespace host, then let it go on.
  for (let i = 0; i < 200 && netnsOf(holder) === ns0 && holderProc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 10));
  if (kind === 'userns-limit') {
    writeFileSync(`/proc/${holder}/uid_map`, '0 0 65536\n');
    writeFileSync(`/proc/${holder}/gid_map`, '0 0 65536\n');
  }
  const ns = netnsOf(holder);
  cleanup.add(() => killAll(ns, [holder]));
  holderProc.stdin!.write('\n');
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holderProc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    holderProc.on('exit', (c) => reject(new Error(`sshd host ${kind}: namespace setup failed (${c}): ${holderErr.trim()}`)));
  });
  const enterNs = ['nsenter', '-t', String(holder), ...(kind === 'userns-limit' ? ['-U'] : []), '-u', '-m', '-n'];
  const asUser = unpriv ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'env', 'HOME=/tmp/home', 'USER=nobody', 'LOGNAME=nobody'] : ['env', 'HOME=/tmp/home'];
  const sshdProc = spawn(enterNs[0], [...enterNs.slice(1), ...(unpriv ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), '/usr/sbin/sshd', '-D', '-e', '-f', `${inside}/sshd_config`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(sshdProc);
  let log = '';
  sshdProc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  await listening(holder, port, sshdProc, () => log.trim());
  const relay = `nsenter -t ${holder} -n ${process.execPath} ${join(ROOT, 'test', 'helpers', 'ssh-relay.mjs')} 127.0.0.1 %p`;
  const knownHosts = join(lab, 'known_hosts');
  writeFileSync(knownHosts, `${name} ${readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`, { flag: 'a' });
  const options = ['-o', `ProxyCommand=${relay}`, '-o', `HostKeyAlias=${name}`, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', `IdentityFile=${key}`, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'LogLevel=ERROR'];
  return { kind, name, user, port, target: `${user}@${name}:${port}`, holder, sshd: sshdProc.pid!, dir, inside, enter: [...enterNs, ...asUser], options, key, log: () => log.trim() };
}

function configBlock(alias: string, h: { user: string; port: number; options: string[] }): string {
  const lines = [`Host ${alias}`, `  User ${h.user}`, `  Port ${h.port}`];
  for (let i = 1; i < h.options.length; i += 2) {
    const [k, v] = h.options[i].split(/=(.*)/s);
    lines.push(`  ${k} ${v}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Starts the sshd hosts (all three kinds by default; `sshdConfig`: more sshd_config lines for
 * each, e.g. a ForceCommand). Skip the test with sshdMissing() first.
 */
export async function startSshdLab(kinds: readonly SshdKind[] = ['plain', 'userns-limit', 'unprivileged'], opts: { sshdConfig?: readonly string[] } = {}): Promise<SshdLab> {
  const dir = mkdtempSync(join(tmpdir(), 'nsprobe-test-sshd-'));
  chmodSync(dir, 0o755);
  const cleanup = new Set<() => void>();
  const children: ChildProcess[] = [];
  // Killed processes are reaped by Node's event loop: wait for that, so none stays a zombie.
  const reaped = () => Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  const finalize = () => {
    for (const f of cleanup) f();
    rmSync(dir, { recursive: true, force: true });
  };
  pending.add(finalize);
  const key = join(dir, 'id_ed25519');
  let hosts: SshdHost[] = [];
  try {
    ok(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nsprobe-test-client', '-f', key]);
    const pub = readFileSync(`${key}.pub`, 'utf8');
    for (const k of kinds) hosts.push(await startHost(dir, k, key, pub, cleanup, children, opts.sshdConfig ?? []));
  } catch (e) {
    finalize();
    pending.delete(finalize);
    await reaped();
    throw e;
  }
  const base = hosts[0];
  const unreachableOptions = base.options.map((o) => (o.startsWith('ProxyCommand=') ? o.replace(/%p$/, '2999') : o));
  const unreachable = { name: 'nsprobe-unreachable', target: 'root@nsprobe-unreachable:2999', options: unreachableOptions };
  const config = join(dir, 'ssh_config');
  writeFileSync(config, [...hosts.map((h) => configBlock(h.name, h)), configBlock(unreachable.name, { user: 'root', port: 2999, options: unreachableOptions })].join('\n'));
  const lab: SshdLab = {
    dir,
    config,
    hosts,
    unreachable,
    async strays(h, settleMs = 5000) {
      const ns = netnsOf(h.holder);
      const now = () => (ns ? processesIn(ns).filter((p) => p !== h.holder && p !== h.sshd) : []);
      // A session's processes end a moment after the client does (sshd reaps, the relay sees EOF).
      for (let waited = 0; now().length && waited < settleMs; waited += 50) await new Promise((r) => setTimeout(r, 50));
      return now().map((p) => {
        try {
          return `${p} ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`;
        } catch {
          return `${p} (gone)`;
        }
      });
    },
    leftovers(h) {
      const root = `/proc/${h.holder}/root/tmp`;
      const out: string[] = [];
      const walk = (d: string, rel: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (!rel && e.name === KEEP_TOP) continue; // the checkout, bound back (see setup)
          if (r !== 'home') out.push(r);
          if (e.isDirectory()) walk(join(d, e.name), r);
        }
      };
      walk(root, '');
      return out;
    },
    async close() {
      finalize();
      pending.delete(finalize);
      await reaped();
      live.delete(lab);
      hosts = [];
    },
  };
  live.add(lab);
  return lab;
}
