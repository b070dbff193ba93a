// Bad handshakes over real sockets against a real in-process server: garbage, missing fields, unknown protocols and
// versions, oversize or late handshakes, over WebSockets, Server-Sent Events and long polling.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { delay } from '../../helpers/clients.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { withTimeout } from '../../helpers/wait.js';
import {
  assertServerHealthy,
  connUrl,
  HubSocket,
  type Json,
  negotiateToken,
  RS,
  request,
  SseStream,
  startLongPolling,
  tokenOf,
  WAIT,
} from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('a bad handshake gets an error reply and a clean close', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  /** Sends `payload` as the handshake; expects an error reply (and nothing else), then a clean close. */
  async function refusedHandshake(payload: string | Buffer, pattern: RegExp): Promise<string> {
    const socket = await HubSocket.open(server);
    try {
      if (typeof payload === 'string') socket.raw.send(payload);
      else socket.raw.send(payload, false);
      const frame = await socket.raw.frames.next('handshake reply');
      const text = frame.data.toString('utf8');
      assert.ok(text.endsWith(RS), `the reply ends with a record separator: ${text}`);
      assert.equal(text.indexOf(RS), text.length - 1, 'nothing follows the error reply');
      const reply = JSON.parse(text.slice(0, -1)) as Json;
      assert.deepEqual(Object.keys(reply), ['error']);
      assert.match(reply.error as string, pattern);
      assert.equal((await socket.raw.waitClosed()).code, 1000);
      assert.equal(socket.raw.frames.size, 0, 'nothing after the error reply');
      return text;
    } finally {
      socket.close();
    }
  }

  test('a handshake that is not JSON is refused', TEST, async () => {
    await refusedHandshake(`hello${RS}`, /JSON/);
    await assertServerHealthy(server);
  });

  test('a handshake that is a JSON array, not an object, is refused', TEST, async () => {
    await refusedHandshake(`["json",1]${RS}`, /object/);
    await assertServerHealthy(server);
  });

  test('a handshake without a protocol is refused', TEST, async () => {
    await refusedHandshake(`{"version":1}${RS}`, /protocol/);
    await assertServerHealthy(server);
  });

  test('a handshake without a version is refused', TEST, async () => {
    await refusedHandshake(`{"protocol":"json"}${RS}`, /version/);
    await assertServerHealthy(server);
  });

  test('an unknown protocol name gets the exact error reply, then a close', TEST, async () => {
    const text = await refusedHandshake(`{"protocol":"x","version":1}${RS}`, /not supported/);
    assert.equal(text, `{"error":"The protocol 'x' is not supported."}${RS}`);
    await assertServerHealthy(server);
  });

  test('an unsupported protocol version is refused, naming the version', TEST, async () => {
    await refusedHandshake(`{"protocol":"json","version":3}${RS}`, /version 3/);
    await refusedHandshake(`{"protocol":"messagepack","version":99}${RS}`, /version 99/);
    await assertServerHealthy(server);
  });

  test('a handshake larger than the maximum message size is refused at once (terminated or not)', TEST, async () => {
    const pad = 'x'.repeat(40 * 1024);
    await refusedHandshake(`{"protocol":"json","version":1,"pad":"${pad}"}${RS}`, /maximum message size/);
    // No separator at all: refused at once, not after the 15 s handshake timeout.
    const started = Date.now();
    await refusedHandshake(`{"protocol":"json","version":1,"pad":"${pad}`, /maximum message size/);
    assert.ok(Date.now() - started < 2000);
    await assertServerHealthy(server);
  });

  test('garbage right after a good handshake, in the same frame: {} then a Close with an error', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send(`{"protocol":"json","version":1}${RS}not json${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      await socket.expectClose(/JSON/i);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('a handshake split over several frames, with a message in the last one, works', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send('{"protoc');
      socket.raw.send('ol":"json","vers');
      socket.raw.send(`ion":1}${RS}{"type":1,"invocationId":"1","target":"echo","arguments":["same frame"]}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      await socket.expectResult('1', 'same frame');
    } finally {
      socket.close();
    }
  });

  test('the messagepack protocol over Server-Sent Events is refused', TEST, async () => {
    const token = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, token));
    try {
      const post = await request('POST', connUrl(server, token), {
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        body: `{"protocol":"messagepack","version":1}${RS}`,
      });
      assert.equal(post.status, 200);
      const event = await stream.events.next('SSE handshake reply');
      assert.ok(event.endsWith(RS));
      const reply = JSON.parse(event.slice(0, -1)) as Json;
      assert.deepEqual(Object.keys(reply), ['error']);
      assert.match(reply.error as string, /Binary/);
      await withTimeout(stream.ended, WAIT, 'the SSE stream ends');
      // The connection is gone.
      const again = await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` });
      assert.equal(again.status, 404);
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  test('a garbage handshake over long polling: the error in the next poll, then 204, then 404', TEST, async () => {
    const token = await startLongPolling(server);
    const post = await request('POST', connUrl(server, token), { body: `{"protocol":"x","version":1}${RS}` });
    assert.equal(post.status, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.status, 200);
    assert.equal(poll.body, `{"error":"The protocol 'x' is not supported."}${RS}`);
    assert.equal((await request('GET', connUrl(server, token, '&_=3'))).status, 204, 'the connection is over');
    assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 404, 'and gone');
    await assertServerHealthy(server);
  });

  test('handshake version 2 without negotiated stateful reconnect is accepted', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send(`{"protocol":"json","version":2}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      // No Sequence/Ack bookkeeping: the next message is the echo's completion.
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('no handshake within handshakeTimeout → error reply and close', TEST, async () => {
    const quick = await startTestServer({ handshakeTimeout: 200, timerInterval: 50 });
    try {
      // Nothing at all.
      const silent = await HubSocket.open(quick);
      const started = Date.now();
      const frame = await silent.raw.frames.next('handshake timeout reply');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 150, `not before the timeout (${elapsed} ms)`);
      const text = frame.data.toString('utf8');
      assert.ok(text.endsWith(RS));
      assert.deepEqual(Object.keys(JSON.parse(text.slice(0, -1)) as Json), ['error']);
      assert.match(text, /handshake/i);
      assert.equal((await silent.raw.waitClosed()).code, 1000);
      silent.close();

      // Half a handshake that never completes.
      const partial = await HubSocket.open(quick);
      partial.raw.send('{"protocol":"json",');
      const partialFrame = await partial.raw.frames.next('handshake timeout reply');
      assert.match(partialFrame.data.toString('utf8'), /handshake/i);
      assert.equal((await partial.raw.waitClosed()).code, 1000);
      partial.close();

      // A prompt client on the same server is unaffected, even once the timeout has passed.
      const good = await HubSocket.connect(quick);
      await delay(400);
      await good.expectUsable();
      good.close();
      await assertServerHealthy(quick);
    } finally {
      await quick.close();
    }
  });
});
