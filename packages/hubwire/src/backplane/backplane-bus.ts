// The MessageBus of a hub on a scaleout backplane. Sends and group changes for other nodes' connections are
// published and delivered on every node when read back in stream order (this node's own too, so every receiver
// sees one order); local work (index, delivery, client results) is the LocalBus's; presence queries ask every live
// node (cluster-query.ts).

import type { ConnectionRecord } from '../bus/connection-record.js';
import { type Envelope, EnvelopeKind } from '../bus/envelope.js';
import { LocalBus } from '../bus/local-bus.js';
import type { Audience, BusConnection, InvokeOptions, MessageBus } from '../bus/message-bus.js';
import { PendingInvocations } from '../bus/pending-invocations.js';
import {
  answerLocally,
  defaultQueryTimeout,
  type GroupMember,
  mergeMembers,
  mergeUsers,
  type PresenceQueryOptions,
  queryTimeout,
} from '../bus/presence-query.js';
import { ClientResultError, HubwireError } from '../errors.js';
import { type CompletionMessage, type InvocationMessage, MessageType } from '../protocol/messages.js';
import { SerializedMessage } from '../protocol/serialized-message.js';
import type { Backplane } from './backplane.js';
import { ClusterQueries, mapsHub } from './cluster-query.js';

export class BackplaneBus implements MessageBus {
  private readonly local: LocalBus;
  /** Client results this node asked of connections on other nodes, by invocation id. */
  private readonly remoteInvocations: PendingInvocations;
  /** Invocations other nodes asked of our connections: invocation id → the node awaiting the reply. */
  private readonly forwarded = new Map<string, { connectionId: string; replyNode: string }>();
  private nextInvocationId = 0;
  /**
   * Client results asked of a connection not on this node: the live nodes that have to say they do not hold it
   * (undefined until the registry was read) and those that said so. Once all have, no node holds it.
   */
  private readonly absent = new Map<string, { expected: Set<string> | undefined; said: Set<string> }>();
  private readonly queries: ClusterQueries;
  /** How long presence queries wait for the nodes' answers by default (ms). */
  private readonly queryTimeout: number;

  constructor(
    private readonly engine: Backplane,
    /** This bus's name on the backplane (the `hub` of its envelopes). */
    readonly historyKey: string,
    clientResultTimeout: number,
  ) {
    this.local = new LocalBus({ clientResultTimeout });
    this.remoteInvocations = new PendingInvocations(clientResultTimeout);
    this.queryTimeout = defaultQueryTimeout(clientResultTimeout);
    this.queries = new ClusterQueries(
      engine,
      historyKey,
      () => this.liveNodes(),
      (question) => answerLocally(this.local.index, question),
    );
    engine.register(historyKey, (envelope) => this.receive(envelope));
  }

  async onConnected(connection: BusConnection): Promise<void> {
    await this.local.onConnected(connection);
  }

  restore(connection: BusConnection, groups: Iterable<string>): void {
    this.local.restore(connection, groups);
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
    const published = this.engine.publish({ kind: EnvelopeKind.Send, hub: this.historyKey, audience, target, args });
    // A send to one connection of this node also waits while that client is behind.
    if (!('connections' in audience) || audience.connections.length !== 1) return published;
    return published.then(() => this.local.whenWritable(audience));
  }

  /**
   * A local connection's membership changes once this node has delivered everything committed before the call,
   * so it is ordered with sends as on one node. Another node's connection (or a movable one of this node) hears
   * the change in this node's stream order: a send this node makes afterwards sees the new membership.
   */
  async addToGroup(connectionId: string, group: string): Promise<void> {
    const local = this.local.index.connections.get(connectionId);
    if (local && !local.movable) {
      await this.engine.sync();
      return this.local.addToGroup(connectionId, group);
    }
    return this.engine.publish({ kind: EnvelopeKind.Group, hub: this.historyKey, connectionId, group, add: true });
  }

  async removeFromGroup(connectionId: string, group: string): Promise<void> {
    const local = this.local.index.connections.get(connectionId);
    if (local && !local.movable) {
      await this.engine.sync();
      return this.local.removeFromGroup(connectionId, group);
    }
    return this.engine.publish({ kind: EnvelopeKind.Group, hub: this.historyKey, connectionId, group, add: false });
  }

