// Which prebuilt binary fits this host: prebuilds/<platform>-<arch>/node.napi.<libc>.node (the
// prebuildify layout and tags) with the helper programs (nsprobe-serve, nsprobe-seccomp-exec,
// nsprobe-rawbench) next to it, where the addon looks for nsprobe-serve. One N-API binary serves
// every Node version. Used by the install script (build-native.mjs --if-no-prebuild) and by
// scripts/prebuild.mjs; src/native.ts makes the same choice at run time (test/package.test.ts
// checks that they agree).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const HELPERS = ['nsprobe-serve', 'nsprobe-seccomp-exec', 'nsprobe-rawbench', 'nsprobe-agent'];

/**
 * 'glibc' or 'musl', from the C library this Node process has mapped (/proc/self/maps: glibc's
 * libc.so.6, musl's ld-musl-*.so.1), so a musl host never loads a glibc binary, whatever files it
 * has (node-gyp-build's test for /etc/alpine-release misses Void and others). process.report's
 * glibcVersionRuntime is the fallback where /proc is not mounted. LIBC=glibc|musl overrides.
 */
export function hostLibc() {
  if (process.env.LIBC === 'glibc' || process.env.LIBC === 'musl') return process.env.LIBC;
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    if (/\/ld-musl-[^/\s]*\.so/.test(maps)) return 'musl';
    if (/\/libc\.so\.6$/m.test(maps)) return 'glibc';
  } catch {}
  return process.report?.getReport?.().header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

export function prebuildTag(platform = process.platform, arch = process.arch, libc = hostLibc()) {
  return { dir: `${platform}-${arch}`, file: `node.napi.${libc}.node`, label: `${platform}-${arch} (${libc})` };
}

/** The prebuilt addon for this host under `root`, or null when the package has none that fits. */
export function findPrebuild(root, tag = prebuildTag()) {
  const addon = join(root, 'prebuilds', tag.dir, tag.file);
  if (!existsSync(addon)) return null;
  const missing = HELPERS.filter((h) => !existsSync(join(root, 'prebuilds', tag.dir, h)));
  return { addon, dir: join(root, 'prebuilds', tag.dir), missing };
}
