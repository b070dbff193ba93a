// Slow, greedy and hostile clients (issue 12): what a client does not read is bounded (a broadcast closes a slow
// client, a stream and a send to one connection wait for it), a long-polling client that stops polling is dropped
// even if it keeps sending, and one client's flood of work is served a slice per event-loop turn. Real sockets:
// raw `ws` clients where a client must misbehave, the official client where it must behave.

import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { Hub, Hubwire } from 'hubwire';
import WebSocket from 'ws';
import { collect, delay, startClient } from '../helpers/clients.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const RS = '\x1e';
const MAX_QUEUED = 256 * 1024;

const events = {
  disconnected: new Map<string, Error | undefined>(),
  produced: 0,
};

class SlowHub extends Hub {
  getId(): string {
    return this.context.connectionId;
  }
  joinGroup(group: string): Promise<void> {
    return this.groups.add(this.context.connectionId, group);
  }
  toGroup(group: string, text: string): Promise<void> {
    return this.clients.group(group).send('m', text);
  }
  echo(value: unknown): unknown {
    return value;
  }
  async *countTo(n: number): AsyncGenerator<number> {
    for (let i = 1; i <= n; i++) {
      events.produced = i;
      yield i;
    }
  }
  override onDisconnected(error?: Error): void {
    events.disconnected.set(this.context.connectionId, error);
  }
}

