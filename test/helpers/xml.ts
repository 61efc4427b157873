// Validates JUnit XML against the strict Jenkins schema with xmllint (libxml2-utils).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The shared copy of the strict schema, where CI lays shared/ beside the checkout. */
export const SHARED_JUNIT_XSD = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'schemas', 'junit-jenkins.xsd');
/** Our copy (MIT, from junit5's platform-tests), so that a clone anywhere else validates too. */
export const OWN_JUNIT_XSD = resolve(import.meta.dirname, '..', 'fixtures', 'junit-jenkins.xsd');
/** NSPROBE_JUNIT_XSD, else the shared schema, else our copy (a test keeps the two equal). */
export const JUNIT_XSD = process.env.NSPROBE_JUNIT_XSD ?? (existsSync(SHARED_JUNIT_XSD) ? SHARED_JUNIT_XSD : OWN_JUNIT_XSD);

export interface XmlCheck {
  ok: boolean;
  output: string;
}

/** Runs `xmllint --noout --schema <xsd> <file>`; throws (never skips) when xmllint is missing. */
export async function xmllintFile(file: string, xsd: string = JUNIT_XSD): Promise<XmlCheck> {
  if (!existsSync(xsd)) throw new Error(`JUnit schema not found at ${xsd} (set NSPROBE_JUNIT_XSD)`);
  try {
    const { stdout, stderr } = await run('xmllint', ['--noout', '--schema', xsd, file]);
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') {
      throw new Error('xmllint not found: install libxml2-utils (apt-get install -y libxml2-utils) to validate JUnit XML');
    }
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** Same for an XML string (written to a temporary file). */
export async function xmllint(xml: string, xsd: string = JUNIT_XSD): Promise<XmlCheck> {
  const dir = await mkdtemp(join(tmpdir(), 'nsprobe-xml-'));
  try {
    const file = join(dir, 'junit.xml');
    await writeFile(file, xml);
    return await xmllintFile(file, xsd);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
