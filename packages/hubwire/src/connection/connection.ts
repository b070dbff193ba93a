// One negotiated connection: its public id, its secret token, its transport, and its application.

import type { ConnectionApplication, Transport, TransportKind } from '../transports/transport.js';
import type { RequestInfo } from './request-info.js';

export type ConnectionState =
  /** Negotiated, no transport yet. */
  | 'new'
  /** A transport is attached (or, for long polling, the connection is being polled). */
  | 'active'
  /** Stateful reconnect: the WebSocket was lost uncleanly; waiting for the client to come back. */
  | 'detached'
  | 'closed';

export class HttpConnection {
  state: ConnectionState = 'new';
  transportKind: TransportKind | undefined;
  transport: Transport | undefined;
  application: ConnectionApplication | undefined;
  /** Set by the application once the hub protocol is known: WebSocket frames become binary. */
  binary = false;
  /** Whether negotiate granted stateful reconnect (the hub layer still requires handshake version 2). */
  statefulReconnect = false;
  /** The request that started the transport (WebSocket upgrade, SSE GET or first poll). */
  connectRequest: RequestInfo | undefined;
  /** Last time (ms) the connection showed life at the HTTP level: used to reap abandoned connections. */
  lastSeen: number;
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
  }

  /** Set by the hub layer: its messages may share a WebSocket frame. */
  coalesce = false;

  /** Sends one payload through the current transport; dropped when there is none (stateful buffers keep it). */
  send(data: Buffer): void {
    this.transport?.send(data, this.binary, this.coalesce);
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
    try {
      this.application?.onClose(error);
    } finally {
      for (const listener of this.closeListeners) listener(error);
      this.closeListeners = [];
    }
  }
}
