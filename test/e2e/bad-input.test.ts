// Bad input over real sockets against a real in-process server: malformed negotiates, garbage handshakes, broken
// hub messages, oversize payloads, and wrong or stolen connection ids. Each case checks the documented status,
// error or close, and then that the server still serves other clients (an echo is answered and a broadcast from
// another client arrives intact, across both hub protocols).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type HubMessage as ClientHubMessage, NullLogger } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const RS = '\x1e';
/** How long any single wait may take. */
const WAIT = 3000;
/** Per-test bound. */
const TEST = { timeout: 20_000 };

const officialMsgpack = new MessagePackHubProtocol();

type Json = Record<string, unknown>;
/** Where a hub is served: the TestHub's URL and the port. */
type Target = Pick<TestServer, 'url' | 'port'>;
type Protocol = 'json' | 'messagepack';

// --- Plumbing -------------------------------------------------------------------------------------------------

/** A queue that can be awaited with a timeout. */
class Inbox<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(item: T): void {
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  get size(): number {
    return this.items.length;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async next(what: string, timeout = WAIT): Promise<T> {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.items.length > 0) return this.items.shift() as T;
      if (this.ended) throw new Error(`${what}: the stream ended first`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`${what}: nothing within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

function withTimeout<T>(promise: Promise<T>, what: string, timeout = WAIT): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${timeout} ms`)), timeout);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on its own socket (no pooling, so nothing outlives the test). */
function request(
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpResult> {
  return withTimeout(
    new Promise<HttpResult>((resolve, reject) => {
      const req = http.request(url, { method, headers: options.headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(options.body);
    }),
    `${method} ${url}`,
  );
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const SSE = { Accept: 'text/event-stream' };

interface Negotiated {
  connectionId: string;
  connectionToken?: string;
  negotiateVersion: number;
  availableTransports: { transport: string; transferFormats: string[] }[];
  useStatefulReconnect?: boolean;
  error?: string;
}

async function negotiate(
  server: Target,
  query = 'negotiateVersion=1',
  headers: Record<string, string> = {},
): Promise<Negotiated> {
  const res = await request('POST', `${server.url}/negotiate?${query}`, { headers });
  assert.equal(res.status, 200, `negotiate: ${res.body}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  return JSON.parse(res.body) as Negotiated;
}

async function negotiateToken(server: Target, headers: Record<string, string> = {}): Promise<Negotiated> {
  const body = await negotiate(server, 'negotiateVersion=1', headers);
  assert.equal(typeof body.connectionToken, 'string');
  return body;
}

const tokenOf = (n: Negotiated) => n.connectionToken as string;
const connUrl = (server: Target, id: string, extra = '') => `${server.url}?id=${encodeURIComponent(id)}${extra}`;
const wsUrl = (server: Target, id: string, extra = '') => connUrl(server, id, extra).replace(/^http/, 'ws');

interface Frame {
  data: Buffer;
  binary: boolean;
}

/**
 * ws 8 passes (Buffer, isBinary); ws 7 (which the official client pulls in, and may be the one hoisted) passes a
 * string for text frames and a Buffer for binary ones. Accept both.
 */
function toFrame(data: unknown, isBinary: unknown): Frame {
  if (typeof data === 'string') return { data: Buffer.from(data, 'utf8'), binary: false };
  const bytes = Array.isArray(data)
    ? Buffer.concat(data as Buffer[])
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : (data as Buffer);
  return { data: bytes, binary: typeof isBinary === 'boolean' ? isBinary : true };
}

/** A WebSocket that records every frame and its close. */
class RawSocket {
  readonly frames = new Inbox<Frame>();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (...args: unknown[]) => this.frames.push(toFrame(args[0], args[1])));
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.frames.end();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    return withTimeout(
      new Promise<RawSocket>((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        const socket = new RawSocket(ws);
        ws.once('open', () => resolve(socket));
        ws.once('unexpected-response', (req, res) => {
          reject(new Error(`upgrade refused with ${res.statusCode}`));
          req.destroy();
        });
        ws.once('error', reject);
      }),
      `WebSocket ${url}`,
    );
  }

  send(data: string | Buffer | Uint8Array, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  waitClosed(timeout = WAIT): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, 'waiting for the socket to close', timeout);
  }

  terminate(): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

/** Opens a WebSocket that the server must refuse; resolves with the HTTP status. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.on('error', (error) => reject(error));
      ws.once('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
      ws.once('open', () => {
        ws.terminate();
        reject(new Error('the upgrade was accepted'));
      });
    }),
    `upgrade ${url}`,
  );
}

/** A hub client over a raw WebSocket: decodes the handshake reply and the hub messages of either protocol. */
class HubSocket {
  private readonly decoded: (Json | { handshake: Json; binary: boolean })[] = [];
  private handshakeSeen = false;

  constructor(
    readonly raw: RawSocket,
    readonly protocol: Protocol,
    readonly token: string,
  ) {}

  /** Negotiates and opens the WebSocket, without a handshake. */
  static async open(server: Target, protocol: Protocol = 'json'): Promise<HubSocket> {
    const token = tokenOf(await negotiateToken(server));
    return new HubSocket(await RawSocket.open(wsUrl(server, token)), protocol, token);
  }

  /** Negotiates, opens the WebSocket and completes the handshake. */
  static async connect(server: Target, protocol: Protocol = 'json'): Promise<HubSocket> {
    const socket = await HubSocket.open(server, protocol);
    socket.raw.send(`${JSON.stringify({ protocol, version: 1 })}${RS}`);
    const reply = await socket.handshakeReply();
    assert.deepEqual(reply.value, {}, 'handshake accepted');
    assert.equal(reply.binary, protocol === 'messagepack', 'the handshake reply uses the protocol frame type');
    return socket;
  }

  private async fill(): Promise<void> {
    const frame = await this.raw.frames.next(`${this.protocol} socket`);
    let data = frame.data;
    if (!this.handshakeSeen) {
      const end = data.indexOf(RS);
      assert.notEqual(end, -1, `the handshake reply ends with a record separator: ${data.toString()}`);
      this.handshakeSeen = true;
      this.decoded.push({ handshake: JSON.parse(data.toString('utf8', 0, end)) as Json, binary: frame.binary });
      data = data.subarray(end + 1);
      if (data.length === 0) return;
    }
    if (this.protocol === 'json') {
      assert.equal(frame.binary, false, 'JSON messages come in text frames');
      const text = data.toString('utf8');
      assert.ok(text.endsWith(RS), 'a frame holds whole JSON messages');
      for (const part of text.slice(0, -1).split(RS)) this.decoded.push(JSON.parse(part) as Json);
    } else {
      assert.equal(frame.binary, true, 'MessagePack messages come in binary frames');
      const messages = officialMsgpack.parseMessages(new Uint8Array(data).buffer, NullLogger.instance);
      for (const message of messages) this.decoded.push(message as unknown as Json);
    }
  }

  async handshakeReply(): Promise<{ value: Json; binary: boolean }> {
    while (this.decoded.length === 0) await this.fill();
    const first = this.decoded.shift() as { handshake?: Json; binary: boolean };
    assert.ok(first.handshake, 'the first thing the server sends is the handshake reply');
    return { value: first.handshake, binary: first.binary };
  }

  /** The next hub message other than a Ping. */
  async next(): Promise<Json> {
    for (;;) {
      while (this.decoded.length === 0) await this.fill();
      const message = this.decoded.shift() as Json;
      assert.ok(!('handshake' in message), 'a second handshake reply');
      if (message.type !== 6) return message;
    }
  }

  send(message: Json): void {
    if (this.protocol === 'json') this.raw.send(JSON.stringify(message) + RS);
    else this.raw.send(new Uint8Array(officialMsgpack.writeMessage(message as unknown as ClientHubMessage)));
  }

  invoke(invocationId: string, target: string, args: unknown[]): void {
    this.send({ type: 1, invocationId, target, arguments: args });
  }

  /** The next message must be the Completion of `invocationId`. */
  async completion(invocationId: string): Promise<Json> {
    const message = await this.next();
    assert.equal(message.type, 3, `expected a Completion, got ${JSON.stringify(message)}`);
    assert.equal(message.invocationId, invocationId);
    return message;
  }

  async expectResult(invocationId: string, result: unknown): Promise<void> {
    const message = await this.completion(invocationId);
    assert.equal(message.error ?? undefined, undefined, `unexpected error ${String(message.error)}`);
    assert.deepEqual(message.result, result);
  }

  async expectError(invocationId: string, pattern: RegExp): Promise<void> {
    const message = await this.completion(invocationId);
    assert.equal(typeof message.error, 'string', `expected an error, got ${JSON.stringify(message)}`);
    assert.match(message.error as string, pattern);
    assert.equal(message.result ?? undefined, undefined);
  }

  /** The echo still round-trips on this connection: it is usable. */
  async expectUsable(tag = 'usable'): Promise<void> {
    const value = { tag, list: [1, 'two', null], text: 'é✓' };
    this.invoke(`${tag}-echo`, 'echo', [value]);
    await this.expectResult(`${tag}-echo`, value);
  }

  /** The server ends the connection: a Close message with an error, then a clean (1000) close. */
  async expectClose(pattern: RegExp): Promise<void> {
    const message = await this.next();
    assert.equal(message.type, 7, `expected a Close message, got ${JSON.stringify(message)}`);
    assert.equal(typeof message.error, 'string', 'the Close message says why');
    assert.match(message.error as string, pattern);
    assert.notEqual(message.allowReconnect, true, 'bad input is not worth a reconnect');
    assert.equal((await this.raw.waitClosed()).code, 1000);
  }

  close(): void {
    this.raw.terminate();
  }
}

/** An SSE stream: collects the events (each event's data lines joined). */
class SseStream {
  readonly events = new Inbox<string>();
  readonly ended: Promise<void>;
  private buffer = '';

  private constructor(
    private readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let end = this.buffer.indexOf('\r\n\r\n'); end !== -1; end = this.buffer.indexOf('\r\n\r\n')) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 4);
        const data = block
          .split('\r\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6));
        if (data.length > 0) this.events.push(data.join('\n'));
      }
    });
    this.ended = new Promise((resolve) => {
      res.on('close', () => {
        this.events.end();
        resolve();
      });
    });
  }

  /** Opens the stream; resolves once the headers (and the first comment) have arrived. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    return withTimeout(
      new Promise<SseStream>((resolve, reject) => {
        const req = http.request(url, { method: 'GET', headers: { ...SSE, ...headers }, agent: false }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`SSE refused with ${res.statusCode}`));
            return;
          }
          resolve(new SseStream(req, res));
        });
        req.on('error', reject);
        req.end();
      }),
      `SSE ${url}`,
    );
  }

  close(): void {
    this.req.destroy();
  }
}

/**
 * The server still serves: a JSON client's echo is answered, and broadcasts between a JSON and a MessagePack
 * client arrive intact both ways.
 */
async function assertServerHealthy(server: Target): Promise<void> {
  const a = await HubSocket.connect(server, 'json');
  const b = await HubSocket.connect(server, 'messagepack');
  try {
    await a.expectUsable('health');

    const fromB = `from msgpack ${'x'.repeat(2000)} é✓`;
    b.invoke('hb', 'broadcast', [fromB]);
    assert.deepEqual(await a.next(), { type: 1, target: 'message', arguments: [fromB] });
    const bGot = [await b.next(), await b.next()].sort((x, y) => Number(x.type) - Number(y.type));
    assert.equal(bGot[0]?.type, 1);
    assert.equal(bGot[0]?.target, 'message');
    assert.deepEqual(bGot[0]?.arguments, [fromB]);
    assert.equal(bGot[1]?.type, 3);
    assert.equal(bGot[1]?.invocationId, 'hb');
    assert.equal(bGot[1]?.error, undefined);

    const fromA = { text: 'from json', n: [1, 2, 3] };
    a.invoke('ha', 'broadcast', [fromA]);
    const bMessage = await b.next();
    assert.equal(bMessage.type, 1);
    assert.equal(bMessage.target, 'message');
    assert.deepEqual(bMessage.arguments, [fromA]);
    const aGot = [await a.next(), await a.next()].sort((x, y) => Number(x.type) - Number(y.type));
    assert.deepEqual(aGot, [
      { type: 1, target: 'message', arguments: [fromA] },
      { type: 3, invocationId: 'ha' },
    ]);
  } finally {
    a.close();
    b.close();
  }
}

/** Long polling: negotiates and answers the first poll (200, empty). */
async function startLongPolling(server: Target, headers: Record<string, string> = {}): Promise<string> {
  const token = tokenOf(await negotiateToken(server, headers));
  const first = await request('GET', connUrl(server, token, '&_=1'), { headers });
  assert.equal(first.status, 200);
  assert.equal(first.body, '');
  return token;
}

// --- Negotiate ------------------------------------------------------------------------------------------------

describe('bad input: negotiate', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('GET (or PUT) instead of POST → 405', TEST, async () => {
    assert.equal((await request('GET', `${server.url}/negotiate?negotiateVersion=1`)).status, 405);
    assert.equal((await request('PUT', `${server.url}/negotiate?negotiateVersion=1`)).status, 405);
    await assertServerHealthy(server);
  });

  test('a non-integer negotiateVersion → 200 with {error}', TEST, async () => {
    for (const value of ['abc', '', '-1', '1.5', '1e3', ' 1']) {
      const body = await negotiate(server, `negotiateVersion=${encodeURIComponent(value)}`);
      assert.equal(typeof body.error, 'string', `negotiateVersion='${value}'`);
      assert.deepEqual(Object.keys(body), ['error'], 'no connection is offered');
    }
    const abc = await negotiate(server, 'negotiateVersion=abc');
    assert.match(abc.error as string, /abc/);
    await assertServerHealthy(server);
  });

  test('a version above 1 (even a huge one) is clamped to 1', TEST, async () => {
    for (const value of ['2', '2147483647', '99999999999999999999']) {
      const body = await negotiate(server, `negotiateVersion=${value}`);
      assert.equal(body.error, undefined);
      assert.equal(body.negotiateVersion, 1, `negotiateVersion=${value}`);
      assert.equal(typeof body.connectionToken, 'string');
      assert.notEqual(body.connectionToken, body.connectionId);
    }
    await assertServerHealthy(server);
  });

  test('the v1 and v0 replies', TEST, async () => {
    const v1 = await negotiate(server);
    assert.deepEqual(Object.keys(v1).sort(), [
      'availableTransports',
      'connectionId',
      'connectionToken',
      'negotiateVersion',
    ]);
    assert.deepEqual(v1.availableTransports, [
      { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
      { transport: 'ServerSentEvents', transferFormats: ['Text'] },
      { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
    ]);
    const v0 = await negotiate(server, '');
    assert.equal(v0.negotiateVersion, 0);
    assert.equal('connectionToken' in v0, false, 'v0 has no token');
  });

  test('unknown paths → 404', TEST, async () => {
    const base = `http://127.0.0.1:${server.port}`;
    assert.equal((await request('POST', `${base}/nope/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('GET', `${base}/nope?id=x`)).status, 404);
    assert.equal((await request('POST', `${base}/test/extra/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('POST', `${base}/testing/negotiate?negotiateVersion=1`)).status, 404);
    assert.equal((await request('GET', `${base}/`)).status, 404);
    await assertServerHealthy(server);
  });

  test('useStatefulReconnect is echoed only when asked, allowed, and v1', TEST, async () => {
    const asked = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=true');
    assert.equal(asked.useStatefulReconnect, true);
    const notAsked = await negotiate(server, 'negotiateVersion=1');
    assert.equal('useStatefulReconnect' in notAsked, false, 'an unasked flag aborts the client');
    const askedFalse = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=false');
    assert.equal('useStatefulReconnect' in askedFalse, false);
    const v0 = await negotiate(server, 'useStatefulReconnect=true');
    assert.equal('useStatefulReconnect' in v0, false, 'v0 has no stateful reconnect');

    const strict = await startTestServer({ allowStatefulReconnects: false });
    try {
      const refused = await negotiate(strict, 'negotiateVersion=1&useStatefulReconnect=true');
      assert.equal(refused.error, undefined);
      assert.equal('useStatefulReconnect' in refused, false, 'not allowed by the server');
      await assertServerHealthy(strict);
    } finally {
      await strict.close();
    }
    await assertServerHealthy(server);
  });
});

// --- Handshake ------------------------------------------------------------------------------------------------

describe('bad input: handshake', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  /** Sends `payload` as the handshake; expects an error reply (and nothing else), then a clean close. */
  async function refusedHandshake(payload: string | Buffer, pattern: RegExp): Promise<string> {
    const socket = await HubSocket.open(server);
    try {
      if (typeof payload === 'string') socket.raw.send(payload);
      else socket.raw.send(payload, false);
      const frame = await socket.raw.frames.next('handshake reply');
      const text = frame.data.toString('utf8');
      assert.ok(text.endsWith(RS), `the reply ends with a record separator: ${text}`);
      assert.equal(text.indexOf(RS), text.length - 1, 'nothing follows the error reply');
      const reply = JSON.parse(text.slice(0, -1)) as Json;
      assert.deepEqual(Object.keys(reply), ['error']);
      assert.match(reply.error as string, pattern);
      assert.equal((await socket.raw.waitClosed()).code, 1000);
      assert.equal(socket.raw.frames.size, 0, 'nothing after the error reply');
      return text;
    } finally {
      socket.close();
    }
  }

  test('not JSON', TEST, async () => {
    await refusedHandshake(`hello${RS}`, /JSON/);
    await assertServerHealthy(server);
  });

  test('a JSON array', TEST, async () => {
    await refusedHandshake(`["json",1]${RS}`, /object/);
    await assertServerHealthy(server);
  });

  test('missing protocol', TEST, async () => {
    await refusedHandshake(`{"version":1}${RS}`, /protocol/);
    await assertServerHealthy(server);
  });

  test('missing version', TEST, async () => {
    await refusedHandshake(`{"protocol":"json"}${RS}`, /version/);
    await assertServerHealthy(server);
  });

  test('an unknown protocol name: the exact error reply, then close', TEST, async () => {
    const text = await refusedHandshake(`{"protocol":"x","version":1}${RS}`, /not supported/);
    assert.equal(text, `{"error":"The protocol 'x' is not supported."}${RS}`);
    await assertServerHealthy(server);
  });

  test('an unsupported version', TEST, async () => {
    await refusedHandshake(`{"protocol":"json","version":3}${RS}`, /version 3/);
    await refusedHandshake(`{"protocol":"messagepack","version":99}${RS}`, /version 99/);
    await assertServerHealthy(server);
  });

  test('a handshake larger than the maximum message size (terminated or not)', TEST, async () => {
    const pad = 'x'.repeat(40 * 1024);
    await refusedHandshake(`{"protocol":"json","version":1,"pad":"${pad}"}${RS}`, /maximum message size/);
    // No separator at all: refused at once, not after the 15 s handshake timeout.
    const started = Date.now();
    await refusedHandshake(`{"protocol":"json","version":1,"pad":"${pad}`, /maximum message size/);
    assert.ok(Date.now() - started < 2000);
    await assertServerHealthy(server);
  });

  test('garbage right after a good handshake, in the same frame: {} then a Close with an error', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send(`{"protocol":"json","version":1}${RS}not json${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      await socket.expectClose(/JSON/i);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('a handshake split over several frames, with a message in the last one, works', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send('{"protoc');
      socket.raw.send('ol":"json","vers');
      socket.raw.send(`ion":1}${RS}{"type":1,"invocationId":"1","target":"echo","arguments":["same frame"]}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      await socket.expectResult('1', 'same frame');
    } finally {
      socket.close();
    }
  });

  test('messagepack over Server-Sent Events is refused', TEST, async () => {
    const token = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, token));
    try {
      const post = await request('POST', connUrl(server, token), {
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        body: `{"protocol":"messagepack","version":1}${RS}`,
      });
      assert.equal(post.status, 200);
      const event = await stream.events.next('SSE handshake reply');
      assert.ok(event.endsWith(RS));
      const reply = JSON.parse(event.slice(0, -1)) as Json;
      assert.deepEqual(Object.keys(reply), ['error']);
      assert.match(reply.error as string, /Binary/);
      await withTimeout(stream.ended, 'the SSE stream ends');
      // The connection is gone.
      const again = await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` });
      assert.equal(again.status, 404);
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  test('a garbage handshake over long polling: the error in the next poll, then 204, then 404', TEST, async () => {
    const token = await startLongPolling(server);
    const post = await request('POST', connUrl(server, token), { body: `{"protocol":"x","version":1}${RS}` });
    assert.equal(post.status, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.status, 200);
    assert.equal(poll.body, `{"error":"The protocol 'x' is not supported."}${RS}`);
    assert.equal((await request('GET', connUrl(server, token, '&_=3'))).status, 204, 'the connection is over');
    assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 404, 'and gone');
    await assertServerHealthy(server);
  });

  test('handshake version 2 without negotiated stateful reconnect is accepted', TEST, async () => {
    const socket = await HubSocket.open(server);
    try {
      socket.raw.send(`{"protocol":"json","version":2}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      // No Sequence/Ack bookkeeping: the next message is the echo's completion.
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('no handshake within handshakeTimeout → error reply and close', TEST, async () => {
    const quick = await startTestServer({ handshakeTimeout: 200, timerInterval: 50 });
    try {
      // Nothing at all.
      const silent = await HubSocket.open(quick);
      const started = Date.now();
      const frame = await silent.raw.frames.next('handshake timeout reply');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 150, `not before the timeout (${elapsed} ms)`);
      const text = frame.data.toString('utf8');
      assert.ok(text.endsWith(RS));
      assert.deepEqual(Object.keys(JSON.parse(text.slice(0, -1)) as Json), ['error']);
      assert.match(text, /handshake/i);
      assert.equal((await silent.raw.waitClosed()).code, 1000);
      silent.close();

      // Half a handshake that never completes.
      const partial = await HubSocket.open(quick);
      partial.raw.send('{"protocol":"json",');
      const partialFrame = await partial.raw.frames.next('handshake timeout reply');
      assert.match(partialFrame.data.toString('utf8'), /handshake/i);
      assert.equal((await partial.raw.waitClosed()).code, 1000);
      partial.close();

      // A prompt client on the same server is unaffected, even once the timeout has passed.
      const good = await HubSocket.connect(quick);
      await delay(400);
      await good.expectUsable();
      good.close();
      await assertServerHealthy(quick);
    } finally {
      await quick.close();
    }
  });
});

// --- Hub messages ---------------------------------------------------------------------------------------------

describe('bad input: hub messages after a good handshake', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  async function closesWith(protocol: Protocol, payload: string | Buffer, pattern: RegExp): Promise<void> {
    const socket = await HubSocket.connect(server, protocol);
    try {
      socket.raw.send(payload);
      await socket.expectClose(pattern);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  }

  test('malformed JSON', TEST, async () => {
    await closesWith('json', `{"type":1,"target":${RS}`, /invalid json/i);
  });

  test('a JSON message without `type`', TEST, async () => {
    await closesWith('json', `{"target":"echo","arguments":[1],"invocationId":"1"}${RS}`, /'type'/);
  });

  test('an invocation with a non-string target', TEST, async () => {
    await closesWith('json', `{"type":1,"invocationId":"1","target":42,"arguments":[]}${RS}`, /'target'/);
  });

  test('an invocation whose arguments are not an array', TEST, async () => {
    await closesWith('json', `{"type":1,"invocationId":"1","target":"echo","arguments":"x"}${RS}`, /'arguments'/);
  });

  test('a second handshake after the first', TEST, async () => {
    await closesWith('json', `{"protocol":"json","version":1}${RS}`, /'type'/);
  });

  test('malformed MessagePack bytes', TEST, async () => {
    // Length 2, then an array header announcing 2 elements with only one present.
    await closesWith('messagepack', Buffer.from([0x02, 0x92, 0x01]), /MessagePack/);
  });

  test('a MessagePack body that is not an array', TEST, async () => {
    // Length 1, then the integer 5.
    await closesWith('messagepack', Buffer.from([0x01, 0x05]), /array/);
  });

  test('an invalid VarInt length prefix', TEST, async () => {
    await closesWith('messagepack', Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80]), /2GB/);
  });

  test('a JSON message bigger than maximumReceiveMessageSize', TEST, async () => {
    const big = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(40 * 1024)] });
    await closesWith('json', big + RS, /maximum message size of 32768B/);
  });

  test('a JSON message bigger than the limit, sent unterminated in pieces', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      const piece = `{"type":1,"target":"echo","arguments":["${'y'.repeat(10 * 1024)}`;
      socket.raw.send(piece);
      for (let i = 0; i < 3; i++) socket.raw.send('z'.repeat(10 * 1024));
      await socket.expectClose(/maximum message size of 32768B/);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('a MessagePack length prefix above maximumReceiveMessageSize (refused before the body)', TEST, async () => {
    // 40000 as a VarInt: 0xC0 0xB8 0x02, and no body at all.
    await closesWith('messagepack', Buffer.from([0xc0, 0xb8, 0x02]), /maximum message size of 32768B/);
  });

  test('a WebSocket frame beyond maxWebSocketFrameSize → close 1009', TEST, async () => {
    const small = await startTestServer({ maxWebSocketFrameSize: 16 * 1024, maximumReceiveMessageSize: 64 * 1024 });
    try {
      const socket = await HubSocket.connect(small, 'json');
      try {
        const frame = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(20_000)] });
        socket.raw.send(frame + RS);
        const closed = await socket.raw.waitClosed();
        assert.equal(closed.code, 1009);
      } finally {
        socket.close();
      }
      // Frames within the limit still work, on a new connection.
      const ok = await HubSocket.connect(small, 'json');
      try {
        ok.invoke('2', 'echo', ['y'.repeat(10_000)]);
        await ok.expectResult('2', 'y'.repeat(10_000));
      } finally {
        ok.close();
      }
      await assertServerHealthy(small);
    } finally {
      await small.close();
    }
  });

  test(
    'a message bigger than maximumReceiveMessageSize over long polling: Close with the size, then 204',
    TEST,
    async () => {
      const token = await startLongPolling(server);
      assert.equal(
        (await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` })).status,
        200,
      );
      assert.equal((await request('GET', connUrl(server, token, '&_=2'))).body, `{}${RS}`);
      const big = JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['x'.repeat(40 * 1024)] });
      assert.equal((await request('POST', connUrl(server, token), { body: big + RS })).status, 200);
      const poll = await request('GET', connUrl(server, token, '&_=3'));
      assert.equal(poll.status, 200);
      assert.ok(poll.body.endsWith(RS));
      const close = JSON.parse(poll.body.slice(0, -1)) as Json;
      assert.equal(close.type, 7);
      assert.match(close.error as string, /maximum message size of 32768B/);
      assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 204);
      await assertServerHealthy(server);
    },
  );

  test('stateful reconnect: a Sequence beyond what was received → Close', TEST, async () => {
    const negotiated = await negotiate(server, 'negotiateVersion=1&useStatefulReconnect=true');
    assert.equal(negotiated.useStatefulReconnect, true);
    const token = tokenOf(negotiated);
    const socket = new HubSocket(await RawSocket.open(wsUrl(server, token)), 'json', token);
    try {
      socket.raw.send(`{"protocol":"json","version":2}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      socket.send({ type: 9, sequenceId: 5 });
      await socket.expectClose(/Sequence/);
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('deeply nested arguments neither crash nor hang the server', TEST, async () => {
    // JSON: 5000 levels parse, but cannot be serialized back.
    const json = await HubSocket.connect(server, 'json');
    try {
      const depth = 5000;
      json.raw.send(
        `{"type":1,"invocationId":"deep","target":"echo","arguments":[${'['.repeat(depth)}${']'.repeat(depth)}]}${RS}`,
      );
      const answer = await json.next();
      if (answer.type === 3) {
        assert.equal(answer.invocationId, 'deep');
        await json.expectUsable();
      } else {
        assert.equal(answer.type, 7, `expected a Completion or a Close, got ${JSON.stringify(answer).slice(0, 200)}`);
      }
    } finally {
      json.close();
    }
    // MessagePack: 20000 nested arrays in 20 kB, [1, {}, "deep", "echo", [[[...nil...]]]].
    const msgpack = await HubSocket.connect(server, 'messagepack');
    try {
      const body = Buffer.concat([
        Buffer.from([0x95, 0x01, 0x80, 0xa4, ...Buffer.from('deep'), 0xa4, ...Buffer.from('echo'), 0x91]),
        Buffer.alloc(20_000, 0x91),
        Buffer.from([0xc0]),
      ]);
      const prefix = [];
      for (let rest = body.length; ; ) {
        const byte = rest & 0x7f;
        rest >>= 7;
        prefix.push(rest > 0 ? byte | 0x80 : byte);
        if (rest === 0) break;
      }
      msgpack.raw.send(Buffer.concat([Buffer.from(prefix), body]));
      const answer = await msgpack.next();
      if (answer.type === 7) {
        assert.equal(typeof answer.error, 'string');
        assert.equal((await msgpack.raw.waitClosed()).code, 1000);
      } else {
        assert.equal(answer.type, 3, `expected a Completion or a Close, got type ${String(answer.type)}`);
        assert.equal(answer.invocationId, 'deep');
      }
    } finally {
      msgpack.close();
    }
    await assertServerHealthy(server);
  });

  test('an unknown method → Completion error, connection stays usable', TEST, async () => {
    for (const protocol of ['json', 'messagepack'] as const) {
      const socket = await HubSocket.connect(server, protocol);
      try {
        socket.invoke('1', 'noSuchMethod', []);
        await socket.expectError('1', /Unknown hub method 'noSuchMethod'/);
        socket.send({ type: 4, invocationId: '2', target: 'noSuchStream', arguments: [] });
        await socket.expectError('2', /Unknown hub method/);
        await socket.expectUsable();
      } finally {
        socket.close();
      }
    }
    await assertServerHealthy(server);
  });

  test('lifetime methods, the constructor, Object.prototype and hub state are not callable', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      const targets = ['constructor', 'onDisconnected', 'onConnected', 'toString', 'hasOwnProperty', '__proto__'];
      for (const [i, target] of [...targets, 'context', 'clients', 'ONDISCONNECTED'].entries()) {
        socket.invoke(`t${i}`, target, []);
        await socket.expectError(`t${i}`, /Unknown hub method/);
      }
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('an unknown method without an invocation id gets no answer', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 1, target: 'noSuchMethod', arguments: [] });
      socket.send({ type: 1, target: 'add', arguments: [1] });
      // The next thing back is the echo's completion: nothing was said about the two calls above.
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test('the wrong number of arguments → Completion error mentioning the count', TEST, async () => {
    for (const protocol of ['json', 'messagepack'] as const) {
      const socket = await HubSocket.connect(server, protocol);
      try {
        socket.invoke('few', 'add', [1]);
        await socket.expectError('few', /argument/);
        socket.invoke('many', 'echo', [1, 2]);
        await socket.expectError('many', /argument/);
        socket.invoke('none', 'add', []);
        await socket.expectError('none', /argument/);
        socket.send({ type: 4, invocationId: 'stream', target: 'countTo', arguments: [] });
        await socket.expectError('stream', /argument/);
        socket.invoke('right', 'add', [2, 3]);
        await socket.expectResult('right', 5);
      } finally {
        socket.close();
      }
    }
    await assertServerHealthy(server);
  });

  test('unknown message types are ignored, the connection stays usable', TEST, async () => {
    const json = await HubSocket.connect(server, 'json');
    try {
      json.raw.send(`{"type":99,"whatever":[1,2,3]}${RS}{"type":0}${RS}`);
      await json.expectUsable('json');
    } finally {
      json.close();
    }
    const msgpack = await HubSocket.connect(server, 'messagepack');
    try {
      // [99, "future"] framed with its length.
      msgpack.raw.send(Buffer.from([0x09, 0x92, 0x63, 0xa6, ...Buffer.from('future')]));
      await msgpack.expectUsable('msgpack');
    } finally {
      msgpack.close();
    }
    await assertServerHealthy(server);
  });

  test('a StreamItem, Completion or CancelInvocation for an unknown id is ignored', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 2, invocationId: 'no-such-stream', item: 1 });
      socket.send({ type: 3, invocationId: 'no-such-stream' });
      socket.send({ type: 3, invocationId: 'no-such-call', result: 5 });
      socket.send({ type: 5, invocationId: 'no-such-call' });
      await socket.expectUsable();
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });

  test('Ack and Sequence on a connection without stateful reconnect are ignored', TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 8, sequenceId: 1000 });
      socket.send({ type: 9, sequenceId: 1000 });
      await socket.expectUsable();
    } finally {
      socket.close();
    }
  });

  test("the client's Close message ends the connection cleanly, without a Close back", TEST, async () => {
    const socket = await HubSocket.connect(server, 'json');
    try {
      socket.send({ type: 7 });
      assert.equal((await socket.raw.waitClosed()).code, 1000);
      assert.equal(socket.raw.frames.size, 0, 'nothing was sent back');
    } finally {
      socket.close();
    }
    await assertServerHealthy(server);
  });
});

