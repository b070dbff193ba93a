// A hub mapped at a path: its methods, options, protocols and bus. Creates a HubConnectionContext per connection.

import type { IncomingMessage } from 'node:http';
import type { GroupMember, MessageBus, PresenceQueryOptions } from '../bus/message-bus.js';
import type { HttpConnection } from '../connection/connection.js';
import type { Endpoint, EndpointSettings } from '../connection/endpoint.js';
import type { HubMeter } from '../metrics/meter.js';
import type { HubProtocol } from '../protocol/hub-protocol.js';
import { createGroupManager, type GroupManager, type HubClients, HubClientsImpl } from './clients.js';
import { constructHub, type HubInstanceState } from './hub.js';
import { HubConnectionContext } from './hub-connection-context.js';
import type { ResolvedHubOptions } from './hub-options.js';
import { type AuthorizeUser, type HubDefinition, HubRegistry, toAuthorizeUser } from './hub-registry.js';
import type { HubServices } from './hub-services.js';
import type { StatefulMoves } from './moves/stateful-moves.js';

export class HubEndpoint implements Endpoint, HubServices {
  readonly settings: EndpointSettings;
  readonly registry: HubRegistry;
  readonly clients: HubClients;
  readonly groups: GroupManager;
  readonly protocols = new Map<string, HubProtocol>();
  /** Whether connecting / disconnecting needs a hub instance (the hub or a filter has the hook). */
  readonly runsOnConnected: boolean;
  readonly runsOnDisconnected: boolean;
  private readonly authorize: AuthorizeUser | undefined;
  /** This hub's counters (set by the server; undefined with metrics off). */
  meter: HubMeter | undefined;
  /** Stateful reconnect across nodes (set by the server when its backplane supports it). */
  moves: StatefulMoves | undefined;
  /** Counts this hub's connections across the cluster (set by the server, which knows the nodes). */
  countConnections: (path: string) => Promise<number> = async () => 0;

  constructor(
    readonly path: string,
    readonly definition: HubDefinition,
    readonly options: ResolvedHubOptions,
    readonly bus: MessageBus,
    readonly userIdOf: (user: unknown) => string | undefined,
    /** Where errors that no client can be told about go (e.g. a throwing onDisconnected). */
    readonly reportError: (error: unknown, where: string) => void,
  ) {
    this.registry = new HubRegistry(definition, options.methods, options.callable);
    this.authorize = toAuthorizeUser(options.authorize);
    const hooks = (typeof definition === 'function' ? definition.prototype : definition) as Record<string, unknown>;
    // A class hub is also built at connect (as ASP.NET Core does), so a constructor that throws closes the
    // connection with a clear error at once rather than failing every later call.
    this.runsOnConnected =
      typeof definition === 'function' ||
      typeof hooks.onConnected === 'function' ||
      options.filters.some((f) => f.onConnected !== undefined);
    this.runsOnDisconnected =
      typeof hooks.onDisconnected === 'function' || options.filters.some((f) => f.onDisconnected !== undefined);
    this.clients = new HubClientsImpl(bus);
    this.groups = createGroupManager(bus);
    for (const protocol of options.protocols) this.protocols.set(protocol.name, protocol);
    this.settings = {
      transports: options.transports,
      allowStatefulReconnects: options.allowStatefulReconnects,
      longPollTimeout: options.longPollTimeout,
      maxRequestBodySize: options.maxRequestBodySize,
      maxWebSocketFrameSize: options.maxWebSocketFrameSize,
      transportMaxBufferSize: options.transportMaxBufferSize,
      maxQueuedBytes: options.maxQueuedBytes,
      allowedOrigins: options.allowedOrigins,
      negotiateRedirect: options.negotiateRedirect,
    };
  }

  connectionCount(): Promise<number> {
    return this.countConnections(this.path);
  }

  usersOnline(options?: PresenceQueryOptions): Promise<string[]> {
    return this.clients.usersOnline(options);
  }

  groupMembers(groupName: string, options?: PresenceQueryOptions): Promise<GroupMember[]> {
    return this.clients.groupMembers(groupName, options);
  }

  async authorizeConnection(user: unknown, _request: IncomingMessage): Promise<boolean> {
    if (this.options.requireAuthenticatedUser && (user === undefined || user === null)) return false;
    if (this.authorize) return this.authorize(user, undefined);
    return true;
  }

  createApplication(connection: HttpConnection): HubConnectionContext {
    return new HubConnectionContext(this, connection);
  }

  /**
   * A stateful-reconnect client reconnects here to a connection another node held: the connection, to be rebuilt
   * from its newest checkpoint once the transport attaches; undefined when this node cannot (no checkpoint known).
   */
  async resumeMoved(connection: HttpConnection): Promise<HubConnectionContext | undefined> {
    const moves = this.moves;
    if (!moves || this.bus.historyKey === undefined) return undefined;
    const found = await moves.takeOver(connection.connectionId, this.bus.historyKey);
    const protocol = found && this.protocols.get(found.checkpoint.protocol);
    if (!found || !protocol) return undefined;
    const context = new HubConnectionContext(this, connection);
    return context.arrive(found.checkpoint, found.moves, protocol) ? context : undefined;
  }

  /** A hub instance for one call: a class is constructed, a plain object gets a fresh `this` on top of it. */
  createHubInstance(state: HubInstanceState<unknown>): object {
    const definition = this.definition;
    if (typeof definition === 'function') return constructHub(definition as unknown as new () => object, state);
    // Descriptors, not values: the state's `signal` getter must stay lazy.
    return Object.defineProperties(Object.create(definition) as object, Object.getOwnPropertyDescriptors(state));
  }
}
