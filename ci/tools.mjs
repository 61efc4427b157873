// Finding and installing the host tools the ci/ scripts need (Debian/Ubuntu).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The full path of an executable on PATH (and the sbin directories), or null. */
export const which = (name) =>
  (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .map((d) => path.join(d, name))
    .find((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? null;

/**
 * apt-get install --no-install-recommends, and once more after apt-get update when that fails
 * (package lists missing or stale). Returns the last install's spawnSync result.
 */
export function aptInstall(pkgs) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { encoding: 'utf8', maxBuffer: 64 << 20, env });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env });
    r = install();
  }
  return r;
}
