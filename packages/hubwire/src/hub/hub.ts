// What hub code sees: the Hub base class (or a plain object hub), its caller context, clients and groups.

import type { RequestInfo } from '../connection/request-info.js';
import type { TransportKind } from '../transports/transport.js';
import type { ClientMethods, GroupManager, HubCallerClients } from './clients.js';

/** The calling connection, as hub code sees it. */
export interface HubCallerContext {
  readonly connectionId: string;
  /** The id the user-id provider gave this connection's user (routes `clients.user(id)`). */
  readonly userIdentifier: string | undefined;
  /** What the authentication hook returned. */
  readonly user: unknown;
  /** Per-connection storage that lives as long as the connection. */
  readonly items: Map<unknown, unknown>;
  /** The transport in use. */
  readonly transport: TransportKind;
  /** The request that started the transport (the WebSocket upgrade, the SSE GET or the first poll). */
  readonly request: RequestInfo | undefined;
  /** The negotiate request (undefined when the client skipped negotiation). */
  readonly negotiateRequest: RequestInfo | undefined;
  /** Aborted when the connection ends. */
  readonly connectionAborted: AbortSignal;
  /** Ends the connection. */
  abort(): void;
}

/** The per-call state the server gives a hub instance. */
export interface HubInstanceState<TClient = ClientMethods> {
  context: HubCallerContext;
  clients: HubCallerClients<TClient>;
  groups: GroupManager;
  /** Aborted when the client cancels this stream invocation, or when the connection ends. */
  signal: AbortSignal;
}

// The state of the hub being constructed, where every copy of Hubwire in the process finds it (an app may load two:
// its ESM and CommonJS builds), so a hub extending one copy's Hub is created by the other's server.
const PENDING_STATE = Symbol.for('hubwire.pendingHubState');
/** Marks Hub (of any copy): the hub registry stops looking for callable methods there. */
export const HUB_BASE = Symbol.for('hubwire.Hub');
const pending = globalThis as { [PENDING_STATE]?: HubInstanceState<unknown> | undefined };

/** Creates a hub instance with its state in place before the subclass constructor runs. */
export function constructHub<T>(HubClass: new () => T, state: HubInstanceState<unknown>): T {
  const previous = pending[PENDING_STATE];
  pending[PENDING_STATE] = state;
  try {
    return new HubClass();
  } finally {
    pending[PENDING_STATE] = previous;
  }
}

/**
 * Base class of class hubs. The server creates an instance per invocation (and for onConnected /
 * onDisconnected), so instance fields do not survive between calls: keep per-connection state in
 * `context.items`. Every public method (not starting with `_`) is callable by clients.
 *
 * @typeParam TClient - the methods clients implement: `this.clients.all.newMessage(text)` is then type-checked.
 */
export abstract class Hub<TClient = ClientMethods> implements HubInstanceState<TClient> {
  readonly #state: HubInstanceState<unknown>;
  static readonly [HUB_BASE] = true;

  constructor() {
    const state = pending[PENDING_STATE];
    if (!state) throw new Error('Hubs are created by the server; do not construct them yourself.');
    this.#state = state;
  }

  get context(): HubCallerContext {
    return this.#state.context;
  }
  get clients(): HubCallerClients<TClient> {
    return this.#state.clients as HubCallerClients<TClient>;
  }
  get groups(): GroupManager {
    return this.#state.groups;
  }
  get signal(): AbortSignal {
    return this.#state.signal;
  }

  /** Runs after the handshake; the connection is registered, so it may join groups and send. */
  onConnected?(): void | Promise<void>;
  /**
   * Classic SignalR 2 clients only: runs when a client reconnects its transport (`/reconnect`, on whichever node
   * it lands), as SignalR 2's OnReconnected. Modern clients never trigger it.
   */
  onReconnected?(): void | Promise<void>;
  /** Runs once the connection has ended; `error` says why when it ended with an error. */
  onDisconnected?(error: Error | undefined): void | Promise<void>;
}

/** A plain-object hub: `this` inside its methods is typed as the hub state plus the object itself. */
export type HubObject<TClient = ClientMethods> = Record<string, unknown> & ThisType<HubInstanceState<TClient>>;

/** Types a plain-object hub: `defineHub<MyClient>()({ send(text) { this.clients.all.newMessage(text) } })`. */
export function defineHub<TClient = ClientMethods>() {
  return <T extends Record<string, unknown>>(hub: T & ThisType<HubInstanceState<TClient> & T>): T => hub;
}
