// End to end in a real Chromium: a two-question interview with a fake microphone playing a
// spoken answer, a dropped connection mid-answer, the summary, then the review page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, makeAnswerWav, tempDir, watchPage, artifacts } from './harness.mjs';

let server;
let browser;
let wavDir;

before(async () => {
  wavDir = tempDir('viva-wav-');
  const wav = makeAnswerWav(wavDir);
  server = await startServer();
  browser = await launchBrowser(wav);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (wavDir) rmSync(wavDir, { recursive: true, force: true });
});

// Generous: Whisper shares the machine's CPU with whatever else runs.
const SEGMENT_TIMEOUT = 300_000;

/** Clicks "Finish answer" unless the server already ended the answer at the time limit. */
async function finishAnswer(page) {
  const button = page.getByRole('button', { name: 'Finish answer' });
  if (await button.isEnabled()) await button.click();
}

test('two-question interview, reconnect mid-answer, then the review page', { timeout: 1_500_000 }, async (t) => {
  const page = await browser.context.newPage();
  // The stream goes through Playwright so the test can drop it like a network failure.
  const streams = [];
  await page.routeWebSocket(/\/v1\/sessions\/[^/]+\/stream/, (ws) => {
    streams.push({ ws, server: ws.connectToServer() });
  });
  const problems = watchPage(page, server.base);
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (typeof f.payload === 'string' && !f.payload.includes('"stored"')) frames.push(f.payload.slice(0, 200));
  }));
  try {
    await page.goto(`${server.base}/`);
    await page.getByLabel('My own questions').check();
    await page.getByLabel('Your questions, one per line').fill('Tell me about an outage.\nHow did you keep people informed during an incident?');
    await page.locator('#competency-list').getByLabel(/^Incident communication/).check();
    await page.getByLabel('Time limit per question, in seconds').fill('240');
    await page.getByRole('button', { name: 'Start interview' }).click();

    // Question 1: wait for the spoken words to come back as a final segment.
    await page.locator('#question-text', { hasText: 'Tell me about an outage.' }).waitFor();
    const heard = (pattern) => page.locator('#transcript-final li, #transcript-partial:not([hidden])', { hasText: pattern }).first();
    await heard(/incident/i).waitFor({ timeout: SEGMENT_TIMEOUT });
    await page.screenshot({ path: join(artifacts, 'room-answering.png'), fullPage: true });
    assert.match(await page.locator('#think-state').textContent(), /started speaking/);
    assert.ok((await page.locator('#level').evaluate((m) => m.value)) >= 0);
    await heard(/support|postmortem|post mortem|blameless/i).waitFor({ timeout: SEGMENT_TIMEOUT });

    await finishAnswer(page);
    await page.locator('#feedback:not([hidden]) .checklist li').first().waitFor({ timeout: SEGMENT_TIMEOUT });
    const transcript = await page.locator('#transcript-final').innerText();
    assert.match(transcript, /incident/i);
    const covered = await page.locator('#feedback .checklist li.covered').allInnerTexts();
    assert.ok(covered.length >= 1, 'at least one covered item');
    assert.ok(covered.some((text) => /Covered:/.test(text) && /“.+”/.test(text)), `covered items quote evidence: ${covered}`);
    const missing = await page.locator('#feedback .checklist li.missing').allInnerTexts();
    assert.ok(missing.every((text) => /Missing:/.test(text)), 'missing items are labelled in text');
    assert.match(await page.locator('#feedback .figures').innerText(), /words per minute/);
    await page.screenshot({ path: join(artifacts, 'room-after-answer.png'), fullPage: true });

    // Question 2, with the connection dropped after the first words.
    await page.getByRole('button', { name: 'Next question' }).click();
    await page.locator('#question-number', { hasText: '2' }).waitFor();
    await page.locator('#question-text', { hasText: 'keep people informed' }).waitFor();
    await heard(/\w/).waitFor({ timeout: SEGMENT_TIMEOUT });
    const dropped = streams.at(-1);
    await dropped.ws.close({ code: 4000, reason: 'the test drops the connection' });
    await dropped.server.close().catch(() => {});
    await page.locator('#status', { hasText: 'Nothing was lost' }).waitFor({ timeout: 120_000 });
    assert.ok(streams.length >= 2, 'the page reconnected');
    // The recording loops (its three sentences, then 3 s of silence, which closes a stretch),
    // and this answer may begin anywhere in it. Finishing on a partial's words left answers of
    // 2.5 and 3.7 s cut from the last sentence, read "After words we held a plain list post,
    // Morgan" and "…, more than…", which cover no checklist item (two CI runs: the second
    // matched "30 minutes" at the answer's very start). So wait for a closed segment holding a
    // whole pass: its first sentence, then its second.
    await page.locator('#transcript-final li', { hasText: /(incident|bridge).*(support|thirty|30 minutes|updates)/i })
      .first().waitFor({ timeout: SEGMENT_TIMEOUT });
    await finishAnswer(page);
    await page.locator('#feedback:not([hidden]) .checklist li.covered').first().waitFor({ timeout: SEGMENT_TIMEOUT });
    // Words of this answer's script; tiny.en sometimes misreads the last words, cut off by the
    // finish ("After words we held, I'm laying the supposed"), so any of them will do.
    assert.match(
      await page.locator('#transcript-final').innerText(),
      /support|post.?mortem|incident|blameless|bridge|thirty minutes|30 minutes|after.?wards/i,
    );

    // End: the summary and the link to the review.
    await page.getByRole('button', { name: 'End interview' }).click();
    await page.locator('#summary:not([hidden])').waitFor({ timeout: 30_000 });
    const summary = await page.locator('#summary-body').innerText();
    assert.match(summary, /You answered 2 of 2 questions/);
    assert.match(summary, /words per minute/);
    await page.screenshot({ path: join(artifacts, 'room-summary.png'), fullPage: true });
    const reviewHref = await page.getByRole('link', { name: 'Open the review page' }).getAttribute('href');
    assert.match(reviewHref, /^\/sessions\/[^?]+#token=/);
    assert.equal(await page.locator('#history-list li').count(), 1);

    // The review page: audio, synced transcript, notes.
    await page.getByRole('link', { name: 'Open the review page' }).click();
    await page.locator('#q0 .segment-button').first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('audio')].length === 2
      && [...document.querySelectorAll('audio')].every((a) => a.readyState >= 2), null, { timeout: 30_000 });
    const firstStart = Number(await page.locator('#q0 .segment-button').first().getAttribute('data-start'));
    await page.locator('#q0 .segment-button').first().click();
    await page.waitForFunction((ms) => {
      const audio = document.getElementById('audio-0');
      return !audio.paused && audio.currentTime * 1000 > ms + 300;
    }, firstStart, { timeout: 15_000 });
    const current = page.locator('#q0 .segment-button[aria-current="true"]');
    await current.waitFor();
    assert.match(await current.innerText(), /now playing/);
    await page.screenshot({ path: join(artifacts, 'review.png'), fullPage: true });

    // Evidence buttons seek; notes are saved at the playback time.
    await page.evaluate(() => document.getElementById('audio-0').pause());
    await page.locator('#q0 button.evidence').first().click();
    await page.getByLabel(/Note at/).first().fill('Good structure; say the severity.');
    await page.getByRole('button', { name: 'Add note' }).first().click();
    await page.locator('#q0 .notes li', { hasText: 'Good structure' }).waitFor();
    await page.reload();
    await page.locator('#q0 .notes li', { hasText: 'Good structure' }).waitFor();

    // Export goes through a Blob download.
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export Markdown' }).click();
    const file = await download;
    assert.match(file.suggestedFilename(), /\.md$/);

    assert.deepEqual(problems.csp, [], 'no Content Security Policy violations');
    assert.deepEqual(problems.external, [], 'no external requests');
  } catch (error) {
    await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    t.diagnostic(`last server messages:\n${frames.slice(-15).join('\n')}`);
    t.diagnostic(`server log tail:\n${server.log().split('\n').slice(-40).join('\n')}`);
    throw error;
  } finally {
    await page.close();
  }
});
