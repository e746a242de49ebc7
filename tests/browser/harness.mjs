// Shared fixtures for the browser tests: the viva server on a free port with a temporary
// SQLite database, a spoken answer as a WAV file, and Chromium with a fake microphone.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, openSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifacts = join(repoRoot, 'tests', 'artifacts');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(artifacts, { recursive: true });

export const ANSWER_TEXT = 'We declared an incident and opened a bridge. '
  + 'I posted updates to the support team every thirty minutes. '
  + 'Afterwards we held a blameless postmortem.';

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The answer as 16 kHz mono 16-bit WAV: 1 s of silence, the speech, 2 s of silence. */
export function makeAnswerWav(dir, text = ANSWER_TEXT) {
  const raw = join(dir, 'answer-raw.wav');
  const wav = join(dir, 'answer.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', raw, text]);
  execFileSync('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', wav, 'pad', '1', '2']);
  return wav;
}

/** Starts `viva serve` and waits until /readyz answers 200. */
export async function startServer(env = {}) {
  // run.sh builds it; VIVA_BIN may name another build of the server.
  const binary = process.env.VIVA_BIN || join(repoRoot, 'target', 'debug', 'viva');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build`);
  const port = await freePort();
  const dir = tempDir('viva-web-');
  const logPath = join(dir, 'server.log');
  const log = openSync(logPath, 'a');
  const child = spawn(binary, ['serve', '--bind', `127.0.0.1:${port}`, '--database', `sqlite://${join(dir, 'viva.db')}`], {
    cwd: repoRoot, stdio: ['ignore', log, log], env: { ...process.env, ...env },
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`viva exited (${child.exitCode}):\n${readFileSync(logPath, 'utf8')}`);
    try {
      const response = await fetch(`${base}/readyz`);
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`viva not ready after 120 s:\n${readFileSync(logPath, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    base,
    logPath,
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Chromium with a fake microphone playing `wav` (in a loop) and a fresh profile. */
export async function launchBrowser(wav, { denyMicrophone = false } = {}) {
  const profile = tempDir('viva-chromium-');
  const args = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--autoplay-policy=no-user-gesture-required',
    // Either every permission prompt is accepted (a granted microphone) or refused.
    denyMicrophone ? '--deny-permission-prompts' : '--use-fake-ui-for-media-stream',
  ];
  if (wav) args.push(`--use-file-for-fake-audio-capture=${wav}`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath, headless: true, args, viewport: { width: 1100, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects Content-Security-Policy violations, page errors and requests leaving `base`. */
export function watchPage(page, base) {
  const problems = { csp: [], errors: [], external: [] };
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy/i.test(text)) problems.csp.push(text);
    else if (message.type() === 'error') problems.errors.push(text);
  });
  page.on('pageerror', (error) => problems.errors.push(String(error)));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith(base.replace('http', 'ws')) && !/^(data|blob):/.test(url)) problems.external.push(url);
  });
  return problems;
}
