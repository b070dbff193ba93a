// The familiar ASP.NET names (clients.all, caller, others, group(...), user(...), ...) over the bus's audiences.

import type { Audience, GroupMember, InvokeOptions, MessageBus, PresenceQueryOptions } from '../bus/message-bus.js';

/** Any client method: arguments in, nothing back. The default when a hub declares no client interface. */
// biome-ignore lint/suspicious/noExplicitAny: client interfaces are user-declared; any keeps them assignable.
export type ClientMethods = Record<string, (...args: any[]) => unknown>;

/**
 * Sends to an audience. Each method of the client interface becomes a send (`clients.all.newMessage(text)`);
 * `send(method, ...args)` reaches any method by name. Both resolve once the bus accepted the message.
 */
export type ClientProxy<TClient = ClientMethods> = {
  send(method: string, ...args: unknown[]): Promise<void>;
} & {
  [K in keyof TClient as K extends 'send' | 'invoke' | 'invokeWithOptions' ? never : K]: TClient[K] extends (
    ...args: infer A
  ) => unknown
    ? (...args: A) => Promise<void>
    : never;
};

/** One connection: sends, and client results (`invoke` resolves with what the client's handler returned). */
export type SingleClientProxy<TClient = ClientMethods> = ClientProxy<TClient> & {
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  invokeWithOptions<T = unknown>(method: string, args: unknown[], options: InvokeOptions): Promise<T>;
};

export interface HubClients<TClient = ClientMethods> {
  readonly all: ClientProxy<TClient>;
  client(connectionId: string): SingleClientProxy<TClient>;
  clients(connectionIds: readonly string[]): ClientProxy<TClient>;
  allExcept(excludedConnectionIds: readonly string[]): ClientProxy<TClient>;
  group(groupName: string): ClientProxy<TClient>;
  groups(groupNames: readonly string[]): ClientProxy<TClient>;
  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): ClientProxy<TClient>;
  user(userId: string): ClientProxy<TClient>;
  users(userIds: readonly string[]): ClientProxy<TClient>;
  /**
   * The distinct user ids of this hub's connections (Core and classic) on every live node of the cluster, sorted.
   * With a backplane, a round trip: every live node answers (see PresenceQueryOptions.timeout for one that does not).
   */
  usersOnline(options?: PresenceQueryOptions): Promise<string[]>;
  /** The connections (Core and classic) in a group on every live node, with their user ids; as `usersOnline`. */
  groupMembers(groupName: string, options?: PresenceQueryOptions): Promise<GroupMember[]>;
}

/** Inside a hub method: the above, plus the audiences relative to the calling connection. */
export interface HubCallerClients<TClient = ClientMethods> extends HubClients<TClient> {
  readonly caller: SingleClientProxy<TClient>;
  readonly others: ClientProxy<TClient>;
  othersInGroup(groupName: string): ClientProxy<TClient>;
}

export interface GroupManager {
  /** Adds a connection (on any node) to a group; resolves once the membership is in effect. */
  add(connectionId: string, groupName: string): Promise<void>;
  remove(connectionId: string, groupName: string): Promise<void>;
}

const RESERVED = new Set(['send', 'invoke', 'invokeWithOptions']);

function createProxy<T>(bus: MessageBus, audience: Audience, connectionId?: string): T {
  const base: Record<string, unknown> = {
    send: (method: string, ...args: unknown[]) => bus.send(audience, method, args),
  };
  if (connectionId !== undefined) {
    base.invoke = (method: string, ...args: unknown[]) => bus.invokeConnection(connectionId, method, args);
    base.invokeWithOptions = (method: string, args: unknown[], options: InvokeOptions) =>
      bus.invokeConnection(connectionId, method, args, options);
  }
  return new Proxy(base, {
    get(target, property) {
      if (typeof property !== 'string') return undefined;
      if (RESERVED.has(property)) return target[property];
      // Not thenable: `await clients.all` must not look like a promise.
      if (property === 'then') return undefined;
      return (...args: unknown[]) => bus.send(audience, property, args);
    },
  }) as T;
}

