// The MessageBus of a hub on a scaleout backplane. Sends and group changes for other nodes' connections are
// published and delivered on every node when read back in stream order (this node's own too, so every receiver
// sees one order); local work (index, delivery, client results) is the LocalBus's.

import type { ScaleoutEngine } from '../backplane/scaleout-engine.js';
import { ClientResultError, HubwireError } from '../errors.js';
import { SerializedMessage } from '../hub/serialized-message.js';
import type { CompletionMessage } from '../protocol/messages.js';
import type { Envelope } from './envelope.js';
import { LocalBus } from './local-bus.js';
import type { Audience, BusConnection, InvokeOptions, MessageBus } from './message-bus.js';

interface RemoteInvocation {
  connectionId: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class ScaleoutBus implements MessageBus {
  private readonly local: LocalBus;
  /** Client results this node asked of connections on other nodes, by invocation id. */
  private readonly remoteInvocations = new Map<string, RemoteInvocation>();
  /** Invocations other nodes asked of our connections: invocation id → the node awaiting the reply. */
  private readonly forwarded = new Map<string, { connectionId: string; replyNode: string }>();
  private nextInvocationId = 0;

  constructor(
    private readonly engine: ScaleoutEngine,
    private readonly hub: string,
    private readonly clientResultTimeout: number,
  ) {
    this.local = new LocalBus({ clientResultTimeout });
    engine.register(hub, (envelope) => this.receive(envelope));
  }

  async onConnected(connection: BusConnection): Promise<void> {
    await this.local.onConnected(connection);
  }

  async onDisconnected(connection: BusConnection): Promise<void> {
    await this.local.onDisconnected(connection);
    // Nodes waiting on this connection's answers hear that it is gone.
    for (const [invocationId, entry] of [...this.forwarded]) {
      if (entry.connectionId !== connection.connectionId) continue;
      this.forwarded.delete(invocationId);
      this.publishReply(
        entry.replyNode,
        invocationId,
        `Connection '${connection.connectionId}' disconnected.`,
        undefined,
      );
    }
  }

  send(audience: Audience, target: string, args: unknown[]): Promise<void> {
    return this.engine.publish({ kind: 1, hub: this.hub, audience, target, args });
  }

  /**
   * A local connection's membership changes once this node has delivered everything committed before the call,
   * so it is ordered with sends as on one node. Another node's connection hears the change in this node's
   * stream order: a send this node makes afterwards sees the new membership.
   */
  async addToGroup(connectionId: string, group: string): Promise<void> {
    if (this.local.index.connections.has(connectionId)) {
      await this.engine.sync();
      return this.local.addToGroup(connectionId, group);
    }
    return this.engine.publish({ kind: 2, hub: this.hub, connectionId, group, add: true });
  }

  async removeFromGroup(connectionId: string, group: string): Promise<void> {
    if (this.local.index.connections.has(connectionId)) {
      await this.engine.sync();
      return this.local.removeFromGroup(connectionId, group);
    }
    return this.engine.publish({ kind: 2, hub: this.hub, connectionId, group, add: false });
  }

  invokeConnection(
    connectionId: string,
    target: string,
    args: unknown[],
    options: InvokeOptions = {},
  ): Promise<unknown> {
    if (this.local.index.connections.has(connectionId)) {
      return this.local.invokeConnection(connectionId, target, args, options);
    }
    const invocationId = `${this.engine.nodeId}:${++this.nextInvocationId}`;
    const timeout = options.timeout ?? this.clientResultTimeout;
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(options.signal?.reason ?? new Error('The invocation was aborted.')));
      const settle = (action: () => void) => {
        if (!this.remoteInvocations.delete(invocationId)) return;
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        action();
      };
      this.remoteInvocations.set(invocationId, {
        connectionId,
        resolve: (value) => settle(() => resolve(value)),
        reject: (error) => settle(() => reject(error)),
      });
      if (timeout > 0) {
        // Also what happens when no node has the connection: nobody answers.
        timer = setTimeout(
          () =>
            settle(() =>
              reject(
                new HubwireError(
                  'HW_ERR_CLIENT_RESULT_TIMEOUT',
                  `Client '${connectionId}' did not answer '${target}' within ${timeout} ms (or no node has that connection).`,
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
      this.engine
        .publish({ kind: 3, hub: this.hub, connectionId, invocationId, target, args, replyNode: this.engine.nodeId })
        .catch((error: Error) => this.remoteInvocations.get(invocationId)?.reject(error));
    });
  }

  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean {
    if (this.local.setConnectionResult(connectionId, completion)) return true;
    const entry = this.forwarded.get(completion.invocationId);
    if (!entry || entry.connectionId !== connectionId) return false;
    this.forwarded.delete(completion.invocationId);
    this.publishReply(entry.replyNode, completion.invocationId, completion.error, completion.result);
    return true;
  }

  private publishReply(replyNode: string, invocationId: string, error: string | undefined, result: unknown): void {
    this.engine.publish({ kind: 4, hub: this.hub, replyNode, invocationId, error, result }).catch(() => {
      // The asking node times out; nothing else can be done without the database.
    });
  }

  /** An envelope read from the backplane (in stream order). */
  private receive(envelope: Envelope): void {
    switch (envelope.kind) {
      case 1:
        this.local.deliver(envelope.audience, new SerializedMessage(envelope.target, envelope.args));
        return;
      case 2:
        if (envelope.add) void this.local.addToGroup(envelope.connectionId, envelope.group);
        else void this.local.removeFromGroup(envelope.connectionId, envelope.group);
        return;
      case 3: {
        const connection = this.local.index.connections.get(envelope.connectionId);
        if (!connection) return; // another node's connection, or gone (the asker times out)
        this.forwarded.set(envelope.invocationId, {
          connectionId: envelope.connectionId,
          replyNode: envelope.replyNode,
        });
        connection.writeMessage({
          type: 1,
          invocationId: envelope.invocationId,
          target: envelope.target,
          arguments: envelope.args,
        });
        return;
      }
      case 4: {
        if (envelope.replyNode !== this.engine.nodeId) return;
        const pending = this.remoteInvocations.get(envelope.invocationId);
        if (!pending) return;
        if (envelope.error !== undefined) pending.reject(new ClientResultError(envelope.error));
        else pending.resolve(envelope.result);
        return;
      }
    }
  }

  async close(): Promise<void> {
    await this.local.close();
    for (const pending of [...this.remoteInvocations.values()]) {
      pending.reject(new HubwireError('HW_ERR_CONNECTION_CLOSED', 'The server is shutting down.'));
    }
  }
}
