// Authentication, authorization, filters, plain-object hubs, several hubs per server, hub context from outside,
// onConnected failures and shutdown — with the official client.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineHub, getAccessToken, Hub, type HubFilter, Hubwire } from 'hubwire';
import { collect, delay, startClient } from '../helpers/clients.js';
import { startTestServer } from '../helpers/server.js';

interface User {
  id: string;
  roles: string[];
}

/** Tokens are `name` or `name:role1,role2`. A token named "bad" fails authentication. */
function authenticate(request: Parameters<typeof getAccessToken>[0]): User | undefined {
  const token = getAccessToken(request);
  if (!token) return undefined;
  if (token === 'bad') throw new Error('invalid token');
  const [id, roles] = token.split(':');
  return { id: id as string, roles: roles ? roles.split(',') : [] };
}

class AdminHub extends Hub {
  whoAmI(): string | undefined {
    return this.context.userIdentifier;
  }
  dangerous(): string {
    return 'done';
  }
}

async function serve(setup: (hubwire: Hubwire) => void): Promise<{ hubwire: Hubwire; base: string }> {
  const hubwire = new Hubwire({ authenticate, onError: () => {} });
  setup(hubwire);
  const port = await hubwire.listen(0);
  return { hubwire, base: `http://127.0.0.1:${port}` };
}

describe('authentication and authorization', () => {
  test('a hub requiring an authenticated user refuses anonymous and failed authentication with 401', async () => {
    const { hubwire, base } = await serve((h) => h.mapHub('/admin', AdminHub, { requireAuthenticatedUser: true }));
    try {
      await assert.rejects(startClient(`${base}/admin`), /401/);
      await assert.rejects(startClient(`${base}/admin`, { token: 'bad' }), /401/);
      for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
        const client = await startClient(`${base}/admin`, { token: 'ada', transport });
        assert.equal(await client.invoke('whoAmI'), 'ada');
        await client.stop();
      }
    } finally {
      await hubwire.close();
    }
  });

  test('per-hub and per-method authorization', async () => {
    const { hubwire, base } = await serve((h) =>
      h.mapHub('/admin', AdminHub, {
        authorize: (user) => (user as User | undefined)?.roles.includes('staff') ?? false,
        methods: { dangerous: { authorize: (user) => (user as User).roles.includes('admin') } },
      }),
    );
    try {
      await assert.rejects(startClient(`${base}/admin`, { token: 'eve' }), /401/);
      const staff = await startClient(`${base}/admin`, { token: 'bob:staff' });
      assert.equal(await staff.invoke('whoAmI'), 'bob');
      await assert.rejects(staff.invoke('dangerous'), /Failed to invoke 'dangerous' because user is unauthorized/);
      const admin = await startClient(`${base}/admin`, { token: 'ada:staff,admin' });
      assert.equal(await admin.invoke('dangerous'), 'done');
      await staff.stop();
      await admin.stop();
    } finally {
      await hubwire.close();
    }
  });

  test('method options for a method the hub does not have are rejected at mapHub', () => {
    const hubwire = new Hubwire();
    assert.throws(
      () => hubwire.mapHub('/x', AdminHub, { methods: { nope: { authorize: () => true } } }),
      /not a method of the hub/,
    );
  });
});

