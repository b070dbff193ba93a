// The end-to-end side of the fuzz suite: a Hubwire server in the test process (a small hub at /hub, mapped for
// classic clients as `fuzzHub` at /signalr), a trap for anything that would crash the process, HTTP and WebSocket
// probes with bounds, and the health checks run after each property's runs (the official client connects and its
// echo works, on every transport and protocol; a classic client's echo works).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import * as signalR from '@microsoft/signalr';
import { getAccessToken, Hub, HubError, Hubwire } from 'hubwire';
import WebSocket from 'ws';
import { buildClient, MATRIX } from '../helpers/clients.ts';

/** How long any one HTTP answer, WebSocket open or close may take. */
export const BOUND = 5000;

/** Server timings made short so that every connection a fuzz run leaves behind ends within a second or two. */
export const TIMINGS = {
  handshakeTimeout: 500,
  keepAliveInterval: 500,
  clientTimeoutInterval: 1500,
  longPollTimeout: 500,
  disconnectTimeout: 1500,
  timerInterval: 50,
  classicDisconnectTimeout: 1500,
  classicConnectionTimeout: 500,
};

// --- The process must survive ------------------------------------------------------------------------------

/**
 * Records what would have crashed the process (an exception thrown from a socket or request listener, a rejected
 * promise nobody handled). Installed once per test file; each property checks it stayed empty.
 */
export class CrashTrap {
  readonly events: string[] = [];
  private readonly onException = (error: unknown) => this.events.push(`uncaughtException: ${describe(error)}`);
  private readonly onRejection = (reason: unknown) => this.events.push(`unhandledRejection: ${describe(reason)}`);

  install(): this {
    process.on('uncaughtException', this.onException);
    process.on('unhandledRejection', this.onRejection);
    return this;
  }

  uninstall(): void {
    process.off('uncaughtException', this.onException);
    process.off('unhandledRejection', this.onRejection);
  }

