// As an unprivileged user: rootless entering whose gid or uid map names an id this user does not
// own, so the parent's write of that map fails. Prints [{stage, code}, ...] for gid, uid and a
// good map (control).
import { native } from '../../src/native.js';
import { fromNative } from '../../src/errors.js';

const uid = process.geteuid!();
const gid = process.getegid!();
const CLONE_NEWUSER = 0x10000000;
const cases = [
  { uidMap: `0 ${uid} 1\n`, gidMap: '0 0 1\n' },
  { uidMap: '0 0 1\n', gidMap: `0 ${gid} 1\n` },
  { uidMap: `0 ${uid} 1\n`, gidMap: `0 ${gid} 1\n` },
];
const out = [];
for (const c of cases) {
  try {
    const box = await native().enter({ cloneFlags: CLONE_NEWUSER, userns: true, ...c, timeoutMs: 5000 });
    await native().close(box.id, 1000);
    out.push({ ok: true });
  } catch (e) {
    const x = fromNative(e);
    out.push({ stage: x.stage, code: x.code });
  }
}
console.log(JSON.stringify(out));
