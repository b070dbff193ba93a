// Raw HTTP and WebSocket probes (what a browser or a non-JavaScript client sends), and the official client's raw
// connection (`HttpConnection`, the connection under a HubConnection), for endpoints mapped with mapConnection.

import { createRequire } from 'node:module';
import * as signalR from '@microsoft/signalr';
import type { HttpConnection as HttpConnectionClass } from '@microsoft/signalr/dist/esm/HttpConnection.js';
import WebSocket from 'ws';
import type { TransportName } from './clients.js';
import { withTimeout } from './wait.js';

const require = createRequire(import.meta.url);
/** The official client's raw connection: not exported from the package root, so deep-imported (CommonJS build). */
export const HttpConnection = (
  require('@microsoft/signalr/dist/cjs/HttpConnection.js') as { HttpConnection: typeof HttpConnectionClass }
).HttpConnection;
export type HttpConnection = HttpConnectionClass;

/** POSTs `<hubUrl>/negotiate?negotiateVersion=1` (before the query of `hubUrl`), with a 5 s timeout. */
export function negotiate(hubUrl: string, headers: Record<string, string> = {}): Promise<Response> {
  const url = new URL(hubUrl);
  url.pathname = `${url.pathname}/negotiate`;
  url.searchParams.set('negotiateVersion', '1');
  return fetch(url, { method: 'POST', headers, signal: AbortSignal.timeout(5000) });
}

export type UpgradeOutcome = { open: true } | { open: false; status: number; body: string };

/**
 * Tries a WebSocket upgrade (ws library, as a browser or a .NET client would): `open` when the server accepts it,
 * else the status and body of the refusal. Closes the socket either way. Fails after `timeout` ms (default 5000).
 */
export function tryUpgrade(
  url: string,
  options: { origin?: string; headers?: Record<string, string>; timeout?: number } = {},
) {
  return withTimeout(
    new Promise<UpgradeOutcome>((resolve, reject) => {
      const socket = new WebSocket(url.replace(/^http/, 'ws'), {
        ...(options.origin ? { origin: options.origin } : {}),
        headers: options.headers ?? {},
      });
      socket.on('open', () => {
        socket.close(1000);
        resolve({ open: true });
      });
      socket.on('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ open: false, status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', () =>
          resolve({ open: false, status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      socket.on('error', (error) => {
        // 'unexpected-response' settles first for HTTP refusals; this is for anything else.
        reject(error);
      });
    }),
    options.timeout ?? 5000,
    `WebSocket upgrade to ${url}`,
  );
}

/** A started raw connection with what it received, as text and as bytes. */
export interface RawClient {
  connection: HttpConnection;
  /** Every payload received, in order (text payloads as strings, binary as Uint8Array). */
  received: (string | Uint8Array)[];
  /** The text payloads joined (long polling may batch several sends into one response). */
  text(): string;
  /** The binary payloads concatenated. */
  bytes(): Uint8Array;
  /** Resolves with the close error (or undefined) when the connection ends. */
  closed: Promise<Error | undefined>;
}

export async function startRawClient(
  url: string,
  transport: TransportName,
  format: 'Text' | 'Binary',
  options: { token?: string } = {},
): Promise<RawClient> {
  const connection = new HttpConnection(url, {
    transport: signalR.HttpTransportType[transport],
    logger: signalR.LogLevel.None,
    ...(options.token ? { accessTokenFactory: () => options.token as string } : {}),
  });
  const received: (string | Uint8Array)[] = [];
  connection.onreceive = (data: string | ArrayBuffer) => {
    received.push(typeof data === 'string' ? data : new Uint8Array(data.slice(0)));
  };
  const closed = new Promise<Error | undefined>((resolve) => {
    connection.onclose = (error?: Error) => resolve(error);
  });
  await withTimeout(connection.start(signalR.TransferFormat[format]), 5000, `starting a raw ${transport} connection`);
  return {
    connection,
    received,
    text: () => received.filter((r): r is string => typeof r === 'string').join(''),
    bytes: () => Buffer.concat(received.filter((r): r is Uint8Array => typeof r !== 'string')),
    closed,
  };
}

/**
 * Connects a bare WebSocket with the JSON hub protocol (skipping negotiation), invokes `target` and returns the
 * Completion exactly as the server wrote it (without the record separator): what a .NET or Java client parses.
 */
export async function rawJsonInvoke(hubUrl: string, target: string, args: unknown[] = []): Promise<string> {
  const socket = new WebSocket(hubUrl.replace(/^http/, 'ws'));
  const frames: string[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (data) => {
    for (const part of String(data).split('\x1e')) if (part) frames.push(part);
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (frames.length === 0) {
      await withTimeout(
        new Promise<void>((resolve) => {
          wake = resolve;
        }),
        5000,
        'a frame from the server',
      );
    }
    return frames.shift() as string;
  };
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      }),
      5000,
      'the WebSocket to open',
    );
    socket.send('{"protocol":"json","version":1}\x1e');
    assertEqual(await next(), '{}');
    socket.send(`${JSON.stringify({ type: 1, invocationId: '1', target, arguments: args })}\x1e`);
    for (;;) {
      const frame = await next();
      if (frame.startsWith('{"type":3')) return frame;
    }
  } finally {
    socket.close();
  }
}

function assertEqual(actual: string, expected: string): void {
  if (actual !== expected) throw new Error(`Expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}.`);
}