describe('filters, plain-object hubs, several hubs', () => {
  test('filters wrap invocations and lifetime events, outermost first', async () => {
    const log: string[] = [];
    const outer: HubFilter = {
      async invokeMethod(invocation, next) {
        log.push(`outer>${invocation.methodName}`);
        const result = await next(invocation);
        log.push(`outer<${invocation.methodName}`);
        return result;
      },
      async onConnected(context, next) {
        log.push('connected');
        await next(context);
      },
      async onDisconnected(context, error, next) {
        log.push(`disconnected:${error ? 'error' : 'clean'}`);
        await next(context, error);
      },
    };
    const inner: HubFilter = {
      async invokeMethod(invocation, next) {
        log.push(`inner>${invocation.methodName}`);
        // A filter may rewrite arguments and results.
        const result = await next({ ...invocation, arguments: invocation.arguments.map((a) => (a as number) * 10) });
        return (result as number) + 1;
      },
    };
    const server = await startTestServer({ filters: [outer] }, { filters: [inner] });
    try {
      const client = await startClient(server.url);
      assert.equal(await client.invoke('add', 1, 2), 31);
      await client.stop();
      for (let i = 0; i < 50 && !log.includes('disconnected:clean'); i++) await delay(10);
      assert.deepEqual(log, ['connected', 'outer>add', 'inner>add', 'outer<add', 'disconnected:clean']);
    } finally {
      await server.close();
    }
  });

  test('a plain-object hub and a class hub on different paths of one server are independent', async () => {
    const counter = defineHub<{ count(n: number): void }>()({
      bump(n: number) {
        return this.clients.all.count(n);
      },
    });
    const { hubwire, base } = await serve((h) => {
      h.mapHub('/counter', counter);
      h.mapHub('/admin', AdminHub);
    });
    try {
      const a = await startClient(`${base}/counter`);
      const b = await startClient(`${base}/admin`, { token: 'zed' });
      const counts = collect<number>(a, 'count');
      const adminCounts = collect<number>(b, 'count');
      await a.invoke('bump', 7);
      assert.deepEqual(await counts.waitFor(1), [7]);
      await assert.rejects(b.invoke('bump', 1), /Unknown hub method 'bump'/);
      await delay(50);
      assert.deepEqual(adminCounts.items, []);
      await a.stop();
      await b.stop();
    } finally {
      await hubwire.close();
    }
  });

  test('hub context outside hub code: sends, groups and client results', { timeout: 10_000 }, async () => {
    const server = await startTestServer();
    try {
      const context = server.hubwire.hub('/test');
      const client = await startClient(server.url);
      const id = await client.invoke<string>('getConnectionId');
      const messages = collect(client, 'message');
      const groupMessages = collect<[string, string]>(client, 'groupMessage');
      client.on('answer', (q: string) => `outside asked ${q}`);
      await context.clients.all.send('message', 'from a timer');
      await context.groups.add(id, 'outside');
      await context.clients.group('outside').send('groupMessage', 'outside', 'hello group');
      assert.equal(await context.clients.client(id).invoke('answer', 'q'), 'outside asked q');
      assert.deepEqual(await messages.waitFor(1), ['from a timer']);
      assert.deepEqual(await groupMessages.waitFor(1), [['outside', 'hello group']]);
      await assert.rejects(context.clients.client('no-such-id').invoke('answer', 'q'), /does not exist/);
      await client.stop();
      await assert.rejects(context.clients.client(id).invoke('answer', 'q'), /does not exist|disconnected/);
    } finally {
      await server.close();
    }
  });
});

describe('lifetime errors and shutdown', () => {
  test('a pending client result rejects when its connection ends', async () => {
    const server = await startTestServer();
    try {
      const client = await startClient(server.url);
      const id = await client.invoke<string>('getConnectionId');
      client.on('answer', () => new Promise(() => {})); // never answers
      const pending = server.hubwire.hub('/test').clients.client(id).invoke('answer', 'q');
      await delay(50);
      await client.stop();
      await assert.rejects(pending, { code: 'HW_ERR_CONNECTION_CLOSED' });
    } finally {
      await server.close();
    }
  });

  test('a hub whose onConnected throws closes the connection with a clear error', async () => {
    class Failing extends Hub {
      override onConnected(): void {
        throw new Error('no database');
      }
      ping(): string {
        return 'pong';
      }
    }
    const { hubwire, base } = await serve((h) => h.mapHub('/failing', Failing));
    try {
      const client = await startClient(`${base}/failing`).catch((error: Error) => error);
      if (client instanceof Error) {
        assert.match(client.message, /Connection closed with an error/);
      } else {
        const closed = await new Promise<Error | undefined>((resolve) => client.onclose(resolve));
        assert.match(String(closed), /Connection closed with an error/);
      }
    } finally {
      await hubwire.close();
    }
  });

  test('server shutdown tells clients they may reconnect', async () => {
    const server = await startTestServer();
    const client = await startClient(server.url, { automaticReconnect: [100_000] });
    const reconnecting = new Promise<void>((resolve) => client.onreconnecting(() => resolve()));
    await server.close();
    await reconnecting;
    await client.stop();
  });
});
