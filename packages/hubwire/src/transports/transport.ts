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
  /**
   * Bytes sent through this transport that the client has not taken yet: not handed to the operating system
   * (WebSockets, Server-Sent Events), or not polled (long polling).
   */
  readonly bufferedBytes: number;
  /** Resolves once `bufferedBytes` is at most `bytes`, or the transport ended. */
  drained(bytes: number): Promise<void>;
  /** Ends the transport after what was sent has been flushed. */
  close(): void;
  /** Ends the transport at once, dropping what was not sent (a client that does not read). */
  abort(): void;
}

/**
 * The writers waiting for a transport to drain (a stream waiting for its reader). The transport calls `check()` on
 * the events that lower its buffer or end it; a slow timer looks too, while someone waits, in case none comes.
 */
export class DrainWaiters {
  private waiters: { bytes: number; resolve(): void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly buffered: () => number,
    private readonly ended: () => boolean,
  ) {}

  /** Resolves once the buffer holds at most `bytes`, or the transport ended. */
  wait(bytes: number): Promise<void> {
    if (this.ended() || this.buffered() <= bytes) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ bytes, resolve });
      if (!this.timer) {
        this.timer = setInterval(() => this.check(), 100);
        this.timer.unref();
      }
    });
  }

  check(): void {
    if (this.waiters.length === 0) return;
    const ended = this.ended();
    const level = this.buffered();
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (ended || level <= waiter.bytes) waiter.resolve();
      else this.waiters.push(waiter);
    }
    if (this.waiters.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** Where a connection stands: negotiated, carried by a transport, waiting for its client to come back, or over. */
export type ConnectionState =
  /** Negotiated, no transport yet. */
  | 'new'
  /** A transport is attached (or, for long polling, the connection is being polled). */
  | 'active'
  /** Stateful reconnect: the WebSocket was lost uncleanly; waiting for the client to come back (long polling: between polls). */
  | 'detached'
  | 'closed';

/**
 * The connection a transport carries, as the transport sees it (connection/HttpConnection implements it): the
 * transport installs itself, keeps the state and the last sign of life current, hands received bytes to the
 * application and ends the connection when its client is gone.
 */
export interface TransportHost {
  state: ConnectionState;
  transport: Transport | undefined;
  transportKind: TransportKind | undefined;
  /** Last time (ms) the connection showed life at the HTTP level. */
  lastSeen: number;
  /** Whether negotiate granted stateful reconnect: an unclean WebSocket close detaches instead of ending. */
  readonly statefulReconnect: boolean;
  readonly application: ConnectionApplication | undefined;
  /** Ends the connection for good (once). */
  dispose(error?: Error): void;
  /** Bytes received from the client (counted for the metrics). */
  noteReceived(bytes: number): void;
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
