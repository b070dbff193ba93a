// SignalR 2's PersistentConnection: a classic endpoint without the hub protocol. Clients (`$.connection('/echo')`)
// send strings (`connection.send(data)`), and receive JSON values (`connection.received(fn)`) sent to one
// connection, to everyone, to a user or to a group. Sends go through a MessageBus of the endpoint's own (the
// backplane's when there is one), so a broadcast or group send made on one node reaches connections on all.

import type { IncomingMessage } from 'node:http';
import type { MessageBus } from '../bus/message-bus.js';
import type { RequestInfo } from '../connection/request-info.js';
import type { HubProtocol } from '../protocol/hub-protocol.js';
import { stringifyAsAspNetCore } from '../protocol/json-protocol.js';
import { type HubMessage, MessageType } from '../protocol/messages.js';
import type { SerializedMessage } from '../protocol/serialized-message.js';
import type { ClassicTransport } from './options.js';

/** One persistent connection, as the handler's hooks see it. */
export interface PersistentConnection {
  readonly connectionId: string;
  /** What the authentication hook returned. */
  readonly user: unknown;
  readonly userId: string | undefined;
  readonly transport: ClassicTransport;
  /** The request that opened (or last reopened) the transport; for `/send` on another node, that request. */
  readonly request: RequestInfo | undefined;
  /** Per-connection storage on this node. */
  readonly items: Map<unknown, unknown>;
  /** The endpoint: send, broadcast, groups. */
  readonly endpoint: PersistentConnectionContext;
  /** Sends a JSON value to this connection. */
  send(value: unknown): Promise<void>;
}

/** SignalR 2's PersistentConnection overrides, as hooks. All may be async; errors are reported, never sent. */
export interface PersistentConnectionHandler {
  /** Checked on every request, negotiate included (SignalR 2's AuthorizeRequest). Default: allow. */
  authorize?(user: unknown, request: IncomingMessage): boolean | Promise<boolean>;
  /** The client started (`/start`). */
  onConnected?(connection: PersistentConnection): unknown;
  /** The client sent `data` (`connection.send(data)`: a string, or JSON when the client sent an object). */
  onReceived?(connection: PersistentConnection, data: string): unknown;
  /** The client reconnected its transport (`/reconnect`, on whichever node it lands): SignalR 2's OnReconnected. */
  onReconnected?(connection: PersistentConnection): unknown;
  /** The client stopped (`stopCalled`), or did not come back within the disconnect timeout. */
  onDisconnected?(connection: PersistentConnection, stopCalled: boolean): unknown;
}

/** Sends to persistent connections from anywhere (hook, HTTP route, hub, timer), on every node. */
export interface PersistentConnectionContext {
  readonly path: string;
  /** Sends a JSON value to one or more connections (of any node). */
  send(connectionIds: string | readonly string[], value: unknown): Promise<void>;
  /** Sends a JSON value to every connection but the excluded ones. */
  broadcast(value: unknown, ...excludeConnectionIds: string[]): Promise<void>;
  /** Sends a JSON value to every connection of a user. */
  sendToUser(userIds: string | readonly string[], value: unknown): Promise<void>;
  readonly groups: {
    add(connectionId: string, group: string): Promise<void>;
    remove(connectionId: string, group: string): Promise<void>;
    send(groups: string | readonly string[], value: unknown, ...excludeConnectionIds: string[]): Promise<void>;
  };
}

/** The target every persistent send carries on the bus: the payload is its only argument. */
const TARGET = '';

const list = (value: string | readonly string[]): readonly string[] => (typeof value === 'string' ? [value] : value);

/** Encodes a persistent send (`arguments[0]`) as the JSON item of `M`, once for all connections of the node. */
const rawProtocol: HubProtocol = {
  name: 'classic:persistent',
  version: 0,
  transferFormat: 'Text',
  createDecoder() {
    throw new Error('Persistent connection messages are not decoded through a HubProtocol.');
  },
  encode(message: HubMessage): Buffer {
    if (message.type !== MessageType.Invocation)
      throw new Error(`Persistent connections receive only sends (not type ${message.type}).`);
    const value = message.arguments[0];
    return Buffer.from(stringifyAsAspNetCore(value === undefined ? null : value));
  },
};

export class PersistentEndpoint implements PersistentConnectionContext {
  readonly groups: PersistentConnectionContext['groups'];

  constructor(
    readonly path: string,
    readonly handler: PersistentConnectionHandler,
    readonly bus: MessageBus,
    readonly reportError: (error: unknown, where: string) => void,
  ) {
    this.groups = {
      add: (connectionId, group) => this.bus.addToGroup(connectionId, group),
      remove: (connectionId, group) => this.bus.removeFromGroup(connectionId, group),
      send: (groups, value, ...except) => this.bus.send({ groups: list(groups), except }, TARGET, [value]),
    };
  }

