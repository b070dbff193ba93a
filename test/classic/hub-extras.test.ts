// SignalR 2 features beyond calls and broadcasts: progress reports from a hub method (the real jQuery client's
// `invoke(...).progress(fn)`), OnReconnected on /reconnect, the rejoin-groups hook, and CORS / Origin checks of
// classic requests.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Backplane,
  type ClassicHubsOptions,
  classicProgress,
  Hub,
  Hubwire,
  MemoryDatabase,
  MemoryStore,
} from 'hubwire';
import type { Browser } from 'playwright-core';
import { delay, waitFor } from '../helpers/wait.js';
import { HUBS, http, launchChromium, negotiate, routeUrl, serveTestPage } from './fixture.js';
import { openSocket, openStream, wsUrl } from './wire.js';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<script src="/lib/jquery.js"></script>
<script src="/lib/jquery.signalR.js"></script>
<script src="/signalr/hubs"></script>
<script>
  var hub = $.connection.testHub;
  hub.client.noop = function () {};
  window.start = function (transport) {
    return new Promise(function (resolve, reject) {
      $.connection.hub.start({ transport: transport }).done(function () { resolve($.connection.hub.transport.name); })
        .fail(function (e) { reject(new Error(e.message)); });
    });
  };
  /** Calls work(n): resolves with the progress reports and the result, in the order the client saw them. */
  window.work = function (n) {
    var seen = [];
    return new Promise(function (resolve) {
      hub.server.work(n)
        .progress(function (p) { seen.push('progress:' + p); })
        .done(function (r) { seen.push('result:' + r); resolve(seen); })
        .fail(function (e) { seen.push('error:' + e.message); resolve(seen); });
    });
  };
</script></body></html>`;

interface Seen {
  reconnected: string[];
}

function hubClass(seen: Seen) {
  return class TestHub extends Hub {
    async work(n: number): Promise<string> {
      const report = classicProgress(this.context);
      if (!report) return 'not classic';
      for (let i = 1; i <= n; i++) await report(i);
      return 'done';
    }
    joinGroup(group: string): Promise<void> {
      return this.groups.add(this.context.connectionId, group);
    }
    override onReconnected(): void {
      seen.reconnected.push(this.context.connectionId);
    }
  };
}

async function startServer(options: ClassicHubsOptions = {}, backplane?: Backplane) {
  const seen: Seen = { reconnected: [] };
  const hubwire = new Hubwire({ backplane, onError: () => {} });
  hubwire.mapHub('/test', hubClass(seen));
  hubwire.mapClassicHubs(
    '/signalr',
    { TestHub: '/test' },
    { classicKey: 'hub-extras-test-key-0123456789', ...options },
  );
  const port = await hubwire.listen(0, '127.0.0.1', (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (serveTestPage(path, { '/page': PAGE }, response)) return;
    response.writeHead(404);
    response.end();
  });
  await hubwire.ready();
  return { hubwire, seen, base: `http://127.0.0.1:${port}` };
}

/** A database round trip on every read, so a node that did not write a row sees it a little later. */
class SlowReads extends MemoryStore {
  override async readAfter(stream: number, afterId: number, limit: number) {
    await delay(15);
    return super.readAfter(stream, afterId, limit);
  }
}

describe('classic progress reports', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let browser: Browser;
  before(async () => {
    server = await startServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.hubwire.close();
  });

  for (const transport of ['webSockets', 'serverSentEvents', 'longPolling']) {
    test(`the jQuery client sees every report, then the result (${transport})`, async () => {
      const page = await browser.newPage();
      try {
        await page.goto(`${server.base}/page`);
        assert.equal(
          await page.evaluate((t) => (window as unknown as { start(t: string): Promise<string> }).start(t), transport),
          transport,
        );
        const seen = await page.evaluate(() => (window as unknown as { work(n: number): Promise<string[]> }).work(3));
        assert.deepEqual(seen, ['progress:1', 'progress:2', 'progress:3', 'result:done']);
      } finally {
        await page.close();
      }
    });
  }

  test('on the wire: `{"I":"P|id","P":{"I":"id","D":value}}` inside M, before the result', async () => {
    const n = await negotiate(server.base);
    const socket = await openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'webSockets')));
    try {
      await socket.next((f) => f.S === 1);
      await http(routeUrl(server.base, 'start', n, 'webSockets'));
      socket.socket.send(JSON.stringify({ H: 'testhub', M: 'work', A: [2], I: 7 }));
      await socket.next((f) => f.I === '7');
      const progress = socket.frames
        .map((f) => JSON.parse(f) as { M?: unknown[]; I?: string })
        .flatMap((f) => f.M ?? []);
      assert.deepEqual(progress, [
        { I: 'P|7', P: { I: '7', D: 1 } },
        { I: 'P|7', P: { I: '7', D: 2 } },
      ]);
      const order = socket.frames.map((f) => (f.includes('"P|7"') ? 'P' : f.includes('"I":"7"') ? 'R' : '-'));
      assert.ok(order.lastIndexOf('P') < order.indexOf('R'), `progress before the result: ${order.join('')}`);
    } finally {
      await socket.close();
    }
  });
});

