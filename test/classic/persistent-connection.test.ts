// SignalR 2's PersistentConnection (mapClassicConnection): the jQuery client's raw API (`$.connection('/echo')`,
// `received`, `send`, `start`, `stop`) in headless Chromium on webSockets, serverSentEvents and longPolling; the same
// endpoint at the byte level (init, /start, raw frames and /send bodies, envelopes of JSON values, groups tokens,
// no proxy script); and sends to groups, users and everyone crossing two nodes on a shared backplane.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Backplane,
  Hubwire,
  MemoryDatabase,
  MemoryStore,
  type PersistentConnection,
  type PersistentConnectionContext,
} from 'hubwire';
import type { Browser, Page } from 'playwright-core';
import { delay, waitFor } from '../helpers/wait.js';
import { http, launchChromium, serveTestPage, userFromQuery } from './fixture.js';
import { openSocket, wsUrl } from './wire.js';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<script src="/lib/jquery.js"></script>
<script src="/lib/jquery.signalR.js"></script>
<script>
  window.received = [];
  var connection = $.connection('/echo');
  connection.received(function (data) { received.push(data); });
  window.startRaw = function (transport, qs) {
    if (qs) connection.qs = qs;
    return new Promise(function (resolve, reject) {
      connection.start({ transport: transport })
        .done(function () { resolve({ transport: connection.transport.name, id: connection.id }); })
        .fail(function (e) { reject(new Error(e.message)); });
    });
  };
  window.sendRaw = function (data) { connection.send(data); };
</script></body></html>`;

interface Observed {
  connected: string[];
  received: { id: string; data: string; user: string | undefined }[];
  disconnected: { id: string; stopCalled: boolean }[];
}

/**
 * The echo connection: plain text comes back to the sender; `{"op":…}` commands broadcast, join and leave groups,
 * send to groups and users.
 */
async function startNode(backplane?: Backplane) {
  const observed: Observed = { connected: [], received: [], disconnected: [] };
  const hubwire = new Hubwire({
    backplane,
    authenticate: userFromQuery,
    onError: () => {},
  });
  const echo: PersistentConnectionContext = hubwire.mapClassicConnection(
    '/echo',
    {
      authorize: (user) => (user as { id?: string } | undefined)?.id !== 'mallory',
      onConnected: (c: PersistentConnection) => {
        observed.connected.push(c.connectionId);
      },
      onReceived: async (c, data) => {
        observed.received.push({ id: c.connectionId, data, user: c.userId });
        if (!data.startsWith('{')) return c.send(`echo:${data}`);
        const command = JSON.parse(data) as { op: string; group?: string; value?: unknown; user?: string };
        switch (command.op) {
          case 'broadcast':
            return c.endpoint.broadcast(command.value);
          case 'others':
            return c.endpoint.broadcast(command.value, c.connectionId);
          case 'join':
            return c.endpoint.groups.add(c.connectionId, command.group as string);
          case 'leave':
            return c.endpoint.groups.remove(c.connectionId, command.group as string);
          case 'group':
            return c.endpoint.groups.send(command.group as string, command.value);
          case 'user':
            return c.endpoint.sendToUser(command.user as string, command.value);
          case 'throw':
            throw new Error('boom');
        }
      },
      onDisconnected: (c, stopCalled) => {
        observed.disconnected.push({ id: c.connectionId, stopCalled });
      },
    },
    { classicKey: 'one key for every node of the test' },
  );
  const port = await hubwire.listen(0, '127.0.0.1', (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (serveTestPage(path, { '/page': PAGE }, response)) return;
    response.writeHead(404);
    response.end();
  });
  return { hubwire, echo, observed, base: `http://127.0.0.1:${port}`, close: () => hubwire.close() };
}

type Node = Awaited<ReturnType<typeof startNode>>;