  invokeConnection(
    connectionId: string,
    target: string,
    args: unknown[],
    options: InvokeOptions = {},
  ): Promise<unknown> {
    const local = this.local.index.connections.get(connectionId);
    // A connection that may move to another node is asked through the backplane: its answer finds this node
    // wherever the connection is by then.
    if (local && !keepsRecords(local)) return this.local.invokeConnection(connectionId, target, args, options);
    const invocationId = `${this.engine.nodeId}:${++this.nextInvocationId}`;
    if (!local) {
      this.absent.set(invocationId, { expected: undefined, said: new Set() });
      this.expectAnswers(invocationId, connectionId);
    }
    // A connection no live node holds fails once every live node said so (without a node registry: the timeout).
    const result = this.remoteInvocations.start(
      invocationId,
      connectionId,
      target,
      options,
      () => {
        this.engine
          .publish({
            kind: EnvelopeKind.Invoke,
            hub: this.historyKey,
            connectionId,
            invocationId,
            target,
            args,
            replyNode: this.engine.nodeId,
          })
          .catch((error: Error) => this.remoteInvocations.reject(invocationId, error));
      },
      ' (or no node has that connection)',
    );
    return result.finally(() => this.absent.delete(invocationId));
  }

  /** The other live nodes that map this hub, from the registry as read at most a second ago. */
  private async liveNodes(): Promise<Set<string>> {
    const nodes = await this.engine.recentNodes();
    return new Set(
      nodes.filter((node) => node.alive && !node.self && mapsHub(node.info, this.historyKey)).map((node) => node.id),
    );
  }

  /** Reads which other nodes are alive: each must answer an Invoke, or say it does not hold the connection. */
  private expectAnswers(invocationId: string, connectionId: string): void {
    this.liveNodes().then(
      (expected) => {
        const entry = this.absent.get(invocationId);
        if (!entry) return;
        entry.expected = expected;
        this.checkAbsent(invocationId, connectionId);
      },
      () => {
        // No registry (or the database is unreachable): the invocation's timeout decides.
      },
    );
  }

  private checkAbsent(invocationId: string, connectionId: string): void {
    const entry = this.absent.get(invocationId);
    if (!entry?.expected) return;
    for (const node of entry.expected) if (!entry.said.has(node)) return;
    this.remoteInvocations.reject(
      invocationId,
      new HubwireError(
        'HW_ERR_CONNECTION_NOT_FOUND',
        `Connection '${connectionId}' does not exist: no live node holds it (${entry.expected.size} other node(s) answered).`,
      ),
    );
  }

  pendingResults(): number {
    return this.local.pendingResults() + this.remoteInvocations.size;
  }

  async usersOnline(options?: PresenceQueryOptions): Promise<string[]> {
    return mergeUsers(await this.queries.ask({ what: 'users' }, queryTimeout(options, this.queryTimeout)));
  }

  async groupMembers(group: string, options?: PresenceQueryOptions): Promise<GroupMember[]> {
    const question = { what: 'group' as const, group: String(group) };
    return mergeMembers(await this.queries.ask(question, queryTimeout(options, this.queryTimeout)));
  }

  accepted(): number {
    return this.engine.accepted;
  }

  whenDurable(mark: number): Promise<void> | undefined {
    return this.engine.whenCommitted(mark);
  }

  setConnectionResult(connectionId: string, completion: CompletionMessage): boolean {
    if (this.local.setConnectionResult(connectionId, completion)) return true;
    const entry = this.forwarded.get(completion.invocationId);
    if (!entry || entry.connectionId !== connectionId) return false;
    this.forwarded.delete(completion.invocationId);
    this.publishReply(entry.replyNode, completion.invocationId, completion.error, completion.result);
    return true;
  }

  record(connectionId: string, record: ConnectionRecord): Promise<void> {
    return this.engine.publish({ kind: EnvelopeKind.Record, hub: this.historyKey, connectionId, record });
  }