export class HubClientsImpl<TClient = ClientMethods> implements HubClients<TClient> {
  private allProxy: ClientProxy<TClient> | undefined;
  constructor(protected readonly bus: MessageBus) {}
  get all(): ClientProxy<TClient> {
    if (!this.allProxy) this.allProxy = createProxy<ClientProxy<TClient>>(this.bus, { all: true });
    return this.allProxy;
  }
  client(connectionId: string): SingleClientProxy<TClient> {
    return createProxy(this.bus, { connections: [connectionId] }, connectionId);
  }
  clients(connectionIds: readonly string[]): ClientProxy<TClient> {
    return createProxy(this.bus, { connections: [...connectionIds] });
  }
  allExcept(excludedConnectionIds: readonly string[]): ClientProxy<TClient> {
    return createProxy(this.bus, { all: true, except: [...excludedConnectionIds] });
  }
  group(groupName: string): ClientProxy<TClient> {
    return createProxy(this.bus, { groups: [groupName] });
  }
  groups(groupNames: readonly string[]): ClientProxy<TClient> {
    return createProxy(this.bus, { groups: [...groupNames] });
  }
  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): ClientProxy<TClient> {
    return createProxy(this.bus, { groups: [groupName], except: [...excludedConnectionIds] });
  }
  user(userId: string): ClientProxy<TClient> {
    return createProxy(this.bus, { users: [userId] });
  }
  users(userIds: readonly string[]): ClientProxy<TClient> {
    return createProxy(this.bus, { users: [...userIds] });
  }
  usersOnline(options?: PresenceQueryOptions): Promise<string[]> {
    return this.bus.usersOnline(options);
  }
  groupMembers(groupName: string, options?: PresenceQueryOptions): Promise<GroupMember[]> {
    return this.bus.groupMembers(groupName, options);
  }
}

export class HubCallerClientsImpl<TClient = ClientMethods>
  extends HubClientsImpl<TClient>
  implements HubCallerClients<TClient>
{
  private callerProxy: SingleClientProxy<TClient> | undefined;
  private othersProxy: ClientProxy<TClient> | undefined;
  constructor(
    bus: MessageBus,
    private readonly connectionId: string,
  ) {
    super(bus);
  }
  get caller(): SingleClientProxy<TClient> {
    if (!this.callerProxy) this.callerProxy = this.client(this.connectionId);
    return this.callerProxy;
  }
  get others(): ClientProxy<TClient> {
    if (!this.othersProxy) this.othersProxy = this.allExcept([this.connectionId]);
    return this.othersProxy;
  }
  othersInGroup(groupName: string): ClientProxy<TClient> {
    return this.groupExcept(groupName, [this.connectionId]);
  }
}

export function createGroupManager(bus: MessageBus): GroupManager {
  return {
    add: (connectionId, groupName) => bus.addToGroup(connectionId, groupName),
    remove: (connectionId, groupName) => bus.removeFromGroup(connectionId, groupName),
  };
}

/** Reaches a hub from outside hub code: an HTTP route, a timer, a service. */
export interface HubContext {
  readonly path: string;
  readonly clients: HubClients;
  readonly groups: GroupManager;
  /**
   * This hub's connections (ASP.NET Core protocol) on every node of the cluster: this node's counted now, the
   * others' as of their last heartbeat (at most the backplane's heartbeatInterval old), dead nodes left out. One
   * query to the backplane's database; without a backplane, this node's.
   */
  connectionCount(): Promise<number>;
  /**
   * The distinct user ids of this hub's connections (Core and classic) on every live node, exact as of the query
   * (`clients.usersOnline()`, as hub methods reach it). With a backplane: one row to ask and one per answering
   * node, a round trip through the database; resolves once every live node answered, or after the timeout
   * (default: the client-result timeout, at most 5 s) without the nodes that did not. Without one, this node's.
   */
  usersOnline(options?: PresenceQueryOptions): Promise<string[]>;
  /** The connections in a group on every live node, with their user ids (`clients.groupMembers(group)`). */
  groupMembers(groupName: string, options?: PresenceQueryOptions): Promise<GroupMember[]>;
}
