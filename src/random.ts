// Random bytes for names that must not be guessed (temporary report files, a probe's folders and
// links): read from /dev/urandom, which costs a run three system calls, where node:crypto cost it
// ~8.5 ms of loading (issue 14: it is loaded whole, webcrypto included). Where /dev/urandom cannot
// be read as the kernel's character device (a chroot without /dev), node:crypto is loaded after all.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** `n` random bytes from the kernel, as node:crypto's randomBytes(n) gives them. */
export function randomBytes(n: number): Buffer {
  const buf = Buffer.alloc(n);
  try {
    const fd = openSync('/dev/urandom', constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    try {
      if (!fstatSync(fd).isCharacterDevice()) throw new Error('not a device');
      for (let got = 0; got < n; ) {
        const k = readSync(fd, buf, got, n - got, null);
        if (k <= 0) throw new Error('short read');
        got += k;
      }
    } finally {
      closeSync(fd);
    }
    return buf;
  } catch {
    return (process.getBuiltinModule('node:crypto') as typeof import('node:crypto')).randomBytes(n);
  }
}
