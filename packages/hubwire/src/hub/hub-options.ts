// The options of one hub endpoint (`mapHub(path, hub, options)`); each may also be set server-wide in
// HubwireOptions. Their defaults are in options.ts (DEFAULTS).

import type { IncomingMessage as Request } from 'node:http';
import type { MessageBus } from '../bus/message-bus.js';
import type { HubProtocol } from '../protocol/hub-protocol.js';
import type { TransportKind } from '../transports/transport.js';
import type { HubFilter } from './filters.js';
import type { AuthorizationPolicy, HubMethodOptions } from './hub-registry.js';

/** Options of a hub endpoint; each may also be set server-wide in HubwireOptions. */
export interface HubOptions {
  /** Transports offered, in order. Default: WebSockets, ServerSentEvents, LongPolling. */
  transports?: TransportKind[];
  /** Ping interval (ms). Default 15000. */
  keepAliveInterval?: number;
  /** Close a connection whose client has been silent this long (ms). Default 30000. */
  clientTimeoutInterval?: number;
  /** Close a connection whose handshake has not arrived in this long (ms). Default 15000. */
  handshakeTimeout?: number;
  /** Largest single hub message accepted (bytes). Default 32768. 0 = no limit. */
  maximumReceiveMessageSize?: number;
  /** Non-streaming invocations a client may run at once; more wait their turn. Default 1. */
  maximumParallelInvocationsPerClient?: number;
  /** Unread items per client-to-server stream before reading pauses. Default 10. */
  streamBufferCapacity?: number;
  /** Send error details (not only HubError messages) to clients. Default false. */
  enableDetailedErrors?: boolean;
  /** Grant stateful reconnect to clients that ask for it. Default false (as in ASP.NET Core). */
  allowStatefulReconnects?: boolean;
  /** Bytes of unacknowledged messages kept per connection for stateful reconnect. Default 100000. */
  statefulReconnectBufferSize?: number;
  /** Default timeout of client results (ms). Default 30000; 0 = none. */
  clientResultTimeout?: number;
  /** Long polling: how long a poll waits for data (ms). Default 90000. */
  longPollTimeout?: number;
  /** Largest POST body for SSE/long-polling sends (bytes). Default 1 MiB. */
  maxRequestBodySize?: number;
  /** Largest WebSocket frame (bytes). Default 1 MiB; a frame may hold several messages. */
  maxWebSocketFrameSize?: number;
  /**
   * Bytes waiting for one client (not yet taken by the operating system, or not yet polled) above which the writers
   * that can wait do: a server-to-client stream pauses, a send to this connection alone resolves once the client
   * caught up. Default 65536 (as ASP.NET Core's TransportMaxBufferSize).
   */
  transportMaxBufferSize?: number;
  /**
   * Bytes waiting for one client at most: a client past it (it stopped reading, or reads slower than it is sent
   * to) is closed as slow, with HW_ERR_SLOW_CLIENT as the reason its onDisconnected gets, so that broadcasts and
   * groups never wait for it nor pile up memory for it. With stateful reconnect, the bytes kept for replay count
   * beyond statefulReconnectBufferSize. Default 1 MiB (Centrifugo's client_queue_max_size).
   */
  maxQueuedBytes?: number;
  /** Hub protocols clients may choose. Default: JSON and MessagePack. */
  protocols?: HubProtocol[];
  /**
   * Who may connect to this hub: a predicate on the user or `{ roles: [...] }`; negotiate answers 401 with an
   * empty body otherwise. Default: anyone.
   */
  authorize?: AuthorizationPolicy;
  /**
   * Browser origins allowed to reach this hub from another origin: CORS (with credentials) for negotiate, SSE,
   * long polling and sends, and the Origin check of WebSocket upgrades. An array of origins
   * (`'https://app.example.com'`) or a predicate. `'*'` is refused at start-up: with credentials it would let every
   * web site act as your users (as ASP.NET Core refuses AllowAnyOrigin with AllowCredentials); a predicate returning
   * true says so explicitly. Default: no CORS headers and no Origin check (same-origin pages only, as ASP.NET Core
   * without CORS).
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * Answers negotiate with a redirect (`{url, accessToken}`) that the official client follows, e.g. to send
   * clients to another endpoint or service. Return undefined to negotiate normally.
   */
  negotiateRedirect?: (
    request: Request,
  ) => { url: string; accessToken?: string } | undefined | Promise<{ url: string; accessToken?: string } | undefined>;
  /** Require an authenticated user (what `authenticate` returned is not undefined/null). Default false. */
  requireAuthenticatedUser?: boolean;
  /**
   * Per-method options: who may call it (`authorize`) and argument schemas (`parameters`, Standard Schemas such as
   * zod's), e.g. `{ deleteAll: { authorize: { roles: ['admin'] } }, joinGroup: { parameters: [z.string().max(64)] } }`.
   */
  methods?: Record<string, HubMethodOptions>;
  /**
   * The methods clients may call, by name. Without it every method of the hub (its class and parent classes up to
   * Hub, or the object's functions) is callable, except `_`-prefixed ones and the lifetime methods: TypeScript's
   * `private` does not exist at run time, so a `private` method is callable too (an ES `#private` method is not).
   * With it, only these are, and mapHub throws for a name that is not a method.
   */
  callable?: readonly string[];
  /** Filters around invocations and lifetime events, outermost first (after the server-wide ones). */
  filters?: HubFilter[];
  /** The message bus (a backplane). Default: an in-memory bus for this process. */
  bus?: MessageBus;
}

type OptionalHubOptions = 'authorize' | 'methods' | 'callable' | 'allowedOrigins' | 'negotiateRedirect';
export type ResolvedHubOptions = Required<Omit<HubOptions, OptionalHubOptions | 'bus' | 'filters'>> &
  Pick<HubOptions, OptionalHubOptions> & { filters: HubFilter[] };
