// A classic client that stops reading its stream (issue 12): past maxQueuedBytes the stream is dropped (not the
// connection); the client reconnects with its cursor and the connection goes on. Raw WebSocket and SSE clients.

import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { delay, waitFor } from '../helpers/wait.js';
import { type ClassicServer, http, negotiate, routeUrl, startClassicServer } from './fixture.js';
import { openSocket, wsUrl } from './wire.js';

const MAX_QUEUED = 128 * 1024;
const TEXT = 'z'.repeat(1000);

let server: ClassicServer;
before(async () => {
  server = await startClassicServer({ maxQueuedBytes: MAX_QUEUED });
});
after(async () => {
  await server?.close();
});

/** Broadcasts 1 KB messages (awaiting each) until `stop()` or `max` messages; resolves with how many. */
async function flood(stop: () => boolean, max = 40_000): Promise<number> {
  const hub = server.hubwire.hub('/test');
  let sent = 0;
  for (; sent < max && !stop(); sent++) {
    await hub.clients.all.send('message', TEXT);
    if (sent % 200 === 0) await delay(0);
  }
  return sent;
}

describe('classic clients that stop reading', () => {
  test('WebSockets: the stream is dropped, the client reconnects with its cursor, the connection goes on', async () => {
    const n = await negotiate(server.base);
    const socket = await openSocket(wsUrl(routeUrl(server.base, 'connect', n, 'webSockets', { tid: '1' })));
    const init = await socket.next((f) => f.S === 1);
    assert.equal((await http(routeUrl(server.base, 'start', n, 'webSockets'))).status, 200);
    let code: number | undefined;
    socket.socket.once('close', (closeCode) => {
      code = closeCode;
    });
    const raw = (socket.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    const sent = await flood(() => false, 30_000);
    raw.resume();
    await waitFor(() => code !== undefined, 10_000, 'the dropped stream seen by the client');
    assert.notEqual(code, 1000, 'dropped, not closed cleanly');
    const received = socket.frames.filter((f) => f.includes('"message"')).length;
    assert.ok(received < sent, `the client did not get everything on the dropped stream (${received} of ${sent})`);
    assert.equal(
      server.observations.disconnected.some((d) => d.id === n.ConnectionId),
      false,
      'still connected',
    );
    // Its cursor: the last envelope it got (or the init one).
    const last = [...socket.frames].reverse().find((f) => f.startsWith('{"C":'));
    const cursor = (JSON.parse(last ?? JSON.stringify(init)) as { C: string }).C;
    const again = await openSocket(wsUrl(routeUrl(server.base, 'reconnect', n, 'webSockets', { messageId: cursor })));
    again.socket.send(JSON.stringify({ H: 'testhub', M: 'add', A: [2, 3], I: 7 }));
    assert.deepEqual(await again.next((f) => f.I !== undefined), { I: '7', R: 5 });
    await again.close();
    await http(routeUrl(server.base, 'abort', n, 'webSockets'), { method: 'POST' });
  });

  test('Server-Sent Events: the stream of a client that stops reading is dropped', async () => {
    const n = await negotiate(server.base);
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      get(routeUrl(server.base, 'connect', n, 'serverSentEvents'), resolve).on('error', reject);
    });
    let text = '';
    let ended = false;
    response.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    response.on('close', () => {
      ended = true;
    });
    response.on('error', () => {
      ended = true;
    });
    await waitFor(() => text.includes('"S":1'), 5000, 'the init message');
    assert.equal((await http(routeUrl(server.base, 'start', n, 'serverSentEvents'))).status, 200);
    response.pause();
    await flood(() => false, 30_000);
    response.resume();
    await waitFor(() => ended, 10_000, 'the dropped event stream');
    assert.equal(
      server.observations.disconnected.some((d) => d.id === n.ConnectionId),
      false,
      'still connected',
    );
    await http(routeUrl(server.base, 'abort', n, 'serverSentEvents'), { method: 'POST' });
  });
});