  /**
   * What a replayed envelope means for a connection that keeps its state in the backplane (resuming it on this
   * node): its records, and client results asked of it (their answers are routed from here on).
   */
  recordFor(envelope: Envelope, connectionId: string): ConnectionRecord | undefined {
    if (envelope.kind === EnvelopeKind.Record && envelope.connectionId === connectionId) return envelope.record;
    if (envelope.kind !== EnvelopeKind.Invoke || envelope.connectionId !== connectionId) return undefined;
    this.forwarded.set(envelope.invocationId, { connectionId, replyNode: envelope.replyNode });
    return { kind: 'message', message: invocationOf(envelope) };
  }

  private publishReply(replyNode: string, invocationId: string, error: string | undefined, result: unknown): void {
    this.engine
      .publish({ kind: EnvelopeKind.Reply, hub: this.historyKey, replyNode, invocationId, error, result })
      .catch(() => {
        // The asking node times out; nothing else can be done without the database.
      });
  }

  private publishAbsent(replyNode: string, invocationId: string): void {
    const node = this.engine.nodeId;
    this.engine
      .publish({ kind: EnvelopeKind.Absent, hub: this.historyKey, replyNode, invocationId, node })
      .catch(() => {
        // The asking node times out instead.
      });
  }

  /** An envelope read from the backplane (in stream order). */
  private receive(envelope: Envelope): void {
    switch (envelope.kind) {
      case EnvelopeKind.Send:
        this.local.deliver(envelope.audience, new SerializedMessage(envelope.target, envelope.args));
        return;
      case EnvelopeKind.Group:
        if (envelope.add) void this.local.addToGroup(envelope.connectionId, envelope.group);
        else void this.local.removeFromGroup(envelope.connectionId, envelope.group);
        return;
      case EnvelopeKind.Invoke: {
        const connection = this.local.index.connections.get(envelope.connectionId);
        if (!connection) {
          // Another node's connection, or none: say so, so the asker need not wait for its timeout.
          if (envelope.replyNode !== this.engine.nodeId) this.publishAbsent(envelope.replyNode, envelope.invocationId);
          return;
        }
        this.forwarded.set(envelope.invocationId, {
          connectionId: envelope.connectionId,
          replyNode: envelope.replyNode,
        });
        if (keepsRecords(connection)) connection.onRecord({ kind: 'message', message: invocationOf(envelope) });
        else connection.writeMessage(invocationOf(envelope));
        return;
      }
      case EnvelopeKind.Record:
        this.local.index.connections.get(envelope.connectionId)?.onRecord?.(envelope.record);
        return;
      case EnvelopeKind.Absent: {
        if (envelope.replyNode !== this.engine.nodeId) return;
        const entry = this.absent.get(envelope.invocationId);
        if (!entry) return;
        entry.said.add(envelope.node);
        const connectionId = this.remoteInvocations.connectionOf(envelope.invocationId);
        if (connectionId !== undefined) this.checkAbsent(envelope.invocationId, connectionId);
        return;
      }
      case EnvelopeKind.Reply: {
        if (envelope.replyNode !== this.engine.nodeId) return;
        if (envelope.error !== undefined) {
          this.remoteInvocations.reject(envelope.invocationId, new ClientResultError(envelope.error));
        } else this.remoteInvocations.resolve(envelope.invocationId, envelope.result);
        return;
      }
      case EnvelopeKind.Query:
        this.queries.onQuery(envelope);
        return;
      case EnvelopeKind.Answer:
        this.queries.onAnswer(envelope);
        return;
    }
  }

  async close(): Promise<void> {
    await this.local.close();
    const closing = new HubwireError('HW_ERR_CONNECTION_CLOSED', 'The server is shutting down.');
    this.remoteInvocations.rejectAll(closing);
    this.queries.close(closing);
  }
}

function invocationOf(envelope: Envelope & { kind: typeof EnvelopeKind.Invoke }): InvocationMessage {
  return {
    type: MessageType.Invocation,
    invocationId: envelope.invocationId,
    target: envelope.target,
    arguments: envelope.args,
  };
}

/** A connection that keeps its state in the backplane: it is written to when its records are read back. */
function keepsRecords(
  connection: BusConnection,
): connection is BusConnection & { onRecord: NonNullable<BusConnection['onRecord']> } {
  return connection.movable === true && connection.onRecord !== undefined;
}
