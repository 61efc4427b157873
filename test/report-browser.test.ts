// report.html and matrix.html in a real browser (headless system Chromium): the headline and the
// results table are in the first screen at 1280x800, a single-host report has no horizontal
// scroll, the matrix keeps its host column in view when scrolled right, and hostile strings from
// a report stay text (no script runs: a page-level flag proves it, and a control page proves the
// flag can be set).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import type { ProbeResult, Report } from '../src/model.js';
import { renderHtml, renderMatrixHtml } from '../src/report/html.js';
import { buildMatrix } from '../src/report/matrix.js';
import { GOOD, loadFixture } from './helpers/reports.js';
import { missingTools, needTools } from './helpers/tools.js';
import { CHROMIUM, openBrowser } from './helpers/browser.js';
import type { Browser } from './helpers/browser.js';

const browserTest = needTools(missingTools(CHROMIUM) && 'chromium is not installed (apt-get install -y chromium)');

// The bits of the DOM the page functions below use (this project compiles without lib "dom").
declare const window: { __pwned: number };
declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number };
  body: { innerText: string };
  querySelectorAll(selector: string): Iterable<{ getBoundingClientRect(): { width: number } }>;
  elementFromPoint(x: number, y: number): { closest(selector: string): { className: string } | null } | null;
};

// One browser and one folder for the whole file, started by the first test that needs them.
let browser: Promise<Browser> | undefined;
let dir: Promise<string> | undefined;

async function page(t: ExecutionContext, html: string, name: string): Promise<Page> {
  browser ??= openBrowser();
  dir ??= mkdtemp(join(tmpdir(), 'nsprobe-test-browser-'));
  const file = join(await dir, name);
  await writeFile(file, html);
  const p = await (await browser).context.newPage();
  t.teardown(() => p.close());
  // Set before any of the page runs: anything in the page that executes would change it.
  await p.addInitScript(() => {
    window.__pwned = 0;
  });
  await p.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return p;
}

test.after.always(async () => {
  await (await browser?.catch(() => undefined))?.close();
  const d = await dir?.catch(() => undefined);
  if (d) await rm(d, { recursive: true, force: true });
});

/** Many columns: the base probes plus deep probes, several host runs. */
function wideMatrix(): string {
  const deep = ['join', 'nesting', 'net-veth', 'pid-signals', 'ipc-mqueue', 'mnt-propagation'];
  const withDeep = (r: Report): Report => {
    const extra = deep.flatMap((probe) =>
      (['privileged', 'rootless'] as const).map((mode): ProbeResult => ({ id: `${probe}/${mode}`, probe, namespace: 'net', mode, status: 'pass', durationMs: 12, assertions: [] })),
    );
    return { ...r, probes: [...r.probes, ...extra] };
  };
  const inputs = GOOD.map((name) => ({ source: `${name}/report.json`, report: withDeep(loadFixture(name)) }));
  return renderMatrixHtml(buildMatrix(inputs, new Date('2026-12-01T09:00:00Z')));
}

for (const name of GOOD) {
  browserTest(`report.html of ${name}: headline and results table in the first screen, no horizontal scroll at 1280 px`, async (t) => {
    const p = await page(t, renderHtml(loadFixture(name)), `${name}.html`);
    const headline = await p.locator('ul.headline').boundingBox();
    const results = await p.locator('table.results').boundingBox();
    t.truthy(headline);
    t.truthy(results);
    if (!headline || !results) return;
    t.true(headline.y >= 0 && headline.y + headline.height <= 800, `headline at ${headline.y}+${headline.height}`);
    t.true(results.y + results.height <= 800, `results table ends at ${results.y + results.height}`);
    t.true(headline.y < results.y);
    const facts = await p.locator('table.facts').boundingBox();
    t.true((facts?.y ?? 0) > results.y, 'host facts come after the results');
    const { scrollWidth, clientWidth } = await p.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
    t.true(scrollWidth <= clientWidth, `page is ${scrollWidth} px wide in a ${clientWidth} px window`);
    // Remedies are readable: no code block squeezed below a sensible width.
    const narrow = await p.evaluate(() => [...document.querySelectorAll('pre')].map((e) => e.getBoundingClientRect().width).filter((w) => w < 300));
    t.deepEqual(narrow, []);
  });
}

