// Kernel build configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC) or /boot/config-<release>.
// A missing, empty or unreadable config is unknown (null), never "every option missing".
import { gunzipSync } from 'node:zlib';
import type { HostContext } from './hostfs.js';

export interface KernelConfig {
  /** Path the config was read from. */
  source: string;
  /** CONFIG_X -> "y" | "m" | "n" (from "# CONFIG_X is not set") | string / number value (quotes removed). */
  options: Map<string, string>;
}

const NAME = /^CONFIG_[A-Za-z0-9_]+$/;
const NOT_SET_TAIL = ' is not set';
// What a regular expression's `.` does not match: a value holding one makes no `CONFIG_X=value` line.
const LINE_BREAK = /[\r\u2028\u2029]/;

/**
 * One line of a kernel config, trimmed: `CONFIG_X=value` (quotes around a value removed) gives
 * [name, value], `# CONFIG_X is not set` gives [name, "n"]; every other line undefined.
 */
function parseLine(raw: string): [string, string] | undefined {
  const line = raw.trim();
  if (line.startsWith('CONFIG_')) {
    const eq = line.indexOf('=');
    if (eq < 0) return undefined;
    const name = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (!NAME.test(name) || LINE_BREAK.test(v)) return undefined;
    return [name, v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v];
  }
  if (line.startsWith('# CONFIG_') && line.endsWith(NOT_SET_TAIL)) {
    const name = line.slice(2, line.length - NOT_SET_TAIL.length);
    if (NAME.test(name)) return [name, 'n'];
  }
  return undefined;
}

/**
 * The options of a kernel config: `CONFIG_X=value` (quotes around a value removed) and
 * `# CONFIG_X is not set` ("n"), each line trimmed; every other line is ignored; a later line
 * wins. Every option of the text: the tests' reference for pickKernelOptions, and what a caller
 * that wants them all (none in a run) reads.
 */
export function parseKernelConfig(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (let at = 0; at <= text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const kv = parseLine(text.slice(at, nl));
    at = nl + 1;
    if (kv) options.set(kv[0], kv[1]);
  }
  return options;
}

/**
 * What parseKernelConfig(text) says of `names` only, without reading the other ~4000 lines: a
 * line that sets an option holds its name, so only the lines where a wanted name occurs (found
 * by one regular expression over the text) are parsed, each as parseKernelConfig would (a later
 * line wins; CONFIG_USER_NS inside CONFIG_USER_NS_UNPRIVILEGED's line is that option's).
 */
export function pickKernelOptions(text: string, names: readonly string[]): Map<string, string> {
  const options = new Map<string, string>();
  const wanted = new Set(names.filter((n) => n !== ''));
  if (wanted.size === 0) return options;
  const re = new RegExp([...wanted].map((n) => n.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')).join('|'), 'g');
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = text.lastIndexOf('\n', m.index) + 1;
    let end = text.indexOf('\n', m.index);
    if (end < 0) end = text.length;
    const kv = parseLine(text.slice(start, end));
    if (kv !== undefined && wanted.has(kv[0])) options.set(kv[0], kv[1]);
    re.lastIndex = end + 1; // the line is read: a second name in it is not another option
  }
  return options;
}

/** Whether the text sets any option at all (parseKernelConfig(text).size > 0), stopping at the first. */
export function hasKernelOption(text: string): boolean {
  for (let at = 0; at <= text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    if (parseLine(text.slice(at, nl)) !== undefined) return true;
    at = nl + 1;
  }
  return false;
}

/** Whether an option is built in or a module. */
export function isEnabled(options: Map<string, string>, name: string): boolean {
  const v = options.get(name);
  return v === 'y' || v === 'm';
}

/** Largest decompressed config accepted (real ones are about 300 KB): a gzip bomb stops here. */
export const KERNEL_CONFIG_MAX_BYTES = 16 << 20;

function decode(ctx: HostContext, path: string): string | null {
  if (path.endsWith('.gz')) {
    const bin = ctx.fs.readBinary(path);
    if (bin === null) return null;
    try {
      return gunzipSync(bin, { maxOutputLength: KERNEL_CONFIG_MAX_BYTES }).toString('utf8');
    } catch {
      return null;
    }
  }
  return ctx.fs.readFile(path);
}

/** Candidate config paths, in order of preference. */
export function kernelConfigPaths(release: string | undefined): string[] {
  return ['/proc/config.gz', ...(release ? [`/boot/config-${release}`, `/lib/modules/${release}/config`] : [])];
}

/**
 * Read the running kernel's config (or `explicitPath`, e.g. a Debian kernel package's
 * /boot/config-<version>). Returns null when no candidate holds a parsable config with
 * at least one CONFIG_ line. With `names`, `options` holds only those of them the config sets
 * (what the gates need: a run reads no other), found without parsing every line.
 */
export function readKernelConfig(ctx: HostContext, release?: string, explicitPath?: string, names?: readonly string[]): KernelConfig | null {
  const rel = release ?? ctx.fs.readFile('/proc/sys/kernel/osrelease')?.trim();
  for (const source of explicitPath ? [explicitPath] : kernelConfigPaths(rel)) {
    const text = decode(ctx, source);
    if (text === null) continue;
    if (names === undefined) {
      const options = parseKernelConfig(text);
      if (options.size > 0) return { source, options };
      continue;
    }
    const options = pickKernelOptions(text, names);
    if (options.size > 0 || hasKernelOption(text)) return { source, options };
  }
  return null;
}