declare global {
  interface Window {
    received: unknown[];
    startRaw(transport: string, qs?: Record<string, string>): Promise<{ transport: string; id: string }>;
    sendRaw(data: unknown): void;
    // biome-ignore lint/suspicious/noExplicitAny: the page's raw jQuery connection.
    connection: any;
  }
}

async function waitForReceived(page: Page, value: unknown): Promise<void> {
  await page.waitForFunction(
    (wanted) => window.received.some((v) => JSON.stringify(v) === wanted),
    JSON.stringify(value),
  );
}

describe('PersistentConnection with the jQuery client', { timeout: 120_000 }, () => {
  let node: Node;
  let browser: Browser;
  before(async () => {
    node = await startNode();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await node?.close();
  });

  async function openPage(pageErrors: string[]): Promise<Page> {
    const context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${node.base}/page`);
    return page;
  }

  for (const transport of ['webSockets', 'serverSentEvents', 'longPolling']) {
    test(`on ${transport}: received data, echo, broadcast, groups, users, server sends, stop`, async () => {
      const errors: string[] = [];
      const page = await openPage(errors);
      const other = await openPage(errors);
      try {
        const started = await page.evaluate((t) => window.startRaw(t, { user: 'ann' }), transport);
        assert.equal(started.transport, transport);
        const { id: otherId } = await other.evaluate(() => window.startRaw('webSockets', { user: 'bob' }));
        await waitFor(() => node.observed.connected.includes(started.id), 5000, 'onConnected');

        // A string comes to onReceived as sent; objects as their JSON.
        await page.evaluate(() => window.sendRaw('hello'));
        await waitForReceived(page, 'echo:hello');
        assert.deepEqual(
          node.observed.received.find((r) => r.id === started.id),
          { id: started.id, data: 'hello', user: 'ann' },
        );

        // Broadcast reaches both; "others" skips the sender.
        await page.evaluate(() => window.sendRaw({ op: 'broadcast', value: { n: 1, s: 'all' } }));
        await waitForReceived(other, { n: 1, s: 'all' });
        await waitForReceived(page, { n: 1, s: 'all' });
        await other.evaluate(() => window.sendRaw({ op: 'others', value: 'not for bob' }));
        await waitForReceived(page, 'not for bob');

        // Groups: join, a group send, leave; the client receives a groups token.
        await page.evaluate(() => window.sendRaw({ op: 'join', group: 'room' }));
        await page.waitForFunction(() => Boolean(window.connection.groupsToken));
        const joinedToken = await page.evaluate(() => window.connection.groupsToken as string);
        await other.evaluate(() => window.sendRaw({ op: 'group', group: 'room', value: 'in room' }));
        await waitForReceived(page, 'in room');
        await page.evaluate(() => window.sendRaw({ op: 'leave', group: 'room' }));
        await page.waitForFunction((t) => window.connection.groupsToken !== t, joinedToken);
        await other.evaluate(() => window.sendRaw({ op: 'group', group: 'room', value: 'after leaving' }));
        await other.evaluate(() => window.sendRaw({ op: 'user', user: 'ann', value: 'for ann' }));
        await waitForReceived(page, 'for ann');

        // The server side, outside any hook.
        await node.echo.send(started.id, [1, 2, 3]);
        await waitForReceived(page, [1, 2, 3]);
        await node.echo.groups.add(started.id, 'server-room');
        await node.echo.groups.send('server-room', 'from the server');
        await waitForReceived(page, 'from the server');

        const got = await page.evaluate(() => window.received);
        assert.ok(!got.includes('after leaving'), 'nothing for a group it left');
        assert.equal(got.filter((v) => v === 'not for bob').length, 1);
        assert.ok(!(await other.evaluate(() => window.received)).includes('not for bob'));

        // A hook that throws is reported; the connection goes on.
        await page.evaluate(() => window.sendRaw({ op: 'throw' }));
        await page.evaluate(() => window.sendRaw('still here'));
        await waitForReceived(page, 'echo:still here');

        await page.evaluate(() => window.connection.stop());
        await waitFor(() => node.observed.disconnected.some((d) => d.id === started.id), 5000, 'onDisconnected');
        assert.deepEqual(
          node.observed.disconnected.find((d) => d.id === started.id),
          { id: started.id, stopCalled: true },
        );
        assert.ok(!node.observed.disconnected.some((d) => d.id === otherId));
        assert.deepEqual(errors, []);
      } finally {
        await page.context().close();
        await other.context().close();
      }
    });
  }
});

describe('PersistentConnection at the byte level', () => {
  let node: Node;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node?.close();
  });

  const url = (route: string, token: string, transport: string, extra: Record<string, string> = {}) =>
    `${node.base}/echo/${route}?${new URLSearchParams({ transport, clientProtocol: '2.1', connectionToken: token, ...extra })}`;

  async function negotiateEcho(user?: string) {
    const query = new URLSearchParams({ clientProtocol: '2.1' });
    if (user) query.set('user', user);
    const response = await http(`${node.base}/echo/negotiate?${query}`);
    return { status: response.status, body: response.status === 200 ? JSON.parse(response.body) : response.body };
  }

  test('negotiate, WebSocket init, raw frames in, JSON values out, groups token, abort', async () => {
    const n = await negotiateEcho('ann');
    assert.equal(n.status, 200);
    assert.equal(n.body.Url, '/echo');
    assert.equal(n.body.ProtocolVersion, '2.0');
    const token = n.body.ConnectionToken as string;
    const id = n.body.ConnectionId as string;
    const socket = await openSocket(wsUrl(url('connect', token, 'webSockets', { user: 'ann' })));
    try {
      const init = await socket.next();
      assert.equal(init.S, 1);
      assert.deepEqual(init.M, []);
      const start = await http(url('start', token, 'webSockets', { user: 'ann' }));
      assert.deepEqual([start.status, start.body], [200, '{"Response":"started"}']);
      assert.ok(node.observed.connected.includes(id));

      // A frame is the data, as is: no hub invocation, no result frame.
      const from = socket.frames.length;
      socket.socket.send('plain text, not JSON');
      const echoed = await socket.next((f) => Array.isArray(f.M) && (f.M as unknown[]).length > 0, from);
      assert.deepEqual(echoed.M, ['echo:plain text, not JSON']);
      assert.match(String(echoed.C), /.+/);
      assert.equal(node.observed.received.at(-1)?.data, 'plain text, not JSON');

      // Every JSON value travels as an item of M.
      const values = [null, 0, 'x', { a: [1, { b: true }] }, [1, 2]];
      const before = socket.frames.length;
      for (const value of values) await node.echo.send(id, value);
      const seen: unknown[] = [];
      await waitFor(
        () => {
          seen.length = 0;
          for (const frame of socket.frames.slice(before)) {
            const parsed = JSON.parse(frame) as { M?: unknown[] };
            if (parsed.M) seen.push(...parsed.M);
          }
          return seen.length >= values.length;
        },
        5000,
        'all values',
      );
      assert.deepEqual(seen, values);

      // Joining a group sends a groups token (G) with the next envelope.
      const beforeJoin = socket.frames.length;
      socket.socket.send(JSON.stringify({ op: 'join', group: 'blue' }));
      const withToken = await socket.next((f) => typeof f.G === 'string', beforeJoin);
      assert.match(String(withToken.G), /^[\w-]+\.[\w-]+$/);

      // The proxy script does not exist on a persistent endpoint.
      assert.equal((await http(`${node.base}/echo/hubs`)).status, 404);

      await http(url('abort', token, 'webSockets', { user: 'ann' }), { method: 'POST' });
      await waitFor(() => node.observed.disconnected.some((d) => d.id === id && d.stopCalled), 5000, 'stopCalled');
    } finally {
      await socket.close();
    }
  });

  test('long polling: /send takes a form body and answers empty; polls carry the values', async () => {
    const n = await negotiateEcho();
    const token = n.body.ConnectionToken as string;
    const init = JSON.parse((await http(url('connect', token, 'longPolling'), { form: {} })).body);
    assert.equal(init.S, 1);
    await http(url('start', token, 'longPolling'));
    const poll = http(url('poll', token, 'longPolling'), { form: { messageId: init.C } });
    await delay(50);
    const sent = await http(url('send', token, 'longPolling'), { form: { data: 'over http' } });
    assert.deepEqual([sent.status, sent.body], [200, '']);
    assert.deepEqual(JSON.parse((await poll).body).M, ['echo:over http']);
    const missing = await http(url('send', token, 'longPolling'), { form: { other: 'x' } });
    assert.equal(missing.status, 400);
    await http(url('abort', token, 'longPolling'), { method: 'POST' });
  });

  test('authorization runs on every request; bad tokens and JSONP are refused', async () => {
    assert.equal((await negotiateEcho('mallory')).status, 403);
    const n = await negotiateEcho('ann');
    const token = n.body.ConnectionToken as string;
    assert.equal((await http(url('start', token, 'longPolling', { user: 'mallory' }))).status, 403);
    assert.equal((await http(url('start', 'forged.token', 'longPolling'))).status, 400);
    assert.equal((await http(url('connect', token, 'longPolling', { user: 'ann', callback: 'f' }))).status, 403);
    assert.equal((await http(url('connect', token, 'nope', { user: 'ann' }))).status, 400);
  });
});

describe('PersistentConnection across nodes (shared backplane)', () => {
  test('a broadcast, a group send and a send to a connection from node A reach a connection on node B', async () => {
    const database = new MemoryDatabase(2);
    const engine = () =>
      new Backplane(new MemoryStore(database), { pollInterval: { min: 5, max: 20 }, onError: () => {} });
    const a = await startNode(engine());
    const b = await startNode(engine());
    await a.hubwire.ready();
    await b.hubwire.ready();
    try {
      const n = JSON.parse((await http(`${b.base}/echo/negotiate?clientProtocol=2.1`)).body);
      const token = n.ConnectionToken as string;
      const id = n.ConnectionId as string;
      const onB = (route: string) =>
        `${b.base}/echo/${route}?${new URLSearchParams({ transport: 'webSockets', clientProtocol: '2.1', connectionToken: token })}`;
      const socket = await openSocket(wsUrl(onB('connect')));
      try {
        await socket.next();
        await http(onB('start'));
        // Group membership set from node A (the connection lives on B): it crosses the backplane.
        await a.echo.groups.add(id, 'room');
        const from = socket.frames.length;
        await a.echo.broadcast('broadcast from A');
        await a.echo.groups.send('room', 'group send from A');
        await a.echo.send(id, 'direct from A');
        await a.echo.groups.send('elsewhere', 'not for B');
        const seen: unknown[] = [];
        await waitFor(
          () => {
            seen.length = 0;
            for (const frame of socket.frames.slice(from)) {
              const parsed = JSON.parse(frame) as { M?: unknown[] };
              if (parsed.M) seen.push(...parsed.M);
            }
            return seen.length >= 3;
          },
          5000,
          'three messages on B',
        );
        assert.deepEqual(seen, ['broadcast from A', 'group send from A', 'direct from A']);
        // A /send that lands on node A runs onReceived there (no sticky sessions for sends); the echo reaches B.
        const onA = `${a.base}/echo/send?${new URLSearchParams({ transport: 'webSockets', clientProtocol: '2.1', connectionToken: token })}`;
        const sent = await http(onA, { form: { data: 'via A' } });
        assert.equal(sent.status, 200);
        await socket.next((f) => JSON.stringify(f.M ?? []).includes('echo:via A'), from);
        assert.ok(a.observed.received.some((r) => r.id === id && r.data === 'via A'));
      } finally {
        await socket.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});
