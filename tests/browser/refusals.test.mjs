// What a candidate sees when things go wrong, and the room at 200 % zoom.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launchBrowser } from './harness.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

test('a refused microphone gets a clear message and no session is started', { timeout: 90_000 }, async () => {
  const server = await startServer();
  const browser = await launchBrowser(null, { denyMicrophone: true });
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.base}/`);
    await page.locator('#guide option[value="backend-developer"]').waitFor({ state: 'attached' });
    await page.locator('#start').click();
    const alert = page.locator('#alert:not([hidden])');
    await alert.waitFor();
    assert.match(await alert.innerText(), /microphone/i);
    assert.equal(await page.locator('#room').isHidden(), true);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('a server at capacity is reported as busy', { timeout: 90_000 }, async () => {
  const server = await startServer({ VIVA_MAX_STREAMS: '0' });
  const browser = await launchBrowser(null);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.base}/`);
    await page.locator('#guide option[value="backend-developer"]').waitFor({ state: 'attached' });
    await page.locator('#start').click();
    await page.locator('#alert:not([hidden])', { hasText: /busy/i }).waitFor({ timeout: 30_000 });
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('the room reads at 200 % zoom without sideways scrolling', { timeout: 90_000 }, async () => {
  const server = await startServer();
  const browser = await launchBrowser(null);
  try {
    const page = await browser.context.newPage();
    // 200 % zoom of a 1280 × 900 window: half as many CSS pixels, each twice as large.
    await page.setViewportSize({ width: 640, height: 450 });
    await page.goto(`${server.base}/`);
    await page.locator('#guide option[value="backend-developer"]').waitFor({ state: 'attached' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 200 % zoom`);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'room-zoom-200.png'), fullPage: true });
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('the interview starts and is driven from the keyboard alone', { timeout: 90_000 }, async () => {
  const server = await startServer();
  const browser = await launchBrowser(null);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.base}/`);
    await page.locator('#guide option[value="backend-developer"]').waitFor({ state: 'attached' });
    // Tab until the start button has focus (a visible focus ring is part of the style sheet).
    for (let i = 0; i < 40; i += 1) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => document.activeElement?.id) === 'start') break;
    }
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'start');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focus is visible');
    await page.keyboard.press('Enter');
    await page.locator('#room:not([hidden])').waitFor();
    await page.locator('#question-text', { hasText: /\?|\./ }).waitFor({ timeout: 30_000 });
    // End the interview from the keyboard too.
    await page.locator('#end').focus();
    await page.keyboard.press('Enter');
    await page.locator('#summary:not([hidden])').waitFor({ timeout: 60_000 });
  } finally {
    await browser.close();
    await server.stop();
  }
});