// --- Connection ids -------------------------------------------------------------------------------------------

describe('bad input: connection ids', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxRequestBodySize: 1024 });
  });
  after(() => server.close());

  test('an unknown id → 404 on WebSocket, SSE, long-poll GET, POST and DELETE', TEST, async () => {
    const id = 'no-such-connection';
    assert.equal(await upgradeStatus(wsUrl(server, id)), 404);
    assert.equal((await request('GET', connUrl(server, id), { headers: SSE })).status, 404);
    assert.equal((await request('GET', connUrl(server, id, '&_=1'))).status, 404);
    assert.equal((await request('POST', connUrl(server, id), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, id))).status, 404);
    await assertServerHealthy(server);
  });

  test('a missing (or empty) id → 400 on GET, POST and DELETE', TEST, async () => {
    for (const query of ['', '?id=', '?other=1']) {
      const url = `${server.url}${query}`;
      assert.equal((await request('GET', url)).status, 400, `long poll ${query}`);
      assert.equal((await request('GET', url, { headers: SSE })).status, 400, `SSE ${query}`);
      assert.equal((await request('POST', url, { body: `{"type":6}${RS}` })).status, 400, `POST ${query}`);
      assert.equal((await request('DELETE', url)).status, 400, `DELETE ${query}`);
    }
    await assertServerHealthy(server);
  });

  test('the public connectionId in place of the connectionToken → 404', TEST, async () => {
    const negotiated = await negotiateToken(server);
    const id = negotiated.connectionId;
    assert.notEqual(id, negotiated.connectionToken);
    assert.equal(await upgradeStatus(wsUrl(server, id)), 404);
    assert.equal((await request('GET', connUrl(server, id), { headers: SSE })).status, 404);
    assert.equal((await request('GET', connUrl(server, id, '&_=1'))).status, 404);
    assert.equal((await request('POST', connUrl(server, id), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, id))).status, 404);
    // Same with a live connection using that id.
    const live = await HubSocket.connect(server);
    try {
      const ownId = (await (async () => {
        live.invoke('id', 'getConnectionId', []);
        return (await live.completion('id')).result;
      })()) as string;
      assert.equal(await upgradeStatus(wsUrl(server, ownId)), 404);
      assert.equal((await request('POST', connUrl(server, ownId), { body: `{"type":6}${RS}` })).status, 404);
      await live.expectUsable();
    } finally {
      live.close();
    }
    await assertServerHealthy(server);
  });

  test('a second WebSocket on a live id → 409; the first keeps working', TEST, async () => {
    const first = await HubSocket.connect(server);
    try {
      assert.equal(await upgradeStatus(wsUrl(server, first.token)), 409);
      await first.expectUsable();
    } finally {
      first.close();
    }
    await assertServerHealthy(server);
  });

  test('a second SSE stream on a live id → 409; the first keeps working', TEST, async () => {
    const token = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, token));
    try {
      assert.equal((await request('GET', connUrl(server, token), { headers: SSE })).status, 409);
      const post = await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` });
      assert.equal(post.status, 200);
      assert.equal(await stream.events.next('SSE handshake reply'), `{}${RS}`);
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  test('long polling or a WebSocket on a connection another transport holds → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      assert.equal((await request('GET', connUrl(server, ws.token, '&_=1'))).status, 400, 'long poll on a WS');
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    const longPolling = await startLongPolling(server);
    assert.equal(await upgradeStatus(wsUrl(server, longPolling)), 400, 'WS on long polling');
    assert.equal((await request('DELETE', connUrl(server, longPolling))).status, 202);

    const sseToken = tokenOf(await negotiateToken(server));
    const stream = await SseStream.open(connUrl(server, sseToken));
    try {
      assert.equal(await upgradeStatus(wsUrl(server, sseToken)), 400, 'WS on SSE');
      assert.equal((await request('GET', connUrl(server, sseToken, '&_=1'))).status, 400, 'long poll on SSE');
    } finally {
      stream.close();
    }
    await assertServerHealthy(server);
  });

  // PROTOCOL.md §2: "another transport on the same id → 400" (409 is for a second stream of the same transport).
  test('SSE on a WebSocket connection → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      assert.equal((await request('GET', connUrl(server, ws.token), { headers: SSE })).status, 400);
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    await assertServerHealthy(server);
  });

  test('SSE on a long-polling connection → 400', TEST, async () => {
    const token = await startLongPolling(server);
    try {
      assert.equal((await request('GET', connUrl(server, token), { headers: SSE })).status, 400);
    } finally {
      await request('DELETE', connUrl(server, token));
    }
    await assertServerHealthy(server);
  });

  test('a POST aborted mid-body does not wedge the connection', TEST, async () => {
    const token = await startLongPolling(server);
    const req = http.request(connUrl(server, token), {
      method: 'POST',
      agent: false,
      headers: { 'Content-Length': '500' },
    });
    req.on('error', () => {});
    req.write('{"protocol":"json"');
    await delay(100);
    req.destroy();
    await delay(100);
    // The half-sent body was dropped; the next POST is taken (not 409 for ever) and works.
    const post = await request('POST', connUrl(server, token), {
      body: `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"add","arguments":[2,2]}${RS}`,
    });
    assert.equal(post.status, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.body, `{}${RS}{"type":3,"invocationId":"1","result":4}${RS}`);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });

  test('long polling: DELETE ends a pending poll (204); later polls and POSTs → 404', TEST, async () => {
    const token = await startLongPolling(server);
    const post = await request('POST', connUrl(server, token), { body: `{"protocol":"json","version":1}${RS}` });
    assert.equal(post.status, 200);
    const handshake = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(handshake.status, 200);
    assert.equal(handshake.body, `{}${RS}`);

    const pending = request('GET', connUrl(server, token, '&_=3'));
    await delay(100);
    const deleted = await request('DELETE', connUrl(server, token));
    assert.equal(deleted.status, 202);
    assert.equal((await pending).status, 204, 'the pending poll ends with 204');

    assert.equal((await request('GET', connUrl(server, token, '&_=4'))).status, 404);
    assert.equal((await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` })).status, 404);
    assert.equal((await request('DELETE', connUrl(server, token))).status, 404);
    await assertServerHealthy(server);
  });

  test('POST to a WebSocket connection → 405; DELETE on it → 400', TEST, async () => {
    const ws = await HubSocket.connect(server);
    try {
      const post = await request('POST', connUrl(server, ws.token), {
        body: `{"type":1,"target":"broadcast","arguments":["smuggled"]}${RS}`,
      });
      assert.equal(post.status, 405);
      assert.equal((await request('DELETE', connUrl(server, ws.token))).status, 400);
      // Nothing was smuggled in: the next message on the socket is the echo's completion.
      await ws.expectUsable();
    } finally {
      ws.close();
    }
    await assertServerHealthy(server);
  });

  test('an oversized POST body → 413 (declared or chunked)', TEST, async () => {
    const token = await startLongPolling(server);
    const big = `{"type":1,"target":"echo","arguments":["${'x'.repeat(4096)}"]}${RS}`;
    const declared = await request('POST', connUrl(server, token), { body: big });
    assert.equal(declared.status, 413);

    const chunked = await withTimeout(
      new Promise<number>((resolve, reject) => {
        const req = http.request(connUrl(server, token), { method: 'POST', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 8; i++) req.write('y'.repeat(512));
        req.end();
      }),
      'chunked POST',
    );
    assert.equal(chunked, 413);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });

  test('overlapping POSTs on one connection → 409', TEST, async () => {
    const token = await startLongPolling(server);
    const body = Buffer.from(
      `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"echo","arguments":["after"]}${RS}`,
    );
    let firstStatus: Promise<number> = Promise.resolve(0);
    const req = http.request(connUrl(server, token), {
      method: 'POST',
      agent: false,
      headers: { 'Content-Length': String(body.length) },
    });
    firstStatus = withTimeout(
      new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      }),
      'first POST',
    );
    req.write(body.subarray(0, 10));
    await delay(100);
    const second = await request('POST', connUrl(server, token), { body: `{"type":6}${RS}` });
    assert.equal(second.status, 409);
    req.end(body.subarray(10));
    assert.equal(await firstStatus, 200);
    const poll = await request('GET', connUrl(server, token, '&_=2'));
    assert.equal(poll.status, 200);
    assert.equal(poll.body, `{}${RS}{"type":3,"invocationId":"1","result":"after"}${RS}`);
    await request('DELETE', connUrl(server, token));
    await assertServerHealthy(server);
  });

  test('a token negotiated by user A, used by user B (or anonymously) → 403', TEST, async () => {
    const alice = bearer('alice');
    const token = tokenOf(await negotiateToken(server, alice));
    // WebSocket, with the token in the query (browsers) or the header (Node).
    assert.equal(await upgradeStatus(wsUrl(server, token, '&access_token=bob')), 403);
    assert.equal(await upgradeStatus(wsUrl(server, token), bearer('bob')), 403);
    assert.equal(await upgradeStatus(wsUrl(server, token)), 403, 'anonymous');
    assert.equal((await request('GET', connUrl(server, token, '&access_token=bob'), { headers: SSE })).status, 403);
    assert.equal((await request('GET', connUrl(server, token, '&_=1'), { headers: bearer('bob') })).status, 403);
    assert.equal(
      (await request('POST', connUrl(server, token), { headers: bearer('bob'), body: `{"type":6}${RS}` })).status,
      403,
    );
    assert.equal((await request('DELETE', connUrl(server, token), { headers: bearer('bob') })).status, 403);

    // Alice still owns it.
    const raw = await RawSocket.open(wsUrl(server, token, '&access_token=alice'));
    const socket = new HubSocket(raw, 'json', token);
    try {
      raw.send(`{"protocol":"json","version":1}${RS}`);
      assert.deepEqual((await socket.handshakeReply()).value, {});
      socket.invoke('who', 'getUserId', []);
      await socket.expectResult('who', 'alice');
    } finally {
      socket.close();
    }

    // And an anonymous connection cannot be taken by a named user either.
    const anonymous = await startLongPolling(server);
    assert.equal((await request('GET', connUrl(server, anonymous, '&_=2'), { headers: bearer('bob') })).status, 403);
    await request('DELETE', connUrl(server, anonymous));
    await assertServerHealthy(server);
  });
});

