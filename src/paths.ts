// Where the package lives, found from this module (src/ under tsx, dist/src/ compiled).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMA_PATH = join('schema', 'report.schema.json');

/** The nearest directory above `from` holding package.json and the report schema. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, SCHEMA_PATH))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the nsprobe package root (with ${SCHEMA_PATH}) above ${from}`);
  }
}
