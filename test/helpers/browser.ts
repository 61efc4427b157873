// Headless Chromium for the browser tests and the README screenshots: the system browser
// (Debian package `chromium`), driven by playwright-core; nothing is downloaded, nothing reaches
// the network, and every run gets a new empty profile that is removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

/** The system browser (Debian package `chromium`); NSPROBE_CHROMIUM points elsewhere (or nowhere, to see the skip). */
export const CHROMIUM = process.env.NSPROBE_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Starts Chromium with a fresh profile at the given viewport; close() ends it and removes the profile. */
export async function openBrowser(viewport = { width: 1280, height: 800 }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'nsprobe-test-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport,
      offline: true,
      // Everything the browser writes stays in the profile: no ~/.cache/dconf, no ~/.config/chromium.
      env: {
        ...process.env,
        HOME: profile,
        XDG_CACHE_HOME: join(profile, 'cache'),
        XDG_CONFIG_HOME: join(profile, 'config'),
        XDG_DATA_HOME: join(profile, 'data'),
        GSETTINGS_BACKEND: 'memory',
      },
      timeout: 60_000,
    });
    return {
      context,
      close: async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
}
