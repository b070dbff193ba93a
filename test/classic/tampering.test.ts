// Bad input on the classic endpoint: each gets its documented status and a clear error (docs/classic.md),
// never a crash, and a well-behaved client on the same server keeps working throughout.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ClassicServer, HUBS, http, type Negotiated, negotiate, routeUrl, startClassicServer } from './fixture.js';
import { openSocket, wsUrl } from './wire.js';

let server: ClassicServer;
/** A connection that must keep working while the others misbehave. */
let good: Negotiated;

before(async () => {
  server = await startClassicServer({ maxIncomingMessageSize: 8192 });
  good = await negotiate(server.base, 'gina');
  await http(routeUrl(server.base, 'connect', good, 'longPolling', { user: 'gina' }), { form: {} });
});
after(async () => {
  await server?.close();
});

async function stillWorks(): Promise<void> {
  const response = await http(routeUrl(server.base, 'send', good, 'longPolling', { user: 'gina' }), {
    form: { data: JSON.stringify({ H: 'TestHub', M: 'add', A: [40, 2], I: 9 }) },
  });
  assert.deepEqual(JSON.parse(response.body), { I: '9', R: 42 });
}

function sendData(n: Negotiated, data: string, extra: Record<string, string> = {}) {
  return http(routeUrl(server.base, 'send', n, 'serverSentEvents', extra), { form: { data } });
}

