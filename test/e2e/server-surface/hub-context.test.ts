// Hub code outside a hub: `hubwire.hub(path | class)` finds a hub's context, whose clients, groups and client results
// work from anywhere, with the official @microsoft/signalr client over every transport × hub protocol.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { Hubwire, type HubwireError, type HubwireErrorCode } from 'hubwire';
import { collect, delay, MATRIX, startClient } from '../../helpers/clients.js';
import { clientPool, type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';

// `hubwire.hub(Class)` finds the endpoint of a class, so each path gets its own class.
class AdminHub extends TestHub {}
class SlashHub extends TestHub {}
class ShortResultHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/surface', TestHub);
    hubwire.mapHub('/admin', AdminHub, { authorize: { roles: ['admin'] } });
    hubwire.mapHub('/slash/', SlashHub);
    hubwire.mapHub('/short-result', ShortResultHub, { clientResultTimeout: 300 });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('hubwire.hub(path | class): the context of a hub, outside the hub', () => {
  const connect = clientPool(() => server.base);

  test('hub() finds a hub by path and by class, and refuses an unknown one', T, () => {
    assert.equal(server.hubwire.hub('/surface').path, '/surface');
    assert.equal(server.hubwire.hub(TestHub).path, '/surface');
    assert.equal(server.hubwire.hub(AdminHub).path, '/admin');
    assert.throws(() => server.hubwire.hub('/nope'), /No hub is mapped for '\/nope'/);
  });

  test('hub(path) accepts the path as it was given to mapHub (a trailing slash is normalized there)', T, () => {
    assert.equal(server.hubwire.hub(SlashHub).path, '/slash');
    assert.equal(server.hubwire.hub('/slash').path, '/slash');
    assert.equal(server.hubwire.hub('/slash/').path, '/slash');
  });

  test("the hub's clientResultTimeout applies to invoke() from outside; an abort signal cancels", T, async () => {
    const client = await connect('/short-result', { transport: 'WebSockets' });
    client.on('answer', () => new Promise(() => {}));
    const id = await client.invoke<string>('getConnectionId');
    const clients = server.hubwire.hub(ShortResultHub).clients;
    let started = Date.now();
    await assert.rejects(clients.client(id).invoke('answer'), { code: 'HW_ERR_CLIENT_RESULT_TIMEOUT' });
    assert.ok(Date.now() - started < 2000, `timed out after ${Date.now() - started} ms (clientResultTimeout 300)`);
    started = Date.now();
    await assert.rejects(
      clients.client(id).invokeWithOptions('answer', [], { timeout: 0, signal: AbortSignal.timeout(100) }),
      (error: Error) => error.name === 'TimeoutError' || /abort/i.test(error.message),
    );
    assert.ok(Date.now() - started < 2000);
    assert.equal(await client.invoke('echo', 'fine'), 'fine');
  });

  test(
    'hub(Class) for a class mapped at two paths reaches both (as IHubContext<T>) or refuses to guess',
    T,
    async () => {
      class TwiceHub extends TestHub {}
      const hubwire = new Hubwire({ onError: () => {} });
      hubwire.mapHub('/one', TwiceHub);
      hubwire.mapHub('/two', TwiceHub);
      const base = `http://127.0.0.1:${await hubwire.listen(0)}`;
      const clients: signalR.HubConnection[] = [];
      try {
        clients.push(await startClient(`${base}/one`), await startClient(`${base}/two`));
        const inboxes = clients.map((client) => collect(client, 'message'));
        let context: ReturnType<Hubwire['hub']>;
        try {
          context = hubwire.hub(TwiceHub);
        } catch (error) {
          assert.match((error as Error).message, /path/, 'a clear error that names the ambiguity');
          return;
        }
        await context.clients.all.send('message', 'to every TwiceHub client');
        for (const inbox of inboxes) assert.deepEqual(await inbox.waitFor(1, 2000), ['to every TwiceHub client']);
      } finally {
        await Promise.all(clients.map((client) => client.stop()));
        await hubwire.close();
      }
    },
  );

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: sends, groups, users and client results from outside`, T, async () => {
      const hub = server.hubwire.hub(TestHub);
      const a = await connect('/surface', { transport, protocol, token: `outside-${transport}-${protocol}` });
      const b = await connect('/surface', { transport, protocol });
      const aId = await a.invoke<string>('getConnectionId');
      const bId = await b.invoke<string>('getConnectionId');
      const aIn = collect(a, 'message');
      const bIn = collect(b, 'message');

      await hub.clients.all.send('message', 'to-all');
      await hub.clients.client(bId).send('message', 'to-b');
      await hub.clients.allExcept([bId]).send('message', 'all-but-b');
      await hub.clients.user(`outside-${transport}-${protocol}`).send('message', 'to-user-a');
      const group = `outside-${transport}-${protocol}`;
      await hub.groups.add(aId, group);
      await hub.clients.group(group).send('message', 'to-group');
      await hub.groups.remove(aId, group);
      await hub.clients.group(group).send('message', 'to-empty-group');
      // Through the hub-by-path context too.
      await server.hubwire.hub('/surface').clients.clients([aId, bId]).send('message', 'by-path');

      assert.deepEqual(await aIn.waitFor(5), ['to-all', 'all-but-b', 'to-user-a', 'to-group', 'by-path']);
      assert.deepEqual(await bIn.waitFor(3), ['to-all', 'to-b', 'by-path']);
      await delay(30);
      assert.equal(aIn.items.length, 5, 'nothing after the group was left');

      // Client results.
      a.on('answer', (question: string) => `a answers ${question}`);
      b.on('answer', () => new Promise(() => {})); // never answers
      a.on('fail', () => {
        throw new Error('client-side failure');
      });
      assert.equal(await hub.clients.client(aId).invoke('answer', 'q1'), 'a answers q1');
      assert.equal(
        await hub.clients.client(aId).invokeWithOptions('answer', ['q2'], { timeout: 2000 }),
        'a answers q2',
      );
      await assert.rejects(
        hub.clients.client(bId).invokeWithOptions('answer', ['q3'], { timeout: 200 }),
        (error: HubwireError) => {
          assert.equal(error.code, 'HW_ERR_CLIENT_RESULT_TIMEOUT' satisfies HubwireErrorCode);
          return true;
        },
      );
      await assert.rejects(hub.clients.client(aId).invoke('fail'), (error: HubwireError) => {
        assert.equal(error.code, 'HW_ERR_CLIENT_RESULT');
        assert.match(error.message, /client-side failure/);
        return true;
      });
      await assert.rejects(hub.clients.client('no-such-connection').invoke('answer', 'q4'), {
        code: 'HW_ERR_CONNECTION_NOT_FOUND',
      });
      // Both connections are still healthy.
      assert.equal(await a.invoke('echo', 1), 1);
      assert.equal(await b.invoke('echo', 2), 2);
    });
  }
});