  send(connectionIds: string | readonly string[], value: unknown): Promise<void> {
    return this.bus.send({ connections: list(connectionIds) }, TARGET, [value]);
  }

  broadcast(value: unknown, ...excludeConnectionIds: string[]): Promise<void> {
    return this.bus.send({ all: true, except: excludeConnectionIds }, TARGET, [value]);
  }

  sendToUser(userIds: string | readonly string[], value: unknown): Promise<void> {
    return this.bus.send({ users: list(userIds) }, TARGET, [value]);
  }

  async authorize(user: unknown, request: IncomingMessage): Promise<boolean> {
    return this.handler.authorize ? this.handler.authorize(user, request) : true;
  }
}

/** What a persistent binding needs from its classic connection. */
export interface PersistentOwner {
  readonly connectionId: string;
  readonly user: unknown;
  readonly userId: string | undefined;
  readonly items: Map<unknown, unknown>;
  readonly transportKind: ClassicTransport;
  readonly request: RequestInfo | undefined;
  /** The connection may move to another node (see BusConnection.movable). */
  readonly movable: boolean;
  enqueue(message: Buffer): void;
  groupsChanged(): void;
}

/** One classic connection on a persistent endpoint: its BusConnection, and the object its hooks get. */
export class PersistentBinding implements PersistentConnection {
  /** This connection's groups, as the bus's index reports them (for the groups token). */
  readonly groups = new Set<string>();

  constructor(
    readonly endpoint: PersistentEndpoint,
    private readonly owner: PersistentOwner,
  ) {}

  get connectionId(): string {
    return this.owner.connectionId;
  }
  get user(): unknown {
    return this.owner.user;
  }
  get userId(): string | undefined {
    return this.owner.userId;
  }
  get transport(): ClassicTransport {
    return this.owner.transportKind;
  }
  get request(): RequestInfo | undefined {
    return this.owner.request;
  }
  get items(): Map<unknown, unknown> {
    return this.owner.items;
  }
  get movable(): boolean {
    return this.owner.movable;
  }

  send(value: unknown): Promise<void> {
    return this.endpoint.send(this.connectionId, value);
  }

  // --- BusConnection ----------------------------------------------------------------------------------------
  writeSerialized(message: SerializedMessage): void {
    let bytes: Buffer;
    try {
      bytes = message.bytesFor(rawProtocol);
    } catch (error) {
      this.endpoint.reportError(error, `encoding a message for persistent connection '${this.connectionId}'`);
      return;
    }
    this.owner.enqueue(bytes);
  }

  writeMessage(message: HubMessage): void {
    if (message.type !== MessageType.Invocation || message.invocationId !== undefined) return;
    try {
      this.owner.enqueue(rawProtocol.encode(message));
    } catch (error) {
      this.endpoint.reportError(error, `encoding a message for persistent connection '${this.connectionId}'`);
    }
  }

  onGroupChange(group: string, added: boolean): void {
    if (added) this.groups.add(group);
    else this.groups.delete(group);
    this.owner.groupsChanged();
  }

  // --- Hooks ------------------------------------------------------------------------------------------------
  runConnected(): Promise<void> {
    return this.run('onConnected', () => this.endpoint.handler.onConnected?.(this), true);
  }

  /** Runs onReconnected; never rejects (errors are reported). */
  runReconnected(): Promise<void> {
    return this.run('onReconnected', () => this.endpoint.handler.onReconnected?.(this), false);
  }

  /** Runs onReceived; never rejects (errors are reported). */
  received(data: string): Promise<void> {
    return this.run('onReceived', () => this.endpoint.handler.onReceived?.(this, data), false);
  }

  /** Leaves the bus, then runs onDisconnected when the connection had started. Never rejects. */
  async disconnect(started: boolean, stopCalled: boolean): Promise<void> {
    try {
      await this.endpoint.bus.onDisconnected(this);
    } catch (error) {
      this.endpoint.reportError(error, `removing persistent connection '${this.connectionId}'`);
    }
    if (started)
      await this.run('onDisconnected', () => this.endpoint.handler.onDisconnected?.(this, stopCalled), false);
  }

  private async run(hook: string, body: () => unknown, rethrow: boolean): Promise<void> {
    try {
      await body();
    } catch (error) {
      if (rethrow) throw error;
      this.endpoint.reportError(
        error,
        `${hook} of persistent connection '${this.connectionId}' at '${this.endpoint.path}'`,
      );
    }
  }
}
