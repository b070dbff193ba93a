// The hostile-clients bench (`npm run bench:hostile`, bench/hostile.ts): its scenarios, the IPC messages between the
// parent, the server node, the probe and the hostile process, and the wire helpers that speak the ASP.NET Core and
// classic SignalR protocols by hand over raw `ws` sockets and HTTP requests (127.0.0.1 only).

import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { WebSocket } from './ws.js';

// --- Scenarios -----------------------------------------------------------------------------------------------

export interface Scenario {
  /** 1 … 10, as numbered in issue 12. */
  n: number;
  name: string;
  label: string;
  /** A second client sends 1 KB messages to group `g`, which the hostile client joined. */
  sender: boolean;
  /** The hostile client's work ends by itself (a stream read to its end, every echo answered). */
  finishes: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  { n: 1, name: 'core-ws-paused', label: 'paused WebSocket reader', sender: true, finishes: false },
  { n: 2, name: 'classic-ws-paused', label: 'paused classic WebSocket reader', sender: true, finishes: false },
  { n: 3, name: 'classic-sse-paused', label: 'paused classic SSE reader', sender: true, finishes: false },
  { n: 4, name: 'core-sse-paused', label: 'paused Core SSE reader', sender: true, finishes: false },
  { n: 5, name: 'core-lp-no-poll', label: 'long polling, never polls', sender: true, finishes: false },
  { n: 6, name: 'stateful-no-ack', label: 'stateful reconnect, never acks', sender: true, finishes: false },
  { n: 7, name: 'stream-paused', label: 'paused stream reader', sender: false, finishes: false },
  { n: 8, name: 'stream-fast', label: 'fast stream reader', sender: false, finishes: true },
  { n: 9, name: 'huge-frame', label: 'one huge frame', sender: false, finishes: true },
  { n: 10, name: 'flood', label: 'flood', sender: false, finishes: true },
];

/** The group the hostile clients join and the sender fills. */
export const GROUP = 'g';
/** The classic hub name (`mapClassicHubs('/signalr', { chatHub: '/chat' })`); classic clients send it lowercased. */
export const CLASSIC_HUB = 'chathub';

// --- IPC -----------------------------------------------------------------------------------------------------

export interface ServerSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** joinGroup calls completed since the server started. */
  joins: number;
  /** Event-loop delay since the last `resetLoop` (ms). */
  loopMaxMs: number;
  loopP99Ms: number;
}

/** `resetLoop`: after sampling, the event-loop delay counts from now (answered before the hostile part starts). */
export type ToServer = { type: 'mem'; id: number; gc: boolean; resetLoop?: boolean } | { type: 'stop' };
export type FromServer =
  | { type: 'ready'; port: number; pid: number }
  | { type: 'mem'; id: number; sample: ServerSample }
  | { type: 'fatal'; message: string };

export type ToProbe = { type: 'start' } | { type: 'stop'; id: number };
export interface ProbeReport {
  /** Round trips (µs) of answered calls, and calls that timed out at their age then (see Histogram). */
  buckets: Uint32Array;
  sent: number;
  answered: number;
  /** Completions carrying an error. */
  failed: number;
  /** No answer within the probe timeout. */
  timedOut: number;
  /** Set when the probe's own connection ended. */
  lost?: string;
}
export type FromProbe =
  | { type: 'ready' }
  | { type: 'report'; id: number; report: ProbeReport }
  | { type: 'fatal'; message: string };

export type ToHostile = { type: 'setup'; id: number } | { type: 'go' } | { type: 'end'; id: number };

export interface SenderReport {
  /** Messages handed to the socket. */
  messages: number;
  /** Bytes of those frames that left the process (handed to the kernel): sent minus what ws still buffered. */
  bytesSent: number;
  /** Bytes ws still held at the end (the server stopped reading the sender). */
  bytesBuffered: number;
  /** Messages not sent because the socket's buffer was over its limit (backpressure from the server). */
  heldBack: number;
  seconds: number;
  /** The sender's own connection ended during the run. */
  lost?: string;
}

