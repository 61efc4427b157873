// Tests that need root or an outside program: they skip with the reason when it is missing, and
// under NSPROBE_REQUIRE_TOOLS=1 (set by .ci/run after installing every program) a missing program
// fails the test instead, so nothing CI installed can be skipped unseen. Root is not a program:
// a root-only test skips as a normal user whatever NSPROBE_REQUIRE_TOOLS says.
import test, { type ImplementationFn, type SerialFn, type TestFn } from 'ava';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const REQUIRE_TOOLS = process.env.NSPROBE_REQUIRE_TOOLS === '1';
export const isRoot = process.geteuid?.() === 0;

/** The absolute path of an executable on PATH (or an absolute path that is executable), or null. */
export function which(cmd: string): string | null {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

/** "bwrap and podman are not installed" for the programs not on PATH, or null when all are. */
export function missingTools(...cmds: string[]): string | null {
  const gone = cmds.filter((c) => which(c) === null);
  if (!gone.length) return null;
  return `${gone.join(' and ')} ${gone.length > 1 ? 'are' : 'is'} not installed`;
}

type Title = string;
type Runner = (title: Title, impl: ImplementationFn<[]>) => void;

/**
 * `test` when `reason` is null; otherwise a skipped test whose title says why, or, under
 * NSPROBE_REQUIRE_TOOLS=1, a test that fails with the reason.
 */
export function needTools(reason: string | null, base: TestFn | SerialFn = test): Runner {
  if (reason === null) return (title, impl) => base(title, impl);
  if (REQUIRE_TOOLS) return (title) => base(title, (t) => t.fail(`NSPROBE_REQUIRE_TOOLS=1 but ${reason}`));
  return (title, impl) => base.skip(`${title} (skipped: ${reason})`, impl);
}

/** `test` as root; a skipped test naming the reason otherwise (never a failure: root is no tool). */
export function needRoot(base: TestFn | SerialFn = test): Runner {
  if (isRoot) return (title, impl) => base(title, impl);
  return (title, impl) => base.skip(`${title} (skipped: needs root)`, impl);
}
