// Time: with MONOTONIC and BOOTTIME offsets written before entry, clocks read inside are shifted
// by the offset; the host's are not, and REALTIME is never shifted.
import type { ProbeDef } from '../src/probe.js';

export const OFFSET_S = 86400;
const TOLERANCE_S = 5;

export const time: ProbeDef = {
  name: 'time',
  namespace: 'time',
  cloneFlag: 'CLONE_NEWTIME',
  since: '5.6',
  summary: 'CLOCK_MONOTONIC and CLOCK_BOOTTIME carry the namespace\'s offsets',
  needs: { kernel: '5.6' },
  creates: () => ['time'],
  uses: {},
  async run(ctx) {
    const a = await ctx.enter({ timeOffsets: { monotonic: OFFSET_S, boottime: OFFSET_S } });
    const host = await ctx.hostSide();
    const h1 = await host.clocks().get();
    const inside = await a.clocks().get();
    const h2 = await host.clocks().get();
    const mid = (k: 'monotonic' | 'boottime' | 'realtime') => (h1[k] + h2[k]) / 2;
    const near = (v: number, want: number) => Math.abs(v - want) <= TOLERANCE_S;
    const dm = inside.monotonic - mid('monotonic');
    const db = inside.boottime - mid('boottime');
    const dr = inside.realtime - mid('realtime');
    ctx.check(`CLOCK_MONOTONIC inside is ahead of the host's by ${OFFSET_S} s`, near(dm, OFFSET_S), OFFSET_S, Math.round(dm * 1000) / 1000, 'inside');
    ctx.check(`CLOCK_BOOTTIME inside is ahead of the host's by ${OFFSET_S} s`, near(db, OFFSET_S), OFFSET_S, Math.round(db * 1000) / 1000, 'inside');
    ctx.check('CLOCK_REALTIME is not shifted (it is not namespaced)', near(dr, 0), 0, Math.round(dr * 1000) / 1000, 'inside');
    const nodeMono = await ctx.host.monotonic();
    ctx.check('the host\'s own CLOCK_MONOTONIC is not shifted', near(nodeMono, h2.monotonic), Math.round(h2.monotonic), Math.round(nodeMono), 'host');
    // Environment assumption: the host side can read the sandbox's /proc/PID/timens_offsets (its
    // own child, same user): true wherever /proc shows its pid namespace, as it must for a.pid to mean anything.
    const offsets = await ctx.host.readFile(`/proc/${a.pid}/timens_offsets`).get();
    ctx.check('the host reads the offsets in /proc/PID/timens_offsets', /monotonic\s+86400\s+0/.test(offsets) && /boottime\s+86400\s+0/.test(offsets), `monotonic ${OFFSET_S} 0, boottime ${OFFSET_S} 0`, offsets.trim(), 'host');
    const zero = await ctx.enter({ timeOffsets: { monotonic: 0, boottime: 0 } });
    const z = await zero.clocks().get();
    ctx.check('a sibling time namespace without offsets reads the host\'s clocks (control)', near(z.monotonic - h2.monotonic, 0), 0, Math.round((z.monotonic - h2.monotonic) * 1000) / 1000, 'control');
  },
};