export interface HostileReport {
  /** Whether the server ended the hostile connection, as the hostile client saw it. */
  closed: 'yes' | 'no' | 'unknown';
  /** What the client saw: close frame code and reason, Close message, HTTP status, reset… */
  closedHow?: string;
  /** When (ms after 'go'); undefined when only seen while draining at the end. */
  closedAtMs?: number;
  /** Bytes the hostile client read before the end (it stops reading when paused). */
  bytesRead: number;
  /** Bytes read while draining its socket at the end, to find the server's close. */
  bytesDrained: number;
  sender?: SenderReport;
  /** Stream items read, echo answers read, and when the last came (scenarios 8–10). */
  items?: number;
  answers?: number;
  expected?: number;
  workMs?: number;
  notes: string[];
}

export type FromHostile =
  | { type: 'ready' }
  | { type: 'set-up'; id: number; notes: string[] }
  /** Scenarios 8–10: the hostile client's work is over (ms after 'go'). */
  | { type: 'done'; ms: number }
  | { type: 'report'; id: number; report: HostileReport }
  | { type: 'fatal'; message: string };

// --- Wire helpers --------------------------------------------------------------------------------------------

export const RS = '\x1e';
export const HANDSHAKE_V1 = `{"protocol":"json","version":1}${RS}`;
export const HANDSHAKE_V2 = `{"protocol":"json","version":2}${RS}`;
export const PING = `{"type":6}${RS}`;
export const HOST = '127.0.0.1';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rejects with `what` when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** One keep-alive agent per process for short requests (negotiate, sends, pings). */
export const agent = new Agent({ keepAlive: true });

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One HTTP request to the server, bounded by `timeoutMs`. */
export function http(
  port: number,
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest(
      { host: HOST, port, method, path, agent, headers: options.headers ?? {} },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, body });
        });
        response.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path.split('?')[0]}: no answer within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(options.body);
  });
}

