// The chat example in a real browser: Debian's Chromium (/usr/bin/chromium) driven by playwright-core against a chat
// node started as a separate process, the way `npm run chat -- --port <P>` starts it.
//
// Set CHAT_SCREENSHOT=/path/to/file.png to keep a screenshot of the chat page after messages were exchanged.
// When a test fails, a screenshot of every open page is written to the temporary directory and its path logged.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { withTimeout } from '../helpers/wait.js';

const root = new URL('../..', import.meta.url).pathname;
const chromiumPath = '/usr/bin/chromium';
/** Any single browser action or wait. */
const STEP_MS = 10_000;
/** A whole test. */
const TEST_MS = 60_000;
/** The chat node printing its "listening" line (tsx compiles the sources on start). */
const SERVER_START_MS = 30_000;

type Transport = 'webSockets' | 'serverSentEvents' | 'longPolling';
const transportNames: Record<Transport, string> = {
  webSockets: 'WebSockets',
  serverSentEvents: 'ServerSentEvents',
  longPolling: 'LongPolling',
};

interface ChatProcess {
  child: ChildProcess;
  url: string;
  output(): string;
}

let server: ChatProcess | undefined;
let browser: Browser | undefined;
const contexts = new Set<BrowserContext>();
/** Errors thrown or logged (console.error) in a page's scripts; checked at the end of every test. */
const pageErrors: string[] = [];

// If this process dies abruptly, do not leave the chat node behind.
process.on('exit', () => {
  if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
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

/** `npm run chat -- --port <port>`, without npm in between so that the process we signal is the node itself. */
function startChatProcess(port: number): Promise<ChatProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'examples/chat/src/main.ts', '--port', String(port)],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const chat: ChatProcess = { child, url: '', output: () => output };
  return withTimeout(
    new Promise<ChatProcess>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const listening = /listening on (http:\/\/\S+\/)/.exec(output);
        if (listening && !chat.url) {
          chat.url = listening[1]!;
          resolve(chat);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        reject(new Error(`chat node exited before listening (code ${code}, signal ${signal}); output:\n${output}`));
      });
    }),
    SERVER_START_MS,
    `chat node on port ${port} to print its "listening" line`,
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
}

