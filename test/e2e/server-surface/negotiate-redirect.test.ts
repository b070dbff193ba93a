// negotiateRedirect: negotiate answers with another URL and an access token, and the official client follows it
// over every transport × hub protocol.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { collect, MATRIX } from '../../helpers/clients.js';
import { negotiate } from '../../helpers/http.js';
import { clientPool, type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';

class RedirectHub extends TestHub {}
class RedirectTargetHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire, base) => {
    hubwire.mapHub('/redirect', RedirectHub, {
      negotiateRedirect: (request) => {
        const url = new URL(request.url ?? '/', 'http://localhost');
        if (url.searchParams.get('stay') === '1') return undefined;
        return {
          url: `${base()}/redirect-target?via=redirect`,
          accessToken: `redirected-${url.searchParams.get('who')}`,
        };
      },
    });
    hubwire.mapHub('/redirect-target', RedirectTargetHub, { requireAuthenticatedUser: true });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('negotiateRedirect sends the client to another hub with an access token', () => {
  const connect = clientPool(() => server.base);

  test('negotiate answers {url, accessToken}', T, async () => {
    const response = await negotiate(`${server.base}/redirect?who=raw`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      url: `${server.base}/redirect-target?via=redirect`,
      accessToken: 'redirected-raw',
    });
    const stay = (await (await negotiate(`${server.base}/redirect?stay=1`)).json()) as { connectionId?: string };
    assert.equal(typeof stay.connectionId, 'string', 'undefined from negotiateRedirect negotiates normally');
  });

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: the client follows it to hub B with the token`, T, async () => {
      const client = await connect(`/redirect?who=${transport}-${protocol}`, { transport, protocol });
      assert.equal(await client.invoke('getUserId'), `redirected-${transport}-${protocol}`);
      assert.equal(await client.invoke('whereAmI'), '/redirect-target');
      assert.equal(await client.invoke('getTransport'), transport);
      const id = await client.invoke<string>('getConnectionId');
      const messages = collect(client, 'message');
      await server.hubwire.hub(RedirectTargetHub).clients.client(id).send('message', 'on B');
      assert.deepEqual(await messages.waitFor(1), ['on B']);
      const stayed = await connect('/redirect?stay=1', { transport, protocol });
      assert.equal(await stayed.invoke('whereAmI'), '/redirect');
    });
  }
});
