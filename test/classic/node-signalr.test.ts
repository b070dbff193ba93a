// node-signalr (npm, a SignalR 2 client for Node, WebSockets only) against Hubwire: calls, errors, a group shared
// with a modern client, users, and its way of reconnecting (same token, /connect and /start again).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Client } from 'node-signalr';
import { collect, startClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { type ClassicServer, startClassicServer } from './fixture.js';

let server: ClassicServer;

before(async () => {
  server = await startClassicServer();
});
after(async () => {
  await server?.close();
});

async function connect(user: string): Promise<{ client: Client; messages: unknown[]; groups: string[] }> {
  const client = new Client(`${server.base}/signalr`, ['testHub']);
  client.qs = { user };
  const messages: unknown[] = [];
  const groups: string[] = [];
  client.connection.hub.on('testHub', 'message', (text: unknown) => messages.push(text));
  // node-signalr applies the arguments (its typings declare one).
  const onGroup = (group: string, text: unknown) => groups.push(`${group}:${text}`);
  client.connection.hub.on('TESTHUB', 'GroupMessage', onGroup as unknown as (args: unknown) => void);
  const connected = once(client, 'connected');
  client.start();
  await connected;
  return { client, messages, groups };
}

describe('node-signalr over WebSockets', { timeout: 30_000 }, () => {
  test('calls with results and errors; messages from a modern client in a shared group and by user', async () => {
    const { client, messages, groups } = await connect('carl');
    const modern = await startClient(`${server.base}/test?user=dora`);
    const modernGroup = collect<[string, string]>(modern, 'groupMessage');
    try {
      const hub = client.connection.hub;
      // The first invocation id is 0: it must come back as the string "0" for node-signalr to match it.
      assert.deepEqual(await hub.call('testHub', 'echo', { n: 1 }), { n: 1 });
      assert.equal(await hub.call('testHub', 'add', 20, 22), 42);
      assert.equal(await hub.call('testHub', 'getUserId'), 'carl');
      const id = (await hub.call('testHub', 'getConnectionId')) as string;
      assert.equal(id, client.connection.id);
      await assert.rejects(hub.call('testHub', 'throwHubError', 'nope'), (error) => error === 'nope');
      await assert.rejects(
        hub.call('testHub', 'throwPlain'),
        (error) => error === "There was an error invoking Hub method 'testHub.throwPlain'.",
      );

      await hub.call('testHub', 'joinGroup', 'lobby');
      await modern.invoke('joinGroup', 'lobby');
      await modern.invoke('toGroup', 'lobby', 'hi from modern');
      await waitFor(() => groups.includes('lobby:hi from modern'), 5000, 'the group message');
      await hub.call('testHub', 'toGroup', 'lobby', 'hi from node-signalr');
      await modernGroup.waitFor(2);
      assert.deepEqual(modernGroup.items[1], ['lobby', 'hi from node-signalr']);
      await modern.invoke('toUser', 'carl', 'for carl');
      await waitFor(() => messages.includes('for carl'), 5000, 'the user message');
      assert.ok(server.observations.connected.includes(id), 'onConnected ran');

      client.end();
      await waitFor(() => server.observations.disconnected.some((d) => d.id === id), 5000, 'onDisconnected');
    } finally {
      await modern.stop();
      client.end();
    }
  });

  test('after a dropped socket it reconnects with the same token and keeps working', async () => {
    const { client, messages } = await connect('erin');
    try {
      const id = client.connection.id as string;
      client.reconnectDelayTime = 100;
      // Drop the socket without a close handshake, as a network failure would.
      (client as unknown as { websocket: { terminate(): void } }).websocket.terminate();
      await once(client, 'connected');
      assert.equal(await client.connection.hub.call('testHub', 'getConnectionId'), id);
      await client.connection.hub.call('testHub', 'toCaller', 'still here');
      await waitFor(() => messages.includes('still here'), 5000, 'the message after reconnecting');
      // /start came twice; onConnected ran once.
      assert.equal(server.observations.connected.filter((c) => c === id).length, 1);
    } finally {
      client.end();
    }
  });
});
