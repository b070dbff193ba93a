// Hub code reads the connection's HTTP requests (context.request, context.negotiateRequest, context.transport), with
// the official @microsoft/signalr client over every transport × hub protocol.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { MATRIX } from '../../helpers/clients.js';
import { clientPool, type SurfaceServer, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/surface', TestHub);
  });
});
after(async () => {
  await server.hubwire.close();
});

describe("the connection's HTTP requests in hub code (context.request / negotiateRequest / transport)", () => {
  const connect = clientPool(() => server.base);
  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}`, T, async () => {
      const client = await connect('/surface?q=hello%20world', {
        transport,
        protocol,
        configure: (builder) =>
          builder.withUrl(`${server.base}/surface?q=hello%20world`, {
            transport: signalR.HttpTransportType[transport],
            headers: { 'X-Test': `header-${transport}`, Cookie: 'session=a%20b%3Bc; other="quoted"' },
          }),
      });
      const info = await client.invoke('requestInfo');
      const common = {
        q: 'hello world',
        header: `header-${transport}`,
        session: 'a b;c',
        other: 'quoted',
        remoteAddress: '127.0.0.1',
        remotePortType: 'number',
      };
      assert.deepEqual(info, {
        transport,
        request: { ...common, method: 'GET', path: '/surface', hasId: true },
        negotiate: { ...common, method: 'POST', path: '/surface/negotiate', hasId: false },
        onConnected: { header: `header-${transport}`, transport },
      });
    });
  }

  test('WebSockets with skipNegotiation: no negotiate request, the upgrade request is there', T, async () => {
    const client = await connect('/surface', {
      configure: (builder) =>
        builder.withUrl(`${server.base}/surface?q=direct`, {
          transport: signalR.HttpTransportType.WebSockets,
          skipNegotiation: true,
          headers: { 'X-Test': 'skipped' },
        }),
    });
    const info = (await client.invoke('requestInfo')) as { request: { q: string; header: string }; negotiate: null };
    assert.equal(info.negotiate, null);
    assert.equal(info.request.q, 'direct');
    assert.equal(info.request.header, 'skipped');
  });
});
