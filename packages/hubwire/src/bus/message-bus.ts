// The message bus: every send, group change and client-result reply of a hub goes through this interface
// (ASP.NET Core's HubLifetimeManager). The in-memory LocalBus serves one node; the SQL backplanes implement the
// same interface for many, so hub code never changes when one is added.

import type { CompletionMessage, HubMessage } from '../protocol/messages.js';
import type { SerializedMessage } from '../protocol/serialized-message.js';
import type { ConnectionRecord } from './connection-record.js';
import type { Envelope } from './envelope.js';
import type { GroupMember, PresenceQueryOptions } from './presence-query.js';

export type { GroupMember, PresenceQueryOptions } from './presence-query.js';

/** What the bus needs of a live connection on this node. */
export interface BusConnection {
  readonly connectionId: string;
  readonly userId: string | undefined;
  /** Writes an invocation that may be shared with other connections. Never throws. */
  writeSerialized(message: SerializedMessage): void;
  /** Writes one message to this connection only. Never throws. */
  writeMessage(message: HubMessage): void;
  /**
   * Optional: undefined while the client keeps up with what is written to it; else a promise that resolves once
   * it caught up (or the connection ended). A send to this connection alone waits on it.
   */
  whenWritable?(): Promise<void> | undefined;
  /**
   * Optional: told after this node's index changed the connection's membership (the classic SignalR 2 protocol
   * sends the client a new groups token then). Never throws.
   */
  onGroupChange?(group: string, added: boolean): void;
  /**
   * Optional: the connection may continue on another node (classic SignalR 2 clients without sticky sessions).
   * A scaleout bus then publishes its group changes even while it is local, so the node it moves to can read
   * them back from the backplane.
   */
  readonly movable?: boolean;
  /**
   * Optional: the connection keeps its state in the backplane (connection-record.ts). A scaleout bus hands it the
   * records published for it, and the client-result invocations other nodes ask of it, as it reads them, instead
   * of writing them. Never throws.
   */
  onRecord?(record: ConnectionRecord): void;
}

/**
 * Who receives a send. `except` removes connection ids from any audience.
 * Exactly one of `all`, `connections`, `groups`, `users` is set.
 */
export type Audience = { readonly except?: readonly string[] } & (
  | { readonly all: true }
  | { readonly connections: readonly string[] }
  | { readonly groups: readonly string[] }
  | { readonly users: readonly string[] }
);

export interface InvokeOptions {
  /** Rejects with HW_ERR_CLIENT_RESULT_TIMEOUT after this many ms (0 = no timeout). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface MessageBus {
  /**
   * Optional: the key this bus's envelopes carry in a backplane's stream history (StreamHistory), when it runs over
   * one: a replay picks this bus's envelopes by it.
   */
  readonly historyKey?: string;
  /** Registers a connection of this node (after its handshake). */
  onConnected(connection: BusConnection): Promise<void>;
  /**
   * Optional: registers a connection of this node with its groups at once, synchronously and without publishing
   * anything (a classic connection resuming here from a backplane position, its membership already known).
   */
  restore?(connection: BusConnection, groups: Iterable<string>): void;
  /** Drops a connection with its groups and user; pending client results for it reject. */
  onDisconnected(connection: BusConnection): Promise<void>;
  /**
   * Delivers one invocation to every connection of the audience, on every node. Each local recipient gets the
   * message in the order sends were made from this node. A send to one connection of this node resolves once
   * that client is not behind (see BusConnection.whenWritable); a broadcast never waits for a slow client.
   */
  send(audience: Audience, target: string, args: unknown[]): Promise<void>;
  /** Adds a connection (of any node) to a group. Resolves once the membership is in effect. */
  addToGroup(connectionId: string, group: string): Promise<void>;
  removeFromGroup(connectionId: string, group: string): Promise<void>;
  /** Invokes a client method on one connection (of any node) and resolves with the client's result. */
  invokeConnection(connectionId: string, target: string, args: unknown[], options?: InvokeOptions): Promise<unknown>;
  /** Routes a client's completion to the pending invocation; false if none was waiting for it. */
  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean;
  /**
   * Optional, on scaleout buses: publishes a record for a connection that keeps its state in the backplane; the
   * node holding it when the record is read acts on it (BusConnection.onRecord). Resolves once accepted.
   */
  record?(connectionId: string, record: ConnectionRecord): Promise<void>;
  /**
   * Optional, with `record`: what an envelope replayed from the backplane means for such a connection resuming on
   * this node (its records, and client results asked of it, whose answers this bus routes from then on).
   */
  recordFor?(envelope: Envelope, connectionId: string): ConnectionRecord | undefined;
  /** How many client results this node is waiting for (asked by this node, of any node's connections). Cheap. */
  pendingResults(): number;
  /**
   * The distinct user ids of this bus's connections on every live node. A scaleout bus asks the other nodes and
   * resolves once each live node answered, or after the timeout with the answers that arrived.
   */
  usersOnline(options?: PresenceQueryOptions): Promise<string[]>;
  /** The connections in a group on every live node, with their user ids; asked as `usersOnline` is. */
  groupMembers(group: string, options?: PresenceQueryOptions): Promise<GroupMember[]>;
  /**
   * Optional, for buses whose sends resolve before they are durable (a scaleout backplane acknowledging on
   * acceptance): how many messages this bus's node has accepted so far, a mark for `whenDurable`.
   */
  accepted?(): number;
  /**
   * Resolves once every message accepted up to `mark` is durable (undefined when it already is); rejects when it
   * never will be (the backplane closed first). Hub calls hold their results on it, so a caller that saw a result
   * knows that what the call sent is stored.
   */
  whenDurable?(mark: number): Promise<void> | undefined;
  close(): Promise<void>;
}
