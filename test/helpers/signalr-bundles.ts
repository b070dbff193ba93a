// The official clients' browser bundles (from node_modules), by the path a test page loads them from.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';

const require = createRequire(import.meta.url);

export const SIGNALR_BUNDLES: Record<string, string> = {
  '/lib/signalr.js': join(dirname(require.resolve('@microsoft/signalr')), '..', 'browser', 'signalr.min.js'),
  '/lib/signalr-protocol-msgpack.js': join(
    dirname(require.resolve('@microsoft/signalr-protocol-msgpack')),
    '..',
    'browser',
    'signalr-protocol-msgpack.min.js',
  ),
};

/**
 * Opens the page HAProxy serves at `${proxyUrl}/page` in a fresh browser context, the bundles served by the test;
 * the page's errors and console errors go to `errors` (prefixed with `name`). HAProxy serves the page itself: a
 * page the test fulfilled would not count as loaded from a local address, and Chromium's local network access
 * checks would block its WebSocket.
 */
export async function openProxiedPage(
  browser: Browser,
  proxyUrl: string,
  name: string,
  errors: string[],
  stepMs: number,
): Promise<Page> {
  const context = await browser.newContext();
  context.setDefaultTimeout(stepMs);
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`${name}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${name}: ${message.text()}`);
  });
  await page.route(`${proxyUrl}/lib/*`, (route) =>
    route.fulfill({ contentType: 'text/javascript', path: SIGNALR_BUNDLES[new URL(route.request().url()).pathname] }),
  );
  await page.goto(`${proxyUrl}/page`);
  return page;
}
