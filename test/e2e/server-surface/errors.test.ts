// Errors in hub code: from a method, onConnected or the hub's constructor, they reach onError; the client sees a
// HubError's message, other errors only with detailed errors, and a connection refused at connect closes clearly.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Hubwire } from 'hubwire';
import { delay, MATRIX } from '../../helpers/clients.js';
import { clientPool, closeErrorOf, type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import {
  HubErrorConstructorHub,
  HubErrorOnConnectedHub,
  TestHub,
  ThrowingConstructorConnectedHub,
  ThrowingConstructorHub,
  ThrowingOnConnectedHub,
} from '../../helpers/test-hub.js';
import { waitFor } from '../../helpers/wait.js';

class DetailedHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/surface', TestHub);
    hubwire.mapHub('/detailed', DetailedHub, { enableDetailedErrors: true });
    hubwire.mapHub('/broken-ctor', ThrowingConstructorHub);
    hubwire.mapHub('/broken-ctor-detailed', ThrowingConstructorHub, { enableDetailedErrors: true });
    hubwire.mapHub('/broken-ctor-connected', ThrowingConstructorConnectedHub);
    hubwire.mapHub('/hub-error-ctor', HubErrorConstructorHub);
    hubwire.mapHub('/broken-connected', ThrowingOnConnectedHub);
    hubwire.mapHub('/broken-connected-detailed', ThrowingOnConnectedHub, { enableDetailedErrors: true });
    hubwire.mapHub('/hub-error-connected', HubErrorOnConnectedHub);
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('an error in hub code reaches onError; the client sees only what it may', () => {
  const connect = clientPool(() => server.base);

  test(
    'an exception from onConnected (or the hub constructor at connect) reaches onError: the client only sees a generic text',
    T,
    async () => {
      const errors: { error: unknown; where: string }[] = [];
      const hubwire = new Hubwire({ onError: (error, where) => errors.push({ error, where }) });
      hubwire.mapHub('/refusing', ThrowingOnConnectedHub);
      const base = `http://127.0.0.1:${await hubwire.listen(0)}`;
      try {
        const error = await closeErrorOf(`${base}/refusing`, { transport: 'WebSockets' });
        assert.match(String(error), /Connection closed with an error\./);
        await waitFor(() => errors.length > 0, 2000, 'the error to be reported');
        assert.match(String(errors[0]?.error), /onConnected failed: secret detail/);
      } finally {
        await hubwire.close();
      }
    },
  );

  test('a connection whose onConnected threw never gets onDisconnected (as in ASP.NET Core)', T, async () => {
    const calls: string[] = [];
    class Refusing extends TestHub {
      override onConnected(): void {
        calls.push('onConnected');
        throw new Error('refused');
      }
      override onDisconnected(): void {
        calls.push('onDisconnected');
      }
    }
    const hubwire = new Hubwire({ onError: () => {} });
    hubwire.mapHub('/refusing', Refusing);
    const base = `http://127.0.0.1:${await hubwire.listen(0)}`;
    try {
      for (const { transport, protocol } of MATRIX) {
        const error = await closeErrorOf(`${base}/refusing`, { transport, protocol });
        assert.match(String(error), /Connection closed with an error\./);
      }
      await delay(200);
      assert.deepEqual(
        calls,
        MATRIX.map(() => 'onConnected'),
      );
    } finally {
      await hubwire.close();
    }
  });

  for (const { transport, protocol } of MATRIX) {
    const options = { transport, protocol } as const;

    test(
      `${transport} + ${protocol}: HubError always reaches the client; other errors only when detailed`,
      T,
      async () => {
        const plain = await connect('/surface', options);
        await assert.rejects(plain.invoke('throwHubError', 'you did something wrong'), /you did something wrong/);
        await assert.rejects(plain.invoke('throwPlain'), (error: Error) => {
          assert.equal(error.message, "An unexpected error occurred invoking 'throwPlain' on the server.");
          return true;
        });
        const detailed = await connect('/detailed', options);
        await assert.rejects(detailed.invoke('throwHubError', 'shown'), /shown/);
        await assert.rejects(detailed.invoke('throwPlain'), (error: Error) => {
          assert.match(error.message, /An unexpected error occurred invoking 'throwPlain' on the server\./);
          assert.match(error.message, /secret internal detail/);
          return true;
        });
      },
    );

    test(`${transport} + ${protocol}: onConnected throws → the connection closes with a clear error`, T, async () => {
      const generic = await closeErrorOf(`${server.base}/broken-connected`, options);
      assert.match(String(generic), /Connection closed with an error\./);
      assert.doesNotMatch(String(generic), /secret detail/);
      const detailed = await closeErrorOf(`${server.base}/broken-connected-detailed`, options);
      assert.match(String(detailed), /Connection closed with an error\..*onConnected failed: secret detail/);
      const hubError = await closeErrorOf(`${server.base}/hub-error-connected`, options);
      assert.match(String(hubError), /you may not connect today/);
    });

    test(
      `${transport} + ${protocol}: a hub whose constructor throws (with onConnected) → closed with a clear error`,
      T,
      async () => {
        const error = await closeErrorOf(`${server.base}/broken-ctor-connected`, options);
        assert.match(String(error), /Connection closed with an error\./);
        assert.doesNotMatch(String(error), /missing dependency/);
      },
    );

    test(
      `${transport} + ${protocol}: a hub whose constructor throws (no onConnected) → closed with a clear error`,
      T,
      async () => {
        // As ASP.NET Core, which creates the hub at connect: the connection closes at once with a clear error,
        // the cause named only with detailed errors; a HubError's message is shown.
        const generic = await closeErrorOf(`${server.base}/broken-ctor`, options);
        assert.match(String(generic), /Connection closed with an error\./);
        assert.doesNotMatch(String(generic), /missing dependency/);
        const detailed = await closeErrorOf(`${server.base}/broken-ctor-detailed`, options);
        assert.match(String(detailed), /constructor failed: missing dependency/);
        const hubError = await closeErrorOf(`${server.base}/hub-error-ctor`, options);
        assert.match(String(hubError), /the hub is not available right now/);
      },
    );
  }
});
