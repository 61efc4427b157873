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
 * The options of a kernel config: `CONFIG_X=value` (quotes around a value removed) and
 * `# CONFIG_X is not set` ("n"), each line trimmed; every other line is ignored. One pass with
 * indexOf and a check of the name, instead of two regular expressions on each of ~4000 lines
 * (about half the time of parsing, which ran before the first probe).
 */
export function parseKernelConfig(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (let at = 0; at <= text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const line = text.slice(at, nl).trim();
    at = nl + 1;
    if (line.startsWith('CONFIG_')) {
      const eq = line.indexOf('=');
      if (eq < 0) continue;
      const name = line.slice(0, eq);
      const v = line.slice(eq + 1);
      if (!NAME.test(name) || LINE_BREAK.test(v)) continue;
      options.set(name, v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v);
    } else if (line.startsWith('# CONFIG_') && line.endsWith(NOT_SET_TAIL)) {
      const name = line.slice(2, line.length - NOT_SET_TAIL.length);
      if (NAME.test(name)) options.set(name, 'n');
    }
  }
  return options;
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
 * at least one CONFIG_ line.
 */
export function readKernelConfig(ctx: HostContext, release?: string, explicitPath?: string): KernelConfig | null {
  const rel = release ?? ctx.fs.readFile('/proc/sys/kernel/osrelease')?.trim();
  for (const source of explicitPath ? [explicitPath] : kernelConfigPaths(rel)) {
    const text = decode(ctx, source);
    if (text === null) continue;
    const options = parseKernelConfig(text);
    if (options.size > 0) return { source, options };
  }
  return null;
}
