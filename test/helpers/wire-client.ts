// A hub client at the wire level, for tests that send what the official client never would: raw HTTP requests, raw
// WebSockets that record every frame, a hub client over a raw WebSocket (either hub protocol, handshake and messages
// encoded by hand or by the official MessagePack codec), a Server-Sent Events reader, and `assertServerHealthy`, the
// check that a server still serves other clients after bad input.

import assert from 'node:assert/strict';
import http from 'node:http';
import { type HubMessage as ClientHubMessage, NullLogger } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import WebSocket from 'ws';
import { tryUpgrade } from './http.js';
import type { TestServer } from './server.js';
import { withTimeout } from './wait.js';

/** The record separator that ends every JSON hub message and every handshake. */
export const RS = '\x1e';
/** How long any single wait may take. */
export const WAIT = 3000;

const officialMsgpack = new MessagePackHubProtocol();

export type Json = Record<string, unknown>;
/** Where a hub is served: the TestHub's URL and the port. */
export type Target = Pick<TestServer, 'url' | 'port'>;
export type Protocol = 'json' | 'messagepack';

/** A queue that can be awaited with a timeout. */
export class Inbox<T> {
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

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on its own socket (no pooling, so nothing outlives the test). */
export function request(
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
    WAIT,
    `${method} ${url}`,
  );
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
export const SSE = { Accept: 'text/event-stream' };

export interface Negotiated {
  connectionId: string;
  connectionToken?: string;
  negotiateVersion: number;
  availableTransports: { transport: string; transferFormats: string[] }[];
  useStatefulReconnect?: boolean;
  error?: string;
}

export async function negotiate(
  server: Target,
  query = 'negotiateVersion=1',
  headers: Record<string, string> = {},
): Promise<Negotiated> {
  const res = await request('POST', `${server.url}/negotiate?${query}`, { headers });
  assert.equal(res.status, 200, `negotiate: ${res.body}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  return JSON.parse(res.body) as Negotiated;
}

export async function negotiateToken(server: Target, headers: Record<string, string> = {}): Promise<Negotiated> {
  const body = await negotiate(server, 'negotiateVersion=1', headers);
  assert.equal(typeof body.connectionToken, 'string');
  return body;
}

export const tokenOf = (n: Negotiated) => n.connectionToken as string;
export const connUrl = (server: Target, id: string, extra = '') => `${server.url}?id=${encodeURIComponent(id)}${extra}`;
export const wsUrl = (server: Target, id: string, extra = '') => connUrl(server, id, extra).replace(/^http/, 'ws');

export interface Frame {
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
export class RawSocket {
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
      WAIT,
      `WebSocket ${url}`,
    );
  }

  send(data: string | Buffer | Uint8Array, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  waitClosed(timeout = WAIT): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, timeout, 'waiting for the socket to close');
  }

  terminate(): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

/** Opens a WebSocket that the server must refuse; resolves with the HTTP status (rejects if it is accepted). */
export async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const outcome = await tryUpgrade(url, { headers, timeout: WAIT });
  if (outcome.open) throw new Error(`the upgrade to ${url} was accepted`);
  return outcome.status;
}

/** A hub client over a raw WebSocket: decodes the handshake reply and the hub messages of either protocol. */
export class HubSocket {
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
export class SseStream {
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
      WAIT,
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
export async function assertServerHealthy(server: Target): Promise<void> {
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
export async function startLongPolling(server: Target, headers: Record<string, string> = {}): Promise<string> {
  const token = tokenOf(await negotiateToken(server, headers));
  const first = await request('GET', connUrl(server, token, '&_=1'), { headers });
  assert.equal(first.status, 200);
  assert.equal(first.body, '');
  return token;
}
