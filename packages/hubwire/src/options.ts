// The server's options and the defaults of every option (those of ASP.NET Core SignalR unless noted). A hub's own
// options are in hub/hub-options.ts; each may also be set here, server-wide.

import type { IncomingMessage } from 'node:http';
import type { Backplane } from './backplane/backplane.js';
import type { HubOptions } from './hub/hub-options.js';
import type { MetricsOptions } from './metrics/metrics.js';
import type { TransportKind } from './transports/transport.js';

export interface HubwireOptions
  extends Omit<HubOptions, 'methods' | 'callable' | 'bus' | 'authorize' | 'negotiateRedirect'> {
  /**
   * Authentication hook: returns the user for a request (negotiate and every transport request), or
   * undefined for anonymous. Throwing answers 401. `getAccessToken(request)` reads the bearer token from the
   * Authorization header or the `access_token` query parameter.
   */
  authenticate?: (request: IncomingMessage) => unknown | Promise<unknown>;
  /**
   * The user id of a user, for `clients.user(id)`. Default: the user itself if it is a string, else its
   * `id`, `sub`, `userId` or `name` property.
   */
  userIdProvider?: (user: unknown) => string | undefined;
  /** A connection without an active transport for this long is dropped (ms). Default 15000. */
  disconnectTimeout?: number;
  /** Resolution of the keep-alive and timeout timer (ms). Default 1000. */
  timerInterval?: number;
  /**
   * A scaleout backplane shared by every hub of this server (e.g. `postgresBackplane({ connectionString })`).
   * Default: none (one node, in memory). The server closes it on close().
   */
  backplane?: Backplane;
  /** Errors no client can be told about (a throwing onDisconnected, ...). Default: console.error. */
  onError?: (error: unknown, where: string) => void;
  /**
   * With a backplane, whether your load balancer keeps each client on one node (affinity). Default false: negotiate
   * answers with connection tokens every node can verify (signed with a key set shared through the backplane), so a
   * connection's WebSocket may reach any node. `true`: tokens are random and work only on the node that issued
   * them, as in ASP.NET Core (one backplane message less per connection). See "Connections on any node".
   */
  stickySessions?: boolean;
  /** How long after negotiate a token may start its connection on another node (ms). Default 60000. */
  tokenAdoptionWindow?: number;
  /**
   * Metrics (`hubwire.metrics`): counters read by OpenTelemetry (the global MeterProvider unless one is given),
   * Prometheus (`mapMetrics`, `metrics.handler()`) and the dashboard. Default on; `false` turns every counter off.
   */
  metrics?: MetricsOptions | false;
}

export const DEFAULTS = {
  transports: ['WebSockets', 'ServerSentEvents', 'LongPolling'] as TransportKind[],
  keepAliveInterval: 15_000,
  clientTimeoutInterval: 30_000,
  handshakeTimeout: 15_000,
  maximumReceiveMessageSize: 32 * 1024,
  maximumParallelInvocationsPerClient: 1,
  streamBufferCapacity: 10,
  enableDetailedErrors: false,
  allowStatefulReconnects: false,
  statefulReconnectBufferSize: 100_000,
  clientResultTimeout: 30_000,
  longPollTimeout: 90_000,
  maxRequestBodySize: 1024 * 1024,
  maxWebSocketFrameSize: 1024 * 1024,
  transportMaxBufferSize: 64 * 1024,
  maxQueuedBytes: 1024 * 1024,
  requireAuthenticatedUser: false,
  disconnectTimeout: 15_000,
  timerInterval: 1_000,
};

export function defaultUserIdProvider(user: unknown): string | undefined {
  if (user === undefined || user === null) return undefined;
  if (typeof user === 'string') return user;
  if (typeof user === 'object') {
    const u = user as Record<string, unknown>;
    for (const key of ['id', 'sub', 'userId', 'name']) {
      const value = u[key];
      if (typeof value === 'string' || typeof value === 'number') return String(value);
    }
  }
  return undefined;
}
