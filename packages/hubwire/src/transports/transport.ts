// What a connection needs from a transport, and what a connection's application (the hub layer) gets.

export type TransportKind = 'WebSockets' | 'ServerSentEvents' | 'LongPolling';

export const TRANSPORT_FORMATS: Record<TransportKind, readonly ('Text' | 'Binary')[]> = {
  WebSockets: ['Text', 'Binary'],
  ServerSentEvents: ['Text'],
  LongPolling: ['Text', 'Binary'],
};

/** The sending half of a transport, owned by a connection. Writes never throw. */
export interface Transport {
  readonly kind: TransportKind;
  /**
   * Sends one payload (one or more whole messages). `binary` picks WebSocket binary frames. `coalesce` lets
   * payloads written in the same event-loop turn share a frame (hub messages; never raw connections' frames).
   */
  send(data: Buffer, binary: boolean, coalesce?: boolean): void;
  /** Ends the transport after what was sent has been flushed. */
  close(): void;
}

/**
 * The application side of a connection (a hub connection, or a raw connection handler).
 * The transports push received bytes into it and tell it when the connection ends.
 */
export interface ConnectionApplication {
  /**
   * Bytes from the client. Returns a promise when the application wants the transport to wait
   * (backpressure: the WebSocket is paused, a POST is answered only when it resolves).
   */
  onData(data: Buffer): undefined | Promise<void>;
  /** Stateful reconnect: the transport was lost uncleanly; the connection is kept for a while. */
  onTransportLost?(): void;
  /** Stateful reconnect: a new WebSocket took over the connection. */
  onTransportResumed?(): void;
  /** Periodic timer (about once a second): keep-alive and timeouts. */
  onTick?(now: number): void;
  /** The server is shutting down: say goodbye (the connection is disposed right after). */
  onShutdown?(): void;
  /** The connection is over (called once). */
  onClose(error?: Error): void;
}
