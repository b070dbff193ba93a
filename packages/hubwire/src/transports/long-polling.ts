// Long polling: the server buffers payloads and answers each poll with all of them; the client sends with POST.
// 200 with data, 200 empty after the poll timeout, 204 once the connection is over.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { DrainWaiters, type Transport, type TransportHost } from './transport.js';

/**
 * Where a poll's answer goes: an HTTP response here, or (a poll that reached another node, connection/remote-
 * requests.ts) a reply through the backplane. `onAbandoned` hears the poll's client giving up before the answer.
 */
export interface PollSink {
  answer(status: 200 | 204, body: Buffer | undefined, binary: boolean): void;
  onAbandoned(listener: () => void): void;
}

export class LongPollingTransport implements Transport {
  readonly kind = 'LongPolling' as const;
  private buffered: Buffer[] = [];
  private bufferedTotal = 0;
  private aborted = false;
  private readonly waiters = new DrainWaiters(
    () => this.bufferedTotal,
    () => this.aborted || this.closing,
  );
  private pending: { sink: PollSink; timer: NodeJS.Timeout } | undefined;
  private started = false;
  private closing = false;
  private binary = false;

  constructor(
    private readonly connection: TransportHost,
    private readonly pollTimeout: number,
  ) {}

  send(data: Buffer, binary: boolean): void {
    if (this.aborted) return;
    this.binary = binary;
    this.buffered.push(data);
    this.bufferedTotal += data.length;
    if (this.pending) this.flush();
  }

  get bufferedBytes(): number {
    return this.bufferedTotal;
  }

  drained(bytes: number): Promise<void> {
    return this.waiters.wait(bytes);
  }

  close(): void {
    this.closing = true;
    if (this.pending && this.buffered.length === 0) this.finish(204);
    this.waiters.check();
  }

  /** Drops what was buffered; a pending poll ends with 204 (the connection is over). */
  abort(): void {
    this.aborted = true;
    this.closing = true;
    this.buffered = [];
    this.bufferedTotal = 0;
    if (this.pending) this.finish(204);
    this.waiters.check();
  }

  /** Handles one poll request. */
  poll(request: IncomingMessage, response: ServerResponse): void {
    this.pollInto({
      answer: (status, body, binary) => respond(response, status, body, binary),
      onAbandoned: (listener) => request.on('close', () => listener()),
    });
  }

  /** Handles one poll, wherever it came from. */
  pollInto(sink: PollSink): void {
    const connection = this.connection;
    // A new poll supersedes a pending one (its client has given up on it).
    if (this.pending) this.finish(204);
    connection.lastSeen = Date.now();
    if (!this.started) {
      // The first poll answers at once: the client's start() waits for it.
      this.started = true;
      sink.answer(200, undefined, this.binary);
      return;
    }
    if (this.buffered.length > 0) {
      sink.answer(200, this.take(), this.binary);
      return;
    }
    if (this.closing) {
      sink.answer(204, undefined, this.binary);
      connection.dispose();
      return;
    }
    const timer = setTimeout(() => {
      if (this.pending?.sink === sink) this.finish(200);
    }, this.pollTimeout);
    this.pending = { sink, timer };
    connection.state = 'active';
    sink.onAbandoned(() => {
      if (this.pending?.sink !== sink) return;
      // The client went away mid-poll: keep the data for its next poll.
      clearTimeout(timer);
      this.pending = undefined;
      this.idle();
    });
  }

  /** DELETE: the client is stopping. A pending poll ends with 204 and the connection is disposed. */
  stop(): void {
    this.buffered = [];
    this.bufferedTotal = 0;
    if (this.pending) this.finish(204);
    this.connection.dispose();
  }

  private take(): Buffer {
    const body = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedTotal = 0;
    this.waiters.check();
    return body;
  }

  private flush(): void {
    this.finish(200);
  }

  private finish(status: 200 | 204): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    if (status === 200 && this.buffered.length > 0) pending.sink.answer(200, this.take(), this.binary);
    else if (this.closing || status === 204) {
      pending.sink.answer(204, undefined, this.binary);
      if (this.closing) this.connection.dispose();
    } else pending.sink.answer(200, undefined, this.binary);
    this.idle();
  }

  private idle(): void {
    if (this.connection.state === 'active') this.connection.state = 'detached';
    this.connection.lastSeen = Date.now();
  }
}

/** Writes a poll's answer as HTTP. */
export function respond(response: ServerResponse, status: number, body: Buffer | undefined, binary: boolean): void {
  if (response.writableEnded) return;
  const headers: Record<string, string | number> = {
    'Content-Type': binary ? 'application/octet-stream' : 'text/plain; charset=utf-8',
    'Cache-Control': 'no-cache',
  };
  headers['Content-Length'] = body ? body.length : 0;
  response.writeHead(status, headers);
  response.end(body);
}

export function startLongPolling(connection: TransportHost, pollTimeout: number): LongPollingTransport {
  const transport = new LongPollingTransport(connection, pollTimeout);
  connection.transport = transport;
  connection.transportKind = 'LongPolling';
  connection.state = 'detached';
  return transport;
}
