// The classic protocol at the byte level: negotiate, the proxy script, the init message, long polling (held polls,
// keep-alive spaces, replay after a lost poll, timeouts), Server-Sent Events, foreverFrame, WebSocket replay on
// reconnect, groups restored from the groups token on another node, disconnect timeout and shutdown.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { delay, waitFor } from '../helpers/wait.js';
import { type ClassicServer, HUBS, http, negotiate, routeUrl, startClassicServer } from './fixture.js';
import { openSocket, openStream, wsUrl } from './wire.js';

let server: ClassicServer;
before(async () => {
  server = await startClassicServer();
});
after(async () => {
  await server?.close();
});

const envelope = (body: string) => JSON.parse(body) as { C: string; S?: number; T?: number; G?: string; M: unknown[] };

async function send(base: string, n: Awaited<ReturnType<typeof negotiate>>, transport: string, data: object) {
  return http(routeUrl(base, 'send', n, transport), { form: { data: JSON.stringify(data) } });
}

describe('negotiate, ping and the proxy script', () => {
  test('negotiate answers SignalR 2 fields; versions are clamped to what jQuery accepts', async () => {
    const response = await http(
      `${server.base}/signalr/negotiate?clientProtocol=2.1&connectionData=${encodeURIComponent(HUBS)}`,
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/json; charset=UTF-8');
    const body = JSON.parse(response.body);
    assert.match(body.ConnectionId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(body.ConnectionToken, /^[\w-]+\.[\w-]+$/);
    assert.deepEqual(
      { ...body, ConnectionId: undefined, ConnectionToken: undefined },
      {
        Url: '/signalr',
        ConnectionId: undefined,
        ConnectionToken: undefined,
        KeepAliveTimeout: 20,
        DisconnectTimeout: 30,
        ConnectionTimeout: 110,
        TryWebSockets: true,
        ProtocolVersion: '2.0',
        TransportConnectTimeout: 5,
        LongPollDelay: 0,
      },
    );
    for (const [client, expected] of [
      ['1.5', '1.5'],
      ['2.0', '2.0'],
      ['1.0', '1.2'],
      ['', '1.2'],
    ]) {
      const r = await http(`${server.base}/signalr/negotiate?clientProtocol=${client}`);
      assert.equal(JSON.parse(r.body).ProtocolVersion, expected, `clientProtocol ${client}`);
    }
  });

  test('ping answers pong; /hubs and /js serve the proxies', async () => {
    assert.deepEqual(JSON.parse((await http(`${server.base}/signalr/ping?_=1`)).body), { Response: 'pong' });
    for (const path of ['hubs', 'js']) {
      const response = await http(`${server.base}/signalr/${path}`);
      assert.equal(response.status, 200);
      assert.match(response.headers['content-type'] ?? '', /^application\/javascript/);
      assert.match(response.body, /proxies\["testHub"\] = connection\.createHubProxy\("testHub"\)/);
      assert.match(
        response.body,
        /"joinGroup": function \(\) \{\s+return proxy\.invoke\.apply\(proxy, \$\.merge\(\["joinGroup"\]/,
      );
      assert.match(response.body, /signalR\.hub = \$\.hubConnection\("\/signalr", \{ useDefaultPath: false \}\)/);
      assert.doesNotMatch(response.body, /onConnected|onDisconnected/, 'lifetime hooks are not callable');
    }
  });
});

describe('long polling', () => {
  test('connect answers init at once; a poll is held until a message, replayed after a lost poll', async () => {
    const n = await negotiate(server.base);
    const init = await http(routeUrl(server.base, 'connect', n, 'longPolling'), { form: {} });
    const initial = envelope(init.body);
    assert.deepEqual({ ...initial, C: undefined }, { C: undefined, S: 1, M: [] });
    const started = await http(routeUrl(server.base, 'start', n, 'longPolling'));
    assert.deepEqual(JSON.parse(started.body), { Response: 'started' });

    const held = http(routeUrl(server.base, 'poll', n, 'longPolling'), { form: { messageId: initial.C } });
    await delay(100);
    const sent = await send(server.base, n, 'longPolling', { H: 'testhub', M: 'toCaller', A: ['hello'], I: 0 });
    assert.deepEqual(JSON.parse(sent.body), { I: '0' });
    const first = envelope((await held).body);
    assert.deepEqual(first.M, [{ H: 'TestHub', M: 'message', A: ['hello'] }]);
    assert.notEqual(first.C, initial.C);

    // The answer was lost: polling again with the old cursor replays it.
    const again = envelope(
      (await http(routeUrl(server.base, 'poll', n, 'longPolling'), { form: { messageId: initial.C } })).body,
    );
    assert.deepEqual(again, first);
    await http(routeUrl(server.base, 'abort', n, 'longPolling'), { method: 'POST' });
  });

  test('an idle poll writes keep-alive spaces and ends empty after the connection timeout', async () => {
    const quick = await startClassicServer({ keepAlive: 200, disconnectTimeout: 600, connectionTimeout: 900 });
    try {
      const n = await negotiate(quick.base);
      const initial = envelope((await http(routeUrl(quick.base, 'connect', n, 'longPolling'), { form: {} })).body);
      await http(routeUrl(quick.base, 'start', n, 'longPolling'));
      const started = Date.now();
      const poll = await http(routeUrl(quick.base, 'poll', n, 'longPolling'), { form: { messageId: initial.C } });
      assert.ok(Date.now() - started >= 850, 'held for the connection timeout');
      assert.match(poll.body, /^ {2,}\{/, 'spaces before the envelope');
      assert.deepEqual(envelope(poll.body), { C: initial.C, M: [] });
      // Nobody polls any more: the disconnect timeout ends the connection.
      await waitFor(() => quick.observations.disconnected.some((d) => d.id === n.ConnectionId), 3000, 'onDisconnected');
      assert.match(quick.observations.disconnected[0]?.error ?? '', /disconnect timeout/);
    } finally {
      await quick.close();
    }
  });

  test('shutdown answers a held poll with T:1', async () => {
    const doomed = await startClassicServer();
    const n = await negotiate(doomed.base);
    const initial = envelope((await http(routeUrl(doomed.base, 'connect', n, 'longPolling'), { form: {} })).body);
    const poll = http(routeUrl(doomed.base, 'poll', n, 'longPolling'), { form: { messageId: initial.C } });
    await delay(100);
    await doomed.close();
    const answer = envelope((await poll).body);
    assert.equal(answer.T, 1);
  });
});

describe('streams', () => {
  test('Server-Sent Events: initialized, the init message, messages, keep-alives', async () => {
    const quick = await startClassicServer({ keepAlive: 200, disconnectTimeout: 600 });
    try {
      const n = await negotiate(quick.base);
      const stream = await openStream(routeUrl(quick.base, 'connect', n, 'serverSentEvents', { tid: '3' }));
      assert.equal(stream.response.headers['content-type'], 'text/event-stream');
      await stream.waitFor(/^data: initialized\n\ndata: \{"C":"[^"]+","S":1,"M":\[\]\}\n\n/);
      await send(quick.base, n, 'serverSentEvents', { H: 'TestHub', M: 'toCaller', A: ['over sse'], I: 1 });
      await stream.waitFor(/data: \{"C":"[^"]+","M":\[\{"H":"TestHub","M":"message","A":\["over sse"\]\}\]\}\n\n/);
      await stream.waitFor(/data: \{\}\n\n/, 2000);
      stream.close();
    } finally {
      await quick.close();
    }
  });

  test('foreverFrame: a script page bound to its frame, messages as escaped scripts', async () => {
    const n = await negotiate(server.base);
    const stream = await openStream(routeUrl(server.base, 'connect', n, 'foreverFrame', { frameId: '7' }));
    assert.equal(stream.response.headers['content-type'], 'text/html; charset=UTF-8');
    await stream.waitFor(
      /ff\.getConnection\('7'\)[\s\S]*<\/script><\/head><body>\r\n<script>r\(c, \{"C":"[^"]+","S":1,"M":\[\]\}\);<\/script>/,
    );
    await send(server.base, n, 'foreverFrame', { H: 'TestHub', M: 'toCaller', A: ['</script><b>x</b>'], I: 2 });
    await stream.waitFor(
      /r\(c, \{"C":"[^"]+","M":\[\{"H":"TestHub","M":"message","A":\["\\u003c\/script\\u003e\\u003cb\\u003ex\\u003c\/b\\u003e"\]\}\]\}\);/,
    );
    stream.close();
    const bad = await http(routeUrl(server.base, 'connect', n, 'foreverFrame', { frameId: '7x' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body, 'Protocol error: frameId must be an unsigned integer.');
  });

  test('WebSockets: results on the socket; /reconnect replays what came after the cursor', async () => {
    const n = await negotiate(server.base);
    const first = await openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'webSockets', { tid: '1' })));
    const init = await first.next((f) => f.S === 1);
    await http(routeUrl(server.base, 'start', n, 'webSockets'));
    first.socket.send(JSON.stringify({ H: 'testhub', M: 'add', A: [1, 2], I: 0 }));
    assert.deepEqual(await first.next((f) => f.I !== undefined), { I: '0', R: 3 });
    await first.close();

    const hub = server.hubwire.hub('/test');
    await hub.clients.client(n.ConnectionId).send('message', 'missed 1');
    await hub.clients.client(n.ConnectionId).send('message', 'missed 2');
    const second = await openSocket(
      wsUrl(routeUrl(server.base, 'reconnect', n, 'webSockets', { messageId: init.C as string })),
    );
    const replay = await second.next((f) => Array.isArray(f.M) && f.M.length > 0);
    assert.deepEqual(replay.M, [
      { H: 'TestHub', M: 'message', A: ['missed 1'] },
      { H: 'TestHub', M: 'message', A: ['missed 2'] },
    ]);
    assert.equal(replay.S, undefined, 'no init message on reconnect');
    await second.close();
    // A cursor from elsewhere resumes from now: nothing is replayed twice.
    const third = await openSocket(wsUrl(routeUrl(server.base, 'reconnect', n, 'webSockets', { messageId: 'zz-1' })));
    await hub.clients.client(n.ConnectionId).send('message', 'live');
    const live = await third.next((f) => Array.isArray(f.M) && f.M.length > 0);
    assert.deepEqual(live.M, [{ H: 'TestHub', M: 'message', A: ['live'] }]);
    await third.close();
    await http(routeUrl(server.base, 'abort', n, 'webSockets'), { method: 'POST' });
  });

  test('a dropped WebSocket that does not come back is disconnected after the timeout', async () => {
    const quick = await startClassicServer({ keepAlive: 100, disconnectTimeout: 500 });
    try {
      const n = await negotiate(quick.base);
      const socket = await openSocket(wsUrl(routeUrl(quick.base, 'connect', n, 'webSockets')));
      await socket.next((f) => f.S === 1);
      await http(routeUrl(quick.base, 'start', n, 'webSockets'));
      await socket.next((f) => Object.keys(f).length === 0, 0, 2000); // a keep-alive
      socket.socket.terminate();
      await waitFor(() => quick.observations.disconnected.some((d) => d.id === n.ConnectionId), 4000, 'onDisconnected');
    } finally {
      await quick.close();
    }
  });
});

describe('start', () => {
  test('a throwing onConnected fails /start with 500 (HubError text shown) and ends the connection', async () => {
    const n = await negotiate(server.base, 'refused');
    await http(routeUrl(server.base, 'connect', n, 'longPolling', { user: 'refused' }), { form: {} });
    const start = await http(routeUrl(server.base, 'start', n, 'longPolling', { user: 'refused' }));
    assert.deepEqual([start.status, start.body], [500, 'not today']);
    const again = await http(routeUrl(server.base, 'start', n, 'longPolling', { user: 'refused' }));
    assert.equal(again.status, 400, 'the connection is gone');
    await delay(100);
    assert.ok(
      !server.observations.disconnected.some((d) => d.id === n.ConnectionId),
      'no onDisconnected without onConnected (as ASP.NET Core)',
    );
  });
});

describe('groups token', () => {
  test('a node that never saw the connection restores its groups from the token (same classicKey)', async () => {
    const classicKey = 'a shared key of at least 16 bytes';
    const a = await startClassicServer({ classicKey });
    const b = await startClassicServer({ classicKey });
    try {
      const n = await negotiate(a.base);
      const initial = envelope((await http(routeUrl(a.base, 'connect', n, 'longPolling'), { form: {} })).body);
      await http(routeUrl(a.base, 'start', n, 'longPolling'));
      const poll = http(routeUrl(a.base, 'poll', n, 'longPolling'), { form: { messageId: initial.C } });
      await delay(50);
      await send(a.base, n, 'longPolling', { H: 'TestHub', M: 'joinGroup', A: ['blue'], I: 0 });
      const withToken = envelope((await poll).body);
      assert.ok(withToken.G, 'the poll answer carries the new groups token');

      // The client polls node B (no sticky sessions): B rejoins "blue" from the token.
      const onB = http(routeUrl(b.base, 'poll', n, 'longPolling'), {
        form: { messageId: withToken.C, groupsToken: withToken.G as string },
      });
      await delay(200);
      await b.hubwire.hub('/test').clients.group('blue').send('groupMessage', 'blue', 'on B');
      assert.deepEqual(envelope((await onB).body).M, [{ H: 'TestHub', M: 'groupMessage', A: ['blue', 'on B'] }]);
      await http(routeUrl(a.base, 'abort', n, 'longPolling'), { method: 'POST' });
      await http(routeUrl(b.base, 'abort', n, 'longPolling'), { method: 'POST' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