  assertNone(): void {
    assert.deepEqual(this.events, [], 'nothing may reach the process-level handlers');
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack}` : String(error);
}

// --- The server ---------------------------------------------------------------------------------------------

export interface FuzzClient {
  message(text: unknown): void;
  groupMessage(group: string, text: unknown): void;
}

/** Every method ends at once (a fuzz run's invocations never hold the connection's invocation slot). */
export class FuzzHub extends Hub<FuzzClient> {
  echo(value: unknown): unknown {
    return value;
  }
  add(a: number, b: number): number {
    return a + b;
  }
  getConnectionId(): string {
    return this.context.connectionId;
  }
  fail(message: unknown): never {
    throw new HubError(String(message));
  }
  crash(): never {
    throw new Error('a plain error from hub code');
  }
  joinGroup(group: unknown): Promise<void> {
    return this.groups.add(this.context.connectionId, String(group));
  }
  leaveGroup(group: unknown): Promise<void> {
    return this.groups.remove(this.context.connectionId, String(group));
  }
  toGroup(group: unknown, text: unknown): Promise<void> {
    return this.clients.group(String(group)).groupMessage(String(group), text);
  }
  toCaller(text: unknown): Promise<void> {
    return this.clients.caller.message(text);
  }
  /** A bounded stream: at most 5 items, whatever the client asks. */
  async *countTo(n: unknown): AsyncGenerator<number> {
    const count = Math.min(Math.max(Math.floor(Number(n)) || 0, 0), 5);
    for (let i = 1; i <= count; i++) yield i;
  }
}

/** A Standard Schema (the interface zod, valibot and arktype implement) from a predicate. */
function schema(message: string, ok: (value: unknown) => boolean) {
  return {
    '~standard': {
      version: 1 as const,
      vendor: 'fuzz',
      validate: (value: unknown) => (ok(value) ? { value } : { issues: [{ message }] }),
    },
  };
}
const shortString = schema(
  'Expected a string of at most 64 characters',
  (v) => typeof v === 'string' && v.length <= 64,
);
const finiteNumber = schema('Expected a finite number', (v) => typeof v === 'number' && Number.isFinite(v));

export interface FuzzServer {
  hubwire: Hubwire;
  port: number;
  /** http://127.0.0.1:port */
  base: string;
  /** The hub for Core clients. */
  hubUrl: string;
  /** Errors the server reported through onError (what it recovered from), with where. */
  reported: { where: string; error: string }[];
  close(): Promise<void>;
}

/** The Hubwire under fuzz: /hub for Core clients, `fuzzHub` at /signalr for classic ones; the user is the token. */
export async function startFuzzServer(): Promise<FuzzServer> {
  const reported: { where: string; error: string }[] = [];
  const hubwire = new Hubwire({
    authenticate: (request) => {
      const token = getAccessToken(request);
      return token ? { id: token } : undefined;
    },
    allowStatefulReconnects: true,
    handshakeTimeout: TIMINGS.handshakeTimeout,
    keepAliveInterval: TIMINGS.keepAliveInterval,
    clientTimeoutInterval: TIMINGS.clientTimeoutInterval,
    longPollTimeout: TIMINGS.longPollTimeout,
    disconnectTimeout: TIMINGS.disconnectTimeout,
    timerInterval: TIMINGS.timerInterval,
    onError: (error, where) => {
      reported.push({ where, error: describe(error) });
    },
  });
  hubwire.mapHub('/hub', FuzzHub, {
    // Argument schemas on some methods (Standard Schemas, as zod's): fuzzed arguments meet them too.
    methods: {
      joinGroup: { parameters: [shortString] },
      leaveGroup: { parameters: [shortString] },
      add: { parameters: [finiteNumber, finiteNumber] },
    },
  });
  hubwire.mapClassicHubs(
    '/signalr',
    { fuzzHub: '/hub' },
    {
      disconnectTimeout: TIMINGS.classicDisconnectTimeout,
      keepAlive: TIMINGS.classicDisconnectTimeout / 3,
      connectionTimeout: TIMINGS.classicConnectionTimeout,
    },
  );
  const port = await hubwire.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  return { hubwire, port, base, hubUrl: `${base}/hub`, reported, close: () => hubwire.close() };
}

// --- HTTP ---------------------------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The response was a stream (Server-Sent Events, a forever frame): only its first bytes were read. */
  streamed: boolean;
}

/** Rejects with `what` when `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = BOUND): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export { delay } from '../helpers/wait.js';

const STREAM_TYPES = /text\/event-stream|text\/html/;

/**
 * One HTTP request on its own socket. A streaming answer (SSE, a forever frame) resolves with its status once its
 * first bytes arrived, and the socket is closed (the client went away).
 */
export function request(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<HttpResult> {
  return within(
    new Promise<HttpResult>((resolve, reject) => {
      const headers: Record<string, string> = { ...options.headers };
      // Framed explicitly: Node's client sends a GET or HEAD body with no length at all (a second, broken request).
      if (options.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(options.body));
      const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        const streamed = STREAM_TYPES.test(String(res.headers['content-type'] ?? '')) && res.statusCode === 200;
        const done = () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), streamed });
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (streamed) {
            done();
            req.destroy();
          }
        });
        res.on('end', done);
        res.on('error', () => done());
        res.on('close', done);
      });
      req.on('error', reject);
      req.end(options.body);
    }),
    `${method} ${path}`,
  );
}

/**
 * Sends raw bytes as a request on a fresh TCP connection; resolves with the reply's status code (0 when the
 * server closed without one).
 */
export function rawRequest(port: number, bytes: Buffer): Promise<number> {
  return within(
    new Promise<number>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
      let reply = '';
      const finish = () => {
        const match = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
        resolve(match ? Number(match[1]) : 0);
        socket.destroy();
      };
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString('latin1');
        if (reply.includes('\r\n')) finish();
      });
      socket.on('error', finish);
      socket.on('close', finish);
      socket.setTimeout(2000, finish);
    }),
    'a raw request',
  );
}

/** Makes a request-target of any text: characters outside visible ASCII are percent-encoded, `%` is left raw. */
export function asTarget(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (code > 0x20 && code < 0x7f) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}

// --- WebSockets ---------------------------------------------------------------------------------------------

