// Details where Hubwire answered differently from ASP.NET Core SignalR (issue 12): the close code answered to a
// client that closes without one, case-insensitive hub paths, and an upload stream's error reaching the caller.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import WebSocket from 'ws';
import { startClient } from '../helpers/clients.js';
import { negotiate } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/wait.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  server.hubwire.mapClassicHubs('/signalr', { TestHub: '/test' });
});
after(async () => {
  await server.close();
});

describe('protocol details', () => {
  test('a WebSocket client that closes without a status code is answered with 1000, not 1005', async () => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send('{"protocol":"json","version":1}\x1e');
    await new Promise((resolve) => socket.once('message', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.close(); // no code: an empty close frame
    assert.equal(await withTimeout(closed, 5000, 'the close'), 1000);
  });

  test('hub paths match case-insensitively (negotiate, transports, classic routes)', async () => {
    const upper = server.url.replace('/test', '/TEST');
    assert.equal((await negotiate(upper)).status, 200);
    const client = await startClient(upper, { transport: 'LongPolling' });
    assert.equal(await client.invoke('echo', 'loud'), 'loud');
    await client.stop();
    const classic = await fetch(
      `${server.url.replace('/test', '/SignalR/Negotiate')}?clientProtocol=2.1&connectionData=${encodeURIComponent('[{"name":"testhub"}]')}`,
    );
    assert.equal(classic.status, 200);
    assert.equal((await fetch(`${server.url.replace('/test', '/signalr/constructor')}`)).status, 404);
  });

  test("an upload stream the client ends with an error gives the caller the client's text", async () => {
    const client = await startClient(server.url);
    const subject = new signalR.Subject<number>();
    const result = client.invoke('sum', subject);
    subject.next(1);
    subject.error(new Error('Something bad'));
    await assert.rejects(result, /Something bad/);
    await client.stop();
  });
});
