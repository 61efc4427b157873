// The caller's open-file limit. A run holds about 62 descriptors at its peak (Node's own, the ESM
// loader reading modules in parallel, four probes' sandbox channels, DEFAULT_CONCURRENCY in
// src/runner.ts, and the descriptors passed back from them; 46 with two probes at once), and below
// that it failed with `EMFILE` errors or `recvmsg EMSGSIZE` (the kernel truncates SCM_RIGHTS when
// the receiver is at its limit): 2 runs in 5 failed at 60, none of 5 at 64. So a run first raises the soft
// RLIMIT_NOFILE (up to the hard limit, which any process may do); where the hard limit leaves less
// than a four-probe run needs but enough for two probes at once, it runs two at a time (slower,
// the same results); below that it stops with one line.
import { native } from './native.js';

/** Descriptors a run at DEFAULT_CONCURRENCY needs (measured peak about 62 with four probes at once, with room for more). */
export const NOFILE_NEEDED = 96;
/** Descriptors a run needs at all: two probes at once (peak about 46; none of 5 runs failed at 64). */
export const NOFILE_MIN = 64;
/** Probes at once where the limit allows fewer than DEFAULT_CONCURRENCY. */
export const NOFILE_LOW_CONCURRENCY = 2;

let softAfter = -1;
/** The probes a run may have at once under the limit raiseNofile left (undefined: no reason for fewer). */
export function nofileConcurrency(): number | undefined {
  return softAfter !== -1 && softAfter < NOFILE_NEEDED ? NOFILE_LOW_CONCURRENCY : undefined;
}
/** What the soft limit is raised to when it is lower (never above the hard limit). */
export const NOFILE_WANTED = 1024;

/** Raises the soft open-file limit; returns a one-line reason when a run cannot have enough. */
export function raiseNofile(): string | null {
  let lim: { soft: number; hard: number };
  try {
    lim = native().setNofile(NOFILE_WANTED);
  } catch {
    return null; // no addon: the run reports that itself
  }
  softAfter = lim.soft;
  if (lim.soft === -1 || lim.soft >= NOFILE_MIN) return null;
  return `a run needs ${NOFILE_MIN} open file descriptors, but this process may open only ${lim.soft} (ulimit -n; the hard limit is ${lim.hard === -1 ? 'unlimited' : lim.hard}): raise it, e.g. ulimit -n ${NOFILE_NEEDED}`;
}
