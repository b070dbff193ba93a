// The in-memory message bus of a single node. Scaleout buses reuse its local delivery (deliver) and client
// result bookkeeping.

import { ClientResultError, HubwireError } from '../errors.js';
import { SerializedMessage } from '../hub/serialized-message.js';
import type { CompletionMessage } from '../protocol/messages.js';
import { ConnectionIndex } from './connection-index.js';
import type { Audience, BusConnection, InvokeOptions, MessageBus } from './message-bus.js';

interface PendingResult {
  connectionId: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export interface LocalBusOptions {
  /** Default timeout of client results (ms, 0 = none). */
  clientResultTimeout?: number;
}

export class LocalBus implements MessageBus {
  readonly index = new ConnectionIndex();
  private readonly pendingResults = new Map<string, PendingResult>();
  private nextInvocationId = 0;
  private readonly clientResultTimeout: number;

  constructor(options: LocalBusOptions = {}) {
    this.clientResultTimeout = options.clientResultTimeout ?? 0;
  }

  async onConnected(connection: BusConnection): Promise<void> {
    this.index.add(connection);
  }

  async onDisconnected(connection: BusConnection): Promise<void> {
    this.index.remove(connection);
    for (const pending of [...this.pendingResults.values()]) {
      if (pending.connectionId === connection.connectionId) {
        // reject() removes the entry (settle).
        pending.reject(
          new HubwireError('HW_ERR_CONNECTION_CLOSED', `Connection '${connection.connectionId}' disconnected.`),
        );
      }
    }
  }

  async send(audience: Audience, target: string, args: unknown[]): Promise<void> {
    this.deliver(audience, new SerializedMessage(target, args));
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
    return new Promise<unknown>((resolve, reject) => {
      const timeout = options.timeout ?? this.clientResultTimeout;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(options.signal?.reason ?? new Error('The invocation was aborted.')));
      const settle = (action: () => void) => {
        if (!this.pendingResults.delete(invocationId)) return;
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        action();
      };
      this.pendingResults.set(invocationId, {
        connectionId,
        resolve: (value) => settle(() => resolve(value)),
        reject: (error) => settle(() => reject(error)),
      });
      if (timeout > 0) {
        timer = setTimeout(
          () =>
            settle(() =>
              reject(
                new HubwireError(
                  'HW_ERR_CLIENT_RESULT_TIMEOUT',
                  `Client '${connectionId}' did not answer '${target}' within ${timeout} ms.`,
                ),
              ),
            ),
          timeout,
        );
      }
      if (options.signal) {
        if (options.signal.aborted) return onAbort();
        options.signal.addEventListener('abort', onAbort, { once: true });
      }
      connection.writeMessage({ type: 1, invocationId, target, arguments: args });
    });
  }

  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean {
    const pending = this.pendingResults.get(completion.invocationId);
    // Only the connection that was asked may answer.
    if (!pending || pending.connectionId !== connectionId) return false;
    if (completion.error !== undefined) pending.reject(new ClientResultError(completion.error));
    else pending.resolve(completion.result);
    return true;
  }

  async close(): Promise<void> {
    for (const pending of [...this.pendingResults.values()]) {
      pending.reject(new HubwireError('HW_ERR_CONNECTION_CLOSED', 'The server is shutting down.'));
    }
  }
}