export interface Frame {
  data: Buffer;
  binary: boolean;
}

/** A WebSocket that records every frame and its close. */
export class FrameSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The close code, once closed. */
  closeCode: number | undefined;
  private listeners = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), binary: isBinary });
      this.notify();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString() });
        this.notify();
      });
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves once `condition` holds (checked on every frame and on close), or false after `ms`. */
  until(condition: () => boolean, ms: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  get isClosed(): boolean {
    return this.ws.readyState === WebSocket.CLOSED;
  }

  /** Opens the socket; resolves with it, or with the status of the refused upgrade. */
  static open(url: string, headers: Record<string, string> = {}): Promise<FrameSocket | { refused: number }> {
    return within(
      new Promise<FrameSocket | { refused: number }>((resolve, reject) => {
        const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers, perMessageDeflate: false });
        const socket = new FrameSocket(ws);
        ws.once('open', () => resolve(socket));
        ws.once('unexpected-response', (req, res) => {
          resolve({ refused: res.statusCode ?? 0 });
          res.resume();
          req.destroy();
        });
        ws.once('error', reject);
      }),
      `WebSocket ${url}`,
    );
  }

  send(data: Buffer | string, binary: boolean): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary });
  }

  terminate(): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

// --- Health -------------------------------------------------------------------------------------------------

/** The official client connects over WebSockets (JSON) and its echo comes back. */
export async function officialEcho(hubUrl: string, value: unknown = { fuzz: 'echo', n: [1, 2, 3] }): Promise<void> {
  const client = buildClient(hubUrl, { transport: 'WebSockets', protocol: 'json' });
  try {
    await within(client.start(), 'the official client to connect');
    assert.deepEqual(await within(client.invoke('echo', value), 'the official echo'), value);
  } finally {
    await client.stop();
  }
}

/** The official client on every transport and protocol: connects, echoes. */
export async function officialEchoEverywhere(hubUrl: string): Promise<void> {
  for (const { transport, protocol } of MATRIX) {
    const client = buildClient(hubUrl, { transport, protocol });
    try {
      await within(client.start(), `the official client (${transport}, ${protocol}) to connect`);
      const value = { transport, protocol, text: 'é✓' };
      assert.deepEqual(await within(client.invoke('echo', value), `echo over ${transport}/${protocol}`), value);
      assert.equal(client.state, signalR.HubConnectionState.Connected);
    } finally {
      await client.stop();
    }
  }
}

export const CONNECTION_DATA = encodeURIComponent(JSON.stringify([{ name: 'fuzzhub' }]));

/** A classic client over long polling: negotiate, connect, start, send an echo; then abort. */
export async function classicEcho(base: string, value: unknown = { classic: 'echo', n: [1, 2] }): Promise<void> {
  const negotiated = await request(
    base,
    'GET',
    `/signalr/negotiate?clientProtocol=2.1&connectionData=${CONNECTION_DATA}`,
  );
  assert.equal(negotiated.status, 200, `classic negotiate: ${negotiated.body.toString()}`);
  const token = encodeURIComponent(
    (JSON.parse(negotiated.body.toString()) as { ConnectionToken: string }).ConnectionToken,
  );
  const query = `transport=longPolling&clientProtocol=2.1&connectionToken=${token}&connectionData=${CONNECTION_DATA}`;
  const connected = await request(base, 'POST', `/signalr/connect?${query}`);
  assert.equal(connected.status, 200, `classic connect: ${connected.body.toString()}`);
  const started = await request(base, 'GET', `/signalr/start?${query}`);
  assert.equal(started.status, 200, `classic start: ${started.body.toString()}`);
  const data = JSON.stringify({ I: '0', H: 'fuzzHub', M: 'echo', A: [value] });
  const sent = await request(base, 'POST', `/signalr/send?${query}`, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `data=${encodeURIComponent(data)}`,
  });
  assert.equal(sent.status, 200, `classic send: ${sent.body.toString()}`);
  assert.deepEqual(JSON.parse(sent.body.toString()), { I: '0', R: value });
  assert.equal((await request(base, 'POST', `/signalr/abort?${query}`)).status, 200);
}
