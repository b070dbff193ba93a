// Classic (SignalR 2 jQuery) and Core (@microsoft/signalr) clients in one group across two Hubwire processes on the
// PostgreSQL backplane: every member receives every group message once, in each sender's order, whichever node and
// protocol sent it; a non-member receives none. Also the PersistentConnection model across the two processes.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../classic/fixture.js';
import { collect, startClient } from '../helpers/clients.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = new URL('../..', import.meta.url).pathname;

interface ClassicNode {
  base: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startClassicNode(args: string[]): Promise<ClassicNode> {
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'test/fixtures/classic-node.ts', ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start in time: ${stderr.join('')}`)), 20_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const message = JSON.parse(line) as { port?: number };
        if (message.port) {
          clearTimeout(timer);
          resolve(message.port);
        }
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}: ${stderr.join('')}`));
    });
  });
  return {
    base: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

declare global {
  interface Window {
    start(transport: string, user: string): Promise<string>;
    send(data: unknown): void;
  }
}

describe('classic and Core clients on the PostgreSQL backplane, two processes', { timeout: 120_000 }, () => {
  const schema = `hw_classic_${process.pid}_${Date.now().toString(36)}`;
  let nodes: ClassicNode[] = [];
  let browser: Browser;
  const pages: Page[] = [];
  const cores: signalR.HubConnection[] = [];

  before(async () => {
    nodes = await Promise.all([0, 1].map(() => startClassicNode(['--backplane', DATABASE_URL, '--schema', schema])));
    browser = await launchChromium();
  });
  after(async () => {
    await Promise.all(cores.map((c) => c.stop().catch(() => {})));
    await browser?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await dropSchema(schema);
  });

  async function jquery(node: ClassicNode, path: string, transport: string, user: string): Promise<Page> {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    pages.push(page);
    await page.goto(`${node.base}${path}`);
    await page.evaluate(([t, u]) => window.start(t as string, u as string), [transport, user] as const);
    return page;
  }
  const received = (page: Page) => page.evaluate(() => (window as unknown as { received: unknown[] }).received);
  async function waitForCount(page: Page, count: number): Promise<void> {
    await page.waitForFunction(
      (n) => (window as unknown as { received: unknown[] }).received.length >= n,
      count,
      undefined,
    );
  }

  test('one group: jQuery (webSockets, longPolling) and Core clients on both nodes', async () => {
    const [a, b] = nodes as [ClassicNode, ClassicNode];
    const classicA = await jquery(a, '/page', 'webSockets', 'ann');
    const classicB = await jquery(b, '/page', 'longPolling', 'bea');
    const coreA = await startClient(`${a.base}/test`, { token: 'cal' });
    const coreB = await startClient(`${b.base}/test`, { token: 'dan' });
    const outsider = await startClient(`${b.base}/test`, { token: 'eve' });
    cores.push(coreA, coreB, outsider);
    const coreInbox = [coreA, coreB, outsider].map((c) => collect<[string, string]>(c, 'groupMessage'));
    const classicCall = (page: Page, method: string, ...args: unknown[]) =>
      page.evaluate(
        ([m, a]) => (window as unknown as { call(...x: unknown[]): Promise<unknown> }).call(m, ...(a as unknown[])),
        [method, args] as const,
      );

    // Everyone joins (a classic client's join on one node, a Core client's on the other).
    await classicCall(classicA, 'joinGroup', 'room');
    await classicCall(classicB, 'joinGroup', 'room');
    await coreA.invoke('joinGroup', 'room');
    await coreB.invoke('joinGroup', 'room');

    // Each member sends three group messages.
    const senders: [string, (text: string) => Promise<unknown>][] = [
      ['ann', (t) => classicCall(classicA, 'toGroup', 'room', t)],
      ['bea', (t) => classicCall(classicB, 'toGroup', 'room', t)],
      ['cal', (t) => coreA.invoke('toGroup', 'room', t)],
      ['dan', (t) => coreB.invoke('toGroup', 'room', t)],
    ];
    await Promise.all(
      senders.map(async ([name, send]) => {
        for (let i = 0; i < 3; i++) await send(`${name}-${i}`);
      }),
    );
    const expected = senders.flatMap(([name]) => [0, 1, 2].map((i) => `room:${name}-${i}`));
    await waitForCount(classicA, 12);
    await waitForCount(classicB, 12);
    await coreInbox[0]?.waitFor(12);
    await coreInbox[1]?.waitFor(12);
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything extra would show up now

    const inboxes: unknown[][] = [
      await received(classicA),
      await received(classicB),
      (coreInbox[0]?.items ?? []).map(([g, t]) => `${g}:${t}`),
      (coreInbox[1]?.items ?? []).map(([g, t]) => `${g}:${t}`),
    ];
    for (const inbox of inboxes) {
      assert.deepEqual([...inbox].sort(), [...expected].sort(), 'every message once');
      for (const [name] of senders) {
        const own = inbox.filter((m) => String(m).startsWith(`room:${name}-`));
        assert.deepEqual(
          own,
          [0, 1, 2].map((i) => `room:${name}-${i}`),
          `${name}'s messages in order`,
        );
      }
    }
    assert.deepEqual(coreInbox[2]?.items, [], 'a non-member receives nothing');
  });

  test('PersistentConnection: a group send on node A reaches raw jQuery connections on both nodes', async () => {
    const [a, b] = nodes as [ClassicNode, ClassicNode];
    const rawA = await jquery(a, '/raw', 'serverSentEvents', 'ann');
    const rawB = await jquery(b, '/raw', 'webSockets', 'bea');
    const other = await jquery(b, '/raw', 'longPolling', 'cal');
    await rawA.evaluate(() => window.send({ op: 'join', group: 'raw-room' }));
    await rawB.evaluate(() => window.send({ op: 'join', group: 'raw-room' }));
    await rawA.waitForFunction(() =>
      Boolean((window as unknown as { connection: { groupsToken?: string } }).connection.groupsToken),
    );
    await rawB.waitForFunction(() =>
      Boolean((window as unknown as { connection: { groupsToken?: string } }).connection.groupsToken),
    );
    await rawA.evaluate(() => window.send({ op: 'group', group: 'raw-room', value: { from: 'A' } }));
    await rawB.evaluate(() => window.send({ op: 'group', group: 'raw-room', value: { from: 'B' } }));
    await other.evaluate(() => window.send({ op: 'all', value: 'everyone' }));
    for (const page of [rawA, rawB]) {
      await waitForCount(page, 3);
      const got = await received(page);
      assert.deepEqual(got.map((v) => JSON.stringify(v)).sort(), ['"everyone"', '{"from":"A"}', '{"from":"B"}']);
    }
    await waitForCount(other, 1);
    assert.deepEqual(await received(other), ['everyone']);
  });
});
