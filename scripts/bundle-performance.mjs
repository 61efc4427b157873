// Injected by scripts/bundle.mjs for the global `performance` in the bundle: the program only
// measures intervals with performance.now(), and Node's global loads perf_hooks (11 builtins) on
// first use. process.hrtime is the same monotonic clock. bundle.mjs refuses any other use.
const origin = process.hrtime.bigint();
export const performance = { now: () => Number(process.hrtime.bigint() - origin) / 1e6 };
