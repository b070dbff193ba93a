// One negotiated connection: its public id, its secret token, its transport, and its application.

import { HubwireError } from '../errors.js';
import type { ConnectionStatus, ServerMeter } from '../metrics/meter.js';
import type {
  ConnectionApplication,
  ConnectionState,
  Transport,
  TransportHost,
  TransportKind,
} from '../transports/transport.js';
import type { RequestInfo } from './request-info.js';

export type { ConnectionState } from '../transports/transport.js';

export class HttpConnection implements TransportHost {
  state: ConnectionState = 'new';
  transportKind: TransportKind | undefined;
  transport: Transport | undefined;
  application: ConnectionApplication | undefined;
  /** Set by the application once the hub protocol is known: WebSocket frames become binary. */
  binary = false;
  /** Whether negotiate granted stateful reconnect (the hub layer still requires handshake version 2). */
  statefulReconnect = false;
  /** Its token is signed for every node: it may be taken or continued by another node (no sticky sessions). */
  anyNode = false;
  /** The request that started the transport (WebSocket upgrade, SSE GET or first poll). */
  connectRequest: RequestInfo | undefined;
  /** Last time (ms) the connection showed life at the HTTP level: used to reap abandoned connections. */
  lastSeen: number;
  /** When it was negotiated (ms). */
  readonly createdAt: number;
  /** Why it ends, when not a normal closure (set by whoever ends it: the reaper, a timeout, the shutdown). */
  closeStatus: ConnectionStatus | undefined;
  /** The server's counters (undefined with metrics off). */
  meter: ServerMeter | undefined;
  private closeListeners: ((error?: Error) => void)[] = [];

  constructor(
    /** Public: other clients and the hub see it. */
    readonly connectionId: string,
    /** Secret: only the client that negotiated knows it; every transport request must carry it. */
    readonly connectionToken: string,
    readonly negotiateVersion: number,
    readonly endpointPath: string,
    /** The negotiate request (undefined when the client skipped negotiation). */
    readonly negotiateRequest: RequestInfo | undefined,
    /** What the authentication hook returned for this connection. */
    readonly user: unknown,
    now: number,
  ) {
    this.lastSeen = now;
    this.createdAt = now;
  }

  /** Set by the hub layer: its messages may share a WebSocket frame. */
  coalesce = false;

  /**
   * Bytes waiting for the client (see Transport.bufferedBytes): above `pauseBytes`, writers that can wait do
   * (`whenWritable`); above `maxBytes`, the connection is closed as a slow client. Set from the endpoint's options.
   */
  limits = { pauseBytes: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };

  /** Sends one payload through the current transport; dropped when there is none (stateful buffers keep it). */
  send(data: Buffer): void {
    const transport = this.transport;
    if (!transport) return;
    transport.send(data, this.binary, this.coalesce);
    if (this.meter) this.meter.bytesOut[transport.kind] += data.length;
    const buffered = transport.bufferedBytes;
    if (buffered > this.limits.maxBytes)
      this.closeSlow(buffered, this.limits.maxBytes, 'did not read what was sent to it');
  }

  /**
   * Undefined while the client keeps up; else resolves once what waits for it is back under `pauseBytes`, or the
   * connection ended: a writer that can wait (a server-to-client stream, a send to this connection alone) waits.
   */
  whenWritable(): Promise<void> | undefined {
    const transport = this.transport;
    if (!transport || transport.bufferedBytes <= this.limits.pauseBytes) return undefined;
    return transport.drained(this.limits.pauseBytes);
  }

  /**
   * Closes a connection whose client does not keep up (`what` it failed to do): what waits for it is dropped at
   * once (the transport is aborted, not flushed), and the application hears the reason as the close error.
   */
  closeSlow(bytes: number, limit: number, what: string): void {
    if (this.state === 'closed') return;
    const transport = this.transport;
    this.transport = undefined;
    transport?.abort();
    const error = new HubwireError(
      'HW_ERR_SLOW_CLIENT',
      `The client ${what}: ${bytes} bytes were waiting for it, more than the ${limit} allowed (maxQueuedBytes). The connection was closed.`,
    );
    // Not from inside the send that noticed it (a broadcast may be iterating its recipients).
    queueMicrotask(() => this.dispose(error));
  }

  /** Bytes the transport received from the client (counted for the metrics). */
  noteReceived(bytes: number): void {
    const kind = this.transportKind;
    if (this.meter && kind) this.meter.bytesIn[kind] += bytes;
  }

  /** Application-initiated end: the transport flushes and closes, then the connection is disposed. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.transport) this.transport.close();
    else this.dispose();
  }

  onClose(listener: (error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Ends the connection for good (once): the application hears about it, the manager forgets it. */
  dispose(error?: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const transport = this.transport;
    this.transport = undefined;
    transport?.close();
    if (this.meter && this.transportKind) {
      const slow = error instanceof HubwireError && error.code === 'HW_ERR_SLOW_CLIENT';
      const status = this.closeStatus ?? (slow ? 'slow_client' : 'normal_closure');
      this.meter.connectionEnded(this.transportKind, status, (Date.now() - this.createdAt) / 1000);
    }
    try {
      this.application?.onClose(error);
    } finally {
      for (const listener of this.closeListeners) listener(error);
      this.closeListeners = [];
    }
  }
}