describe('classic progress across nodes', () => {
  test('reports reach a long-polling client before the result of a /send made on the other node', async () => {
    const database = new MemoryDatabase(1);
    const engine = () => new Backplane(new SlowReads(database), { onError: () => {} });
    const a = await startServer({}, engine());
    const b = await startServer({}, engine());
    try {
      const n = await negotiate(a.base);
      const url = (base: string, route: string) => routeUrl(base, route, n, 'longPolling');
      const init = JSON.parse((await http(url(a.base, 'connect'), { form: {} })).body) as { C: string };
      assert.equal((await http(url(a.base, 'start'))).status, 200);
      const order: string[] = [];
      const poll = http(url(a.base, 'poll'), { form: { messageId: init.C }, timeoutMs: 5000 }).then((r) => {
        order.push(r.body.includes('P|7') ? 'progress' : `other ${r.body}`);
      });
      await delay(50);
      const data = JSON.stringify({ H: 'testhub', M: 'work', A: [1], I: 7 });
      const sent = http(url(b.base, 'send'), { form: { data } }).then((r) => order.push(`result ${r.body}`));
      await Promise.all([poll, sent]);
      assert.deepEqual(order, ['progress', 'result {"I":"7","R":"done"}']);
    } finally {
      await a.hubwire.close();
      await b.hubwire.close();
    }
  });
});

describe('classic OnReconnected and the rejoin-groups hook', () => {
  test('/reconnect runs the hub onReconnected once; connect and poll do not', async () => {
    const server = await startServer();
    try {
      const n = await negotiate(server.base);
      const sse = (route: string, extra: Record<string, string> = {}) =>
        routeUrl(server.base, route, n, 'serverSentEvents', extra);
      const first = await openStream(sse('connect'));
      await first.waitFor(/"S":1/);
      await http(sse('start'));
      const cursor = (first.text().match(/"C":"([^"]+)"/) as RegExpMatchArray)[1] as string;
      first.close();
      assert.deepEqual(server.seen.reconnected, []);
      const second = await openStream(sse('reconnect', { messageId: cursor }));
      await waitFor(() => server.seen.reconnected.length === 1, 5000, 'onReconnected');
      assert.deepEqual(server.seen.reconnected, [n.ConnectionId]);
      second.close();
    } finally {
      await server.hubwire.close();
    }
  });

  test('rejoinGroups decides which groups of the token a rebuilt connection rejoins', async () => {
    const asked: { hub: string | undefined; groups: string[] }[] = [];
    const options: ClassicHubsOptions = {
      rejoinGroups: (context, groups) => {
        asked.push({ hub: context.hub, groups });
        return groups.filter((g) => g !== 'banned');
      },
    };
    const first = await startServer(options);
    const n = await negotiate(first.base);
    let groupsToken = '';
    let cursor = '';
    try {
      const lp = (route: string) => routeUrl(first.base, route, n, 'longPolling');
      await http(lp('connect'), { form: {} });
      await http(lp('start'));
      for (const group of ['room', 'banned']) {
        const data = JSON.stringify({ H: 'testhub', M: 'joinGroup', A: [group], I: 0 });
        assert.equal((await http(lp('send'), { form: { data } })).status, 200);
      }
      const polled = JSON.parse((await http(lp('poll'), { form: { messageId: '' } })).body) as { G: string; C: string };
      groupsToken = polled.G;
      cursor = polled.C;
      assert.ok(groupsToken);
    } finally {
      await first.hubwire.close();
    }
    // The same key on a fresh server (a restart): the connection is rebuilt from its tokens.
    const second = await startServer(options);
    try {
      const lp = (route: string) => routeUrl(second.base, route, n, 'longPolling');
      // The membership differs from the token's: the first answer brings a new groups token at once.
      const first = JSON.parse((await http(lp('poll'), { form: { messageId: cursor, groupsToken } })).body) as {
        C: string;
        G?: string;
      };
      assert.deepEqual(asked, [{ hub: 'TestHub', groups: ['room', 'banned'] }]);
      assert.ok(first.G && first.G !== groupsToken, 'a new groups token');
      const poll = http(lp('poll'), { form: { messageId: first.C, groupsToken: first.G } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await second.hubwire.hub('/test').clients.group('banned').send('noop', 'no');
      await second.hubwire.hub('/test').clients.group('room').send('noop', 'yes');
      const envelope = JSON.parse((await poll).body) as { M: { A: unknown[] }[] };
      assert.deepEqual(
        envelope.M.map((m) => m.A[0]),
        ['yes'],
      );
    } finally {
      await second.hubwire.close();
    }
  });
});

describe('classic CORS and Origin checks', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer({ allowedOrigins: ['http://good.example'] });
  });
  after(() => server?.hubwire.close());

  const get = (url: string, origin?: string, method = 'GET') =>
    new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      void import('node:http').then(({ request }) => {
        const req = request(url, { method, headers: origin ? { Origin: origin } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      });
    });

  test('an allowed origin gets CORS with credentials; a preflight is answered', async () => {
    const url = `${server.base}/signalr/negotiate?clientProtocol=2.1&connectionData=${encodeURIComponent(HUBS)}`;
    const ok = await get(url, 'http://good.example');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'http://good.example');
    assert.equal(ok.headers['access-control-allow-credentials'], 'true');
    const preflight = await get(url, 'http://good.example', 'OPTIONS');
    assert.equal(preflight.status, 204);
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
  });

  test('another origin is refused (HTTP 403 and WebSocket upgrade 403); same-origin and no Origin pass', async () => {
    const url = `${server.base}/signalr/negotiate?clientProtocol=2.1&connectionData=${encodeURIComponent(HUBS)}`;
    assert.equal((await get(url, 'http://evil.example')).status, 403);
    assert.equal((await get(url)).status, 200);
    assert.equal((await get(url, server.base)).status, 200);
    const n = await negotiate(server.base);
    const ws = wsUrl(routeUrl(server.base, 'connect', n, 'webSockets'));
    const { default: WebSocket } = await import('ws');
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(ws, { headers: { Origin: 'http://evil.example' } });
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => {
        socket.close();
        resolve(101);
      });
      socket.on('error', () => {});
    });
    assert.equal(status, 403);
  });
});
