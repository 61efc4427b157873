// Errors as data: every failure of entering or acting inside says how far it got (stage),
// which syscall failed, and its errno as number and name.
import { constants } from 'node:os';
import type { Stage } from './model.js';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) if (!errnoNames.has(num)) errnoNames.set(num, name);

export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `E#${n}`;
}

export class NsError extends Error {
  readonly stage: Stage;
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(stage: Stage, syscall: string, errno: number, message?: string) {
    super(message ?? `${syscall} failed at stage ${stage}: ${errnoName(errno)}`);
    this.name = 'NsError';
    this.stage = stage;
    this.syscall = syscall;
    this.errno = errno;
    this.code = errnoName(errno);
  }
  toJSON() {
    return { stage: this.stage, syscall: this.syscall, errno: this.errno, code: this.code, message: this.message };
  }
}

/** Turns an error thrown by the native addon into an NsError. */
export function fromNative(e: unknown): NsError {
  if (e instanceof NsError) return e;
  const o = e as { stage?: string; syscall?: string; errno?: number; message?: string; native?: boolean };
  if (o && o.native) return new NsError((o.stage ?? 'request') as Stage, o.syscall ?? 'unknown', o.errno ?? 0, o.message);
  throw e;
}
