// Server-Sent Events: server-to-client only (text); the client sends with POST. Each payload is one event.

import type { ServerResponse } from 'node:http';
import { DrainWaiters, type Transport, type TransportHost } from './transport.js';

export class ServerSentEventsTransport implements Transport {
  readonly kind = 'ServerSentEvents' as const;
  private readonly waiters: DrainWaiters;

  constructor(private readonly response: ServerResponse) {
    this.waiters = new DrainWaiters(
      () => response.writableLength,
      () => response.destroyed || response.writableEnded,
    );
    const check = () => this.waiters.check();
    response.on('drain', check);
    response.on('close', check);
  }

  get bufferedBytes(): number {
    return this.response.writableLength;
  }

  drained(bytes: number): Promise<void> {
    return this.waiters.wait(bytes);
  }

  send(data: Buffer): void {
    if (this.response.writableEnded) return;
    // Each line becomes a `data:` line; the blank line ends the event. SSE treats CR, LF and CRLF alike as line
    // ends, so a CR cannot be carried: CRLF and a lone CR become LF (as ASP.NET Core's formatter does).
    const lines = data.toString('utf8').split(/\r\n|\r|\n/);
    let event = '';
    for (const line of lines) event += `data: ${line}\r\n`;
    this.response.write(`${event}\r\n`);
  }

  close(): void {
    if (!this.response.writableEnded) this.response.end();
  }

  abort(): void {
    this.response.destroy();
  }
}

export function startServerSentEvents(connection: TransportHost, response: ServerResponse): ServerSentEventsTransport {
  response.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
  });
  // The client's start() waits for the stream to open: write something at once.
  response.write(':\r\n');
  response.socket?.setNoDelay(true);
  const transport = new ServerSentEventsTransport(response);
  connection.transport = transport;
  connection.transportKind = 'ServerSentEvents';
  connection.state = 'active';
  response.on('close', () => {
    if (connection.transport !== transport) return;
    connection.transport = undefined;
    connection.dispose();
  });
  return transport;
}
