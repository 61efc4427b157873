// Validates JUnit XML against the strict Jenkins schema with libxml2 compiled to WebAssembly
// (xmllint-wasm, a devDependency), so no system package is needed: `npm ci` brings everything.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { validateXML } from 'xmllint-wasm';

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

/** Validates an XML string against `xsd` with libxml2 (xmllint-wasm); `output` holds its messages. */
export async function xmllint(xml: string, xsd: string = JUNIT_XSD, fileName = 'junit.xml'): Promise<XmlCheck> {
  if (!existsSync(xsd)) throw new Error(`JUnit schema not found at ${xsd} (set NSPROBE_JUNIT_XSD)`);
  const schema = await readFile(xsd, 'utf8');
  const r = await validateXML({ xml: [{ fileName, contents: xml }], schema: [schema], maxMemoryPages: 4096 });
  return { ok: r.valid, output: r.valid ? '' : r.errors.map((e) => e.rawMessage).join('\n') };
}

/** Same for a file. */
export async function xmllintFile(file: string, xsd: string = JUNIT_XSD): Promise<XmlCheck> {
  return xmllint(await readFile(file, 'utf8'), xsd, file);
}
