// The web console in a real browser (Debian's Chromium, headless, driven by playwright-core) against a real
// server and real VMs: sign in, launch a python VM and see it RUNNING, type in its terminal and read the answer
// off the screen, upload a file and find it through the API, suspend and resume from the buttons, make an image by
// dropping a zip and launch it and open its endpoint with a generated token, a tenant key that sees no other
// tenant's VM and no admin page, and no console error on any page. Each step leaves a screenshot in test-results/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import type { Browser, Page } from 'playwright-core';
import { Capsule } from '@capsule/sdk';
import { zipDirectory } from '../../packages/cli/src/zip-dir.js';
import { launchBrowser, openPage, type WatchedPage } from '../support/browser.js';
import { EXAMPLES, useTestServer } from './helpers.js';

const VM_TIMEOUT_MS = 120_000;

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'MicroVMs' }).waitFor();
}

/** The state badge in a MicroVM page's heading. */
const headingState = (page: Page) => page.locator('.heading .badge').first();

describe('web console', { timeout: 15 * 60_000 }, () => {
  const server = useTestServer();
  let browser: Browser;
  let admin: WatchedPage;
  let vmId = '';

  before(async () => {
    browser = await launchBrowser();
    await server().snapshotsBuilt;
  });
  after(async () => {
    await browser?.close();
  });

  test('the console is served with a strict CSP, no framing, no referrer, and long-cached hashed assets', async () => {
    const index = await fetch(`${server().url}/console/`);
    assert.equal(index.status, 200);
    const csp = index.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(index.headers.get('x-frame-options'), 'DENY');
    assert.equal(index.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(index.headers.get('set-cookie'), null, 'no cookie at all');
    assert.match(index.headers.get('cache-control') ?? '', /no-cache/);
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'a hashed script asset');
    const js = await fetch(server().url + asset);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control') ?? '', /max-age=31536000, immutable/);
    assert.equal((await fetch(`${server().url}/console/nope.js`)).status, 404);
  });

  test('sign in: the key lives in sessionStorage only, never in the URL or localStorage', async () => {
    admin = await openPage(browser, `${server().url}/console/`);
    await admin.page.getByLabel('API key').waitFor();
    // from the keyboard: Tab reaches the labelled key field, and the focus is drawn
    await admin.page.keyboard.press('Tab');
    const focused = await admin.page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return { id: el.id, outline: getComputedStyle(el).outlineStyle };
    });
    assert.deepEqual(focused, { id: 'api-key', outline: 'solid' });
    await admin.screenshot('console-login');
    await signIn(admin.page, server().adminKey);
    assert.ok(!admin.page.url().includes(server().adminKey));
    const stored = await admin.page.evaluate(() => ({
      session: sessionStorage.getItem('capsule.apiKey'),
      local: Object.keys(localStorage).length,
      cookie: document.cookie,
    }));
    assert.deepEqual(stored, { session: server().adminKey, local: 0, cookie: '' });
    await admin.page.getByText('No MicroVMs yet').waitFor();
  });

  test('launch a python VM from the form and see it RUNNING', async () => {
    const { page } = admin;
    await page.getByRole('button', { name: 'Launch a MicroVM' }).click();
    await page.getByLabel('Image', { exact: true }).fill('python');
    await page.getByLabel('Labels').fill('from=console');
    await page.getByRole('button', { name: 'Launch', exact: true }).click();
    await page.waitForURL(/#\/microvms\/mvm-/, { timeout: VM_TIMEOUT_MS });
    vmId = decodeURIComponent(/#\/microvms\/([^/]+)/.exec(page.url())![1]);
    await headingState(page).filter({ hasText: 'RUNNING' }).waitFor({ timeout: VM_TIMEOUT_MS });
    const vm = await server().capsule.microvms.get(vmId);
    assert.equal(vm.info.state, 'RUNNING');
    assert.deepEqual(vm.info.metadata, { from: 'console' });
    await admin.screenshot('console-microvm');
    await page.goto(`${server().url}/console/#/microvms`);
    await page.locator(`tr[data-id="${vmId}"] .badge`, { hasText: 'RUNNING' }).waitFor();
    await admin.screenshot('console-microvms');
  });

  test('type in the terminal and read the answer back from the screen', async () => {
    const { page } = admin;
    await page.goto(`${server().url}/console/#/microvms/${vmId}/terminal`);
    await page.getByText('Terminal: connected').waitFor({ timeout: 30_000 });
    await page.getByTestId('terminal').click();
    await page.keyboard.type('echo hello-$RANDOM\n');
    const rows = page.locator('.xterm-rows');
    let screen = '';
    for (let i = 0; i < 200 && !/^hello-\d+\s*$/m.test(screen); i++) {
      await page.waitForTimeout(100);
      screen = await rows.innerText();
    }
    assert.match(screen, /^hello-\d+\s*$/m, `the shell's answer on the screen:\n${screen}`);
    await admin.screenshot('console-terminal');
  });

  test('upload a file in the browser: it is in the list and in the VM', async () => {
    const { page } = admin;
    await page.goto(`${server().url}/console/#/microvms/${vmId}/files`);
    const content = `uploaded from the console ${Date.now()}\n`;
    await page.getByLabel('Upload files').setInputFiles({
      name: 'note.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(content),
    });
    await page.locator('tr[data-name="note.txt"]').waitFor({ timeout: 30_000 });
    const vm = await server().capsule.microvms.get(vmId);
    assert.equal(await vm.files.readText('/root/note.txt'), content);
    await admin.screenshot('console-files');
  });

  test('suspend and resume from the buttons', async () => {
    const { page } = admin;
    await page.goto(`${server().url}/console/#/microvms/${vmId}`);
    await page.getByRole('button', { name: 'Suspend' }).click();
    await headingState(page).filter({ hasText: 'SUSPENDED' }).waitFor({ timeout: VM_TIMEOUT_MS });
    await page.getByRole('button', { name: 'Resume' }).click();
    await headingState(page).filter({ hasText: 'RUNNING' }).waitFor({ timeout: VM_TIMEOUT_MS });
    const history = await page.locator('.history').innerText();
    assert.match(
      history,
      /RUNNING.*launched in \d+ ms[\s\S]*SUSPENDED.*suspended in \d+ ms[\s\S]*RUNNING.*resumed in \d+ ms/,
      history,
    );
    const vm = await server().capsule.microvms.get(vmId);
    assert.equal(await vm.files.readText('/root/note.txt').then((t) => t.startsWith('uploaded')), true);
    await admin.screenshot('console-microvm-details');
  });

  test('make an image by dropping a zip, watch its build, launch it and open its endpoint with a token', async () => {
    const { page } = admin;
    await page.goto(`${server().url}/console/#/images`);
    await page.getByText('No images yet').waitFor();
    const zip = await buffer(zipDirectory(path.join(EXAMPLES, 'flask-app')).stream);
    const drop = await page.evaluateHandle((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'flask-app.zip', { type: 'application/zip' }));
      return data;
    }, zip.toString('base64'));
    await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer: drop });
    await page.getByText('ready to upload').waitFor();
    assert.equal(await page.getByLabel('Image name').inputValue(), 'flask-app');
    await admin.screenshot('console-image-drop');
    await page.getByRole('button', { name: 'Create image' }).click();
    await page.waitForURL(/#\/images\/flask-app$/);
    const version = page.locator('tr[data-version="1"]');
    await version.locator('.badge', { hasText: /SUCCESSFUL|FAILED/ }).waitFor({ timeout: 10 * 60_000 });
    // the log follows the build a poll behind: its last line says the app was snapshotted
    const buildLog = page.getByTestId('build-log');
    await buildLog.filter({ hasText: /app ready and snapshotted|FAILED/ }).waitFor({ timeout: 30_000 });
    const log = await buildLog.innerText();
    assert.equal(await version.locator('.badge').innerText(), 'SUCCESSFUL', log);
    assert.ok(log.length > 100, `the build log was shown:\n${log}`);
    await admin.screenshot('console-image');
    await version.getByRole('button', { name: 'Launch' }).click();
    await page.waitForURL(/#\/microvms\/mvm-/, { timeout: VM_TIMEOUT_MS });
    await headingState(page).filter({ hasText: 'RUNNING' }).waitFor({ timeout: VM_TIMEOUT_MS });
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('button', { name: 'Open the endpoint' }).click();
    const answer = page.getByTestId('endpoint-answer');
    await answer.waitFor();
    assert.match(await answer.innerText(), /GET \/ on port 8080 → 200/);
    await admin.screenshot('console-endpoint');
  });

  test("a tenant key sees no other tenant's VM and no admin page", async () => {
    const tenant = await server().capsule.tenants.create({ name: 'console-tenant' });
    const { key } = await server().capsule.tenants.createApiKey(tenant.id, { name: 'console' });
    const own = await new Capsule({ baseUrl: server().url, apiKey: key }).microvms.run({ imageName: 'base' });
    const other = await openPage(browser, `${server().url}/console/`);
    try {
      await signIn(other.page, key);
      await other.page.locator(`tr[data-id="${own.id}"]`).waitFor();
      assert.equal(await other.page.locator(`tr[data-id="${vmId}"]`).count(), 0);
      assert.equal(await other.page.getByRole('link', { name: 'Admin' }).count(), 0);
      await other.page.goto(`${server().url}/console/#/admin`);
      await other.page.getByText('The admin pages need the admin key.').waitFor();
      await other.page.goto(`${server().url}/console/#/microvms/${vmId}`);
      await other.page.getByRole('alert').filter({ hasText: 'NOT_FOUND' }).waitFor();
      // the only errors are the browser's notes of that 404
      assert.deepEqual(
        other.errors.filter((e) => !/status of 404/.test(e)),
        [],
      );
      await other.screenshot('console-tenant');
    } finally {
      await other.context.close();
      await own.terminate();
    }
  });

  test('no console errors on any page', async () => {
    const { page } = admin;
    for (const route of [
      '#/microvms',
      `#/microvms/${vmId}`,
      '#/images',
      '#/images/flask-app',
      '#/overview',
      '#/admin',
    ]) {
      await page.goto(`${server().url}/console/${route}`);
      await page.locator('main h1').first().waitFor();
      await page.waitForTimeout(500);
    }
    await page.goto(`${server().url}/console/#/overview`);
    await page.getByRole('heading', { name: 'This server (all tenants)' }).waitFor();
    await admin.screenshot('console-overview');
    await page.goto(`${server().url}/console/#/admin`);
    await page.getByRole('heading', { name: 'Tenants' }).waitFor();
    await admin.screenshot('console-admin');
    // the dark theme, for the tab
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await page.goto(`${server().url}/console/#/microvms/${vmId}`);
    await page.locator('main h1').first().waitFor();
    await admin.screenshot('console-dark');
    assert.deepEqual(admin.errors, []);
    await admin.context.close();
  });
});