browserTest('matrix.html with many columns: the host column stays in view after scrolling right', async (t) => {
  const p = await page(t, wideMatrix(), 'matrix.html');
  const scroller = p.locator('div.scroll');
  const sizes = await scroller.evaluate((e) => ({ scrollWidth: e.scrollWidth, clientWidth: e.clientWidth }));
  t.true(sizes.scrollWidth > sizes.clientWidth + 200, `the matrix is wider than the window (${sizes.scrollWidth} > ${sizes.clientWidth}), so the check means something`);
  const hostCell = p.locator('tbody th.host').first();
  const before = await hostCell.boundingBox();
  const lastCell = p.locator('tbody tr').first().locator('td').last();
  await scroller.evaluate((e) => e.scrollTo({ left: e.scrollWidth }));
  const scrolled = await scroller.evaluate((e) => e.scrollLeft);
  t.true(scrolled > 200, `scrolled by ${scrolled}`);
  const after = await hostCell.boundingBox();
  t.truthy(before && after);
  t.is(Math.round(after?.x ?? -1), Math.round(before?.x ?? -2), 'the host column did not move');
  const last = await lastCell.boundingBox();
  t.true((last?.x ?? 0) + (last?.width ?? 0) <= 1280, 'the last column is now in view');
  // The cell under the host column is hidden by it (the host column is painted on top).
  const top = await p.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.closest('th')?.className ?? '', { x: (after?.x ?? 0) + 5, y: (after?.y ?? 0) + 5 });
  t.is(top, 'host');
  // Each row says who ran it.
  t.regex((await hostCell.innerText()).replace(/\s+/g, ' '), /euid 0, privileged \+ rootless/);
  // Privileged and rootless side by side under each namespace.
  t.deepEqual(await p.locator('thead tr').nth(1).locator('th').evaluateAll((ths) => ths.slice(0, 4).map((e) => e.textContent)), ['priv', 'rootless', 'priv', 'rootless']);
});

const SCRIPT = '<script>window.__pwned = 1</script>';
const IMG = '"><img src=x onerror="window.__pwned = 2">';

browserTest('the no-script flag can be set: a page that does run a script is caught (control)', async (t) => {
  const p = await page(t, `<!DOCTYPE html><title>control</title><p>${IMG}</p>${SCRIPT}`, 'control.html');
  await p.waitForFunction(() => window.__pwned !== 0, undefined, { timeout: 5000 }).catch(() => undefined);
  t.not(await p.evaluate(() => window.__pwned), 0);
});

browserTest('hostile strings from a report stay text in report.html and matrix.html: no script runs', async (t) => {
  const r = loadFixture('ubuntu-docker-failing');
  r.host.hostname = `host${SCRIPT}`;
  r.host.kernel.release = `6.1${IMG}`;
  const net = r.probes.find((p) => p.id === 'net/privileged') as ProbeResult;
  net.cause = `cause ${IMG} ${SCRIPT}`;
  net.remedy = `sudo ${SCRIPT}\nprose ${IMG}`;
  net.assertions[1].actual = IMG;
  r.gates[1].cause = IMG;
  r.notes = [SCRIPT];
  for (const [name, html] of [
    ['report.html', renderHtml(r)],
    ['matrix.html', renderMatrixHtml(buildMatrix([{ source: `x${IMG}/report.json`, report: r }]))],
  ] as const) {
    const p = await page(t, html, name);
    await p.waitForTimeout(200);
    t.is(await p.evaluate(() => window.__pwned), 0, `${name}: no script ran`);
    t.is(await p.locator('script, img').count(), 0, `${name}: no element came from report text`);
    const text = await p.evaluate(() => document.body.innerText);
    t.true(text.includes(SCRIPT), `${name}: shown as text`);
    t.true(text.includes(IMG), `${name}: shown as text`);
  }
});
