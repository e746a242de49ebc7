// The pages load under the server's strict Content-Security-Policy with nothing external, and
// the review page explains a missing or wrong token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchPage } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser(null);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the room loads with no CSP violation and no external request', { timeout: 60_000 }, async () => {
  const page = await browser.context.newPage();
  const problems = watchPage(page, server.base);
  const response = await page.goto(`${server.base}/`);
  assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
  await page.locator('#guide option[value="backend-developer"]').waitFor({ state: 'attached' });
  await page.locator('#question-list input').first().waitFor({ state: 'attached' });
  // Every control has an accessible name.
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((e) => !e.closest('[hidden]') && !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || e.textContent.trim()))
    .map((e) => e.outerHTML));
  assert.deepEqual(unnamed, []);
  assert.deepEqual(problems.csp, []);
  assert.deepEqual(problems.external, []);
  assert.deepEqual(problems.errors, []);
  await page.close();
});

test('the review page loads with no CSP violation and reports a bad token', { timeout: 60_000 }, async () => {
  const created = await (await fetch(`${server.base}/v1/sessions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ guide: 'backend-developer', count: 1 }),
  })).json();
  const page = await browser.context.newPage();
  const problems = watchPage(page, server.base);
  await page.goto(`${server.base}/sessions/${created.id}#token=${created.token}`);
  await page.locator('#meta', { hasText: '0 of 1 questions answered' }).waitFor();
  await page.locator('#q0', { hasText: 'Not answered' }).waitFor();
  await page.goto(`${server.base}/sessions/${created.id}#token=wrong`);
  await page.locator('#alert:not([hidden])', { hasText: /token/ }).waitFor();
  assert.deepEqual(problems.csp, []);
  assert.deepEqual(problems.external, []);
  await page.close();
});
