// Node Feature Discovery feature file (the `local` source): one `name=value` label a line, for
// /etc/kubernetes/node-feature-discovery/features.d/, so workloads can be scheduled only on nodes
// whose kernel lets them create the namespaces they need.
//
// NFD (source/local/local.go) splits each line at the first `=`, treats lines starting with `#` as
// comments, `# +expiry-time=<RFC3339>` as a directive for the lines after it, ignores dotfiles and
// files over 64 KiB, and drops any label whose name or value breaks the Kubernetes label rules
// (nfd-worker: "ignoring label with invalid name/value"). So every name and value here is made
// valid first: name segment <= 63 chars, [A-Za-z0-9] at both ends, [-_.A-Za-z0-9] inside; value
// the same or empty. The file is written like every report (a dotfile, then renamed).
//
// Labels (prefix feature.node.kubernetes.io/, the one NFD always allows):
//   nsprobe-<ns>ns.<mode>=true|false            the namespace probe passed in that mode
//   nsprobe-<ns>ns.<mode>.status=fail|...       when it did not pass
//   nsprobe-<ns>ns.<mode>.gate=<gate>           the gate that explains it, when one does
//   nsprobe-consumer.<id>=works|degraded|blocked
//   nsprobe-consumer.<id>.blocker=<blocker>     for blocked
//   nsprobe.version=<nsprobe version>

import type { Report } from '../model.js';
import { sortedProbes } from './common.js';

export const NFD_PREFIX = 'feature.node.kubernetes.io/';
/** NFD ignores bigger feature files (MaxFeatureFileSize). */
export const NFD_MAX_BYTES = 65536;
/** Labels expire this long after the run unless a newer run replaces the file. */
export const NFD_DEFAULT_TTL_MS = 24 * 3600 * 1000;

const MAX = 63;
const VALID = /^(?:[A-Za-z0-9](?:[-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?)?$/;

/** Whether `s` is a valid label name segment (the part after the prefix's `/`). */
export function isLabelName(s: string): boolean {
  return s.length > 0 && s.length <= MAX && VALID.test(s);
}

/** Whether `s` is a valid label value (empty allowed). */
export function isLabelValue(s: string): boolean {
  return s.length <= MAX && VALID.test(s);
}

/**
 * `s` made into a valid label value: characters outside [-_.A-Za-z0-9] become `_` (runs
 * collapse), at most 63 characters, alphanumeric at both ends ("EPERM/uid_map" -> "EPERM_uid_map").
 */
export function labelValue(s: string): string {
  let v = s.replace(/[^-_.A-Za-z0-9]+/g, '_').slice(0, MAX);
  v = v.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  return v;
}

/** The label name segment for a base namespace probe: "user" -> "nsprobe-userns". */
function nsPart(ns: string): string {
  return `nsprobe-${labelValue(ns)}ns`;
}

/** RFC 3339 without fractional seconds, as Go's time.RFC3339 prints it. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface NfdOptions {
  /** How long after the run the labels stay valid (default 24 h). */
  ttlMs?: number;
}

/** The labels, in file order, as [name segment, value]; every one valid. */
export function nfdLabels(r: Report): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  const add = (name: string, value: string): void => {
    const v = labelValue(value);
    // A name that cannot be made valid, or two sources mapping to one name: the first wins.
    if (!isLabelName(name) || seen.has(name)) return;
    seen.add(name);
    out.push([name, v]);
  };
  add('nsprobe.version', r.tool.version);
  for (const p of sortedProbes(r.probes)) {
    if (p.probe !== p.namespace) continue; // the eight namespace probes; deep probes are in report.json
    const base = `${nsPart(p.namespace)}.${p.mode}`;
    add(base, p.status === 'pass' ? 'true' : 'false');
    if (p.status !== 'pass') {
      add(`${base}.status`, p.status);
      if (p.gate) add(`${base}.gate`, p.gate);
    }
  }
  for (const c of r.consumers ?? []) {
    const id = labelValue(c.id);
    if (!id) continue;
    add(`nsprobe-consumer.${id}`, c.status);
    if (c.status === 'blocked' && c.blocker) add(`nsprobe-consumer.${id}.blocker`, c.blocker);
  }
  return out;
}

/** The feature file: a header, the expiry directive, then one `<prefix><name>=<value>` a line. */
export function renderNfd(r: Report, opts: NfdOptions = {}): string {
  const started = Date.parse(r.startedAt);
  const finished = (Number.isFinite(started) ? started : 0) + Math.max(0, r.durationMs || 0);
  const expiry = finished + (opts.ttlMs ?? NFD_DEFAULT_TTL_MS);
  const who = (r.consumers ?? [])[0]?.for;
  const lines = [
    '# Node Feature Discovery feature file written by nsprobe; regenerate, do not edit.',
    `# Run ${rfc3339(finished)} on ${labelValue(r.host.hostname) || 'this host'}, kernel ${labelValue(r.host.kernel.release) || 'unknown'}.`,
    ...(who ? [`# Consumer verdicts are for uid ${who.uid}${who.root ? ' (root)' : ''}.`] : []),
    `# +expiry-time=${rfc3339(expiry)}`,
    ...nfdLabels(r).map(([name, value]) => `${NFD_PREFIX}${name}=${value}`),
  ];
  return `${lines.join('\n')}\n`;
}
