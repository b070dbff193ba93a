// The scaleout demo (`npm start`) in a real browser: two chat nodes in separate processes sharing a backplane,
// one page on each; messages typed on either page appear on both, with the SQLite backplane and with PostgreSQL.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';

const root = new URL('../..', import.meta.url).pathname;
const STEP_MS = 10_000;
const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

let browser: Browser | undefined;
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

before(async () => {
  assert.ok(existsSync('/usr/bin/chromium'), "the browser tests need Debian's chromium (apt-get install -y chromium)");
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic'],
  });
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

/** Starts the demo as `npm start` does, and resolves with both nodes' URLs. */
async function startDemo(backplane: string): Promise<{ child: ChildProcess; urls: string[]; output: () => string }> {
  const ports = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      '--conditions=hubwire-source',
      '--import',
      'tsx',
      'examples/chat/src/demo.ts',
      '--ports',
      ports.join(','),
      '--backplane',
      backplane,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let output = '';
  const urls = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const a = /node A: (http:\/\/\S+)/.exec(output);
      const b = /node B: (http:\/\/\S+)/.exec(output);
      if (a && b) {
        clearTimeout(timer);
        resolve([a[1] as string, b[1] as string]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}):\n${output}`));
    });
  });
  return { child, urls, output: () => output };
}

async function stopDemo(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGINT'); // what Ctrl-C sends
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  running.delete(child);
  return code;
}

async function openPage(url: string, name: string): Promise<Page> {
  assert.ok(browser);
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  await page.goto(`${url}?name=${name}`);
  await page.waitForFunction(() => document.body.dataset.connected === 'true', null, { timeout: STEP_MS });
  return page;
}

async function expectLine(page: Page, line: string): Promise<void> {
  await page.waitForFunction(
    (wanted) => Array.from(document.querySelectorAll('#messages li')).some((li) => li.textContent?.trim() === wanted),
    line,
    { timeout: STEP_MS },
  );
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill('#message', text);
  await page.click('#send');
}

async function chatAcrossNodes(backplane: string): Promise<void> {
  const demo = await startDemo(backplane);
  try {
    const [urlA, urlB] = demo.urls as [string, string];
    const alice = await openPage(urlA, 'alice');
    const bob = await openPage(urlB, 'bob');
    assert.match((await alice.textContent('#node')) ?? '', /node A/);
    assert.match((await bob.textContent('#node')) ?? '', /node B/);
    const hello = `hello from A ${Math.random().toString(36).slice(2)}`;
    await send(alice, hello);
    await expectLine(bob, `alice: ${hello}`);
    await expectLine(alice, `alice: ${hello}`);
    const reply = `reply from B ${Math.random().toString(36).slice(2)}`;
    await send(bob, reply);
    await expectLine(alice, `bob: ${reply}`);
    await expectLine(bob, `bob: ${reply}`);
    await alice.context().close();
    await bob.context().close();
  } finally {
    assert.equal(await stopDemo(demo.child), 0, `Ctrl-C stops both nodes cleanly:\n${demo.output()}`);
  }
}

describe('the two-node demo', { timeout: 90_000 }, () => {
  test('SQLite backplane: messages cross between the nodes in both directions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubwire-demo-'));
    try {
      await chatAcrossNodes(`sqlite:${join(dir, 'chat.db')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL backplane: messages cross between the nodes in both directions', async () => {
    await chatAcrossNodes(DATABASE_URL);
  });
});
