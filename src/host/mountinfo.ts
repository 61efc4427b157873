// /proc/<pid>/mountinfo parsing (proc(5)). Mount points are relative to the reading
// process's root: mounts it cannot reach are left out by the kernel.

export interface MountEntry {
  id: number;
  parentId: number;
  /** Root of the mount within its filesystem ("/" unless a bind mount of a subtree). */
  root: string;
  mountPoint: string;
  options: string[];
  /** Optional fields, e.g. ["shared:1", "master:2"]. */
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Undo the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const sep = f.indexOf('-');
    if (f.length < 10 || sep < 6) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      options: f[5]!.split(','),
      optional: f.slice(6, sep),
      fsType: f[sep + 1]!,
      source: unescape(f[sep + 2] ?? ''),
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

/** The topmost mount on "/" as this process sees it; undefined when the root is not a mount point (chroot into a directory). */
export function rootMount(mounts: MountEntry[]): MountEntry | undefined {
  const roots = mounts.filter((m) => m.mountPoint === '/');
  return roots[roots.length - 1];
}

/**
 * Where an mqueue filesystem is mounted in this process's mount namespace (the host's queues, as
 * this process's IPC namespace has them), or null when none is mounted or mountinfo is unreadable.
 */
export function mqueueMountPoint(text: string | null): string | null {
  if (text === null) return null;
  return parseMountinfo(text).find((m) => m.fsType === 'mqueue')?.mountPoint ?? null;
}
