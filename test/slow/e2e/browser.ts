import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { HARNESS_TOKEN, login } from '../../helpers/dashboard-harness.ts';

export const ARTIFACTS_DIR = path.join(PROJECT_ROOT, 'test-artifacts');

/** The system's Chromium (Debian package `chromium`), headless; playwright never downloads a browser here. */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
  });
}

/** A fresh browser context signed in to a supervisor's dashboard (with `token`), on its page. */
export async function signedInPage(browser: Browser, url: string, token = HARNESS_TOKEN): Promise<{ context: BrowserContext; page: Page }> {
  const { cookie } = await login(url, token);
  const [name, value] = cookie.split('=');
  const context = await browser.newContext({ viewport: { width: 1440, height: 1300 } });
  await context.addCookies([{ name, value, url }]);
  const page = await context.newPage();
  await page.goto(url);
  return { context, page };
}
