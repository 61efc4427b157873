// Sandboxes with a time namespace (alone, and with a pid namespace): which program serves them
// (/proc/PID/exe), their pid inside, and whether they see the offsets. Prints JSON.
import { readlinkSync } from 'node:fs';
import { enter } from '../../src/sandbox.js';
import type { NsType } from '../../src/model.js';

const OFFSET = 86400 * 365; // a year ahead on CLOCK_MONOTONIC and CLOCK_BOOTTIME
const out: Record<string, unknown> = {};
for (const ns of [['time'], ['time', 'pid']] as NsType[][]) {
  const before = performance.now() / 1000;
  const s = await enter({ namespaces: ns, mode: 'rootless', timeOffsets: { monotonic: OFFSET, boottime: OFFSET } });
  try {
    const clocks = await s.clocks().get();
    const id = await s.identity().get();
    out[ns.join('+')] = { exe: readlinkSync(`/proc/${s.pid}/exe`), pid: id.pid, offsetSeen: clocks.monotonic - before > OFFSET - 60 };
  } finally {
    await s.close();
  }
}
console.log(JSON.stringify(out));