/** A bare WebSocket speaking the JSON hub protocol by hand: it can stop reading, or never acknowledge. */
class RawHubSocket {
  readonly frames: string[] = [];
  readonly closed: Promise<number>;
  private nextId = 0;
  private readonly waiters = new Map<string, (completion: Record<string, unknown>) => void>();

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('message', (data) => {
      for (const part of String(data).split(RS)) {
        if (!part) continue;
        this.frames.push(part);
        const message = JSON.parse(part) as Record<string, unknown>;
        const id = message.invocationId;
        if (message.type === 3 && typeof id === 'string') this.waiters.get(id)?.(message);
      }
    });
  }

  static async open(url: string, options: { stateful?: boolean } = {}): Promise<RawHubSocket> {
    let wsUrl = url.replace(/^http/, 'ws');
    if (options.stateful) {
      const response = await fetch(`${url}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, {
        method: 'POST',
      });
      const body = (await response.json()) as { connectionToken: string; useStatefulReconnect?: boolean };
      assert.equal(body.useStatefulReconnect, true, 'stateful reconnect granted');
      wsUrl += `?id=${body.connectionToken}`;
    }
    const socket = new WebSocket(wsUrl);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const client = new RawHubSocket(socket);
    socket.send(`{"protocol":"json","version":${options.stateful ? 2 : 1}}${RS}`);
    await waitFor(() => client.frames.length > 0, 5000, 'the handshake answer');
    assert.equal(client.frames.shift(), '{}');
    return client;
  }

  invoke(target: string, args: unknown[]): Promise<Record<string, unknown>> {
    const id = `i${++this.nextId}`;
    const done = new Promise<Record<string, unknown>>((resolve) => this.waiters.set(id, resolve));
    this.socket.send(JSON.stringify({ type: 1, invocationId: id, target, arguments: args }) + RS);
    return withTimeout(done, 10_000, `the completion of ${target}`);
  }

  /** Stops reading: the server's writes pile up in the kernel, then in the server. */
  pause(): void {
    (this.socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resume(): void {
    (this.socket as unknown as { _socket: { resume(): void } })._socket.resume();
  }
}

describe('slow, greedy and hostile clients', () => {
  let hubwire: Hubwire;
  let url = '';
  const official: signalR.HubConnection[] = [];
  const raw: RawHubSocket[] = [];

  before(async () => {
    hubwire = new Hubwire({
      onError: () => {},
      maxQueuedBytes: MAX_QUEUED,
      transportMaxBufferSize: 16 * 1024,
      allowStatefulReconnects: true,
      disconnectTimeout: 500,
      timerInterval: 100,
    });
    hubwire.mapHub('/slow', SlowHub);
    url = `http://127.0.0.1:${await hubwire.listen(0, '127.0.0.1')}/slow`;
  });
  after(async () => {
    for (const client of raw) client.socket.terminate();
    await Promise.all(official.map((client) => client.stop().catch(() => {})));
    await hubwire.close();
  });

  async function officialClient(options: Parameters<typeof startClient>[1] = {}): Promise<signalR.HubConnection> {
    const client = await startClient(url, options);
    official.push(client);
    return client;
  }
  async function rawClient(options: { stateful?: boolean } = {}): Promise<RawHubSocket> {
    const client = await RawHubSocket.open(url, options);
    raw.push(client);
    return client;
  }

  /** Sends 1 KB messages to `group` until `done()` (at most `max` messages), 50 invocations in flight. */
  async function flood(sender: signalR.HubConnection, group: string, done: () => boolean, max = 30_000) {
    const text = 'x'.repeat(1000);
    let sent = 0;
    while (sent < max && !done()) {
      await Promise.all(Array.from({ length: 50 }, () => sender.invoke('toGroup', group, text)));
      sent += 50;
    }
    return sent;
  }

  test('a WebSocket client that stops reading is closed as slow; the others get every message', async () => {
    const slow = await rawClient();
    const slowId = (await slow.invoke('getId', [])).result as string;
    await slow.invoke('joinGroup', ['ws-slow']);
    const reader = await officialClient();
    await reader.invoke('joinGroup', 'ws-slow');
    const received = collect<[string]>(reader, 'm');
    slow.pause();
    const sender = await officialClient();
    const sent = await flood(sender, 'ws-slow', () => events.disconnected.has(slowId));
    await waitFor(() => events.disconnected.has(slowId), 5000, 'the slow client closed');
    const error = events.disconnected.get(slowId) as Error & { code?: string };
    assert.equal(error?.code, 'HW_ERR_SLOW_CLIENT');
    assert.match(error.message, /did not read what was sent to it: \d+ bytes were waiting/);
    // Dropped, not closed cleanly: the socket was aborted (the client sees it once it reads again).
    slow.resume();
    assert.notEqual(await withTimeout(slow.closed, 5000, 'the slow socket closed'), 1000);
    await received.waitFor(sent);
    assert.equal(received.items.length, sent, 'the reading client got every message');
    assert.equal(await sender.invoke('echo', 'still here'), 'still here');
  });

  test('a Server-Sent Events client that stops reading is closed as slow', async () => {
    const negotiated = (await (await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json()) as {
      connectionToken: string;
      connectionId: string;
    };
    const target = `${url}?id=${negotiated.connectionToken}`;
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(target, { headers: { Accept: 'text/event-stream' } }, resolve);
      request.on('error', reject);
      request.end();
    });
    const streamEnded = new Promise<void>((resolve) => {
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    const post = (body: string) => fetch(target, { method: 'POST', body });
    await post(`{"protocol":"json","version":1}${RS}`);
    await waitFor(() => text.includes('data: {}'), 5000, 'the handshake answer');
    await post(`{"type":1,"invocationId":"j","target":"joinGroup","arguments":["sse-slow"]}${RS}`);
    await waitFor(() => text.includes('"invocationId":"j"'), 5000, 'the join');
    stream.pause();
    const sender = await officialClient();
    const id = negotiated.connectionId;
    await flood(sender, 'sse-slow', () => events.disconnected.has(id));
    await waitFor(() => events.disconnected.has(id), 5000, 'the slow SSE client closed');
    assert.equal((events.disconnected.get(id) as Error & { code?: string })?.code, 'HW_ERR_SLOW_CLIENT');
    stream.resume();
    await withTimeout(streamEnded, 5000, 'the event stream ended');
  });

  test('a long-polling client that keeps sending but never polls is dropped after the disconnect timeout', async () => {
    const negotiated = (await (await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json()) as {
      connectionToken: string;
      connectionId: string;
    };
    const target = `${url}?id=${negotiated.connectionToken}`;
    assert.equal((await fetch(target)).status, 200, 'the first poll');
    assert.equal((await fetch(target, { method: 'POST', body: `{"protocol":"json","version":1}${RS}` })).status, 200);
    // Pings every 100 ms, for at most 2 s (four times the disconnect timeout), with no poll: the pings must
    // start failing (404) on their own, the connection reaped while the client is still sending.
    const statuses: number[] = [];
    for (let i = 0; i < 20 && !statuses.includes(404); i++) {
      statuses.push((await fetch(target, { method: 'POST', body: `{"type":6}${RS}` })).status);
      await delay(100);
    }
    assert.ok(statuses.includes(404), `dropped while still sending (${statuses.join(', ')})`);
    assert.ok(events.disconnected.has(negotiated.connectionId), 'onDisconnected ran');
  });

  test('a stateful-reconnect client that reads but never acknowledges is closed once it holds too much', async () => {
    const greedy = await rawClient({ stateful: true });
    const id = (await greedy.invoke('getId', [])).result as string;
    await greedy.invoke('joinGroup', ['never-acks']);
    const sender = await officialClient();
    await flood(sender, 'never-acks', () => events.disconnected.has(id));
    await waitFor(() => events.disconnected.has(id), 5000, 'the client closed');
    const error = events.disconnected.get(id) as Error & { code?: string };
    assert.equal(error?.code, 'HW_ERR_SLOW_CLIENT');
    assert.match(error.message, /did not acknowledge/);
  });

  test('a stream to a client that stops reading waits for it (the generator is not run ahead), then goes on', async () => {
    const reader = await rawClient();
    const id = (await reader.invoke('getId', [])).result as string;
    events.produced = 0;
    reader.socket.send(`{"type":4,"invocationId":"s","target":"countTo","arguments":[5000000]}${RS}`);
    await waitFor(() => reader.frames.length > 100, 5000, 'the first items');
    reader.pause();
    // The kernel's socket buffers take a few megabytes first; then the generator must stop being pulled.
    let first = -1;
    let second = events.produced;
    for (let i = 0; i < 20 && second !== first; i++) {
      first = second;
      await delay(500);
      second = events.produced;
    }
    assert.equal(second, first, `the generator stays put while the client does not read (${first} → ${second})`);
    assert.ok(second < 1_000_000, `it was not run ahead (${second} items produced)`);
    assert.equal(events.disconnected.has(id), false, 'a stream waits: the connection is not closed');
    reader.resume();
    await waitFor(() => events.produced > second + 10_000, 10_000, 'the stream going on');
    reader.socket.send(`{"type":5,"invocationId":"s"}${RS}`);
  });

  test("a long stream lets another client's call through before the stream's generator is done", async () => {
    const streamer = await rawClient();
    const other = await officialClient();
    events.produced = 0;
    streamer.socket.send(`{"type":4,"invocationId":"long","target":"countTo","arguments":[300000]}${RS}`);
    await waitFor(() => events.produced > 1000, 10_000, 'the stream flowing');
    await other.invoke('echo', 'between');
    const producedAtEcho = events.produced;
    assert.ok(producedAtEcho < 300_000, `answered while the stream runs (${producedAtEcho} of 300000 produced)`);
    // The completion is the last frame: look at the newest few only (scanning every frame each poll made this
    // wait quadratic, and slow on a loaded machine).
    await waitFor(
      () => streamer.frames.slice(-3).some((frame) => frame.startsWith('{"type":3,"invocationId":"long"')),
      60_000,
      'the stream completing',
    );
  });

  test("one frame of 10,000 invocations does not hold another client's call until all are answered", async () => {
    const greedy = await rawClient();
    const other = await officialClient();
    let frame = '';
    for (let i = 0; i < 10_000; i++) {
      frame += `{"type":1,"invocationId":"e${i}","target":"echo","arguments":[${i}]}${RS}`;
    }
    const order: string[] = [];
    greedy.socket.send(frame);
    const last = greedy.invoke('echo', ['last']).then(() => order.push('greedy'));
    await delay(5);
    const echoed = other.invoke('echo', 'meanwhile').then(() => order.push('other'));
    await Promise.all([last, echoed]);
    assert.deepEqual(order, ['other', 'greedy']);
    assert.ok(greedy.frames.length >= 10_001, 'every invocation of the frame was answered');
  });

  test('a send to one connection waits while its client is behind, instead of piling up or closing it', async () => {
    const client = await rawClient();
    const id = (await client.invoke('getId', [])).result as string;
    client.pause();
    const hub = hubwire.hub('/slow');
    const text = 'y'.repeat(1000);
    let sent = 0;
    const loop = (async () => {
      for (; sent < 20_000; sent++) await hub.clients.client(id).send('m', text);
    })();
    await delay(500);
    const first = sent;
    await delay(500);
    assert.ok(sent < 20_000 && sent - first < 100, `the loop waits for the client (${first} → ${sent})`);
    assert.equal(events.disconnected.has(id), false, 'not closed: the sender waited');
    client.resume();
    await withTimeout(loop, 20_000, 'the loop finishing once the client reads');
    await waitFor(() => client.frames.length >= 20_000, 10_000, 'every message');
  });
});