// --- Malformed request targets ----------------------------------------------------------------------------------
// A request line whose target `new URL()` rejects must get a 400, not an exception: thrown from the `request` or
// `upgrade` listener it would be uncaught and end the process. The server runs in a child process here, so a crash
// shows up as a failed test instead of taking the test runner down.

/** Starts the test server in a child process; resolves once it listens. */
async function startServerProcess(): Promise<{
  child: ChildProcess;
  target: Target;
  exited: Promise<number | null>;
  stderr: () => string;
}> {
  const root = new URL('../../', import.meta.url);
  const helper = new URL('test/helpers/server.ts', root).href;
  const code = `const { startTestServer } = await import(${JSON.stringify(helper)});
const server = await startTestServer();
process.stdout.write(JSON.stringify({ port: server.port, url: server.url }) + '\\n');
process.stdin.on('end', () => server.close().then(() => process.exit(0)));
process.stdin.resume();`;
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', '--input-type=module', '-e', code],
    { cwd: root.pathname, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const target = await withTimeout(
    new Promise<Target>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.indexOf('\n');
        if (line !== -1) resolve(JSON.parse(out.slice(0, line)) as Target);
      });
      child.once('exit', (code) => reject(new Error(`the server process exited (${code}): ${stderr}`)));
    }),
    'starting the server process',
    15_000,
  );
  return { child, target, exited, stderr: () => stderr.slice(0, 600) };
}