async function startChatServer(): Promise<ChatProcess> {
  // The free port may be taken by someone else before the chat node binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startChatProcess(await freePort());
    } catch (error) {
      if (attempt >= 3 || !String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

/** SIGTERM, then SIGKILL if the node has not exited after `ms`; resolves to how it exited. */
async function stopChatServer(chat: ChatProcess, ms = 5_000): Promise<{ code: number | null; signal: string | null }> {
  const { child } = chat;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Opens the chat page in a fresh browser context (its own cookies and storage) and waits until it is connected. */
async function openChat(name: string, transport?: Transport): Promise<Page> {
  assert.ok(browser && server, 'the browser and the chat node are started');
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  contexts.add(context);
  context.setDefaultTimeout(STEP_MS);
  context.setDefaultNavigationTimeout(STEP_MS);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${name}: console.error: ${message.text()}`);
  });
  page.on('dialog', (dialog) => {
    pageErrors.push(`${name}: unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  const query = new URLSearchParams({ name });
  if (transport) query.set('transport', transport);
  await page.goto(`${server.url}?${query}`);
  try {
    await page.waitForFunction(() => document.body.dataset.connected === 'true', null, { timeout: STEP_MS });
  } catch (error) {
    const status = await page.textContent('#status').catch(() => '?');
    throw new Error(`${name}'s page did not connect within ${STEP_MS} ms (status: "${status}")`, { cause: error });
  }
  return page;
}

async function closeChat(page: Page): Promise<void> {
  const context = page.context();
  contexts.delete(context);
  await context.close();
}

async function messages(page: Page): Promise<string[]> {
  return (await page.locator('#messages li').allTextContents()).map((text) => text.trim());
}

/** Waits until `page`'s message list holds exactly `line` ("name: message"). */
async function expectMessage(page: Page, line: string, who: string): Promise<void> {
  try {
    await page.waitForFunction(
      (wanted) => Array.from(document.querySelectorAll('#messages li')).some((li) => li.textContent?.trim() === wanted),
      line,
      { timeout: STEP_MS },
    );
  } catch (error) {
    throw new Error(
      `${who} did not receive "${line}" within ${STEP_MS} ms; it shows ${JSON.stringify(await messages(page))}`,
      {
        cause: error,
      },
    );
  }
}

async function send(page: Page, message: string): Promise<void> {
  await page.fill('#message', message);
  await page.click('#send');
}

async function sendToGroup(page: Page, group: string, message: string): Promise<void> {
  await page.fill('#group', group);
  await page.fill('#message', message);
  await page.click('#send-group');
}

async function joinGroup(page: Page, group: string, who: string): Promise<void> {
  await page.fill('#group', group);
  await page.click('#join');
  // The page confirms once the server has added the connection to the group.
  await expectMessage(page, `system: joined ${group}`, who);
}

async function leaveGroup(page: Page, group: string, who: string): Promise<void> {
  await page.fill('#group', group);
  await page.click('#leave');
  await expectMessage(page, `system: left ${group}`, who);
}

/** Screenshots every open page into the temporary directory (for a failing test). */
async function screenshotAll(label: string): Promise<void> {
  let index = 0;
  for (const context of contexts) {
    for (const page of context.pages()) {
      const path = join(tmpdir(), `hubwire-chat-${label}-${process.pid}-${index++}.png`);
      try {
        await page.screenshot({ path, fullPage: true, timeout: STEP_MS });
        console.error(`screenshot of a page of the failed test "${label}": ${path}`);
      } catch {}
    }
  }
}

/** Runs a test body; on failure screenshots the open pages; always closes them; then checks for page errors. */
function browserTest(name: string, body: () => Promise<void>): void {
  test(name, { timeout: TEST_MS }, async () => {
    pageErrors.length = 0;
    let errors: string[] = [];
    try {
      await body();
      errors = [...pageErrors]; // not what closing the pages may log
    } catch (error) {
      await screenshotAll(name.replace(/\W+/g, '-'));
      if (server && (server.child.exitCode !== null || server.child.signalCode !== null)) {
        throw new Error(`the chat node died; its output:\n${server.output()}`, { cause: error });
      }
      throw error;
    } finally {
      await Promise.allSettled([...contexts].map((context) => withTimeout(context.close(), STEP_MS, 'closing a page')));
      contexts.clear();
    }
    assert.deepEqual(errors, [], 'no script errors in the pages');
  });
}

before(async () => {
  assert.ok(
    existsSync(chromiumPath),
    `${chromiumPath} is missing: the browser test needs Debian's Chromium (apt-get install -y chromium)`,
  );
  server = await startChatServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
});

after(async () => {
  // Runs even when a test (or the before hook) failed.
  await Promise.allSettled([...contexts].map((context) => context.close()));
  contexts.clear();
  if (browser) await withTimeout(browser.close(), STEP_MS, 'closing the browser').catch(() => {});
  browser = undefined;
  if (server) await stopChatServer(server);
  server = undefined;
});

browserTest('a message typed in one page appears in the other page and in its own', async () => {
  const alice = await openChat('alice');
  const bob = await openChat('bob');
  assert.match((await alice.textContent('#status')) ?? '', /^connected via \w+$/);
  assert.match((await alice.textContent('#node')) ?? '', /node on port \d+/, 'the page names the node serving it');

  const hello = unique('hello bob');
  await send(alice, hello);
  await expectMessage(bob, `alice: ${hello}`, 'bob');
  await expectMessage(alice, `alice: ${hello}`, 'alice (the sender)');
  assert.equal(await alice.inputValue('#message'), '', 'the message box is cleared after sending');

  const reply = unique('hi alice');
  await send(bob, reply);
  await expectMessage(alice, `bob: ${reply}`, 'alice');
  await expectMessage(bob, `bob: ${reply}`, 'bob (the sender)');
  // Each page shows each message exactly once, in the order sent.
  for (const page of [alice, bob]) {
    assert.deepEqual(await messages(page), [`alice: ${hello}`, `bob: ${reply}`]);
  }
});

browserTest('a message sent to a group reaches its members only', async () => {
  const alice = await openChat('alice');
  const bob = await openChat('bob');
  const carol = await openChat('carol');
  const group = unique('room');
  await joinGroup(alice, group, 'alice');
  await joinGroup(bob, group, 'bob');

  const inGroup = unique('group hello');
  await sendToGroup(alice, group, inGroup);
  await expectMessage(bob, `alice: ${inGroup}`, 'bob (a member)');
  await expectMessage(alice, `alice: ${inGroup}`, 'alice (a member, the sender)');

  // After leaving, bob no longer gets the group's messages. A broadcast sent after the group message works as a
  // barrier: once bob (and carol) have it, the group message would have arrived before it.
  await leaveGroup(bob, group, 'bob');
  const afterLeave = unique('only alice now');
  await sendToGroup(alice, group, afterLeave);
  await expectMessage(alice, `alice: ${afterLeave}`, 'alice (still a member)');
  const barrier = unique('everyone');
  await send(alice, barrier);
  await expectMessage(bob, `alice: ${barrier}`, 'bob');
  await expectMessage(carol, `alice: ${barrier}`, 'carol');

  assert.deepEqual(await messages(bob), [
    `system: joined ${group}`,
    `alice: ${inGroup}`,
    `system: left ${group}`,
    `alice: ${barrier}`,
  ]);
  assert.deepEqual(await messages(carol), [`alice: ${barrier}`], 'carol, never a member, got only the broadcast');

  if (process.env.CHAT_SCREENSHOT) await bob.screenshot({ path: process.env.CHAT_SCREENSHOT, fullPage: true });
});

browserTest('pages on WebSockets, Server-Sent Events and Long Polling talk to each other', async () => {
  const transports: Transport[] = ['webSockets', 'serverSentEvents', 'longPolling'];
  const pages = new Map<Transport, Page>();
  for (const transport of transports) {
    const page = await openChat(`on-${transport}`, transport);
    assert.equal(await page.textContent('#status'), `connected via ${transportNames[transport]}`);
    pages.set(transport, page);
  }
  // Every page sends one message; every page receives all of them.
  const sent: string[] = [];
  for (const [transport, page] of pages) {
    const message = unique(`from ${transport}`);
    await send(page, message);
    const line = `on-${transport}: ${message}`;
    sent.push(line);
    for (const [receiver, other] of pages) await expectMessage(other, line, `the ${receiver} page`);
  }
  for (const [transport, page] of pages) assert.deepEqual(await messages(page), sent, `the ${transport} page`);

  // And the two ends of the range once more on their own: a WebSockets page and a Long Polling page, both ways.
  await closeChat(pages.get('serverSentEvents')!);
  const ws = pages.get('webSockets')!;
  const lp = pages.get('longPolling')!;
  const toLp = unique('ws to lp');
  await send(ws, toLp);
  await expectMessage(lp, `on-webSockets: ${toLp}`, 'the Long Polling page');
  const toWs = unique('lp to ws');
  await send(lp, toWs);
  await expectMessage(ws, `on-longPolling: ${toWs}`, 'the WebSockets page');
});

test('the chat node shuts down cleanly on SIGTERM once the pages are closed', { timeout: TEST_MS }, async () => {
  assert.ok(browser && server, 'the browser and the chat node are started');
  await withTimeout(browser.close(), STEP_MS, 'closing the browser');
  browser = undefined;
  const chat = server;
  server = undefined;
  const exit = await stopChatServer(chat);
  assert.deepEqual(exit, { code: 0, signal: null }, `the chat node exits with code 0; its output:\n${chat.output()}`);
});
