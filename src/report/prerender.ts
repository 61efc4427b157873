// The parts of the reports that belong to one probe result, made as soon as the result is in:
// the CLI calls prerender() for each result while the other probes run (the JS thread waits on
// the kernel much of that time), so that writing the reports after the last probe mostly joins
// what is made. report.tap and report.json are most of the text (a probe's assertions, as
// YAML and as JSON lines); the other writers render at the end as before.
import type { ProbeResult } from '../model.js';
import { prerenderJson } from './common.js';
import { prerenderTap } from './tap.js';

/**
 * Makes (once per result object) its parts of report.tap and report.json, of those two that
 * `formats` asks for (default: both).
 */
export function prerender(p: ProbeResult, formats?: readonly string[]): void {
  if (!formats || formats.includes('tap')) prerenderTap(p);
  if (!formats || formats.includes('json')) prerenderJson(p);
}
