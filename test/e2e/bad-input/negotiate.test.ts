// Bad negotiate requests over real sockets against a real in-process server: the wrong method, a bad or huge
// negotiateVersion, unknown paths, and the stateful-reconnect flag.
// Each case checks the documented status, error or close, and then that the server still serves other clients
// (`assertServerHealthy`: an echo is answered and broadcasts between a JSON and a MessagePack client arrive intact).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { assertServerHealthy, negotiate, request } from '../../helpers/wire-client.js';

/** Per-test bound. */
const TEST = { timeout: 20_000 };

describe('negotiate answers a bad request with the documented status or error', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('GET (or PUT) instead of POST → 405', TEST, async () => {
    assert.equal((await request('GET', `${server.url}/negotiate?negotiateVersion=1`)).status, 405);
    assert.equal((await request('PUT', `${server.url}/negotiate?negotiateVersion=1`)).status, 405);
    await assertServerHealthy(server);
  });

  test('a non-integer negotiateVersion → 200 with {error}', TEST, async () => {
    for (const value of ['abc', '', '-1', '1.5', '1e3', ' 1']) {
      const body = await negotiate(server, `negotiateVersion=${encodeURIComponent(value)}`);
      assert.equal(typeof body.error, 'string', `negotiateVersion='${value}'`);
      assert.deepEqual(Object.keys(body), ['error'], 'no connection is offered');
    }
    const abc = await negotiate(server, 'negotiateVersion=abc');
    assert.match(abc.error as string, /abc/);
    await assertServerHealthy(server);
  });

  test('a version above 1 (even a huge one) is clamped to 1', TEST, async () => {
    for (const value of ['2', '2147483647', '99999999999999999999']) {
      const body = await negotiate(server, `negotiateVersion=${value}`);
      assert.equal(body.error, undefined);
      assert.equal(body.negotiateVersion, 1, `negotiateVersion=${value}`);
      assert.equal(typeof body.connectionToken, 'string');
      assert.notEqual(body.connectionToken, body.connectionId);
    }
    await assertServerHealthy(server);
  });

  test('the v1 reply offers every transport and a token; the v0 reply has no token', TEST, async () => {
    const v1 = await negotiate(server);
    assert.deepEqual(Object.keys(v1).sort(), [
      'availableTransports',
      'connectionId',
      'connectionToken',
      'negotiateVersion',
    ]);
    assert.deepEqual(v1.availableTransports, [
      { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
      { transport: 'ServerSentEvents', transferFormats: ['Text'] },
      { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
    ]);
    const v0 = await negotiate(server, '');
    assert.equal(v0.negotiateVersion, 0);
    assert.equal('connectionToken' in v0, false, 'v0 has no token');
  });

  test('unknown paths → 404', TEST, async () => {
    const base = `http://127.0.0.1:${server.port}`;
    assert.equal((await request('POST', `${base}/nope/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('GET', `${base}/nope?id=x`)).status, 404);
    assert.equal((await request('POST', `${base}/test/extra/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('POST', `${base}/testing/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('GET', `${base}/`)).status, 404);
    await assertServerHealthy(server);
  });

  test('useStatefulReconnect is echoed only when asked, allowed, and v1', TEST, async () => {
    const asked = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=true');
    assert.equal(asked.useStatefulReconnect, true);
    const notAsked = await negotiate(server, 'negotiateVersion=1');
    assert.equal('useStatefulReconnect' in notAsked, false, 'an unasked flag aborts the client');
    const askedFalse = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=false');
    assert.equal('useStatefulReconnect' in askedFalse, false);
    const v0 = await negotiate(server, 'useStatefulReconnect=true');
    assert.equal('useStatefulReconnect' in v0, false, 'v0 has no stateful reconnect');

    const strict = await startTestServer({ allowStatefulReconnects: false });
    try {
      const refused = await negotiate(strict, 'negotiateVersion=1&useStatefulReconnect=true');
      assert.equal(refused.error, undefined);
      assert.equal('useStatefulReconnect' in refused, false, 'not allowed by the server');
      await assertServerHealthy(strict);
    } finally {
      await strict.close();
    }
    await assertServerHealthy(server);
  });
});
