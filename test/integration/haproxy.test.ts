// The HAProxy harness (test/helpers/haproxy.ts) does what the no-sticky-sessions tests rely on: every request of
// one keep-alive connection is balanced on its own (A, B, A, B, ...), WebSockets pass through, and once a server
// dies requests still succeed on the other one (retried at once, before the health checks notice).

import assert from 'node:assert/strict';
import { Agent, createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket, { type WebSocketServer } from 'ws';
import { type Haproxy, startRoundRobin } from '../helpers/haproxy.js';

interface Backend {
  name: string;
  port: number;
  server: Server;
}

/** An HTTP server answering its name, and a WebSocket server echoing `<name>:<message>`. */
async function startBackend(name: string): Promise<Backend> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end(name);
  });
  // The root `ws` is 7.x: its server is `WebSocket.Server` (no named export at run time).
  const Server = (WebSocket as unknown as { Server: typeof WebSocketServer }).Server;
  const wss = new Server({ server });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`${name}:${data}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { name, port: (server.address() as AddressInfo).port, server };
}

function stopBackend(backend: Backend): Promise<void> {
  return new Promise((resolve) => {
    backend.server.close(() => resolve());
    backend.server.closeAllConnections();
  });
}

/** GET through `agent`; resolves with the body and the client-side port of the socket it went over. */
function fetchName(url: string, agent: Agent): Promise<{ status: number; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent }, (response) => {
      const localPort = response.socket.localPort ?? 0;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, localPort }));
      response.on('error', reject);
    });
    request.setTimeout(5000, () => request.destroy(new Error(`${url}: timed out`)));
    request.on('error', reject);
  });
}

describe('HAProxy round-robin harness', { timeout: 30_000 }, () => {
  let a: Backend;
  let b: Backend;
  let proxy: Haproxy;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  before(async () => {
    a = await startBackend('A');
    b = await startBackend('B');
    proxy = await startRoundRobin({ backends: [a.port, b.port] });
  });
  after(async () => {
    agent.destroy();
    await proxy?.close();
    await Promise.all([a, b].filter(Boolean).map((backend) => stopBackend(backend).catch(() => {})));
  });

  test('every request of one keep-alive connection is balanced on its own', async () => {
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await fetchName(`${proxy.url}/whoami`, agent));
    assert.deepEqual(
      replies.map((r) => r.body),
      ['A', 'B', 'A', 'B', 'A', 'B'],
    );
    assert.equal(new Set(replies.map((r) => r.localPort)).size, 1, 'all six went over one client connection');
    // HAProxy's own log tells the same.
    const deadline = Date.now() + 2000;
    while (proxy.requests.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      proxy.requests.slice(-6).map((r) => [r.server, r.status, r.method, r.uri]),
      [0, 1, 0, 1, 0, 1].map((server) => [server, 200, 'GET', '/whoami']),
    );
  });

  test('a WebSocket goes through the proxy', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/socket`);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const answers: string[] = [];
      const got = new Promise<void>((resolve) =>
        socket.on('message', (data) => {
          answers.push(String(data));
          if (answers.length === 3) resolve();
        }),
      );
      for (const text of ['one', 'two', 'three']) socket.send(text);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        got,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no echo')), 5000))),
      ]);
      clearTimeout(timer);
      // One tunnel: all three answered by the same server.
      const server = answers[0]?.split(':')[0];
      assert.ok(server === 'A' || server === 'B', String(answers));
      assert.deepEqual(
        answers,
        ['one', 'two', 'three'].map((t) => `${server}:${t}`),
      );
    } finally {
      socket.terminate();
    }
  });

  test('after one server dies, requests still succeed on the other', async () => {
    await stopBackend(b);
    // At once (before the health checks notice): a refused connection is retried on A.
    const soon = [];
    for (let i = 0; i < 6; i++) soon.push(await fetchName(`${proxy.url}/whoami`, agent));
    assert.deepEqual(
      soon.map((r) => `${r.status} ${r.body}`),
      Array(6).fill('200 A'),
    );
    // And once the checks have marked it down.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const later = [];
    for (let i = 0; i < 4; i++) later.push(await fetchName(`${proxy.url}/whoami`, agent));
    assert.deepEqual(
      later.map((r) => `${r.status} ${r.body}`),
      Array(4).fill('200 A'),
    );
    assert.match(proxy.stderr, /n1 is DOWN/, 'HAProxy reported the dead server');
  });
});
