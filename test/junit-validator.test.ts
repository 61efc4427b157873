// test/helpers/xml.ts validates JUnit with libxml2 from npm (xmllint-wasm): no system xmllint is
// needed, and the validator really rejects what the strict Jenkins schema forbids (so the JUnit
// tests that rely on it can fail).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { JUNIT_XSD, OWN_JUNIT_XSD, SHARED_JUNIT_XSD, xmllint } from './helpers/xml.js';
import { existsSync } from 'node:fs';

const GOOD = '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="s" tests="1" failures="0" errors="0" skipped="0"><testcase name="c" classname="a.b" time="0.001"/></testsuite></testsuites>\n';

test('a minimal valid JUnit file passes', async (t) => {
  const r = await xmllint(GOOD);
  t.true(r.ok, r.output);
});

test('controls: an element the schema does not know, a missing required attribute and broken XML fail, with libxml2 messages', async (t) => {
  const unknown = await xmllint(GOOD.replace('<testcase', '<bogus/><testcase'));
  t.false(unknown.ok);
  t.regex(unknown.output, /bogus/);
  const noName = await xmllint(GOOD.replace(' name="c"', ''));
  t.false(noName.ok);
  t.regex(noName.output, /name/);
  const broken = await xmllint(GOOD.replace('</testsuites>', ''));
  t.false(broken.ok);
});

test('no system xmllint is used: the validator works with PATH empty', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = '';
  t.teardown(() => {
    process.env.PATH = path;
  });
  t.true((await xmllint(GOOD)).ok);
});

test('our copy of the schema equals the shared one (when shared/ is beside the checkout)', (t) => {
  t.true(existsSync(JUNIT_XSD));
  if (!existsSync(SHARED_JUNIT_XSD)) return t.pass();
  t.is(readFileSync(OWN_JUNIT_XSD, 'utf8'), readFileSync(SHARED_JUNIT_XSD, 'utf8'));
});
