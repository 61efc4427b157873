// What the debris tests read back: a run's report notes, and whether a process still runs (a
// zombie or dying process counts as ended, as in src/cleanup.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The notes of the report.json in `dir`. */
export function notesOf(dir: string): string[] {
  return (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { notes?: string[] }).notes ?? [];
}

/** Whether process `pid` runs (not gone, not a zombie or dying). */
export function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
