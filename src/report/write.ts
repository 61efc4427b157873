// Writes report files so a reader sees each one either complete or not at all.

import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Report } from '../model.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { renderTap } from './tap.js';

export const FORMATS = ['tap', 'junit', 'json', 'md', 'html'] as const;
export type Format = (typeof FORMATS)[number];

export const REPORT_FILES: Readonly<Record<Format, string>> = {
  tap: 'report.tap',
  junit: 'junit.xml',
  json: 'report.json',
  md: 'report.md',
  html: 'report.html',
};

export function isFormat(s: string): s is Format {
  return (FORMATS as readonly string[]).includes(s);
}

/** Reports could not be written; the CLI prints the message as one line and exits 2. */
export class OutputError extends Error {
  override name = 'OutputError';
}

export interface OutputFile {
  /** File name inside the output directory. */
  name: string;
  data: string;
}

/** "ENOTDIR: not a directory, mkdir '/x/y'" -> "not a directory (ENOTDIR)". */
function reason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const m = /^(E[A-Z]+): ([^,]+)/.exec(message);
  return m ? `${m[2]} (${m[1]})` : message;
}

let tempCounter = 0;

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${++tempCounter}`);
}

/** Writes and fsyncs `data` to a fresh temporary file next to `path`; returns its name. */
async function writeTemp(path: string, data: string): Promise<string> {
  const temp = tempPathFor(path);
  const fh = await open(temp, 'wx', 0o644);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
  await fh.close();
  return temp;
}

/** Atomically replaces `path` with `data` (temporary file in the same directory, then rename). */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const temp = await writeTemp(path, data);
  try {
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

/**
 * Creates `dir` and writes every file atomically. All temporary files are written before the
 * first rename, so a failure while writing leaves none of the new files behind (and removes
 * every temporary file). Throws OutputError; returns the written paths in order.
 */
export async function writeFilesAtomic(dir: string, files: readonly OutputFile[]): Promise<string[]> {
  const fail = (e: unknown): OutputError => new OutputError(`cannot write reports to ${dir}: ${reason(e)}`, { cause: e });
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fail(e);
  }
  const temps: string[] = [];
  const paths = files.map((f) => join(dir, f.name));
  try {
    for (const [i, f] of files.entries()) temps.push(await writeTemp(paths[i], f.data));
    for (const [i, temp] of temps.entries()) await rename(temp, paths[i]);
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw fail(e);
  }
  return paths;
}

export function renderReport(r: Report, format: Format): string {
  switch (format) {
    case 'tap':
      return renderTap(r);
    case 'junit':
      return renderJunit(r);
    case 'json':
      return `${JSON.stringify(r, null, 2)}\n`;
    case 'md':
      return renderMarkdown(r);
    case 'html':
      return renderHtml(r);
  }
}

/** Writes the requested formats into `outDir` (created if needed); returns the paths written. */
export async function writeReports(r: Report, outDir: string, formats: readonly Format[]): Promise<string[]> {
  const unique = [...new Set(formats)];
  const files = unique.map((f): OutputFile => ({ name: REPORT_FILES[f], data: renderReport(r, f) }));
  return writeFilesAtomic(outDir, files);
}
