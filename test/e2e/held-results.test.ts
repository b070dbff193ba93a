// On a backplane, a send resolves once the node's outbox accepted it; what a client is told stays true: the result
// of a hub call waits until everything the call sent has committed. Official client, one node, the memory store
// with its database switched off and on.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { Backplane, MemoryDatabase, MemoryStore } from 'hubwire';
import { collect, delay, startClient } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe("a call's result waits for what the call sent to be stored", () => {
  const database = new MemoryDatabase();
  let engine: Backplane;
  let server: TestServer;
  const clients: signalR.HubConnection[] = [];

  before(async () => {
    engine = new Backplane(new MemoryStore(database), {
      onError: () => {},
      retryDelay: { min: 5, max: 20 },
      closeTimeout: 100,
    });
    server = await startTestServer({ backplane: engine });
    await server.hubwire.ready();
  });
  after(async () => {
    database.down = false;
    await Promise.all(clients.map((client) => client.stop().catch(() => {})));
    await server.close();
  });

  async function client(): Promise<signalR.HubConnection> {
    const connection = await startClient(server.url);
    clients.push(connection);
    return connection;
  }

  test('while the database is down, results wait; the next calls run meanwhile; results come in call order', async () => {
    const receiver = await client();
    const sender = await client();
    await receiver.invoke('joinGroup', 'held');
    const messages = collect<[string, string]>(receiver, 'groupMessage');
    database.down = true;
    const acceptedBefore = engine.stats().accepted;
    const order: string[] = [];
    const first = sender.invoke('toGroup', 'held', 'one').then(() => order.push('one'));
    const second = sender.invoke('toGroup', 'held', 'two').then(() => order.push('two'));
    const third = sender.invoke('echo', 'three').then(() => order.push('three'));
    // Both sends were made (the second call ran while the first one's result waited), none is answered.
    for (let i = 0; i < 100 && engine.stats().accepted - acceptedBefore < 2; i++) await delay(10);
    assert.equal(engine.stats().accepted - acceptedBefore, 2, 'the second call ran while the first result waited');
    await delay(150);
    assert.deepEqual(order, [], 'no result before the messages are stored');
    assert.deepEqual(messages.items, []);
    database.down = false;
    await Promise.all([first, second, third]);
    assert.deepEqual(order, ['one', 'two', 'three'], 'results in call order, the echo after the held ones');
    assert.deepEqual(await messages.waitFor(2), [
      ['held', 'one'],
      ['held', 'two'],
    ]);
    // With nothing to store, a call answers at once.
    assert.equal(await sender.invoke('echo', 'now'), 'now');
  });

  test('a call whose messages can no longer be stored fails with an error saying so', async () => {
    const sender = await client();
    database.down = true;
    const pending = sender.invoke('toGroup', 'lost', 'never');
    const failed = assert.rejects(pending, /shut down before this call's messages were stored/);
    await delay(50);
    // The backplane closes (closeTimeout 100 ms) with the database still down: the held result gets the error.
    await engine.close();
    await failed;
  });
});
