// HTTP requests that do not fit the connection they name, over real sockets against a real in-process server: POSTs
// aborted mid-body, overlapping or oversized, POSTs and DELETEs on a WebSocket connection, and polls after a DELETE.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { delay } from '../../helpers/clients.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { withTimeout } from '../../helpers/wait.js';
import {
  assertServerHealthy,
  connUrl,
  HubSocket,
  RS,
  request,
  startLongPolling,
  WAIT,
} from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('a POST, poll or DELETE that does not fit the connection is refused without wedging it', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxRequestBodySize: 1024 });
  });
  after(() => server.close());

  test('a POST aborted mid-body does not wedge the connection', TEST, async () => {
    const token = await startLongPolling(server);
    const req = http.request(connUrl(server, token), {
      method: 'POST',
      agent: false,
      headers: { 'Content-Length': '500' },
    });
    req.on('error', () => {});
    req.write('{"protocol":"json"');
    await delay(100);
    req.destroy();
    await delay(100);
    // The half-sent body was dropped; the next POST is taken (not 409 for ever) and works.
    const post = await request('POST', connUrl(server, token), {
      body: `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"add","arguments":[2,2]}${RS}`,
    });
    assert.equal(post.status, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.body, `{}${RS}{"type":3,"invocationId":"1","result":4}${RS}`);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });

  test('long polling: DELETE ends a pending poll (204); later polls and POSTs → 404', TEST, async () => {
    const token = await startLongPolling(server);
    const post = await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` });
    assert.equal(post.status, 200);
    const handshake = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(handshake.status, 200);
    assert.equal(handshake.body, `{}${RS}`);

    const pending = request('GET', connUrl(server, token, '&_=3'));
    await delay(100);
    const deleted = await request('DELETE', connUrl(server, token));
    assert.equal(deleted.status, 202);
    assert.equal((await pending).status, 204, 'the pending poll ends with 204');

    assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 404);
    assert.equal((await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, token))).status, 404);
    await assertServerHealthy(server);
  });

  test('POST to a WebSocket connection → 405; DELETE on it → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      const post = await request('POST', connUrl(server, ws.token), {
        body: `{"type":1,"target":"broadcast","arguments":["smuggled"]}${RS}`,
      });
      assert.equal(post.status, 405);
      assert.equal((await request('DELETE', connUrl(server, ws.token))).status, 400);
      // Nothing was smuggled in: the next message on the socket is the echo's completion.
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    await assertServerHealthy(server);
  });

  test('an oversized POST body → 413 (declared or chunked)', TEST, async () => {
    const token = await startLongPolling(server);
    const big = `{"type":1,"target":"echo","arguments":["${'x'.repeat(4096)}"]}${RS}`;
    const declared = await request('POST', connUrl(server, token), { body: big });
    assert.equal(declared.status, 413);

    const chunked = await withTimeout(
      new Promise<number>((resolve, reject) => {
        const req = http.request(connUrl(server, token), { method: 'POST', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 8; i++) req.write('y'.repeat(512));
        req.end();
      }),
      WAIT,
      'chunked POST',
    );
    assert.equal(chunked, 413);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });

  test('overlapping POSTs on one connection → 409', TEST, async () => {
    const token = await startLongPolling(server);
    const body = Buffer.from(
      `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"echo","arguments":["after"]}${RS}`,
    );
    let firstStatus: Promise<number> = Promise.resolve(0);
    const req = http.request(connUrl(server, token), {
      method: 'POST',
      agent: false,
      headers: { 'Content-Length': String(body.length) },
    });
    firstStatus = withTimeout(
      new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      }),
      WAIT,
      'first POST',
    );
    req.write(body.subarray(0, 10));
    await delay(100);
    const second = await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` });
    assert.equal(second.status, 409);
    req.end(body.subarray(10));
    assert.equal(await firstStatus, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.status, 200);
    assert.equal(poll.body, `{}${RS}{"type":3,"invocationId":"1","result":"after"}${RS}`);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });
});
