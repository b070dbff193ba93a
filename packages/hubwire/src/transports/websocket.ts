// WebSockets: text frames for JSON, binary frames for MessagePack. Hub messages written in the same event-loop
// turn to one socket share a frame (the protocol allows several messages per frame): one system call instead of
// one per message when a backplane row or a burst of sends reaches a connection.

import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { DrainWaiters, type Transport, type TransportHost } from './transport.js';

const OPEN = 1;
// Shared send options: no allocation per delivery.
const BINARY = { binary: true };
const TEXT = { binary: false };
/** Close code of a connection that ended without a close frame (the socket dropped). */
const ABNORMAL_CLOSURE = 1006;

/** Transports holding coalesced payloads, flushed together in one microtask. */
let dirty: WebSocketTransport[] = [];
let flushScheduled = false;

function flushDirty(): void {
  flushScheduled = false;
  const transports = dirty;
  dirty = [];
  for (const transport of transports) transport.flush();
}

export class WebSocketTransport implements Transport {
  readonly kind = 'WebSockets' as const;
  private pendingFirst: Buffer | undefined;
  private pendingMore: Buffer[] | undefined;
  private pendingBinary = false;
  /** Bytes coalesced and not yet written to the socket. */
  private pendingBytes = 0;
  private readonly waiters = new DrainWaiters(
    () => this.bufferedBytes,
    () => this.socket.readyState !== OPEN,
  );

  constructor(
    readonly socket: WebSocket,
    /** The upgraded TCP socket under `socket`: its 'drain' says when buffered bytes went out. */
    raw?: Duplex,
  ) {
    const check = () => this.waiters.check();
    raw?.on('drain', check);
    socket.on('close', check);
  }

  get bufferedBytes(): number {
    return this.pendingBytes + this.socket.bufferedAmount;
  }

  drained(bytes: number): Promise<void> {
    return this.waiters.wait(bytes);
  }

  send(data: Buffer, binary: boolean, coalesce = false): void {
    if (this.socket.readyState !== OPEN) return;
    if (!coalesce) {
      this.flush();
      this.socket.send(data, binary ? BINARY : TEXT);
      return;
    }
    this.pendingBytes += data.length;
    if (this.pendingFirst === undefined) {
      this.pendingFirst = data;
      this.pendingBinary = binary;
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flushDirty);
      }
      return;
    }
    if (binary !== this.pendingBinary) {
      this.pendingBytes -= data.length;
      this.flush();
      this.send(data, binary, coalesce);
      return;
    }
    if (this.pendingMore) this.pendingMore.push(data);
    else this.pendingMore = [data];
  }

  /** Writes what was coalesced as one frame. */
  flush(): void {
    const first = this.pendingFirst;
    if (first === undefined) return;
    const more = this.pendingMore;
    this.pendingFirst = undefined;
    this.pendingMore = undefined;
    this.pendingBytes = 0;
    if (this.socket.readyState !== OPEN) return;
    this.socket.send(more ? Buffer.concat([first, ...more]) : first, this.pendingBinary ? BINARY : TEXT);
  }

  close(): void {
    this.flush();
    // 1000: the official client reports any other code as an error.
    if (this.socket.readyState === OPEN) this.socket.close(1000);
  }

  abort(): void {
    this.pendingFirst = undefined;
    this.pendingMore = undefined;
    this.pendingBytes = 0;
    this.socket.terminate();
  }
}

/**
 * Puts a WebSocket in charge of a connection: received frames go to the application, and the socket's end
 * either ends the connection or, with stateful reconnect after an unclean drop, detaches it for a while.
 */
export function attachWebSocket(connection: TransportHost, socket: WebSocket, raw?: Duplex): WebSocketTransport {
  const transport = new WebSocketTransport(socket, raw);
  const previous = connection.transport;
  connection.transport = transport;
  connection.transportKind = 'WebSockets';
  connection.state = 'active';
  connection.lastSeen = Date.now();
  // A stateful reconnect may arrive before the server noticed the old socket was gone.
  if (previous instanceof WebSocketTransport) previous.socket.terminate();

  socket.on('error', () => {
    // 'close' follows; nothing else to do.
  });
  // A client that closes without a status code (the browser's close(), the official client's stop()) is answered
  // by ws with a close frame without one too, which the client reads as 1005 and the official client reports as an
  // error. Answer 1000 instead, as ASP.NET Core does: ws calls close() without a code in exactly that case.
  const close = socket.close.bind(socket);
  socket.close = (code?: number, reason?: string | Buffer) => close(code ?? 1000, reason);
  socket.on('message', (data: Buffer) => {
    if (connection.transport !== transport) return;
    connection.noteReceived(data.length);
    const wait = connection.application?.onData(data);
    if (wait) {
      socket.pause();
      wait.then(
        () => socket.resume(),
        () => socket.resume(),
      );
    }
  });
  socket.on('close', (code: number) => {
    if (connection.transport !== transport) return;
    connection.transport = undefined;
    connection.lastSeen = Date.now();
    if (code === ABNORMAL_CLOSURE && connection.statefulReconnect && connection.state === 'active') {
      connection.state = 'detached';
      connection.application?.onTransportLost?.();
      return;
    }
    connection.dispose();
  });
  return transport;
}