/** Sends raw bytes on a fresh TCP connection; resolves with the status line of the reply ('' if none came). */
function rawRequest(port: number, text: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
      let reply = '';
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(reply.split('\r\n')[0] ?? ''));
      socket.setTimeout(2000, () => socket.destroy());
    }),
    'raw request',
  );
}

/** Runs `body` against a fresh server process, and stops that process afterwards. */
async function withServerProcess(body: (server: Awaited<ReturnType<typeof startServerProcess>>) => Promise<void>) {
  const server = await startServerProcess();
  try {
    await body(server);
  } finally {
    server.child.stdin?.end();
    const stopped = await Promise.race([server.exited.then(() => true), delay(3000).then(() => false)]);
    if (!stopped) server.child.kill();
  }
}

describe('bad input: malformed request targets', () => {
  // Neither is a valid request-target (RFC 9112 §3.2: '[' is not a path character; 'http://[' has no valid host).
  const targets = ['//[/test?id=x', 'http://[/test'];

  for (const target of targets) {
    test(`GET ${target} → 400, and the server lives on`, TEST, async () => {
      await withServerProcess(async (server) => {
        const status = await rawRequest(
          server.target.port,
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
        await delay(100);
        assert.equal(server.child.exitCode, null, `the server process crashed: ${server.stderr()}`);
        assert.match(status, /^HTTP\/1\.1 400 /);
        await assertServerHealthy(server.target);
      });
    });

    test(`a WebSocket upgrade to ${target} → 400, and the server lives on`, TEST, async () => {
      await withServerProcess(async (server) => {
        const status = await rawRequest(
          server.target.port,
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
        await delay(100);
        assert.equal(server.child.exitCode, null, `the server process crashed: ${server.stderr()}`);
        assert.match(status, /^HTTP\/1\.1 400 /);
        await assertServerHealthy(server.target);
      });
    });
  }
});
