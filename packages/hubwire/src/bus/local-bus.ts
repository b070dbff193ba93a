// The in-memory message bus of a single node. Scaleout buses reuse its local delivery (deliver) and client
// result bookkeeping.

import { ClientResultError, HubwireError } from '../errors.js';
import { type CompletionMessage, MessageType } from '../protocol/messages.js';
import { SerializedMessage } from '../protocol/serialized-message.js';
import { ConnectionIndex } from './connection-index.js';
import type { Audience, BusConnection, InvokeOptions, MessageBus } from './message-bus.js';
import { PendingInvocations } from './pending-invocations.js';
import {
  answerLocally,
  type GroupMember,
  mergeMembers,
  mergeUsers,
  type PresenceQueryOptions,
  queryTimeout,
} from './presence-query.js';

export interface LocalBusOptions {
  /** Default timeout of client results (ms, 0 = none). */
  clientResultTimeout?: number;
}

export class LocalBus implements MessageBus {
  readonly index = new ConnectionIndex();
  private readonly invocations: PendingInvocations;
  private nextInvocationId = 0;

  constructor(options: LocalBusOptions = {}) {
    this.invocations = new PendingInvocations(options.clientResultTimeout ?? 0);
  }

  async onConnected(connection: BusConnection): Promise<void> {
    this.index.add(connection);
  }

  restore(connection: BusConnection, groups: Iterable<string>): void {
    this.index.add(connection);
    for (const group of groups) this.index.addToGroup(connection, group);
  }

  async onDisconnected(connection: BusConnection): Promise<void> {
    this.index.remove(connection);
    this.invocations.rejectAll(
      new HubwireError('HW_ERR_CONNECTION_CLOSED', `Connection '${connection.connectionId}' disconnected.`),
      connection.connectionId,
    );
  }

  async send(audience: Audience, target: string, args: unknown[]): Promise<void> {
    this.deliver(audience, new SerializedMessage(target, args));
    const behind = this.whenWritable(audience);
    if (behind) await behind;
  }

  /** For an audience of one connection of this node: its wait while the client is behind (else undefined). */
  whenWritable(audience: Audience): Promise<void> | undefined {
    if (!('connections' in audience) || audience.connections.length !== 1) return undefined;
    return this.index.connections.get(audience.connections[0] as string)?.whenWritable?.();
  }

  /** Writes a message to every local connection of the audience. */
  deliver(audience: Audience, message: SerializedMessage): void {
    const except = audience.except && audience.except.length > 0 ? audience.except : undefined;
    const write = (connection: BusConnection) => {
      if (except?.includes(connection.connectionId)) return;
      connection.writeSerialized(message);
    };
    if ('all' in audience) {
      for (const connection of this.index.connections.values()) write(connection);
    } else if ('connections' in audience) {
      for (const id of new Set(audience.connections)) {
        const connection = this.index.connections.get(id);
        if (connection) write(connection);
      }
    } else if ('groups' in audience) {
      if (audience.groups.length === 1) {
        const members = this.index.group(audience.groups[0] as string);
        if (members) for (const connection of members) write(connection);
      } else {
        const seen = new Set<BusConnection>();
        for (const group of audience.groups) {
          for (const connection of this.index.group(group) ?? []) seen.add(connection);
        }
        for (const connection of seen) write(connection);
      }
    } else {
      const seen = new Set<BusConnection>();
      for (const user of audience.users) {
        for (const connection of this.index.user(user) ?? []) seen.add(connection);
      }
      for (const connection of seen) write(connection);
    }
  }

  async addToGroup(connectionId: string, group: string): Promise<void> {
    const connection = this.index.connections.get(connectionId);
    if (connection) this.index.addToGroup(connection, group);
  }

  async removeFromGroup(connectionId: string, group: string): Promise<void> {
    const connection = this.index.connections.get(connectionId);
    if (connection) this.index.removeFromGroup(connection, group);
  }

  invokeConnection(
    connectionId: string,
    target: string,
    args: unknown[],
    options: InvokeOptions = {},
  ): Promise<unknown> {
    const connection = this.index.connections.get(connectionId);
    if (!connection) {
      return Promise.reject(
        new HubwireError('HW_ERR_CONNECTION_NOT_FOUND', `Connection '${connectionId}' does not exist.`),
      );
    }
    // Prefixed so it can never be mistaken for a client-chosen upload stream id.
    const invocationId = `r${++this.nextInvocationId}`;
    return this.invocations.start(invocationId, connectionId, target, options, () =>
      connection.writeMessage({ type: MessageType.Invocation, invocationId, target, arguments: args }),
    );
  }

  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean {
    // Only the connection that was asked may answer.
    if (this.invocations.connectionOf(completion.invocationId) !== connectionId) return false;
    if (completion.error !== undefined) {
      this.invocations.reject(completion.invocationId, new ClientResultError(completion.error));
    } else this.invocations.resolve(completion.invocationId, completion.result);
    return true;
  }

  pendingResults(): number {
    return this.invocations.size;
  }

  /** This node's users: no other node to ask. */
  async usersOnline(options?: PresenceQueryOptions): Promise<string[]> {
    queryTimeout(options, 0); // checks the option, as a scaleout bus would
    return mergeUsers([answerLocally(this.index, { what: 'users' })]);
  }

  async groupMembers(group: string, options?: PresenceQueryOptions): Promise<GroupMember[]> {
    queryTimeout(options, 0);
    return mergeMembers([answerLocally(this.index, { what: 'group', group: String(group) })]);
  }

  async close(): Promise<void> {
    this.invocations.rejectAll(new HubwireError('HW_ERR_CONNECTION_CLOSED', 'The server is shutting down.'));
  }
}
