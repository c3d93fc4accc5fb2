// A real browser for the console's tests: Debian's Chromium (/usr/bin/chromium, installed by the test set-up),
// driven headless by playwright-core; never a downloaded browser. Every console message of type error and every
// uncaught page error is kept, so a test can assert there were none; screenshots go to test-results/.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = process.env.CAPSULE_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS_DIR = path.resolve('test-results');

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: the test set-up installs Debian's chromium (scripts/test.sh)`);
  // root in a container: Chromium's own sandbox needs user namespaces it may not get
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions seen so far. */
  errors: string[];
  screenshot(name: string): Promise<void>;
}

export async function openPage(browser: Browser, url: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.stack ?? err.message}`));
  await page.goto(url);
  fs.mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  return {
    page,
    context,
    errors,
    screenshot: async (name) => {
      await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`), fullPage: true });
    },
  };
}