describe('the classic endpoint refuses bad input', () => {
  test('malformed data: not JSON, not an object, no id, no data field → 400 with the reason', async () => {
    const n = await negotiate(server.base);
    for (const [data, reason] of [
      ['{"H":"TestHub",', 'Protocol error: the hub invocation is not valid JSON.'],
      ['[1,2]', 'Protocol error: a hub invocation must be a JSON object.'],
      ['{"H":"TestHub","M":"add","A":[1,2]}', 'Protocol error: the hub invocation needs an id (I).'],
    ] as const) {
      const response = await sendData(n, data);
      assert.equal(response.status, 400, data);
      assert.equal(response.body, reason);
    }
    const empty = await http(routeUrl(server.base, 'send', n, 'serverSentEvents'), { form: { other: 'x' } });
    assert.deepEqual([empty.status, empty.body], [400, "Protocol error: the body has no 'data' field."]);
    await stillWorks();
  });

  test('with an id, bad invocations are answered as errors the client can match', async () => {
    const n = await negotiate(server.base);
    const cases: [object, string][] = [
      [{ H: 'NoSuchHub', M: 'x', A: [], I: 1 }, "'NoSuchHub' Hub could not be resolved."],
      [{ H: 'TestHub', M: 'noSuchMethod', A: [], I: 2 }, "Unknown hub method 'noSuchMethod'."],
      [
        { H: 'TestHub', M: 'add', A: [1, 2, 3], I: 3 },
        "Failed to invoke 'add': invocation provides 3 argument(s) but target expects 2.",
      ],
      [{ H: 'TestHub', A: [], I: 4 }, 'Protocol error: the hub invocation needs a method name (M).'],
      [{ H: 'TestHub', M: 'add', A: 'x', I: 5 }, 'Protocol error: the arguments (A) must be an array.'],
      [
        { H: 'TestHub', M: 'echo', A: [1], I: 6, S: { big: 'x'.repeat(5000) } },
        'The state of the hub proxy exceeds 4096 characters.',
      ],
      [{ H: 'TestHub', M: 'onConnected', A: [], I: 7 }, "Unknown hub method 'onConnected'."],
    ];
    for (const [invocation, error] of cases) {
      const response = await sendData(n, JSON.stringify(invocation));
      assert.equal(response.status, 200);
      assert.deepEqual(JSON.parse(response.body), { I: String((invocation as { I: number }).I), E: error });
    }
    await stillWorks();
  });

  test('tokens: missing, forged, a connection id instead, a groups token instead, another user’s → 400/403', async () => {
    const n = await negotiate(server.base, 'hank');
    const url = (token: string | undefined, user = 'hank') => {
      const query = new URLSearchParams({
        transport: 'longPolling',
        clientProtocol: '2.1',
        connectionData: HUBS,
        user,
      });
      if (token !== undefined) query.set('connectionToken', token);
      return `${server.base}/signalr/connect?${query}`;
    };
    const missing = await http(url(undefined), { form: {} });
    assert.deepEqual([missing.status, missing.body], [400, 'Protocol error: Missing connection token.']);
    const forged = n.ConnectionToken.replace(/.(?=.{5}$)/, (c) => (c === 'A' ? 'B' : 'A'));
    const trailingBits = n.ConnectionToken.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    for (const token of [forged, trailingBits, n.ConnectionId, 'garbage', `${n.ConnectionToken}.x`]) {
      const response = await http(url(token), { form: {} });
      assert.deepEqual([response.status, response.body], [400, 'The ConnectionId is in the incorrect format.'], token);
    }
    // A groups token is protected under another purpose: it never passes as a connection token.
    const initial = JSON.parse((await http(url(n.ConnectionToken), { form: {} })).body);
    const joined = http(routeUrl(server.base, 'poll', n, 'longPolling', { user: 'hank' }), {
      form: { messageId: initial.C },
    });
    await http(routeUrl(server.base, 'send', n, 'longPolling', { user: 'hank' }), {
      form: { data: JSON.stringify({ H: 'TestHub', M: 'joinGroup', A: ['g'], I: 0 }) },
    });
    const groupsToken = JSON.parse((await joined).body).G as string;
    assert.ok(groupsToken);
    const swapped = await http(url(groupsToken), { form: {} });
    assert.deepEqual([swapped.status, swapped.body], [400, 'The ConnectionId is in the incorrect format.']);
    // Another user (or none) with hank's token.
    for (const user of ['ivan', '']) {
      const response = await http(url(n.ConnectionToken, user), { form: {} });
      assert.equal(response.status, 403);
      assert.match(response.body, /^Unrecognized user identity/);
    }
    await stillWorks();
  });

  test("another connection's groups token silently yields no groups", async () => {
    const owner = await negotiate(server.base);
    const ownerInit = JSON.parse(
      (await http(routeUrl(server.base, 'connect', owner, 'longPolling'), { form: {} })).body,
    );
    const poll = http(routeUrl(server.base, 'poll', owner, 'longPolling'), { form: { messageId: ownerInit.C } });
    await http(routeUrl(server.base, 'send', owner, 'longPolling'), {
      form: { data: JSON.stringify({ H: 'TestHub', M: 'joinGroup', A: ['secret'], I: 0 }) },
    });
    const stolen = JSON.parse((await poll).body).G as string;

    const thief = await negotiate(server.base);
    const thiefInit = JSON.parse(
      (await http(routeUrl(server.base, 'connect', thief, 'longPolling'), { form: { groupsToken: stolen } })).body,
    );
    const thiefPoll = http(routeUrl(server.base, 'poll', thief, 'longPolling'), {
      form: { messageId: thiefInit.C, groupsToken: stolen },
    });
    await server.hubwire.hub('/test').clients.group('secret').send('groupMessage', 'secret', 'psst');
    await server.hubwire.hub('/test').clients.client(thief.ConnectionId).send('message', 'barrier');
    assert.deepEqual(JSON.parse((await thiefPoll).body).M, [{ H: 'TestHub', M: 'message', A: ['barrier'] }]);
    await stillWorks();
  });

  test('transports: unknown or missing → 400; webSockets without an upgrade → 400; /poll off long polling → 400', async () => {
    const n = await negotiate(server.base);
    for (const transport of ['carrierPigeon', '']) {
      const response = await http(routeUrl(server.base, 'connect', n, transport), { form: {} });
      assert.deepEqual([response.status, response.body], [400, 'Protocol error: Unknown transport.'], transport);
    }
    const noUpgrade = await http(routeUrl(server.base, 'connect', n, 'webSockets'));
    assert.deepEqual([noUpgrade.status, noUpgrade.body], [400, 'Not a valid web socket request.']);
    const poll = await http(routeUrl(server.base, 'poll', n, 'serverSentEvents'), { form: {} });
    assert.equal(poll.status, 400);
    await assert.rejects(openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'longPolling'))), { status: 400 });
    await assert.rejects(openSocket(wsUrl(routeUrl(server.base, 'start', n, 'webSockets'))), { status: 400 });
    await stillWorks();
  });

  test('connectionData: unknown hub, malformed, duplicates → 400', async () => {
    for (const [data, reason] of <[string, string][]>[
      ['[{"name":"nosuchhub"}]', "'nosuchhub' Hub could not be resolved."],
      ['[{"name":', 'Protocol error: connectionData is not valid JSON.'],
      ['{"name":"testhub"}', 'Protocol error: connectionData must be an array.'],
      ['[{"name":"testhub"},{"name":"TestHub"}]', "Duplicate hub names found ('TestHub')."],
    ]) {
      const response = await http(
        `${server.base}/signalr/negotiate?clientProtocol=2.1&connectionData=${encodeURIComponent(data)}`,
      );
      assert.deepEqual([response.status, response.body], [400, reason], data);
    }
    await stillWorks();
  });

  test('JSONP (callback) → 403, on negotiate and on any other route', async () => {
    const n = await negotiate(server.base);
    const negotiateJsonp = await http(`${server.base}/signalr/negotiate?clientProtocol=2.1&callback=steal`);
    assert.equal(negotiateJsonp.status, 403);
    const sendJsonp = await http(routeUrl(server.base, 'send', n, 'longPolling', { callback: 'steal' }), {
      form: { data: '{}' },
    });
    assert.deepEqual([sendJsonp.status, sendJsonp.body], [403, 'Forbidden: JSONP requests are not enabled.']);
  });

  test('oversized bodies → 413; an oversized WebSocket message closes that socket (1009) only', async () => {
    const n = await negotiate(server.base);
    const big = JSON.stringify({ H: 'TestHub', M: 'echo', A: ['x'.repeat(20_000)], I: 0 });
    const response = await sendData(n, big);
    assert.deepEqual(
      [response.status, response.body],
      [413, 'The request body exceeds the maximum size of 8192 bytes.'],
    );
    const socket = await openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'webSockets')));
    const closed = new Promise<number>((resolve) => socket.socket.once('close', (code: number) => resolve(code)));
    socket.socket.send(big);
    assert.equal(await closed, 1009);
    await stillWorks();
  });

  test('malformed WebSocket frames are answered or dropped; the socket keeps working', async () => {
    const n = await negotiate(server.base);
    const socket = await openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'webSockets')));
    socket.socket.send('not json');
    socket.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    socket.socket.send(JSON.stringify({ H: 'TestHub', M: 'nope', I: 1 }));
    socket.socket.send(JSON.stringify({ H: 'TestHub', M: 'add', A: [1, 1], I: 2 }));
    assert.deepEqual(await socket.next((f) => f.I === '1'), { I: '1', E: "Unknown hub method 'nope'." });
    assert.deepEqual(await socket.next((f) => f.I === '2'), { I: '2', R: 2 });
    await socket.close();
  });

  test('unknown routes under the base path → 404; requests for an aborted connection → 400', async () => {
    assert.equal((await http(`${server.base}/signalr/nothing-here`)).status, 404);
    const n = await negotiate(server.base);
    await http(routeUrl(server.base, 'connect', n, 'longPolling'), { form: {} });
    await http(routeUrl(server.base, 'abort', n, 'longPolling'), { method: 'POST' });
    const start = await http(routeUrl(server.base, 'start', n, 'longPolling'));
    assert.deepEqual([start.status, start.body], [400, 'The connection has ended.']);
    const poll = await http(routeUrl(server.base, 'poll', n, 'longPolling'), { form: {} });
    assert.deepEqual(JSON.parse(poll.body), { C: '', E: 'The connection has ended.', M: [] });
    await stillWorks();
  });
});
