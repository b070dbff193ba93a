// The official @microsoft/signalr client against Hubwire over every transport × hub protocol it supports.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { collect, delay, MATRIX, readStream, startClient } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

for (const { transport, protocol } of MATRIX) {
  describe(`${transport} + ${protocol}`, () => {
    const options = { transport, protocol } as const;
    const open: signalR.HubConnection[] = [];
    const connect = async (token?: string) => {
      const client = await startClient(server.url, { ...options, token });
      open.push(client);
      return client;
    };
    after(async () => {
      await Promise.all(open.map((c) => c.stop()));
    });

    test('invoke returns results, including structured values and void', async () => {
      const client = await connect();
      assert.equal(await client.invoke('getTransport'), transport);
      assert.equal(await client.invoke('add', 2, 40), 42);
      const value = { text: 'héllo ✓', n: 1.5, list: [1, null, 'x'], nested: { ok: true } };
      assert.deepEqual(await client.invoke('echo', value), value);
      assert.equal(await client.invoke('noReturn'), undefined, 'void completes without a result');
      assert.equal(await client.invoke('ECHO', 'case-insensitive'), 'case-insensitive');
    });

    test('send (no invocation id) runs the method without a reply', async () => {
      const client = await connect();
      const messages = collect(client, 'message');
      await client.send('toCaller', 'fire-and-forget');
      assert.deepEqual(await messages.waitFor(1), ['fire-and-forget']);
    });

    test('broadcast, caller, others, client(id), allExcept', async () => {
      const a = await connect();
      const b = await connect();
      const aIn = collect(a, 'message');
      const bIn = collect(b, 'message');
      const aId = await a.invoke<string>('getConnectionId');
      const bId = await b.invoke<string>('getConnectionId');
      assert.notEqual(aId, bId);
      await a.invoke('broadcast', 'to-all');
      await a.invoke('toCaller', 'to-caller');
      await a.invoke('toOthers', 'to-others');
      await a.invoke('toClient', bId, 'to-b');
      await a.invoke('toAllExcept', aId, 'except-a');
      await b.invoke('broadcast', 'done');
      await aIn.waitFor(3);
      await bIn.waitFor(5);
      await delay(50);
      assert.deepEqual(aIn.items, ['to-all', 'to-caller', 'done']);
      assert.deepEqual(bIn.items, ['to-all', 'to-others', 'to-b', 'except-a', 'done']);
    });

    test('groups: add, send, groups(), groupExcept, othersInGroup, remove', async () => {
      const group = `g-${transport}-${protocol}`;
      const a = await connect();
      const b = await connect();
      const c = await connect();
      const aIn = collect<[string, string]>(a, 'groupMessage');
      const bIn = collect<[string, string]>(b, 'groupMessage');
      const cIn = collect<[string, string]>(c, 'groupMessage');
      await a.invoke('joinGroup', group);
      await b.invoke('joinGroup', group);
      const aId = await a.invoke<string>('getConnectionId');
      await c.invoke('toGroup', group, 1);
      await c.invoke('toGroupExcept', group, aId, 2);
      await a.invoke('toOthersInGroup', group, 3);
      await c.invoke('toGroups', [group, 'other'], 4);
      await b.invoke('leaveGroup', group);
      await c.invoke('toGroup', group, 5);
      await aIn.waitFor(3);
      await bIn.waitFor(4);
      await delay(50);
      assert.deepEqual(
        aIn.items.map((m) => m[1]),
        [1, 4, 5],
      );
      assert.deepEqual(
        bIn.items.map((m) => m[1]),
        [1, 2, 3, 4],
      );
      assert.deepEqual(cIn.items, []);
    });

    test('users: every connection of a user, users()', async () => {
      const user = `user-${transport}-${protocol}`;
      const a1 = await connect(user);
      const a2 = await connect(user);
      const other = await connect(`${user}-other`);
      const a1In = collect(a1, 'message');
      const a2In = collect(a2, 'message');
      const otherIn = collect(other, 'message');
      assert.equal(await a1.invoke('getUserId'), user);
      await other.invoke('toUser', user, 'for-user');
      await other.invoke('toUsers', [user, `${user}-other`], 'for-users');
      assert.deepEqual(await a1In.waitFor(2), ['for-user', 'for-users']);
      assert.deepEqual(await a2In.waitFor(2), ['for-user', 'for-users']);
      assert.deepEqual(await otherIn.waitFor(1), ['for-users']);
    });

    test('server-to-client streaming, errors and cancellation', async () => {
      const client = await connect();
      assert.deepEqual(await readStream(client.stream('countTo', 5)), [1, 2, 3, 4, 5]);
      await assert.rejects(readStream(client.stream('failingStream')), /stream broke/);
      const before = server.observations.cancelledStreams;
      const received: number[] = [];
      const subscription = client.stream<number>('forever').subscribe({
        next: (i) => {
          received.push(i);
        },
        complete: () => {},
        error: () => {},
      });
      await waitFor(() => received.length >= 3, 5000, 'three stream items');
      subscription.dispose();
      await waitFor(() => server.observations.cancelledStreams !== before, 1000, 'the cancelled stream to stop');
      assert.equal(server.observations.cancelledStreams, before + 1, 'the server stopped the cancelled stream');
      // The connection is still healthy.
      assert.equal(await client.invoke('add', 1, 1), 2);
    });

    test('client-to-server streaming', async () => {
      const client = await connect();
      const numbers = new signalR.Subject<number>();
      const total = client.invoke<number>('sum', numbers);
      for (let i = 1; i <= 20; i++) numbers.next(i);
      numbers.complete();
      assert.equal(await total, 210);
      // Both directions at once.
      const input = new signalR.Subject<number>();
      const doubled = readStream(client.stream<number>('doubleEach', input));
      input.next(1);
      input.next(2);
      input.next(3);
      input.complete();
      assert.deepEqual(await doubled, [2, 4, 6]);
    });

    test('client results: caller and another connection', async () => {
      const a = await connect();
      const b = await connect();
      a.on('answer', (question: string) => `a answers ${question}`);
      b.on('answer', async (question: string) => {
        await delay(10);
        return { from: 'b', question };
      });
      assert.equal(await a.invoke('askCaller', 'q1'), 'a answers q1');
      const bId = await b.invoke<string>('getConnectionId');
      assert.deepEqual(await a.invoke('askClient', bId, 'q2'), { from: 'b', question: 'q2' });
      // A client without a handler answers with an error, which reaches the hub method.
      const c = await connect();
      await assert.rejects(c.invoke('askCaller', 'q3'), /An unexpected error occurred invoking 'askCaller'/);
    });

    test('server errors: HubError text reaches the client, other errors stay generic', async () => {
      const client = await connect();
      await assert.rejects(client.invoke('throwHubError', 'you did something wrong'), {
        message: 'you did something wrong',
      });
      await assert.rejects(client.invoke('throwPlain'), (error: Error) => {
        assert.match(error.message, /An unexpected error occurred invoking 'throwPlain' on the server\./);
        assert.doesNotMatch(error.message, /secret/);
        return true;
      });
      await assert.rejects(client.invoke('doesNotExist'), /Unknown hub method 'doesNotExist'/);
      await assert.rejects(client.invoke('add', 1), /argument/);
      assert.equal(await client.invoke('add', 3, 4), 7, 'the connection survives errors');
    });
  });
}
