// An endpoint is a path clients negotiate and connect to; the hub layer (or a raw handler) provides one.

import type { IncomingMessage } from 'node:http';
import type { ConnectionApplication, TransportKind } from '../transports/transport.js';
import type { HttpConnection } from './connection.js';

export interface EndpointSettings {
  /** Transports clients may use, in the order negotiate offers them. */
  transports: readonly TransportKind[];
  /** Whether negotiate may grant stateful reconnect when a client asks for it. */
  allowStatefulReconnects: boolean;
  /** Long polling: how long a poll waits for data before answering 200 empty (ms). */
  longPollTimeout: number;
  /** Largest accepted POST body (bytes). */
  maxRequestBodySize: number;
  /** Largest accepted WebSocket frame (bytes). */
  maxWebSocketFrameSize: number;
  /** Bytes waiting for a client above which writers that can wait do (HttpConnection.limits.pauseBytes). */
  transportMaxBufferSize: number;
  /** Bytes waiting for a client above which it is closed as slow (HttpConnection.limits.maxBytes). */
  maxQueuedBytes: number;
  /** Cross-origin browsers allowed (CORS and the WebSocket Origin check); undefined = no CORS, no check. */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean) | undefined;
  /** Answers negotiate with `{url, accessToken}` instead of a connection. */
  negotiateRedirect?:
    | ((
        request: IncomingMessage,
      ) =>
        | { url: string; accessToken?: string }
        | undefined
        | Promise<{ url: string; accessToken?: string } | undefined>)
    | undefined;
}

export interface Endpoint {
  readonly path: string;
  readonly settings: EndpointSettings;
  /** Decides whether `user` may negotiate/connect here; false answers 401. */
  authorizeConnection(user: unknown, request: IncomingMessage): boolean | Promise<boolean>;
  /** Called once, when the connection's first transport starts. */
  createApplication(connection: HttpConnection): ConnectionApplication;
  /**
   * Optional: a stateful-reconnect client reconnects here to a connection another node held (no sticky sessions).
   * Resolves with its application, resumed where it stood, or undefined when this node cannot continue it.
   */
  resumeMoved?(connection: HttpConnection): Promise<ConnectionApplication | undefined>;
}
