// The chat example with the tutorial's classic page (`/classic`: jQuery 3, the npm `signalr` client, `/signalr/hubs`)
// next to the modern page (`/`), in Chromium: messages cross between the two protocols on one node (each classic
// transport), and across two nodes sharing an SQLite backplane (`npm start`).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './fixture.js';

const root = new URL('../..', import.meta.url).pathname;
const STEP_MS = 10_000;

let browser: Browser;
const running = new Set<ChildProcess>();
const pageErrors: string[] = [];
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Starts `script` (main.ts or demo.ts) and resolves with the URLs its output names. */
async function start(args: string[], pattern: RegExp, count: number): Promise<{ child: ChildProcess; urls: string[] }> {
  const child = spawn(process.execPath, ['--conditions=hubwire-source', '--import', 'tsx', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const urls = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const found = [...output.matchAll(pattern)].map((m) => m[1] as string);
      if (found.length >= count) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}):\n${output}`));
    });
  });
  return { child, urls };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  running.delete(child);
  return code;
}

async function newPage(name: string): Promise<Page> {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
  // The tutorial asks for the name with prompt().
  page.on('dialog', (dialog) => dialog.accept(name));
  return page;
}

async function openClassic(url: string, name: string, transport?: string): Promise<Page> {
  const page = await newPage(name);
  await page.goto(`${url}classic${transport ? `?transport=${transport}` : ''}`);
  await page.waitForFunction(() => document.body.dataset.connected === 'true', null, { timeout: STEP_MS });
  assert.equal(await page.textContent('#status'), `connected via ${transport ?? 'webSockets'}`);
  return page;
}

async function openModern(url: string, name: string): Promise<Page> {
  const page = await newPage(name);
  await page.goto(`${url}?name=${name}`);
  await page.waitForFunction(() => document.body.dataset.connected === 'true', null, { timeout: STEP_MS });
  return page;
}

/** "name: message" lines of either page (the tutorial writes two non-breaking spaces after the colon). */
async function lines(page: Page): Promise<string[]> {
  const items = await page.locator('#discussion li, #messages li').allTextContents();
  return items.map((text) => text.replace(/[\s\u00a0]+/g, ' ').trim());
}

async function expectLine(page: Page, line: string, who: string): Promise<void> {
  try {
    await page.waitForFunction(
      (wanted) =>
        Array.from(document.querySelectorAll('#discussion li, #messages li')).some(
          (li) => (li.textContent ?? '').replace(/[\s\u00a0]+/g, ' ').trim() === wanted,
        ),
      line,
      { timeout: STEP_MS },
    );
  } catch (error) {
    throw new Error(`${who} did not show "${line}"; it shows ${JSON.stringify(await lines(page))}`, { cause: error });
  }
}

async function sendClassic(page: Page, text: string): Promise<void> {
  await page.fill('#message', text);
  await page.click('#sendmessage');
}

async function sendModern(page: Page, text: string): Promise<void> {
  await page.fill('#message', text);
  await page.click('#send');
}

const unique = (prefix: string) => `${prefix} ${Math.random().toString(36).slice(2, 8)}`;

/** A message from each page reaches the other, once, in order. */
async function exchange(classic: Page, modern: Page, label: string): Promise<void> {
  const fromClassic = unique(`classic says hi (${label})`);
  await sendClassic(classic, fromClassic);
  await expectLine(modern, `ann: ${fromClassic}`, 'the modern page');
  await expectLine(classic, `ann: ${fromClassic}`, 'the classic page (its own message)');
  const fromModern = unique(`modern answers (${label})`);
  await sendModern(modern, fromModern);
  await expectLine(classic, `bob: ${fromModern}`, 'the classic page');
  await expectLine(modern, `bob: ${fromModern}`, 'the modern page (its own message)');
  for (const page of [classic, modern]) {
    assert.deepEqual(await lines(page), [`ann: ${fromClassic}`, `bob: ${fromModern}`]);
  }
}

describe('the chat example: the tutorial classic page with the modern page', { timeout: 120_000 }, () => {
  test('one node: every classic transport (and auto) exchanges messages with a modern page', async () => {
    pageErrors.length = 0;
    const node = await start(
      ['examples/chat/src/main.ts', '--port', String(await freePort())],
      /listening on (http:\/\/\S+\/)/g,
      1,
    );
    try {
      const url = node.urls[0] as string;
      for (const transport of ['webSockets', 'serverSentEvents', 'longPolling', undefined]) {
        const classic = await openClassic(url, 'ann', transport);
        const modern = await openModern(url, 'bob');
        await exchange(classic, modern, transport ?? 'auto');
        await classic.context().close();
        await modern.context().close();
      }
      assert.deepEqual(pageErrors, []);
    } finally {
      assert.equal(await stop(node.child), 0, 'the node stops cleanly');
    }
  });

  test('two nodes on an SQLite backplane (npm start): classic and modern pages on different nodes', async () => {
    pageErrors.length = 0;
    const dir = mkdtempSync(join(tmpdir(), 'hubwire-classic-'));
    const ports = [await freePort(), await freePort()];
    const demo = await start(
      ['examples/chat/src/demo.ts', '--ports', ports.join(','), '--backplane', `sqlite:${join(dir, 'chat.db')}`],
      /node [AB]: (http:\/\/\S+)/g,
      2,
    );
    try {
      const [a, b] = demo.urls.map((u) => (u.endsWith('/') ? u : `${u}/`)) as [string, string];
      for (const [classicUrl, modernUrl, label] of [
        [a, b, 'classic on A, modern on B'],
        [b, a, 'classic on B, modern on A'],
      ] as const) {
        const classic = await openClassic(
          classicUrl,
          'ann',
          label.startsWith('classic on A') ? 'longPolling' : undefined,
        );
        const modern = await openModern(modernUrl, 'bob');
        await exchange(classic, modern, label);
        await classic.context().close();
        await modern.context().close();
      }
      assert.deepEqual(pageErrors, []);
    } finally {
      assert.equal(await stop(demo.child), 0, 'Ctrl-C stops both nodes cleanly');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
