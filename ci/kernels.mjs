#!/usr/bin/env node
// Kernel matrix that runs on this machine: boot Debian's packaged kernels in QEMU (TCG, no KVM
// needed) with a minimal root (busybox, util-linux unshare/setpriv, the kernel's config: no Node,
// no checkout), which serves a shell as root and then one as nobody on virtio-serial ports. The
// controller stays here: for each it runs `nsprobe --via 'node ci/guest-pipe.mjs SOCKET'`, whose
// bootstrap copies the static agent into the guest; the reports' host facts are the guest's. Every
// kernel plus the host's own run is merged into one matrix. See docs/kernels.md.
//
//   node ci/kernels.mjs [--kernels 6.1,6.1-cloud,6.12-cloud,6.12-rt|PACKAGE,...] [--out reports/kernels]
//                       [--timeout 600] [--cache .cache/kernels] [--memory 2048] [--cpus 2] [--no-host]
//                       [--only uts,net,...] [--check]
//
// Exit: 0 every kernel delivered both reports and the merge worked; 1 a kernel failed, hung or the
// merge failed; 2 bad flags; 3 a tool is missing and could not be installed; 130 interrupted.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { parseCommand, quietStdout } from './args.mjs';
import { buildKernel, sourceVersion, SOURCE_PKG } from './kernel-build.mjs';
import { aptInstall, which } from './tools.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Short names for the --kernels flag: Debian meta packages, resolved to the current kernel package.
 * `suite` set: resolved and fetched from that suite with the project's private apt configuration
 * (.cache/apt: its own sources.list, lists and archives; the machine's apt sources are never changed).
 * Without `suite`: the machine's own apt (bookworm, bookworm-security).
 */
export const ALIASES = {
  '6.1': { pkg: 'linux-image-amd64' },
  '6.1-cloud': { pkg: 'linux-image-cloud-amd64' },
  '6.1-rt': { pkg: 'linux-image-rt-amd64' },
  '6.12': { pkg: 'linux-image-6.12-amd64' },
  '6.12-cloud': { pkg: 'linux-image-6.12-cloud-amd64' },
  '6.12-rt': { pkg: 'linux-image-6.12-rt-amd64' },
  '5.10': { pkg: 'linux-image-amd64', suite: 'bullseye' },
  '5.10-cloud': { pkg: 'linux-image-cloud-amd64', suite: 'bullseye' },
  'bpo-cloud': { pkg: 'linux-image-cloud-amd64', suite: 'bookworm-backports' },
  'trixie': { pkg: 'linux-image-amd64', suite: 'trixie' },
  'trixie-cloud': { pkg: 'linux-image-cloud-amd64', suite: 'trixie' },
  'trixie-bpo-cloud': { pkg: 'linux-image-cloud-amd64', suite: 'trixie-backports' },
  // built here from linux-source-6.1 without CONFIG_USER_NS, CONFIG_TIME_NS, CONFIG_VETH (ci/kernel-build.mjs)
  noopts: { custom: true },
  // aarch64 under qemu-system-aarch64 (TCG), its own private apt (arm64 lists) next to the amd64 one
  'arm64-cloud': { pkg: 'linux-image-cloud-arm64', suite: 'trixie', arch: 'arm64' },
};
/** The suites the private apt configuration knows (deb.debian.org, main). */
export const PRIVATE_SUITES = ['bullseye', 'bookworm-backports', 'trixie', 'trixie-backports'];
export const DEFAULT_KERNELS = ['6.1', '6.1-cloud', '6.12-cloud', '6.12-rt'];
/** --all: one kernel per suite and flavour that matters, 5.10 through the newest any suite offers (cloud: smallest, fastest to boot). */
// bpo-cloud (6.12.95, bookworm-backports) is left out: under TCG here it crashed in early boot 3 times of 3 (docs/kernels.md, Findings)
// noopts first: the kernel built here (minutes to build when not cached) fails fast if something is off
// trixie-bpo-cloud (7.3.4, the newest): its packages ship no modules.builtin; initramfsModules takes what modprobe cannot find as built in there
export const ALL_KERNELS = ['noopts', '5.10-cloud', '6.1-cloud', '6.12-cloud', 'trixie-cloud', 'trixie-bpo-cloud'];

// ---------- scenarios: a host configuration set at boot, with the verdicts it must produce ----------

const NS = ['uts', 'ipc', 'pid', 'net', 'mnt', 'user', 'cgroup', 'time'];
/**
 * Each scenario is a real host configuration: sysctls on the kernel command line (`sysctl.<name>=<value>`,
 * applied by kernels >= 5.8 before init runs, in the initial user namespace) or mounts the guest makes
 * over /proc before nsprobe starts, as container engines do. `expect` lists the probes that must be
 * `unsupported`, with the gate that must explain them; every other probe that runs must pass.
 */
export const SCENARIOS = {
  baseline: { name: 'no gate', summary: 'all pass' },
  userns0: { name: 'max_user_namespaces=0', sysctl: { 'user.max_user_namespaces': 0 } },
  uuc0: { name: 'unprivileged_userns_clone=0', sysctl: { 'kernel.unprivileged_userns_clone': 0 }, needsSysctl: 'kernel/unprivileged_userns_clone' },
  ...Object.fromEntries(NS.filter((n) => n !== 'user').map((n) => [`${n}0`, { name: `max_${n}_namespaces=0`, sysctl: { [`user.max_${n}_namespaces`]: 0 } }])),
  'mnt0+net0': { name: 'max_mnt+max_net_namespaces=0', sysctl: { 'user.max_mnt_namespaces': 0, 'user.max_net_namespaces': 0 } },
  procmask: { name: 'masked /proc, read-only /proc/sys', mask: true },
  // only on the kernel built without the options (noopts): its config at /proc/config.gz, then hidden
  noopts: { name: 'no USER_NS/TIME_NS/VETH, /proc/config.gz', customOnly: true },
  'noopts-hidden': { name: 'no USER_NS/TIME_NS/VETH, config hidden', customOnly: true, hideConfig: true },
};
/** The options the noopts kernel lacks (ci/kernel-noopts.config): the kernel_config gate must name each. */
export const NOOPTS_MISSING = ['CONFIG_USER_NS', 'CONFIG_TIME_NS', 'CONFIG_VETH'];

/** The namespace types each probe's sandboxes create (besides the user namespace of rootless mode). */
export const SANDBOX_TYPES = {
  uts: ['uts'], ipc: ['ipc'], pid: ['pid'], net: ['net'], mnt: ['mnt'], user: ['user'], cgroup: ['cgroup'], time: ['time'],
  'net-veth': ['net'], join: ['pid', 'uts', 'ipc', 'net', 'mnt'], nesting: [],
  identity: ['uts', 'ipc', 'pid', 'net', 'mnt', 'cgroup', 'time'], 'pid-signals': ['pid'], 'ipc-mqueue': ['ipc', 'mnt'],
};
/** Types a probe creates only for some checks: without them it passes with those checks skipped, naming the gate (pid mounts a fresh /proc in a mount namespace). */
export const CHECK_TYPES = { pid: ['mnt'], mnt: ['pid'], nesting: ['pid'] };

/**
 * What a scenario must produce, per run (root = nsprobe as root, nobody = as uid 65534):
 * `blocks`: probes that must be `unsupported`, with that gate and a remedy, as [RegExp on the probe id, gate];
 * `skips`: probes that must pass with at least one check skipped naming that gate (the deep probes that
 * nest a user namespace inside a privileged one); every other probe that runs must pass.
 */
export function expected(sid, mode) {
  const rootless = /\/rootless$/;
  const deepUserns = /^(join|nesting|identity)\/privileged$/; // they create user namespaces below the privileged sandbox
  const deepUsernsNoTime = /^(join|nesting)\/privileged$/; // identity also creates a time namespace: without one it is blocked
  // a max_<type>_namespaces=0 limit blocks every probe whose sandbox creates that type (written out
  // here, not taken from the probes' own declarations, so a probe that changes what it creates shows up)
  const maxRules = (types) =>
    types.flatMap((n) => {
      const probes = Object.entries(SANDBOX_TYPES).filter(([, t]) => t.includes(n)).map(([id]) => id);
      const re = new RegExp(`^(${probes.join('|')})/${mode === 'root' ? '(privileged|rootless)' : 'rootless'}$`);
      return [[re, `max_${n}_namespaces`]];
    });
  const maxSkips = (types) =>
    types.flatMap((n) => {
      const probes = Object.entries(CHECK_TYPES).filter(([, t]) => t.includes(n)).map(([id]) => id);
      return probes.length ? [[new RegExp(`^(${probes.join('|')})/`), `max_${n}_namespaces`]] : [];
    });
  const none = { blocks: [], skips: [], gates: [] };
  switch (sid) {
    case 'baseline':
      return none;
    case 'procmask':
      // nothing is unsupported: the probes that mount a fresh proc inside a user namespace (refused:
      // /proc is not fully visible) or set a sysctl inside (refused: read-only /proc/sys) skip those checks
      return {
        blocks: [],
        skips: [[/^(pid|mnt|join)\/rootless$/, 'proc_fully_visible'], [/^net-veth\//, 'proc_sys_readonly']],
        gates: ['proc_fully_visible', 'proc_sys_readonly'],
      };
    case 'userns0':
      // the limit is charged in the initial user namespace: root cannot create one either
      return mode === 'root'
        ? { blocks: [[rootless, 'max_user_namespaces'], [/^user\/privileged$/, 'max_user_namespaces']], skips: [[deepUserns, 'max_user_namespaces']], gates: ['max_user_namespaces'] }
        : { blocks: [[rootless, 'max_user_namespaces']], skips: [], gates: ['max_user_namespaces'] };
    case 'uuc0':
      // root (CAP_SYS_ADMIN in the initial namespace) may still create a user namespace, but not one
      // nested below it (no CAP_SYS_ADMIN there in the initial namespace): nesting's user depth is 1.
      // Rootless mode runs as an unprivileged uid also when root starts nsprobe.
      return mode === 'root'
        ? { blocks: [[rootless, 'unprivileged_userns_clone']], skips: [[/^nesting\/privileged$/, 'unprivileged_userns_clone']], gates: ['unprivileged_userns_clone'] }
        : { blocks: [[rootless, 'unprivileged_userns_clone']], skips: [], gates: ['unprivileged_userns_clone'] };
    case 'noopts':
    case 'noopts-hidden': {
      // clone(CLONE_NEWUSER / CLONE_NEWTIME) fails with EINVAL for root's privileged probes whose
      // sandbox creates a user or time namespace; net-veth cannot make its veth pair. Every rootless
      // probe runs as an unprivileged uid (also when root starts nsprobe): there the kernel answers
      // EPERM (no user namespace is made, so no CAP_SYS_ADMIN for the rest), as for nobody.
      const lacking = Object.entries(SANDBOX_TYPES).filter(([, t]) => t.includes('user') || t.includes('time')).map(([id]) => id);
      const priv = new RegExp(`^(${[...lacking, 'net-veth'].join('|')})/privileged$`);
      const rootlessAll = /^[\w-]+\/rootless$/;
      // net-veth/privileged: the namespace is made; rtnetlink then has no "veth" kind (EOPNOTSUPP, named ENOTSUP)
      const veth = [/^net-veth\/privileged$/, 'kernel_config', 'ENOTSUP'];
      const privRule = [new RegExp(priv.source.replace('net-veth|', '')), 'kernel_config', 'EINVAL'];
      if (sid === 'noopts')
        return { blocks: [...(mode === 'root' ? [veth, privRule] : []), [rootlessAll, 'kernel_config', 'EPERM']], skips: [[deepUsernsNoTime, 'kernel_config']], gates: ['kernel_config'], causeNames: { kernel_config: NOOPTS_MISSING } };
      // no config readable: nothing is read (value null: an empty /proc/config.gz is not "every option
      // missing") and the gate is unknown; EINVAL at clone (root's privileged probes) is still put on
      // it, its remedy making the config readable, and the runner then reports it blocked by what it
      // saw (evidence), its cause still "no kernel config found"; an EPERM is put on nothing
      return {
        blocks: [...(mode === 'root' ? [veth, privRule] : []), [rootlessAll, null, 'EPERM']],
        skips: [[deepUsernsNoTime, 'kernel_config']],
        gates: [],
        gateStatus: { kernel_config: mode === 'root' ? 'blocked' : 'unknown' },
        gateUnread: ['kernel_config'],
      };
    }
    case 'mnt0+net0':
      return { blocks: maxRules(['mnt', 'net']), skips: maxSkips(['mnt', 'net']), gates: ['max_mnt_namespaces', 'max_net_namespaces'] };
    default: {
      const n = /^(\w+)0$/.exec(sid)?.[1];
      return n ? { blocks: maxRules([n]), skips: maxSkips([n]), gates: [`max_${n}_namespaces`] } : none;
    }
  }
}

/** Compares a guest report with its scenario's declared verdicts: mismatches (empty = as expected) and a one-line summary. */
export function checkScenario(sid, mode, report) {
  const { blocks, skips, gates: mustBlock, causeNames = {}, gateStatus = {}, gateUnread = [] } = expected(sid, mode);
  const mismatches = [];
  for (const id of mustBlock) {
    const g = report.gates.find((x) => x.id === id);
    if (g?.status !== 'blocked') mismatches.push(`gate ${id} is ${g?.status ?? 'missing'}, expected blocked`);
    else if (!g.remedy) mismatches.push(`gate ${id} is blocked without a remedy`);
    else for (const name of causeNames[id] ?? []) if (!g.cause.includes(name) || !g.remedy.includes(name)) mismatches.push(`gate ${id} does not name ${name} in its cause and remedy: ${g.cause}`);
  }
  for (const id of gateUnread) {
    const g = report.gates.find((x) => x.id === id);
    if (!g || g.value !== null || !/^no kernel config found/.test(g.cause) || /CONFIG_\w+ not enabled/.test(g.cause)) mismatches.push(`gate ${id} read a config (value ${JSON.stringify(g?.value ?? null).slice(0, 80)}): ${g?.cause ?? 'missing'}`);
  }
  for (const [id, status] of Object.entries(gateStatus)) {
    const g = report.gates.find((x) => x.id === id);
    if (g?.status !== status) mismatches.push(`gate ${id} is ${g?.status ?? 'missing'}, expected ${status}: ${g?.cause ?? ''}`);
  }
  const blocked = new Map();
  for (const p of report.probes) {
    const rule = blocks.find(([re]) => re.test(p.id));
    const skip = skips.find(([re]) => re.test(p.id));
    const gateText = p.gate ? ` (gate ${p.gate})` : '';
    if (rule) {
      // gate null: unsupported with no host gate to blame; rule[2]: the errno it must carry
      if (p.status !== 'unsupported' || (p.gate ?? null) !== rule[1]) mismatches.push(`${p.id} is ${p.status}${gateText}, expected unsupported (${rule[1] ? `gate ${rule[1]}` : 'no gate'})`);
      else if (rule[2] && p.code !== rule[2]) mismatches.push(`${p.id} is unsupported with ${p.code ?? 'no errno'}, expected ${rule[2]}`);
      else if (!p.remedy) mismatches.push(`${p.id} is unsupported (gate ${p.gate}) without a remedy`);
      else blocked.set(p.gate ?? `${p.code}, no gate`, (blocked.get(p.gate ?? `${p.code}, no gate`) ?? 0) + 1);
    } else if (p.status !== 'pass') mismatches.push(`${p.id} is ${p.status}${gateText}${skip ? `, expected pass with checks skipped (gate ${skip[1]})` : ''}: ${(p.cause ?? '').slice(0, 160)}`);
    else if (skip && !(p.assertions ?? []).some((x) => x.status === 'skipped' && (x.gate ?? null) === skip[1])) mismatches.push(`${p.id} passes without a check skipped for gate ${skip[1]}`);
  }
  const gates = [...blocked.keys()];
  const n = [...blocked.values()].reduce((x, y) => x + y, 0);
  const skipped = report.probes.filter((p) => p.status === 'pass' && (p.assertions ?? []).some((x) => x.status === 'skipped' && x.gate)).map((p) => p.id);
  const summary = `${gates.length === 0 ? `all ${report.probes.length} pass` : `${n}/${report.probes.length} blocked (${gates.join(', ')})`}${skipped.length ? `, ${skipped.length} pass with gated checks skipped` : ''}`;
  return { mismatches, summary, probes: report.probes.length, blocked: n };
}

export const DEFAULT_SCENARIOS = ['baseline'];

/** --all: every kernel gets these; the single max_<type>_namespaces=0 scenarios are spread over the kernels, the pair goes to the newest. */
export function allScenarios(kernelIndex, kernelCount, custom = false) {
  if (custom) return ['noopts', 'noopts-hidden'];
  const always = ['baseline', 'userns0', 'uuc0', 'procmask'];
  const singles = NS.filter((n) => n !== 'user').map((n) => `${n}0`).filter((_, i) => i % kernelCount === kernelIndex);
  return [...always, ...singles, ...(kernelIndex === kernelCount - 1 ? ['mnt0+net0'] : [])];
}

/** What the guest loads before it can serve its ports: the virtio PCI transport and virtio-serial (virtio_console). */
export const INITRAMFS_MODULES = ['virtio_pci', 'virtio_console'];
/** Loaded when the kernel has them (net-veth makes a veth pair; no kmod in the guest to autoload it). */
export const OPTIONAL_MODULES = ['veth'];
const NOBODY = 65534;

class UsageError extends Error {}
class MissingError extends Error {}

const log = (msg) => process.stdout.write(`${msg}\n`);

// ---------- child processes: every one is tracked and killed on exit, error and Ctrl-C ----------

const children = new Set();

// Children stay in this script's process group, so killing the group (Ctrl-C in a terminal, a test's
// teardown) takes QEMU and the controllers with it even if this process is SIGKILLed.
function killTree(child, signal = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill(signal);
  } catch {
    /* gone */
  }
}

function killAll() {
  for (const c of children) killTree(c);
}

/** Starts a long-running, tracked child; `child.done` resolves with {code, signal} when it exits. */
function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.done = new Promise((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  }).finally(() => children.delete(child));
  return child;
}

/** Runs a short command; throws with its stderr unless `ok` accepts the result. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) {
    const err = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${err}`);
  }
  return r;
}

// ---------- tools ----------

/** A static busybox: it is the initramfs's /init and every command in it. */
function staticBusybox() {
  const p = which('busybox');
  if (!p) return null;
  const r = spawnSync('file', ['-L', p], { encoding: 'utf8' });
  if (r.status === 0) return /statically linked/.test(r.stdout) ? p : null;
  // no `file`: a static binary has no PT_INTERP, so no ld-linux path in its first pages
  const head = fs.readFileSync(p).subarray(0, 4096).toString('latin1');
  return head.includes('ld-linux') ? null : p;
}

export function findTools() {
  const tools = {
    qemu: which('qemu-system-x86_64'),
    busybox: staticBusybox(),
    modprobe: which('modprobe'),
    depmod: which('depmod'),
    setpriv: which('setpriv'),
    unshare: which('unshare'),
    ldd: which('ldd'),
    'dpkg-deb': which('dpkg-deb'),
    'apt-get': which('apt-get'),
    'apt-cache': which('apt-cache'),
  };
  return tools;
}

/** Debian package that provides each tool. */
const PROVIDERS = {
  qemu: 'qemu-system-x86',
  busybox: 'busybox-static',
  modprobe: 'kmod',
  depmod: 'kmod',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  ldd: 'libc-bin',
  'dpkg-deb': 'dpkg',
};

/** Installs missing tools with apt-get when root; otherwise (or when that fails) says exactly what is missing. */
export function ensureTools() {
  let tools = findTools();
  const missing = () => Object.entries(tools).filter(([, p]) => !p).map(([k]) => k);
  if (missing().length === 0) return tools;
  if (!tools['apt-get'] || !tools['apt-cache'])
    throw new MissingError(`missing: ${missing().join(', ')}; apt-get is not available to install them (this script needs Debian/Ubuntu)`);
  const pkgs = [...new Set(missing().map((k) => PROVIDERS[k]).filter(Boolean))];
  if (process.geteuid?.() !== 0)
    throw new MissingError(`missing: ${missing().join(', ')}; as root run: apt-get install -y ${pkgs.join(' ')}`);
  log(`installing ${pkgs.join(' ')} (missing: ${missing().join(', ')})`);
  const r = aptInstall(pkgs);
  tools = findTools();
  if (missing().length > 0) {
    const why = r.status !== 0 ? `apt-get install ${pkgs.join(' ')} failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}` : 'installed packages did not provide them';
    throw new MissingError(`missing: ${missing().join(', ')}; ${why}`);
  }
  return tools;
}

// ---------- kernels: resolve, download, unpack ----------

/** A private apt configuration under the cache: its own sources.list, state (lists) and cache (archives). */
export function privateApt(dir, arch = 'amd64', suites = PRIVATE_SUITES) {
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(path.join(etc, 'sources.list.d'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'state', 'lists', 'partial'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  const sources = suites.map((s) => `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${s} main\n`).join('');
  if (readOr(path.join(etc, 'sources.list')) !== sources) fs.writeFileSync(path.join(etc, 'sources.list'), sources);
  if (!fs.existsSync(path.join(dir, 'state', 'status'))) fs.writeFileSync(path.join(dir, 'state', 'status'), '');
  const o = (k, v) => ['-o', `${k}=${v}`];
  return {
    dir,
    args: [
      ...o('Dir::Etc::SourceList', path.join(etc, 'sources.list')),
      ...o('Dir::Etc::SourceParts', path.join(etc, 'sources.list.d')),
      ...o('Dir::State', path.join(dir, 'state')),
      ...o('Dir::State::status', path.join(dir, 'state', 'status')),
      ...o('Dir::Cache', path.join(dir, 'cache')),
      ...o('APT::Architecture', arch),
    ],
    suites,
    updated: false,
  };
}

const MACHINE_APT = { args: [], updated: false, machine: true };

/** apt-get update, once per run: the machine's (only as root and only when a lookup failed) or the private one (when its lists are missing or a day old). */
function aptUpdate(apt, force = false) {
  if (apt.updated || process.geteuid?.() !== 0) return false;
  if (!apt.machine && !force) {
    const lists = path.join(apt.dir, 'state', 'lists');
    const fresh = fs.readdirSync(lists).filter((f) => /_Packages(\.\w+)?$/.test(f)).map((f) => fs.statSync(path.join(lists, f)).mtimeMs);
    if (fresh.length >= apt.suites.length && Math.min(...fresh) > Date.now() - 86400_000) return false;
  }
  apt.updated = true;
  log(`apt-get update (${apt.machine ? "the machine's package lists are missing or stale" : `private configuration in ${apt.dir}`})`);
  const r = run('apt-get', [...apt.args, 'update'], { allowFail: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!apt.machine && r.status !== 0) throw new Error(`apt-get update (${apt.dir}) failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}`);
  return true;
}

/** `apt-cache madison`: [{version, suite}] of a package, newest first, optionally only from one suite. */
function aptVersions(apt, pkg, suite) {
  const r = spawnSync('apt-cache', [...apt.args, 'madison', pkg], { encoding: 'utf8' });
  const rows = (r.stdout ?? '').split('\n').map((l) => l.split('|').map((x) => x.trim())).filter((c) => c.length >= 3 && c[0] === pkg);
  const all = rows.map(([, version, src]) => ({ version, suite: (/ (\S+?)\/\S+ \S+ Packages$/.exec(src) ?? [])[1] ?? src }));
  const picked = suite ? all.filter((v) => v.suite === suite) : all;
  return picked.sort((a, b) => (spawnSync('dpkg', ['--compare-versions', a.version, 'gt', b.version]).status === 0 ? -1 : 1));
}

/** `6.1-cloud` or a package name -> { tag, pkg, version, suite, apt }, following meta packages to the versioned kernel. */
/** The package lists a resolution was made from: their names and mtimes (a change, e.g. apt-get update, makes it stale). */
function listsStamp(apt) {
  const dir = apt.machine ? '/var/lib/apt/lists' : path.join(apt.dir, 'state', 'lists');
  try {
    return fs.readdirSync(dir).filter((f) => /_Packages(\.\w+)?$/.test(f)).sort().map((f) => `${f}@${fs.statSync(path.join(dir, f)).mtimeMs}`).join(',');
  } catch {
    return null;
  }
}

/**
 * Resolving names takes apt-cache madison/depends and dpkg --compare-versions calls (a minute for
 * --all on a loaded machine): the result is kept in <aptDir>/resolved.json with the stamp of the
 * lists it came from, and reused while they are unchanged.
 */
export function resolveKernel(spec, aptDir) {
  if (ALIASES[spec]?.custom) return { tag: spec, spec, pkg: SOURCE_PKG, version: sourceVersion() ?? '(not installed yet)', suite: 'built here', custom: true };
  const alias = ALIASES[spec];
  if (!/^linux-image-/.test(alias?.pkg ?? spec)) throw new UsageError(`--kernels: '${spec}' is neither one of ${Object.keys(ALIASES).join(', ')} nor a linux-image-* package`);
  const apt = alias?.arch ? privateApt(`${aptDir}-${alias.arch}`, alias.arch, [alias.suite]) : alias?.suite ? privateApt(aptDir) : MACHINE_APT;
  if (alias?.suite) aptUpdate(apt);
  const memoFile = path.join(aptDir, 'resolved.json');
  let memo = {};
  try {
    memo = JSON.parse(readOr(memoFile, '{}'));
  } catch {
    /* unreadable: resolve again */
  }
  const stamp = listsStamp(apt);
  const hit = memo[spec];
  if (stamp && hit?.stamp === stamp) return { ...hit.kernel, apt };
  const kernel = resolveUncached(spec, alias, apt, aptDir);
  if (stamp) {
    const { apt: _, ...plain } = kernel;
    memo[spec] = { stamp, kernel: plain };
    fs.mkdirSync(aptDir, { recursive: true });
    const tmpFile = `${memoFile}.${process.pid}`; // whole or not at all: another run may read it now
    fs.writeFileSync(tmpFile, `${JSON.stringify(memo, null, 1)}\n`);
    fs.renameSync(tmpFile, memoFile);
  }
  return kernel;
}

function resolveUncached(spec, alias, apt, aptDir) {
  let pkg = alias?.pkg ?? spec;
  for (let hop = 0; hop < 4; hop++) {
    let v = aptVersions(apt, pkg, alias?.suite)[0];
    if (!v && aptUpdate(apt, true)) v = aptVersions(apt, pkg, alias?.suite)[0];
    if (!v) throw new Error(`${spec}: apt knows no package ${pkg}${alias?.suite ? ` in ${alias.suite} (private apt in ${aptDir})` : ' (apt-cache policy; check the sources in /etc/apt)'}`);
    const deps = spawnSync('apt-cache', [...apt.args, 'depends', '--no-recommends', '--no-suggests', `${pkg}=${v.version}`], { encoding: 'utf8' }).stdout ?? '';
    const next = /^\s*Depends: (linux-image-\S+)/m.exec(deps)?.[1];
    // Debian's 7.x packages split the image: linux-image-<ver> holds neither kernel nor modules but
    // depends on linux-binary-<ver> (vmlinuz) and linux-modules-<ver>; those are unpacked with it
    const parts = [...deps.matchAll(/^\s*Depends: (linux-(?:binary|modules)-\S+)/gm)].map((m) => m[1]);
    if (!next) return { tag: alias ? spec : pkg.replace(/^linux-image-/, ''), spec, pkg, version: v.version, suite: v.suite, apt, parts, arch: alias?.arch ?? 'amd64' };
    pkg = next; // a meta package: follow it
  }
  throw new Error(`${spec}: too many meta-package hops`);
}

/** The kernel built without the options (ci/kernel-build.mjs), built now unless cached, in fetchKernel's shape. */
async function customKernel(k, cache) {
  const b = await buildKernel({ cache, say: log });
  // modprobe (initramfsModules) finds this release's modules.builtin: virtio_pci, virtio_console are built in
  return { ...k, dir: b.dir, release: b.release, modules: path.join(b.dir, 'lib/modules', b.release), vmlinuz: b.vmlinuz, config: b.config, build: b.build, procConfig: true };
}

/** Downloads and unpacks a kernel package into the cache (once); returns its tree, release and files. */
export function fetchKernel(k, cache) {
  const dir = path.join(cache, `${k.pkg}_${k.version.replace(/:/g, '%3a')}`);
  if (!fs.existsSync(path.join(dir, 'boot')) && !fs.existsSync(path.join(dir, '.nsprobe-unpacked'))) {
    fs.mkdirSync(cache, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true }); // e.g. a 7.x image package unpacked without its parts
    const dl = fs.mkdtempSync(path.join(cache, '.dl-'));
    try {
      fs.chmodSync(dl, 0o777); // apt-get download drops to the _apt user
      log(`[${k.tag}] apt-get download ${k.pkg}=${k.version}`);
      const apt = k.apt ?? MACHINE_APT;
      let r = run('apt-get', [...apt.args, 'download', `${k.pkg}=${k.version}`], { cwd: dl, allowFail: true });
      if (r.status !== 0 && aptUpdate(apt, true)) r = run('apt-get', [...apt.args, 'download', `${k.pkg}=${k.version}`], { cwd: dl, allowFail: true });
      if (r.status !== 0) throw new Error(`apt-get download ${k.pkg}=${k.version} failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      for (const part of k.parts ?? []) {
        log(`[${k.tag}] apt-get download ${part}=${k.version} (part of ${k.pkg})`);
        const rp = run('apt-get', [...apt.args, 'download', `${part}=${k.version}`], { cwd: dl, allowFail: true });
        if (rp.status !== 0) throw new Error(`apt-get download ${part}=${k.version} failed: ${rp.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      }
      const debs = fs.readdirSync(dl).filter((f) => f.endsWith('.deb'));
      if (!debs.length) throw new Error(`apt-get download ${k.pkg} left no .deb`);
      const tree = path.join(dl, 'tree');
      for (const deb of debs) run('dpkg-deb', ['-x', path.join(dl, deb), tree]);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tree, dir);
      fs.writeFileSync(path.join(dir, '.nsprobe-unpacked'), `${k.pkg} ${k.version}\n`);
    } finally {
      fs.rmSync(dl, { recursive: true, force: true });
    }
  }
  // merged-/usr packages (trixie) ship usr/lib/modules only; depmod -b and modprobe -d look in lib/modules
  if (!fs.existsSync(path.join(dir, 'lib')) && fs.existsSync(path.join(dir, 'usr/lib/modules'))) fs.symlinkSync('usr/lib', path.join(dir, 'lib'));
  const modRoot = ['lib/modules', 'usr/lib/modules'].map((p) => path.join(dir, p)).find((p) => fs.existsSync(p));
  // 7.x packages: the kernel is lib/modules/<release>/vmlinuz (with config beside it), no /boot
  const kernelOf = (r) => [path.join(dir, 'boot', `vmlinuz-${r}`), path.join(modRoot, r, 'vmlinuz')].find((f) => fs.existsSync(f));
  const release = modRoot && fs.readdirSync(modRoot).find((r) => kernelOf(r));
  if (!release) throw new Error(`${dir}: no boot/vmlinuz-<release> with lib/modules/<release> (not a kernel image package?)`);
  const modules = path.join(modRoot, release);
  if (!fs.existsSync(path.join(modules, 'modules.dep'))) run('depmod', ['-b', dir, release]);
  return {
    ...k,
    dir,
    release,
    modules,
    vmlinuz: kernelOf(release),
    config: [path.join(dir, 'boot', `config-${release}`), path.join(modules, 'config')].find((f) => fs.existsSync(f)) ?? path.join(dir, 'boot', `config-${release}`),
  };
}

// ---------- initramfs ----------

/** newc cpio archive of [{ name, mode, data? , target? }] (no mknod needed, works as any user). */
function cpioNewc(entries) {
  const parts = [];
  let ino = 1;
  const pad4 = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const push = (name, mode, data) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const isDev = (mode & 0o170000) === 0o020000;
    const f = [0x070701, ino++, mode, 0, 0, 1, 0, data.length, 0, 0, isDev ? 5 : 0, isDev ? 1 : 0, nameBuf.length, 0];
    const hdr = Buffer.from(`${f[0].toString(16).padStart(6, '0')}${f.slice(1).map((x) => x.toString(16).padStart(8, '0')).join('')}`);
    parts.push(hdr, nameBuf, pad4(hdr.length + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) {
    if (e.type === 'dir') push(e.name, 0o040755, Buffer.alloc(0));
    else if (e.type === 'console') push(e.name, 0o020600, Buffer.alloc(0)); // c 5 1
    else push(e.name, e.mode ?? 0o100644, e.data);
  }
  ino = 0;
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Module files (in load order) the initramfs must insmod; builtins are skipped. Decompresses .ko.xz/.ko.zst.
 * A module modprobe cannot find is built in when the package ships no modules.builtin (Debian's 7.x
 * packages: depmod then knows no builtins, so it calls virtio_pci "not found"); with modules.builtin
 * present, a required module that is not found is an error and an optional one (veth: a kernel
 * without it must show net-veth unsupported) is left out. */
export function initramfsModules(kern, tools, required = INITRAMFS_MODULES, optional = OPTIONAL_MODULES) {
  const files = [];
  const assumedBuiltin = [];
  const knowsBuiltins = fs.existsSync(path.join(kern.modules, 'modules.builtin'));
  for (const mod of [...required, ...optional]) {
    const r = run(tools.modprobe, ['-d', kern.dir, '-S', kern.release, '--show-depends', mod], { allowFail: true });
    if (r.status !== 0) {
      if (!knowsBuiltins && /not found/.test(r.stderr)) assumedBuiltin.push(mod);
      else if (required.includes(mod)) throw new Error(`${kern.release} lacks a module the guest needs (${mod}, of ${required.join(', ')}): ${r.stderr.trim()}`);
      continue;
    }
    for (const line of r.stdout.split('\n')) {
      const m = /^insmod (\S+)/.exec(line.trim());
      if (m && !files.includes(m[1])) files.push(m[1]);
    }
  }
  const mods = files.map((f) => {
    let data = fs.readFileSync(f);
    let name = path.basename(f);
    if (f.endsWith('.xz')) {
      data = run(tools.busybox, ['xz', '-dc', f], { encoding: 'buffer' }).stdout;
      name = name.slice(0, -3);
    } else if (f.endsWith('.zst')) {
      data = run('zstd', ['-dc', f], { encoding: 'buffer' }).stdout;
      name = name.slice(0, -4);
    } else if (f.endsWith('.gz')) {
      data = zlib.gunzipSync(data);
      name = name.slice(0, -3);
    }
    return { name, data };
  });
  return Object.assign(mods, { assumedBuiltin });
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/**
 * sh: `nodecheck DIR` prints "path=P files=F": P the node program on PATH, F what is named like
 * Node or a checkout under DIR (one file system), each "none" when nothing is. The guest runs it
 * on its root; the test runs it here as the control (it finds this host's node).
 */
export const NODE_CHECK = `nodecheck() {
  hits=$(find "$1" -xdev \\( -name node -o -name nodejs -o -name 'node.*' -o -name dist -o -name package.json \\) 2>/dev/null | tr '\\n' ' ')
  echo "path=$(command -v node || echo none) files=\${hits:-none}"
}`;

/**
 * sh: `data` names the device the guest's progress lines go to: the second serial port on x86_64
 * (ttyS1, a file here), else (aarch64's virt machine has one UART) the virtio port nsprobe.data.
 */
const dataSh = (kern) =>
  archOf(kern).dataPort === 'serial'
    ? 'data() { echo /dev/ttyS1; }'
    : `data() { for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = nsprobe.data ] && { echo "/dev/\${p##*/}"; return; }; done; echo /dev/null; }`;
const archOf = (kern) => ARCHES[kern.arch ?? 'amd64'];

/** Per Debian architecture: QEMU, its machine, the console, and how the progress lines come out. */
export const ARCHES = {
  amd64: { machine: 'x86_64', qemu: 'qemu-system-x86_64', qemuPkg: 'qemu-system-x86', args: [], console: 'ttyS0', dataPort: 'serial' },
  arm64: { machine: 'aarch64', qemu: 'qemu-system-aarch64', qemuPkg: 'qemu-system-arm', args: ['-M', 'virt'], console: 'ttyAMA0', dataPort: 'virtio' },
};

/** The guest's virtio-serial ports, one per user nsprobe runs as; QEMU serves each as a Unix socket here. */
export const PORTS = { root: 'nsprobe.root', nobody: 'nsprobe.nobody' };

/** /init: load the modules, copy the initramfs's tree into a tmpfs (a real root: pivot_root works there, unlike on rootfs) and switch_root into it. */
function initScript(kern) {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
${dataSh(kern)}
fatal() { echo "nsprobe-initramfs: FATAL: $*"; echo "@@NSPROBE-FATAL $*" > "$(data)"; sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
while read -r m; do insmod "/modules/$m" || fatal "insmod $m failed"; done < /modules/order
echo "@@NSPROBE-STAGE initramfs $(cut -d' ' -f1 /proc/uptime)" > "$(data)"
mount -t tmpfs -o mode=0755 tmpfs /newroot || fatal "tmpfs"
cp -a /bin /usr /lib /lib64 /etc /boot /guest.sh /newroot/ || fatal "cannot fill the root tmpfs"
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/root /newroot/tmp && chmod 1777 /newroot/tmp
mount --move /dev /newroot/dev; umount /proc /sys
exec switch_root /newroot /bin/sh /guest.sh
fatal "switch_root failed"
`;
}

/**
 * Runs in the guest after switch_root, as PID 1 (busybox sh): sets the scenario up, then serves a
 * shell on the root port and, once that session ended, one for nobody on the other. The host runs
 * `nsprobe --via 'node ci/guest-pipe.mjs SOCKET'` against each: its bootstrap copies the agent in.
 * No Node and no checkout here: the controller stays on the host.
 */
function guestScript(kern) {
  return `#!/bin/sh
# busybox sh runs its own applets before PATH's programs: util-linux's go by their full path
export PATH=/usr/bin:/bin HOME=/root LANG=C
mount -t proc proc /proc; mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
# the matrix labels rows by hostname: one row per kernel x scenario x user (busybox's hostname takes spaces)
hostname ${q(kern.label.slice(0, 64))}
# No init system runs here; do the two things a booted host has that the probes' controls rely on:
# loopback up (net: a host listener on 127.0.0.1) and the run in a child cgroup, not the root one
# (cgroup: a host process sees a real cgroup path), like a systemd session scope.
ip link set lo up
mkdir -p /sys/fs/cgroup/nsprobe.scope && echo $$ > /sys/fs/cgroup/nsprobe.scope/cgroup.procs
${dataSh(kern)}
stage() { echo "@@NSPROBE-STAGE $1 $(cut -d' ' -f1 /proc/uptime) \${2:-}" > "$(data)"; echo "nsprobe-guest: $1 \${2:-}"; }
for f in user/max_user_namespaces kernel/unprivileged_userns_clone; do stage sysctl "$f=$(cat /proc/sys/$f 2>/dev/null || echo absent)"; done
# what the root filesystem holds: no node program and no checkout (the test checks "path=none files=none")
${NODE_CHECK}
stage node "$(nodecheck /) rootfs=$(find / -xdev | wc -l)"
${kern.scenario.hideConfig ? `# no readable config: an empty file over /proc/config.gz (nsprobe must call that unknown, not "every option missing")
: > /run/empty-config && mount --bind /run/empty-config /proc/config.gz || stage fatal "cannot hide /proc/config.gz"
` : ''}${kern.procConfig ? `stage config "/proc/config.gz $(wc -c < /proc/config.gz 2>/dev/null || echo absent) bytes"
# the real program's verdict in the same guest, to check nsprobe's against: util-linux unshare per type
for t in user:-U time:-T net:-n uts:-u; do out=$(/usr/bin/unshare \${t#*:} true 2>&1); rc=$?; stage unshare "\${t%%:*} exit=$rc $(echo $out)"; done
` : ''}${kern.scenario.mask ? `# as container engines do: mask /proc files with /dev/null, /proc dirs with an empty read-only tmpfs, /proc/sys read-only
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do [ -e "$f" ] && mount --bind /dev/null "$f"; done
for d in /proc/acpi /proc/scsi; do [ -d "$d" ] && mount -t tmpfs -o ro,mode=0555 tmpfs "$d"; done
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys || stage fatal "cannot make /proc/sys read-only"
stage masked "$(grep -c ' /proc/' /proc/self/mounts) mounts over /proc"
` : ''}port() { for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/\${p##*/}"; return 0; }; done; return 1; }
# Both ports are opened once and stay open: a port's data that came in while the guest had it open
# is dropped when it is closed, so a shell that opened, read nothing and closed could lose the
# host's line. While the host is not connected a read gives end of file at once.
r=$(port ${PORTS.root}) && n=$(port ${PORTS.nobody}) || { stage fatal "no virtio ports ${PORTS.root}, ${PORTS.nobody}"; echo o > /proc/sysrq-trigger; }
exec 3<>"$r" 4<>"$n"
# serve FD [PREFIX...]: one session on that port. A shell reads one line (the host's command,
# base64) and execs it with the port as stdin and stdout; end of file (exit 99: the host is not
# connected yet) means wait and read again.
serve() {
  fd=$1; shift
  while :; do
    "$@" sh -c 'IFS= read -r l || exit 99; c=$(printf %s "$l" | base64 -d) || exit 98; exec 3<&- 4<&-; eval "exec $c"' <&$fd >&$fd 2>/dev/console
    rc=$?; [ $rc = 99 ] || return $rc; sleep 1
  done
}
stage root-start
serve 3; stage root-done $?
hostname ${q(`${kern.label}, nobody`.slice(0, 64))}
stage nobody-start
serve 4 ${nobodyPrefix(kern)} env HOME=/tmp; stage nobody-done $?
stage done
sync
echo o > /proc/sysrq-trigger
sleep 10
`;
}

/** A host program with the shared libraries ldd names, for the guest (util-linux unshare and setpriv: busybox's lack -T and --reuid). */
function hostProgram(name) {
  const bin = which(name);
  if (!bin) throw new MissingError(`${name} is missing (util-linux)`);
  const r = run('ldd', [bin], { allowFail: true });
  const libs = [...(r.stdout ?? '').matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((m) => m[1]);
  return [{ name: `usr/bin/${name}`, file: bin }, ...libs.map((l) => ({ name: l.slice(1), file: l }))];
}

/** Entries plus a directory entry for each parent they need, parents first. */
function withParents(entries) {
  const dirs = new Set();
  for (const e of entries) {
    const parts = e.name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const e of entries) if (e.type === 'dir') dirs.add(e.name);
  // every directory before anything in it (sorted: a parent sorts before its children): the kernel's unpacker makes no missing parents
  return [...[...dirs].sort().map((name) => ({ name, type: 'dir' })), ...entries.filter((e) => e.type !== 'dir')];
}

/**
 * A static busybox for the guest: this host's on x86_64; for another architecture Debian's
 * busybox-static of that architecture, fetched with the kernel's private apt and unpacked into
 * the cache once.
 */
function guestBusybox(kern, tools, cache) {
  if ((kern.arch ?? 'amd64') === 'amd64') return tools.busybox;
  const dir = path.join(cache, `busybox-static-${kern.arch}`);
  const found = () => ['bin/busybox', 'usr/bin/busybox'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f)); // trixie: merged /usr
  if (found()) return found();
  const dl = fs.mkdtempSync(path.join(cache, '.dl-'));
  try {
    fs.chmodSync(dl, 0o777); // apt-get download drops to the _apt user
    run('apt-get', [...kern.apt.args, 'download', 'busybox-static'], { cwd: dl });
    const deb = fs.readdirSync(dl).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download busybox-static (${kern.arch}) left no .deb`);
    run('dpkg-deb', ['-x', path.join(dl, deb), path.join(dl, 'tree')]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(dl, 'tree'), dir);
  } finally {
    fs.rmSync(dl, { recursive: true, force: true });
  }
  if (!found()) throw new Error(`busybox-static (${kern.arch}) has no bin/busybox or usr/bin/busybox`);
  return found();
}

/**
 * How the nobody port's shell drops to uid/gid 65534: util-linux setpriv (copied from this host), or
 * where this host's programs do not run busybox su (root needs no password; its setpriv lacks
 * --reuid): `su -s /bin/sh -p nobody -c 'exec "$@"' sh CMD...` runs CMD as nobody, groups from
 * /etc/group (none but 65534).
 */
const nobodyPrefix = (kern) => ((kern.arch ?? 'amd64') === 'amd64' ? `/usr/bin/setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups` : `/bin/busybox su -s /bin/sh -p nobody -c 'exec "$@"' sh`);

function buildInitramfs(kern, tools, file, cache) {
  const mods = initramfsModules(kern, tools);
  // util-linux unshare and setpriv with their libraries, from this host: x86_64 guests only
  const progs = (kern.arch ?? 'amd64') === 'amd64' ? [...new Map(['unshare', 'setpriv'].flatMap(hostProgram).map((p) => [p.name, p])).values()] : [];
  // the kernel's config where nsprobe looks on a host (/boot/config-<release>), unless it has /proc/config.gz
  const config = !kern.procConfig && fs.existsSync(kern.config) ? [{ name: `boot/config-${kern.release}`, data: fs.readFileSync(kern.config) }] : [];
  const entries = withParents([
    ...['bin', 'dev', 'proc', 'sys', 'newroot', 'modules', 'boot', 'lib', 'lib64', 'usr', 'etc'].map((name) => ({ name, type: 'dir' })),
    { name: 'dev/console', type: 'console' },
    { name: 'bin/busybox', mode: 0o100755, data: fs.readFileSync(guestBusybox(kern, tools, cache)) },
    ...progs.map((p) => ({ name: p.name, mode: 0o100755, data: fs.readFileSync(p.file) })),
    ...config,
    { name: 'etc/passwd', data: Buffer.from(`root:x:0:0:root:/root:/bin/sh\nnobody:x:${NOBODY}:${NOBODY}:nobody:/nonexistent:/bin/false\n`) },
    { name: 'etc/group', data: Buffer.from(`root:x:0:\nnogroup:x:${NOBODY}:\n`) },
    { name: 'init', mode: 0o100755, data: Buffer.from(initScript(kern)) },
    { name: 'guest.sh', mode: 0o100755, data: Buffer.from(guestScript(kern)) },
    { name: 'modules/order', data: Buffer.from(mods.map((m) => `${m.name}\n`).join('')) },
    ...mods.map((m) => ({ name: `modules/${m.name}`, data: m.data })),
  ]);
  fs.writeFileSync(file, zlib.gzipSync(cpioNewc(entries), { level: 1 }));
  return { modules: mods.map((m) => m.name), assumedBuiltin: mods.assumedBuiltin };
}

// ---------- boot one kernel ----------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Frames on the data port: stages and fatal lines. */
export function parseDataPort(text) {
  const t = text.replace(/\r/g, '');
  const stages = [...t.matchAll(/^@@NSPROBE-STAGE (\S+) (\S+) ?(.*)$/gm)].map((m) => ({ stage: m[1], uptime: Number(m[2]), arg: m[3] }));
  const fatal = /^@@NSPROBE-FATAL (.*)$/m.exec(t)?.[1] ?? null;
  return { stages, fatal };
}

const GUEST_PIPE = path.join(ROOT, 'ci', 'guest-pipe.mjs');

/** The --via command that reaches a guest port through QEMU's socket (words in '...': splitCommand groups them). */
export function viaCommand(sock) {
  for (const w of [process.execPath, GUEST_PIPE, sock]) if (/['\s]/.test(w)) throw new UsageError(`a path with a quote or a space cannot go into --via: ${w}`);
  return `${process.execPath} ${GUEST_PIPE} ${sock}`;
}

async function bootKernel(kern, tools, opts, work, dest) {
  const t0 = Date.now();
  const console_ = path.join(work, 'console.log');
  const dataPort = path.join(work, 'data.txt');
  const initrd = path.join(work, 'initrd.gz');
  const socks = Object.fromEntries(Object.keys(PORTS).map((m) => [m, path.join(work, `${m}.sock`)]));
  const built = buildInitramfs(kern, tools, initrd, opts.cache);
  const result = { tag: kern.tag, pkg: kern.pkg, version: kern.version, release: kern.release, initramfsModules: built.modules, assumedBuiltin: built.assumedBuiltin, modes: {}, stages: [], outcome: 'failed', reason: '' };
  if (built.assumedBuiltin.length) log(`[${kern.tag}/${kern.sid}] no modules.builtin: taking ${built.assumedBuiltin.join(', ')} (not found as modules) as built in`);
  let qemu = null;
  let timedOut = false;
  let timer = null;
  let poll = null;
  try {
    const mem = `${opts.memory}M`;
    const arch = archOf(kern);
    const qemuBin = arch === ARCHES.amd64 ? tools.qemu : which(arch.qemu);
    if (!qemuBin) throw new MissingError(`${arch.qemu} is missing: apt-get install ${arch.qemuPkg}`);
    const args = [
      ...arch.args, '-accel', 'tcg', '-nic', 'none', '-cpu', opts.qemuCpu, '-smp', String(opts.cpus), '-m', mem,
      '-device', 'virtio-serial-pci,id=vser',
      ...Object.entries(PORTS).flatMap(([m, name]) => ['-chardev', `socket,id=port-${m},path=${socks[m]},server=on,wait=off`, '-device', `virtserialport,bus=vser.0,chardev=port-${m},name=${name}`]),
      ...(arch.dataPort === 'virtio' ? ['-chardev', `file,id=data,path=${dataPort}`, '-device', 'virtserialport,bus=vser.0,chardev=data,name=nsprobe.data'] : []),
      '-kernel', kern.vmlinuz, '-initrd', initrd,
      '-append', [`console=${arch.console} panic=-1 loglevel=4 mitigations=off rdinit=/init`, ...Object.entries(kern.scenario.sysctl ?? {}).map(([k, v]) => `sysctl.${k}=${v}`)].join(' '),
      '-display', 'none', '-monitor', 'none', '-no-reboot',
      '-serial', `file:${console_}`, ...(arch.dataPort === 'serial' ? ['-serial', `file:${dataPort}`] : []),
    ];
    fs.writeFileSync(path.join(work, 'qemu.cmd'), `${qemuBin} ${args.map(q).join(' ')}\n`);
    qemu = start(qemuBin, args, { stdio: ['ignore', 'ignore', fs.openSync(path.join(work, 'qemu.log'), 'w')] });
    let exited = null;
    qemu.done.then((e) => (exited = e));
    timer = setTimeout(() => {
      timedOut = true;
      killTree(qemu);
    }, opts.timeout * 1000);
    let seen = 0;
    const show = () => {
      const { stages } = parseDataPort(readOr(dataPort));
      for (const s of stages.slice(seen)) log(`[${kern.tag}/${kern.sid}] ${s.stage}${s.arg ? ` ${s.arg}` : ''} (guest uptime ${s.uptime.toFixed(1)} s, ${((Date.now() - t0) / 1000).toFixed(1)} s since start)`);
      seen = stages.length;
    };
    poll = setInterval(show, 1000);
    // the guest says when it serves a port (a line on the data port); stop waiting when QEMU exits or the guest failed
    const waitStage = async (name) => {
      for (;;) {
        const d = parseDataPort(readOr(dataPort));
        if (d.stages.some((s) => s.stage === name)) return true;
        if (exited || d.fatal || d.stages.some((s) => s.stage === 'fatal')) return false;
        await sleep(200);
      }
    };
    for (const mode of Object.keys(PORTS)) {
      if (!(await waitStage(`${mode}-start`))) break;
      const d = path.join(dest, mode);
      fs.mkdirSync(d, { recursive: true });
      const logFd = fs.openSync(path.join(d, 'probe.log'), 'w');
      const args = ['dist/src/cli.js', '--via', viaCommand(socks[mode]), '--out', d, '--no-color', ...(opts.only ? ['--only', opts.only] : [])];
      const c = start(process.execPath, args, { cwd: ROOT, stdio: ['ignore', logFd, logFd] });
      const r = await c.done;
      fs.closeSync(logFd);
      const report = path.join(d, 'report.json');
      result.modes[mode] = fs.existsSync(report) ? { report, nsprobeExit: r.code } : { error: `nsprobe --via exited ${r.code ?? r.signal} without a report: ${tail(path.join(d, 'probe.log'), 2)}` };
      if (!result.modes[mode].report) break;
    }
    // both served (or one failed): the guest powers off after "done"; a failed mode leaves it serving, so stop it
    if (!['root', 'nobody'].every((m) => result.modes[m]?.report)) killTree(qemu);
    const exit = await qemu.done;
    show();
    const data = parseDataPort(readOr(dataPort));
    result.stages = data.stages;
    const got = ['root', 'nobody'].filter((m) => result.modes[m]?.report);
    const errs = ['root', 'nobody'].map((m) => result.modes[m]?.error && `${m}: ${result.modes[m].error}`).filter(Boolean).join('; ');
    const fatal = data.fatal ?? data.stages.find((s) => s.stage === 'fatal')?.arg;
    if (timedOut) result.outcome = 'timeout', result.reason = `killed after --timeout ${opts.timeout} s${got.length ? ` (reports received: ${got.join(', ')})` : ''}; last console lines: ${tail(console_)}`;
    else if (fatal) result.reason = `guest: ${fatal}; console: ${tail(console_)}`;
    else if (got.length < 2) result.reason = `reports from ${got.join(', ') || 'no mode'}${errs ? ` (${errs})` : ''}; QEMU exited (${exit.code ?? exit.signal}${exit.error ? `: ${exit.error.message}` : ''}); console: ${tail(console_)} ${tail(path.join(work, 'qemu.log'), 2)}`;
    else result.outcome = 'ok';
  } catch (e) {
    result.reason = e.message;
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    if (qemu) {
      killTree(qemu);
      await qemu.done;
    }
  }
  result.seconds = Math.round((Date.now() - t0) / 100) / 10;
  return result;
}

const readOr = (p, d = '') => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return d;
  }
};
const tail = (p, n = 4) => readOr(p).replace(/\r/g, '').trim().split('\n').filter(Boolean).slice(-n).join(' | ');

// ---------- host-side kernel_config gate ----------

async function configGate(file) {
  const { kernelConfigGate } = await import(pathToFileURL(path.join(ROOT, 'dist/src/gates.js')).href);
  const { readKernelConfig } = await import(pathToFileURL(path.join(ROOT, 'dist/src/host/kconfig.js')).href);
  const { realHostContext } = await import(pathToFileURL(path.join(ROOT, 'dist/src/host/hostfs.js')).href);
  return kernelConfigGate(readKernelConfig(realHostContext(), undefined, file));
}

// ---------- main ----------

function parse(argv) {
  try {
    const { values } = parseCommand(
      {
        kernels: { type: 'string', value: 'kernels' },
        out: { type: 'string', value: 'a folder' },
        cache: { type: 'string', value: 'a folder' },
        timeout: { type: 'string', value: 'seconds' },
        memory: { type: 'string', value: 'MiB' },
        cpus: { type: 'string', value: 'a number' },
        only: { type: 'string', value: 'probe names' },
        'no-host': { type: 'boolean' },
        check: { type: 'boolean' },
        all: { type: 'boolean' },
        'qemu-cpu': { type: 'string', value: 'a QEMU CPU model' },
        scenarios: { type: 'string', value: 'scenarios' },
        help: { type: 'boolean', short: 'h' },
      },
      argv,
    );
    const num = (name, d) => {
      const v = values[name] ?? String(d);
      if (!/^\d+$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} takes a whole number from 1 up, not '${v}'`);
      return Number(v);
    };
    const all = values.all ?? false;
    const specs = (values.kernels ?? (all ? ALL_KERNELS : DEFAULT_KERNELS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
    if (specs.length === 0) throw new UsageError('--kernels is empty');
    // KERNEL@s1/s2: that kernel with those scenarios (overrides --scenarios for it)
    const kernels = specs.map((s) => s.split('@')[0]);
    const perKernel = specs.map((s) => (s.includes('@') ? s.split('@')[1].split('/').filter(Boolean) : null));
    for (const sc of perKernel.flat().filter(Boolean)) if (!SCENARIOS[sc]) throw new UsageError(`--kernels: scenario '${sc}' is not one of ${Object.keys(SCENARIOS).join(', ')}`);
    const scenarios = values.scenarios === undefined ? null : values.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
    if (scenarios && scenarios.length === 0) throw new UsageError('--scenarios is empty');
    for (const sc of scenarios ?? []) if (!SCENARIOS[sc]) throw new UsageError(`--scenarios: '${sc}' is not one of ${Object.keys(SCENARIOS).join(', ')}`);
    return {
      help: values.help ?? false,
      kernels,
      out: path.resolve(values.out ?? path.join(ROOT, 'reports/kernels')),
      cache: path.resolve(values.cache ?? path.join(ROOT, '.cache/kernels')),
      timeout: num('timeout', 600),
      memory: num('memory', 2048),
      cpus: num('cpus', 2),
      only: values.only ?? null,
      host: !values['no-host'],
      check: values.check ?? false,
      all,
      scenarios,
      perKernel,
      qemuCpu: values['qemu-cpu'] ?? 'max',
      // The private apt configuration: .cache/apt beside the default cache; inside a --cache DIR the
      // user names (DIR/.apt), so that nothing is written next to it (--cache /tmp/k made /tmp/apt).
      aptDir: values.cache ? path.join(path.resolve(values.cache), '.apt') : path.join(ROOT, '.cache', 'apt'),
    };
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError(e.message);
  }
}

const HELP = `usage: node ci/kernels.mjs [--kernels LIST] [--out DIR] [--timeout SECONDS] [--cache DIR]
                           [--memory MIB] [--cpus N] [--only PROBES] [--no-host]
  --kernels  comma-separated: ${Object.keys(ALIASES).join(', ')} or linux-image-* package names;
             KERNEL@s1/s2 runs that kernel with those scenarios only
             (default ${DEFAULT_KERNELS.join(',')})
  --out      reports and matrix (default reports/kernels)
  --timeout  per kernel, boot to poweroff (default 600); a hung guest is killed and reported
  --cache    unpacked kernel packages (default .cache/kernels)
  --only     passed to nsprobe in the guests (debugging)
  --no-host  do not run nsprobe on this host too
  --scenarios comma-separated: ${Object.keys(SCENARIOS).join(', ')} (default baseline; with --all: every
             kernel gets baseline, userns0, uuc0, procmask, the max_<type>=0 ones spread over the kernels)
  --qemu-cpu QEMU's -cpu (default max)
  --all      every kernel (${ALL_KERNELS.join(',')}) x the scenarios above
  --check    only check (and install when root) the tools, exit 0 or 3
`;

/** One line per kernel x scenario: "5.10 bullseye, max_user_namespaces=0: rootless blocked (max_user_namespaces)". */
export function scenarioLines(results) {
  return results.map((r) => {
    const label = r.label ?? `${r.tag} ${r.suite ?? ''}, ${r.scenarioName ?? r.scenario}`;
    if (r.outcome === 'not-applicable') return { label, text: `not applicable: ${r.reason}`, ok: true };
    if (!r.check) return { label, text: `${r.outcome}: ${(r.reason ?? '').slice(0, 200)}`, ok: false };
    const part = (m) => `${m} ${r.check[m].summary}`;
    const ok = r.check.root.mismatches.length + r.check.nobody.mismatches.length === 0;
    return { label, text: `${part('root')}; ${part('nobody')} — ${ok ? 'every verdict as declared' : `NOT as declared: ${r.reason}`}`, ok };
  });
}

function scenarioTable(results) {
  const lines = scenarioLines(results);
  return [
    '## Kernel x scenario',
    '',
    'Each row booted that kernel with that host configuration (sysctls on the kernel command line, or mounts over /proc); the verdicts are checked against the ones the scenario declares (`expected()` in ci/kernels.mjs).',
    '',
    '| kernel, scenario | verdicts (root; nobody) | as declared |',
    '|---|---|---|',
    ...lines.map((l) => `| ${l.label} | ${l.text.replace(/\|/g, '\\|').replace(/ — .*$/, '')} | ${l.ok ? 'yes' : '**no**'} |`),
    '',
    ...lines.map((l) => `- ${l.label}: ${l.text}`),
    '',
  ];
}

/** Every gate seen blocked in a guest report whose scenario checked out, with where and how many probes it blocked. */
export function gateCoverage(results) {
  const seen = new Map();
  for (const r of results) {
    if (r.outcome !== 'ok') continue;
    for (const m of ['root', 'nobody']) {
      const rep = JSON.parse(readOr(r.modes[m]?.report ?? '', '{}'));
      for (const g of rep.gates ?? []) {
        if (g.status !== 'blocked' || !g.remedy) continue;
        const probes = (rep.probes ?? []).filter((p) => p.gate === g.id && p.status === 'unsupported').length;
        const skips = (rep.probes ?? []).filter((p) => (p.assertions ?? []).some((x) => x.status === 'skipped' && x.gate === g.id)).length;
        const list = seen.get(g.id) ?? seen.set(g.id, []).get(g.id);
        list.push(`${r.tag}/${r.scenario} ${m}: ${probes} unsupported${skips ? `, ${skips} with checks skipped` : ''}`);
      }
    }
  }
  return Object.fromEntries([...seen.entries()].sort());
}

function summaryMarkdown(results, hostRun, seconds) {
  const rows = results.map((r) => {
    const st = (name) => r.stages.find((s) => s.stage === name)?.uptime;
    const boot = st('root-start');
    const runRoot = st('root-done') !== undefined && boot !== undefined ? (st('root-done') - boot).toFixed(0) : '—';
    const runNobody = st('nobody-done') !== undefined && st('nobody-start') !== undefined ? (st('nobody-done') - st('nobody-start')).toFixed(0) : '—';
    const guest = r.modes.root?.report ? JSON.parse(readOr(r.modes.root.report, '{}')).gates?.find((g) => g.id === 'kernel_config') : undefined;
    const kc = r.kernelConfig
      ? `${r.kernelConfig.status}${r.kernelConfig.status === 'ok' ? '' : `: ${r.kernelConfig.cause}`} (\`boot/${path.basename(r.config ?? '')}\`; guest report: ${guest ? `${guest.status} from ${guest.value?.source ?? 'nothing'}` : '—'})`
      : '—';
    const modes = ['root', 'nobody'].map((m) => (r.modes[m]?.report ? `${m} (exit ${r.modes[m].nsprobeExit})` : `${m}: none`)).join(', ');
    return `| ${r.tag} / ${r.scenario} | \`${r.pkg}\` ${r.version} (${r.suite ?? '?'}) | \`${r.release ?? '—'}\` | ${r.outcome}${r.reason ? `: ${r.reason.replace(/\|/g, '\\|').slice(0, 300)}` : ''} | ${modes} | ${boot !== undefined ? boot.toFixed(1) : '—'} | ${runRoot} / ${runNobody} | ${r.seconds ?? '—'} | ${kc} |`;
  });
  return [
    '# nsprobe kernel matrix',
    '',
    `${new Set(results.map((r) => r.tag)).size} kernel(s), ${results.length} kernel x scenario run(s) under QEMU TCG, ${seconds.toFixed(0)} s in all${hostRun ? `; host run: ${hostRun}` : ''}. The merged matrix is matrix.md / matrix.html.`,
    '',
    ...scenarioTable(results),
    '## Gates seen blocking',
    '',
    'Each gate that was `blocked` (with a remedy) in a guest report of a run whose verdicts were all as declared:',
    '',
    '| gate | where (unsupported probes naming it) |',
    '|---|---|',
    ...Object.entries(gateCoverage(results)).map(([g, where]) => `| \`${g}\` | ${where.join('; ')} |`),
    '',
    '## Boots',
    '',
    '| kernel / scenario | package (suite) | release | outcome | reports (nsprobe exit) | boot to the root port (s, guest uptime) | suite root / nobody (s) | VM total (s) | kernel_config of the package |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

async function main(argv) {
  const opts = parse(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const t0 = Date.now();
  if (process.arch !== 'x64') throw new MissingError(`this runs x86_64 Debian kernels with the host's own node; this host is ${process.arch}`);
  // the controller runs here (dist/); the guests get only the agent, which --via copies in
  for (const f of ['dist/src/cli.js', 'build/Release/nsprobe.node'])
    if (!fs.existsSync(path.join(ROOT, f))) throw new MissingError(`${f} is missing: build first (npm ci, or: node scripts/build-native.mjs && npx tsc -p tsconfig.json)`);
  if (!['build/Release/nsprobe-agent', 'build/agent/nsprobe-agent-x86_64'].some((f) => fs.existsSync(path.join(ROOT, f))))
    throw new MissingError('no x86_64 agent (build/Release/nsprobe-agent): build first (node scripts/build-native.mjs)');
  if (process.geteuid?.() !== 0)
    throw new MissingError('needs root: kernels are fetched with apt-get into the cache and missing tools installed with apt-get');
  const tools = ensureTools();
  if (opts.check) {
    log(`tools ok: ${Object.entries(tools).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    return 0;
  }
  fs.mkdirSync(opts.out, { recursive: true });
  // an old matrix must not pass for this run's when nothing comes back
  for (const f of ['matrix.json', 'matrix.md', 'matrix.html', 'matrix-junit.xml', 'kernels.json', 'kernels.md']) fs.rmSync(path.join(opts.out, f), { force: true });
  const kernels = opts.kernels.map((s) => resolveKernel(s, opts.aptDir));
  log(`kernels: ${kernels.map((k) => `${k.tag}=${k.pkg} ${k.version} (${k.suite})`).join(', ')}`);
  const results = [];
  const inputs = [];
  let hostRun = null;
  if (opts.host) {
    const hostDir = path.join(opts.out, 'host', 'root');
    fs.rmSync(path.join(opts.out, 'host'), { recursive: true, force: true });
    fs.mkdirSync(hostDir, { recursive: true });
    const th = Date.now();
    const args = ['dist/src/cli.js', '--out', hostDir, '--no-color', ...(opts.only ? ['--only', opts.only] : [])];
    const h = start(process.execPath, args, { cwd: ROOT, stdio: ['ignore', fs.openSync(path.join(hostDir, 'probe.log'), 'w'), 'pipe'] });
    let err = '';
    h.stderr.on('data', (d) => (err += d));
    const r = await h.done;
    hostRun = `exit ${r.code} in ${((Date.now() - th) / 1000).toFixed(1)} s`;
    log(`[host] nsprobe ${hostRun}`);
    if (fs.existsSync(path.join(hostDir, 'report.json'))) inputs.push(hostDir);
    else log(`[host] no report.json: ${err.trim().split('\n').slice(-2).join(' | ')}`);
  }
  // the single max_<type>=0 scenarios are spread over the packaged kernels only (the custom one has its own)
  const packaged = kernels.filter((k) => !k.custom);
  for (const [i, k] of kernels.entries()) {
    const ki = packaged.indexOf(k);
    const sids = opts.perKernel[i] ?? opts.scenarios ?? (opts.all ? allScenarios(ki, packaged.length, k.custom) : k.custom ? ['noopts', 'noopts-hidden'] : DEFAULT_SCENARIOS);
    fs.rmSync(path.join(opts.out, k.tag), { recursive: true, force: true });
    let carries = null; // does this kernel have kernel.unprivileged_userns_clone (Debian's patch)? learnt from its first boot
    for (const sid of sids) {
      const scenario = SCENARIOS[sid];
      const dest = path.join(opts.out, k.tag, sid);
      const name = `${k.tag}/${sid}`;
      if (Boolean(scenario.customOnly) !== Boolean(k.custom)) {
        const why = k.custom ? `the ${k.tag} kernel lacks the options every other scenario needs; its scenarios are noopts, noopts-hidden` : `scenario ${sid} runs only on the noopts kernel`;
        log(`[${name}] skipped: ${why}`);
        results.push({ tag: k.tag, scenario: sid, scenarioName: scenario.name, pkg: k.pkg, version: k.version, suite: k.suite, modes: {}, stages: [], outcome: 'not-applicable', reason: why });
        continue;
      }
      if (scenario.needsSysctl && carries === false) {
        log(`[${name}] skipped: ${k.release ?? k.pkg} has no /proc/sys/${scenario.needsSysctl}`);
        results.push({ tag: k.tag, scenario: sid, scenarioName: scenario.name, pkg: k.pkg, version: k.version, suite: k.suite, modes: {}, stages: [], outcome: 'not-applicable', reason: `this kernel has no /proc/sys/${scenario.needsSysctl}` });
        continue;
      }
      fs.mkdirSync(dest, { recursive: true });
      const work = fs.mkdtempSync(path.join(dest, '.vm-'));
      let res;
      try {
        const kern = { ...(k.custom ? await customKernel(k, opts.cache) : fetchKernel(k, opts.cache)), scenario, sid };
        k.release = kern.release;
        kern.label = `${/^(\d+\.\d+)/.exec(kern.release)?.[1] ?? kern.release} ${k.suite}${k.arch && k.arch !== 'amd64' ? ` ${k.arch}` : ''}${k.custom || /-cloud-/.test(k.pkg) ? '' : /-rt-/.test(k.pkg) ? ' rt' : ' generic'}, ${scenario.name}`;
        log(`[${name}] booting ${kern.release} (${k.pkg} ${k.version}, ${k.suite}) as "${kern.label}", timeout ${opts.timeout} s`);
        res = await bootKernel(kern, tools, opts, work, dest);
        if (res.outcome === 'failed' && res.stages.length === 0 && /Kernel panic/.test(readOr(path.join(work, 'console.log')))) {
          // seen once with 6.12.95 (bookworm-backports) under TCG: a list-corruption BUG in virtio_pci's init, before /init ran
          const first = `${res.reason.slice(0, 200)}`;
          fs.renameSync(path.join(work, 'console.log'), path.join(dest, 'console-panic-1.log'));
          log(`[${name}] the kernel panicked before /init ran (console-panic-1.log); booting once more`);
          res = await bootKernel(kern, tools, opts, work, dest);
          res.retried = `first boot panicked before /init: ${first}`;
        }
        Object.assign(res, { scenario: sid, scenarioName: scenario.name, label: kern.label, suite: k.suite, config: kern.config });
        res.kernelConfig = await configGate(kern.config).catch((e) => ({ status: 'unknown', cause: e.message }));
        const uuc = res.stages.find((st) => st.stage === 'sysctl' && st.arg.startsWith('kernel/unprivileged_userns_clone='));
        if (uuc) carries = !uuc.arg.endsWith('=absent');
        res.carriesUnprivilegedUsernsClone = carries;
        if (scenario.needsSysctl && carries === false) {
          res.outcome = 'not-applicable';
          res.reason = `this kernel has no /proc/sys/${scenario.needsSysctl}`;
        } else if (res.outcome === 'ok') {
          res.check = {};
          for (const m of ['root', 'nobody']) res.check[m] = checkScenario(sid, m, JSON.parse(fs.readFileSync(res.modes[m].report, 'utf8')));
          const bad = ['root', 'nobody'].flatMap((m) => res.check[m].mismatches.map((x) => `${m}: ${x}`));
          if (bad.length) (res.outcome = 'unexpected'), (res.reason = bad.join('; '));
        }
      } catch (e) {
        res = { tag: k.tag, scenario: sid, scenarioName: scenario.name, pkg: k.pkg, version: k.version, suite: k.suite, modes: {}, stages: [], outcome: 'failed', reason: e.message };
      }
      for (const f of ['console.log', 'qemu.log', 'qemu.cmd']) if (fs.existsSync(path.join(work, f))) fs.renameSync(path.join(work, f), path.join(dest, f));
      fs.rmSync(work, { recursive: true, force: true });
      results.push(res);
      if (res.outcome !== 'not-applicable') for (const m of ['root', 'nobody']) if (res.modes[m]?.report) inputs.push(path.join(dest, m));
      log(`[${name}] ${res.outcome === 'ok' ? 'ok' : res.outcome.toUpperCase()} in ${res.seconds ?? '?'} s${res.check ? `: ${res.check.root.summary}` : ''}${res.reason ? `: ${res.reason}` : ''}`);
    }
  }
  let mergeOk = false;
  if (inputs.length > 0) {
    const m = run(process.execPath, ['dist/src/cli.js', 'merge', ...inputs, '--out', opts.out], { cwd: ROOT, allowFail: true });
    process.stdout.write(m.stdout);
    if (m.status !== 0) log(`merge failed (exit ${m.status}): ${m.stderr.trim()}`);
    mergeOk = m.status === 0;
  } else log('no report came back: nothing to merge');
  if (mergeOk && fs.existsSync(path.join(opts.out, 'matrix.md'))) {
    // the merged matrix labels each row by the guest's hostname (`<kernel> <suite>, <scenario>[, nobody]`); put the verdict summary per row on top
    const md = fs.readFileSync(path.join(opts.out, 'matrix.md'), 'utf8');
    const [first, ...rest] = md.split('\n');
    fs.writeFileSync(path.join(opts.out, 'matrix.md'), [first, '', ...scenarioTable(results), ...rest].join('\n'));
  }
  const seconds = (Date.now() - t0) / 1000;
  fs.writeFileSync(path.join(opts.out, 'kernels.json'), `${JSON.stringify({ seconds, hostRun, results, gatesSeenBlocking: gateCoverage(results) }, null, 2)}\n`);
  fs.writeFileSync(path.join(opts.out, 'kernels.md'), summaryMarkdown(results, hostRun, seconds));
  const failed = results.filter((r) => r.outcome !== 'ok' && r.outcome !== 'not-applicable');
  log(`${results.length - failed.length}/${results.length} kernel x scenario run(s) ok in ${seconds.toFixed(0)} s; ${path.join(opts.out, 'kernels.md')}${mergeOk ? `, ${path.join(opts.out, 'matrix.md')}` : ' (no matrix)'}`);
  for (const r of failed) log(`FAILED ${r.tag}/${r.scenario}: ${r.outcome}: ${r.reason}`);
  return failed.length === 0 && mergeOk ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(sig, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.stderr.write(`\nkernels: ${sig}: stopping QEMU and the nsprobe controllers\n`);
      killAll();
      process.exit(130);
    });
  process.on('exit', killAll);
  quietStdout('kernels');
  main(process.argv.slice(2)).then(
    (code) => {
      killAll();
      process.exitCode = code;
    },
    (e) => {
      killAll();
      process.stderr.write(`kernels: ${e.message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : e instanceof MissingError ? 3 : 1;
    },
  );
}
