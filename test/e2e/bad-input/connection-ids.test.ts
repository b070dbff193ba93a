// Wrong or stolen connection ids over real sockets against a real in-process server: unknown, missing or public ids,
// a second transport stream on a live connection, and a token used by another user.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import {
  assertServerHealthy,
  bearer,
  connUrl,
  HubSocket,
  negotiateToken,
  RawSocket,
  RS,
  request,
  SSE,
  SseStream,
  startLongPolling,
  tokenOf,
  upgradeStatus,
  wsUrl,
} from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('a request for an unknown, missing, public, busy or stolen connection id is refused', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('an unknown id → 404 on WebSocket, SSE, long-poll GET, POST and DELETE', TEST, async () => {
    const id = 'no-such-connection';
    assert.equal(await upgradeStatus(wsUrl(server, id)), 404);
    assert.equal((await request('GET', connUrl(server, id), { headers: SSE })).status, 404);
    assert.equal((await request('GET', connUrl(server, id, '&_=1'))).status, 404);
    assert.equal((await request('POST', connUrl(server, id), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, id))).status, 404);
    await assertServerHealthy(server);
  });

  test('a missing (or empty) id → 400 on GET, POST and DELETE', TEST, async () => {
    for (const query of ['', '?id=', '?other=1']) {
      const url = `${server.url}${query}`;
      assert.equal((await request('GET', url)).status, 400, `long poll ${query}`);
      assert.equal((await request('GET', url, { headers: SSE })).status, 400, `SSE ${query}`);
      assert.equal((await request('POST', url, { body: `{"type":6}${RS}` })).status, 400, `POST ${query}`);
      assert.equal((await request('DELETE', url)).status, 400, `DELETE ${query}`);
    }
    await assertServerHealthy(server);
  });

  test('the public connectionId in place of the connectionToken → 404', TEST, async () => {
    const negotiated = await negotiateToken(server);
    const id = negotiated.connectionId;
    assert.notEqual(id, negotiated.connectionToken);
    assert.equal(await upgradeStatus(wsUrl(server, id)), 404);
    assert.equal((await request('GET', connUrl(server, id), { headers: SSE })).status, 404);
    assert.equal((await request('GET', connUrl(server, id, '&_=1'))).status, 404);
    assert.equal((await request('POST', connUrl(server, id), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, id))).status, 404);
    // Same with a live connection using that id.
    const live = await HubSocket.connect(server);
    try {
      const ownId = (await (async () => {
        live.invoke('id', 'getConnectionId', []);
        return (await live.completion('id')).result;
      })()) as string;
      assert.equal(await upgradeStatus(wsUrl(server, ownId)), 404);
      assert.equal((await request('POST', connUrl(server, ownId), { body: `{"type":6}${RS}` })).status, 404);
      await live.expectUsable();
    } finally {
      live.close();
    }
    await assertServerHealthy(server);
  });

  test('a second WebSocket on a live id → 409; the first keeps working', TEST, async () => {
    const first = await HubSocket.connect(server);
    try {
      assert.equal(await upgradeStatus(wsUrl(server, first.token)), 409);
      await first.expectUsable();
    } finally {
      first.close();
    }
    await assertServerHealthy(server);
  });

  test('a second SSE stream on a live id → 409; the first keeps working', TEST, async () => {
    const token = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, token));
    try {
      assert.equal((await request('GET', connUrl(server, token), { headers: SSE })).status, 409);
      const post = await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` });
      assert.equal(post.status, 200);
      assert.equal(await stream.events.next('SSE handshake reply'), `{}${RS}`);
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  test('long polling or a WebSocket on a connection another transport holds → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      assert.equal((await request('GET', connUrl(server, ws.token, '&_=1'))).status, 400, 'long poll on a WS');
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    const longPolling = await startLongPolling(server);
    assert.equal(await upgradeStatus(wsUrl(server, longPolling)), 400, 'WS on long polling');
    assert.equal((await request('DELETE', connUrl(server, longPolling))).status, 202);

    const sseToken = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, sseToken));
    try {
      assert.equal(await upgradeStatus(wsUrl(server, sseToken)), 400, 'WS on SSE');
      assert.equal((await request('GET', connUrl(server, sseToken, '&_=1'))).status, 400, 'long poll on SSE');
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  // PROTOCOL.md §2: "another transport on the same id → 400" (409 is for a second stream of the same transport).
  test('SSE on a WebSocket connection → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      assert.equal((await request('GET', connUrl(server, ws.token), { headers: SSE })).status, 400);
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    await assertServerHealthy(server);
  });

  test('SSE on a long-polling connection → 400', TEST, async () => {
    const token = await startLongPolling(server);
    try {
      assert.equal((await request('GET', connUrl(server, token), { headers: SSE })).status, 400);
    } finally {
      await request('DELETE', connUrl(server, token));
    }
    await assertServerHealthy(server);
  });

  test('a token negotiated by user A, used by user B (or anonymously) → 403', TEST, async () => {
    const alice = bearer('alice');
    const token = tokenOf(await negotiateToken(server, alice));
    // WebSocket, with the token in the query (browsers) or the header (Node).
    assert.equal(await upgradeStatus(wsUrl(server, token, '&access_token=bob')), 403);
    assert.equal(await upgradeStatus(wsUrl(server, token), bearer('bob')), 403);
    assert.equal(await upgradeStatus(wsUrl(server, token)), 403, 'anonymous');
    assert.equal((await request('GET', connUrl(server, token, '&access_token=bob'), { headers: SSE })).status, 403);
    assert.equal((await request('GET', connUrl(server, token, '&_=1'), { headers: bearer('bob') })).status, 403);
    assert.equal(
      (await request('POST', connUrl(server, token), { headers: bearer('bob'), body: `{"type":6}${RS}` })).status,
      403,
    );
    assert.equal((await request('DELETE', connUrl(server, token), { headers: bearer('bob') })).status, 403);

    // Alice still owns it.
    const raw = await RawSocket.open(wsUrl(server, token, '&access_token=alice'));
    const socket = new HubSocket(raw, 'json', token);
    try {
      raw.send(`{"protocol":"json","version":1}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      socket.invoke('who', 'getUserId', []);
      await socket.expectResult('who', 'alice');
    } finally {
      socket.close();
    }

    // And an anonymous connection cannot be taken by a named user either.
    const anonymous = await startLongPolling(server);
    assert.equal((await request('GET', connUrl(server, anonymous, '&_=2'), { headers: bearer('bob') })).status, 403);
    await request('DELETE', connUrl(server, anonymous));
    await assertServerHealthy(server);
  });
});
