// The real SignalR 2 jQuery client (npm `signalr` 2.4.3 with jQuery 3) in headless Chromium against Hubwire, on
// webSockets, serverSentEvents, longPolling and auto: results, errors, client invocations from modern and classic
// callers, groups and users shared with a modern client, the client state round trip, and stop.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { collect, startClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { type ClassicServer, launchChromium, startClassicServer } from './fixture.js';

declare global {
  interface Window {
    received: unknown[];
    groupReceived: string[];
    startClassic(transport: string | undefined, qs?: Record<string, string>): Promise<string>;
    call(
      method: string,
      ...args: unknown[]
    ): Promise<{ result?: unknown; error?: string; source?: string; data?: unknown }>;
    // biome-ignore lint/suspicious/noExplicitAny: the jQuery global of the page.
    $: any;
  }
}

let server: ClassicServer;
let browser: Browser;
const pageErrors: string[] = [];

before(async () => {
  server = await startClassicServer();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

async function openPage(): Promise<Page> {
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  await page.goto(`${server.base}/page`);
  return page;
}

const call = (page: Page, method: string, ...args: unknown[]) =>
  page.evaluate(([m, a]) => window.call(m as string, ...(a as unknown[])), [method, args] as const);

async function waitForText(page: Page, list: 'received' | 'groupReceived', value: unknown): Promise<void> {
  await page.waitForFunction(
    ([name, wanted]) => (window[name as 'received'] as unknown[]).some((v) => JSON.stringify(v) === wanted),
    [list, JSON.stringify(value)] as const,
  );
}

const TRANSPORTS: (string | undefined)[] = ['webSockets', 'serverSentEvents', 'longPolling', undefined];

describe('the jQuery client', { timeout: 120_000 }, () => {
  for (const transport of TRANSPORTS) {
    test(`on ${transport ?? 'auto'}: calls, errors, client invocations, groups, users, state, stop`, async () => {
      pageErrors.length = 0;
      const page = await openPage();
      const modern = await startClient(`${server.base}/test?user=bob`);
      const modernMessages = collect(modern, 'message');
      const modernGroup = collect<[string, string]>(modern, 'groupMessage');
      try {
        const used = await page.evaluate((t) => window.startClassic(t, { user: 'ann' }), transport);
        assert.equal(used, transport ?? 'webSockets', 'auto picks WebSockets in Chromium');
        const id = await page.evaluate(() => window.$.connection.hub.id as string);
        await waitFor(() => server.observations.connected.includes(id), 5000, 'onConnected');

        // Results: any JSON value, void, the caller's identity as the hub sees it.
        assert.deepEqual(await call(page, 'echo', { a: [1, 'x', null], b: true }), {
          result: { a: [1, 'x', null], b: true },
        });
        assert.deepEqual(await call(page, 'add', 2, 3), { result: 5 });
        assert.deepEqual(await call(page, 'noReturn'), { result: undefined });
        assert.deepEqual(await call(page, 'getConnectionId'), { result: id });
        assert.deepEqual(await call(page, 'getUserId'), { result: 'ann' });
        const kind = { webSockets: 'WebSockets', serverSentEvents: 'ServerSentEvents', longPolling: 'LongPolling' };
        assert.deepEqual(await call(page, 'getTransport'), {
          result: kind[(transport ?? 'webSockets') as 'webSockets'],
        });

        // Errors: HubError text and data reach the client; other exceptions stay hidden.
        assert.deepEqual(await call(page, 'throwHubError', 'bad things'), {
          error: 'bad things',
          source: 'HubException',
          data: { code: 42 },
        });
        assert.deepEqual(await call(page, 'throwPlain'), {
          error: "There was an error invoking Hub method 'testhub.throwPlain'.",
          source: 'Exception',
          data: undefined,
        });
        assert.match((await call(page, 'nope')).error ?? '', /Unknown hub method 'nope'/);
        assert.match((await call(page, 'add', 1)).error ?? '', /provides 1 argument\(s\) but target expects 2/);
        assert.match((await call(page, 'countTo', 3)).error ?? '', /streams its results/);
        assert.match((await call(page, 'askClient', id)).error ?? '', /cannot return results/);

        // Client state: the hub changes `state.counter`; the proxy's state follows.
        assert.deepEqual(await call(page, 'increment'), { result: 1 });
        assert.deepEqual(await call(page, 'increment'), { result: 2 });
        assert.equal(await page.evaluate(() => window.$.connection.testHub.state.counter), 2);

        // Client invocations: from the classic caller itself, and from a modern client.
        await call(page, 'toCaller', 'to me');
        await waitForText(page, 'received', 'to me');
        await modern.invoke('broadcast', { from: 'modern' });
        await waitForText(page, 'received', { from: 'modern' });
        await call(page, 'broadcast', 'from classic');
        await modernMessages.waitFor(2);
        assert.deepEqual(modernMessages.items, [{ from: 'modern' }, 'from classic']);
        await modern.invoke('toUser', 'ann', 'for ann');
        await waitForText(page, 'received', 'for ann');

        // Groups shared with the modern client; the classic client gets a groups token.
        await call(page, 'joinGroup', 'room');
        await modern.invoke('joinGroup', 'room');
        await modern.invoke('toGroup', 'room', 'hello room');
        await waitForText(page, 'groupReceived', 'room:hello room');
        await modernGroup.waitFor(1);
        await page.waitForFunction(() => Boolean(window.$.connection.hub.groupsToken));
        await call(page, 'toGroup', 'room', 'from classic member');
        await modernGroup.waitFor(2);
        assert.deepEqual(modernGroup.items[1], ['room', 'from classic member']);
        await call(page, 'leaveGroup', 'room');
        await modern.invoke('toGroup', 'room', 'after leaving');
        await modern.invoke('broadcast', 'barrier');
        await waitForText(page, 'received', 'barrier');
        assert.deepEqual(await page.evaluate(() => window.groupReceived), [
          'room:hello room',
          'room:from classic member',
        ]);

        // stop(): the hub hears the disconnect (no error: the client stopped).
        await page.evaluate(() => window.$.connection.hub.stop());
        await waitFor(() => server.observations.disconnected.some((d) => d.id === id), 5000, 'onDisconnected');
        assert.deepEqual(
          server.observations.disconnected.find((d) => d.id === id),
          { id, error: undefined },
        );
        assert.deepEqual(pageErrors, [], 'no script errors in the page');
      } finally {
        await modern.stop();
        await page.context().close();
      }
    });
  }

  test('a server-side abort stops the jQuery client', async () => {
    const page = await openPage();
    try {
      await page.evaluate(() => window.startClassic('webSockets'));
      await page.evaluate(() => {
        window.$.connection.hub.disconnected(() => {
          (window as unknown as { stopped: boolean }).stopped = true;
        });
      });
      await call(page, 'abortMe');
      await page.waitForFunction(() => (window as unknown as { stopped?: boolean }).stopped === true);
    } finally {
      await page.context().close();
    }
  });
});