/** Throws unless the answer is 200 (or `ok`). */
export function expectOk(answer: HttpAnswer, what: string, ok = [200]): string {
  if (!ok.includes(answer.status)) throw new Error(`${what}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
  return answer.body;
}

/** An invocation message of the JSON hub protocol (with an id unless `id` is undefined). */
export function invocation(target: string, args: unknown[], id?: string): string {
  return id === undefined
    ? `{"type":1,"target":${JSON.stringify(target)},"arguments":${JSON.stringify(args)}}${RS}`
    : `{"type":1,"invocationId":${JSON.stringify(id)},"target":${JSON.stringify(target)},"arguments":${JSON.stringify(args)}}${RS}`;
}

/** How often `needle` occurs in `data`. */
export function countOf(data: Buffer, needle: Buffer): number {
  let count = 0;
  let at = data.indexOf(needle);
  while (at >= 0) {
    count++;
    at = data.indexOf(needle, at + needle.length);
  }
  return count;
}

/**
 * A raw `ws` WebSocket with waits on its text: `next(pattern)` resolves with the first frame whose text matches,
 * among those that came since the last match (a frame may arrive in the same turn as 'open') and later ones. Once
 * set up, `forgetText()` stops decoding: frames are then seen by `onFrame` listeners as Buffers only.
 */
export class Socket {
  readonly ws: WebSocket;
  private readonly waiters = new Set<{ test: RegExp; resolve: (text: string) => void }>();
  private readonly frameListeners = new Set<(data: Buffer) => void>();
  private recent: string[] | undefined = [];
  bytesRead = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      this.bytesRead += data.length;
      if (this.recent) {
        const text = data.toString('utf8');
        let matched = false;
        for (const waiter of [...this.waiters]) {
          if (waiter.test.test(text)) {
            this.waiters.delete(waiter);
            waiter.resolve(text);
            matched = true;
          }
        }
        if (!matched) {
          this.recent.push(text);
          if (this.recent.length > 32) this.recent.shift();
        }
      }
      for (const listener of this.frameListeners) listener(data);
    });
  }

  /** Opens `url` (ws://127.0.0.1:…), within `timeoutMs`; an HTTP refusal rejects with its status and body. */
  static open(url: string, timeoutMs = 10_000): Promise<Socket> {
    return within(
      new Promise<Socket>((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
        const socket = new Socket(ws);
        ws.once('unexpected-response', (_request, response: IncomingMessage) => {
          let body = '';
          response.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          response.on('end', () => reject(new Error(`upgrade refused: HTTP ${response.statusCode} ${body}`)));
        });
        ws.once('error', reject);
        ws.once('open', () => {
          ws.off('error', reject);
          // Later errors end in 'close'; watchers listen to both.
          ws.on('error', () => {});
          resolve(socket);
        });
      }),
      timeoutMs,
      `WebSocket ${url.split('?')[0]}`,
    );
  }

  /** The first frame (kept since the last match, or to come) whose text matches, within `timeoutMs`. */
  next(test: RegExp, timeoutMs = 10_000, what = String(test)): Promise<string> {
    const kept = this.recent?.findIndex((text) => test.test(text)) ?? -1;
    if (kept >= 0 && this.recent) {
      const text = this.recent[kept] as string;
      this.recent.splice(0, kept + 1);
      return Promise.resolve(text);
    }
    let entry: { test: RegExp; resolve: (text: string) => void } | undefined;
    const found = new Promise<string>((resolve) => {
      entry = { test, resolve };
      this.waiters.add(entry);
    });
    return within(found, timeoutMs, what).finally(() => {
      if (entry) this.waiters.delete(entry);
    });
  }

  /** Set-up is over: frames are no longer decoded or kept. */
  forgetText(): void {
    this.recent = undefined;
  }

  onFrame(listener: (data: Buffer) => void): void {
    this.frameListeners.add(listener);
  }

  send(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /**
   * Closes cleanly (a close frame, 1000: a stateful-reconnect connection is then ended at once, not kept for the
   * client to come back), reading again so that the server's answer arrives; terminates after `ms` otherwise.
   */
  async close(ms = 1000): Promise<void> {
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    if (ws.isPaused) ws.resume();
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    const timer = setTimeout(() => ws.terminate(), ms);
    await closed;
    clearTimeout(timer);
  }
}

/** A Core hub connection over WebSockets: opened, handshaken (version 1 or 2), ready for invocations. */
export async function openCoreSocket(port: number, query = '', version: 1 | 2 = 1): Promise<Socket> {
  const socket = await Socket.open(`ws://${HOST}:${port}/chat${query}`);
  const answer = socket.next(/^\{\}/, 10_000, 'handshake response');
  socket.send(version === 2 ? HANDSHAKE_V2 : HANDSHAKE_V1);
  await answer;
  return socket;
}

/** POST /chat/negotiate; the connection token (negotiate version 1) and the whole body. */
export async function negotiateCore(
  port: number,
  query = 'negotiateVersion=1',
): Promise<{ token: string; body: Record<string, unknown> }> {
  const body = JSON.parse(
    expectOk(await http(port, 'POST', `/chat/negotiate?${query}`, { body: '' }), 'negotiate'),
  ) as Record<string, unknown>;
  const token = body.connectionToken ?? body.connectionId;
  if (typeof token !== 'string') throw new Error(`negotiate: no token in ${JSON.stringify(body)}`);
  return { token, body };
}

const CLASSIC_HUBS = encodeURIComponent(JSON.stringify([{ name: CLASSIC_HUB }]));

/** GET /signalr/negotiate; the connection token, URI-encoded for queries. */
export async function negotiateClassic(port: number): Promise<string> {
  const body = expectOk(
    await http(port, 'GET', `/signalr/negotiate?clientProtocol=2.1&connectionData=${CLASSIC_HUBS}`),
    'classic negotiate',
  );
  return encodeURIComponent((JSON.parse(body) as { ConnectionToken: string }).ConnectionToken);
}

/** The query of a classic transport request, as the jQuery client sends it. */
export function classicQuery(transport: string, token: string): string {
  return `transport=${transport}&clientProtocol=2.1&connectionToken=${token}&connectionData=${CLASSIC_HUBS}`;
}

/** A classic hub invocation (`{"H","M","A","I"}`). */
export function classicInvocation(method: string, args: unknown[], id: number): string {
  return JSON.stringify({ H: CLASSIC_HUB, M: method, A: args, I: id });
}

/**
 * A streaming HTTP response (Server-Sent Events) on a socket of its own: waits on its text while set up, then only
 * counts bytes and shows each chunk to `onChunk`. `pause()` stops reading (the kernel buffers fill, then the server's).
 */
export class EventStream {
  private text = '';
  private keepText = true;
  private readonly waiters = new Set<{ test: RegExp; resolve: (text: string) => void }>();
  private readonly chunkListeners = new Set<(chunk: Buffer) => void>();
  private readonly endListeners = new Set<(how: string) => void>();
  bytesRead = 0;
  private ended: string | undefined;

  private constructor(
    readonly request: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    response.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      if (this.keepText) {
        this.text += chunk.toString('utf8');
        for (const waiter of [...this.waiters]) {
          if (waiter.test.test(this.text)) {
            this.waiters.delete(waiter);
            waiter.resolve(this.text);
          }
        }
      }
      for (const listener of this.chunkListeners) listener(chunk);
    });
    const end = (how: string) => {
      if (this.ended) return;
      this.ended = how;
      for (const listener of this.endListeners) listener(how);
    };
    response.on('end', () => end('the event stream ended'));
    response.on('aborted', () => end('the event stream was aborted'));
    response.on('error', (error: NodeJS.ErrnoException) => end(`event stream error ${error.code ?? error.message}`));
    request.on('error', (error: NodeJS.ErrnoException) => end(`event stream error ${error.code ?? error.message}`));
    response.on('close', () => end('the event stream closed'));
  }

  static open(port: number, path: string, timeoutMs = 10_000): Promise<EventStream> {
    return within(
      new Promise<EventStream>((resolve, reject) => {
        const request = httpRequest(
          { host: HOST, port, path, method: 'GET', agent: false, headers: { Accept: 'text/event-stream' } },
          (response) => {
            if (response.statusCode !== 200) {
              let body = '';
              response.on('data', (chunk: Buffer) => {
                body += chunk.toString();
              });
              response.on('end', () => reject(new Error(`event stream: HTTP ${response.statusCode} ${body}`)));
              return;
            }
            resolve(new EventStream(request, response));
          },
        );
        request.on('error', reject);
        request.end();
      }),
      timeoutMs,
      `event stream ${path.split('?')[0]}`,
    );
  }

  /** Resolves once the text read so far matches `test` (set-up only). */
  waitFor(test: RegExp, timeoutMs = 10_000, what = String(test)): Promise<string> {
    if (test.test(this.text)) return Promise.resolve(this.text);
    let entry: { test: RegExp; resolve: (text: string) => void } | undefined;
    const found = new Promise<string>((resolve) => {
      entry = { test, resolve };
      this.waiters.add(entry);
    });
    return within(found, timeoutMs, what).finally(() => {
      if (entry) this.waiters.delete(entry);
    });
  }

  /** Set-up is over: stop keeping the text. */
  forgetText(): void {
    this.keepText = false;
    this.text = '';
  }

  onChunk(listener: (chunk: Buffer) => void): void {
    this.chunkListeners.add(listener);
  }

  onEnd(listener: (how: string) => void): void {
    if (this.ended) listener(this.ended);
    else this.endListeners.add(listener);
  }

  pause(): void {
    this.response.pause();
    this.response.socket?.pause();
  }

  resume(): void {
    this.response.socket?.resume();
    this.response.resume();
  }

  close(): void {
    this.request.destroy();
  }
}
