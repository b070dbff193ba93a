// Mounting Hubwire in an existing server: Node's http.Server, Express and Fastify, with other routes beside it.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { Hubwire } from 'hubwire';
import { MATRIX, startClient } from '../helpers/clients.js';
import { TestHub } from '../helpers/test-hub.js';

async function exercise(base: string): Promise<void> {
  for (const { transport, protocol } of MATRIX) {
    const client = await startClient(`${base}/hub`, { transport, protocol });
    assert.equal(await client.invoke('getTransport'), transport);
    assert.equal(await client.invoke('add', 20, 22), 42);
    await client.stop();
  }
  // The app's own routes still work.
  const response = await fetch(`${base}/hello`);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'hello from the app');
}

describe('mounting', () => {
  test("Node's http.Server: handleRequest first, attach() for upgrades", async () => {
    const hubwire = new Hubwire();
    hubwire.mapHub('/hub', TestHub);
    const server = createServer((request, response) => {
      if (hubwire.handleRequest(request, response)) return;
      response.end(request.url === '/hello' ? 'hello from the app' : 'other');
    });
    hubwire.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await hubwire.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('Express: middleware() and attach()', async () => {
    const hubwire = new Hubwire();
    hubwire.mapHub('/hub', TestHub);
    const app = express();
    app.use(hubwire.middleware());
    app.get('/hello', (_request, response) => {
      response.send('hello from the app');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    hubwire.attach(server);
    try {
      await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await hubwire.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('Fastify: an onRequest hook and attach(fastify.server)', async () => {
    const hubwire = new Hubwire();
    hubwire.mapHub('/hub', TestHub);
    // The Node client's fetch can leave an unused keep-alive socket open, which Fastify would wait for (72 s).
    const fastify = Fastify({ forceCloseConnections: true });
    fastify.addHook('onRequest', (request, reply, done) => {
      if (hubwire.handleRequest(request.raw, reply.raw)) {
        reply.hijack();
        return;
      }
      done();
    });
    fastify.get('/hello', async () => 'hello from the app');
    hubwire.attach(fastify.server);
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    try {
      await exercise(`http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`);
    } finally {
      await hubwire.close();
      await fastify.close();
    }
  });
});
