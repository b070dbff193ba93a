// What the nodes' instances of one classic endpoint tell each other through the backplane, so a connection can move
// between nodes without sticky sessions: who holds it now (claims), that onConnected ran elsewhere, that the client
// stopped, and "tell me once you wrote everything you had for it" (a hub result must not overtake progress).

import type { StreamHistory } from '../backplane/stream-history.js';
import { type Envelope, EnvelopeKind } from '../bus/envelope.js';
import { withTimeout } from '../util/timing.js';
import type { ClassicConnection } from './classic-connection.js';

/** What the nodes' instances of one classic endpoint tell each other through the backplane. */
type Notice =
  /** `node` received a transport request of the connection at `at` (ms): older holders let it go. */
  | { op: 'claim'; id: string; node: string; at: number }
  /** onConnected ran (on a node that does not hold the connection): its holder reports the disconnect. */
  | { op: 'started'; id: string }
  /** The client stopped; `reported`: onDisconnected already ran on the node that received /abort. */
  | { op: 'abort'; id: string; reported: boolean }
  /** `node` asks the holder to say (`written`) once what it has for the connection reached the client. */
  | { op: 'flush'; id: string; node: string; token: number }
  | { op: 'written'; id: string; node: string; token: number };

export class ClassicNotices {
  private flushToken = 0;
  private readonly flushWaiters = new Map<number, () => void>();

  constructor(
    private readonly history: StreamHistory | undefined,
    /** This endpoint's name on the backplane. */
    private readonly key: string,
    /** The connections this node holds. */
    private readonly connections: ReadonlyMap<string, ClassicConnection>,
    private readonly hooks: {
      closed(): boolean;
      markEnded(connectionId: string): void;
      reportError(error: unknown, where: string): void;
    },
  ) {}

  /** Listens to the other nodes' instances of this endpoint. */
  listen(): void {
    this.history?.register(this.key, (envelope) => this.receive(envelope));
  }

  private publish(notice: Notice): void {
    this.history?.publish({ kind: EnvelopeKind.Notice, hub: this.key, data: notice }).catch((error: unknown) => {
      if (this.hooks.closed()) return; // shutting down: nothing left to tell
      this.hooks.reportError(error, `telling other nodes about classic connection '${notice.id}'`);
    });
  }

  /** This node holds the connection now: other nodes' states of it let go (the newest claim wins). */
  claim(connection: ClassicConnection): void {
    const node = this.history?.nodeId;
    if (node) this.publish({ op: 'claim', id: connection.connectionId, node, at: connection.claimedAt });
  }

  /** After this node ran onConnected for a connection it does not hold: its holder reports the disconnect. */
  started(connectionId: string): void {
    this.publish({ op: 'started', id: connectionId });
  }

  /** After /abort on this node (`reported`: this node held the connection and ran onDisconnected). */
  abort(connectionId: string, reported: boolean): void {
    this.publish({ op: 'abort', id: connectionId, reported });
  }

  /**
   * Resolves once the node holding the connection has written everything it had for it when this node's earlier
   * sends reached it (or after `timeoutMs`; at once without a backplane).
   */
  holderWritten(connectionId: string, timeoutMs: number): Promise<void> {
    const node = this.history?.nodeId;
    if (!node || this.hooks.closed()) return Promise.resolve();
    const token = ++this.flushToken;
    const written = new Promise<void>((resolve) => this.flushWaiters.set(token, resolve));
    // After this node's sends in its stream order: the holder has them in its buffer when it reads this.
    this.publish({ op: 'flush', id: connectionId, node, token });
    return withTimeout(written, timeoutMs, undefined).finally(() => this.flushWaiters.delete(token));
  }

  private receive(envelope: Envelope): void {
    if (envelope.kind !== EnvelopeKind.Notice) return;
    const notice = envelope.data as Notice;
    if (typeof notice !== 'object' || notice === null || typeof notice.id !== 'string') return;
    const connection = this.connections.get(notice.id);
    switch (notice.op) {
      case 'claim': {
        const self = this.history?.nodeId ?? '';
        if (!connection || notice.node === self || typeof notice.at !== 'number') return;
        // The newest transport request wins (ties: the larger node id); the loser lets go without a disconnect.
        if (connection.claimedAt < notice.at || (connection.claimedAt === notice.at && notice.node > self)) {
          // onConnected ran here: the node that takes over reports the disconnect.
          if (connection.startedHere) this.started(notice.id);
          connection.retire();
        } else {
          // This node saw the client more recently: the other node must let go instead.
          this.claim(connection);
        }
        return;
      }
      case 'started':
        connection?.markStarted();
        return;
      case 'flush': {
        if (!connection || typeof notice.token !== 'number' || typeof notice.node !== 'string') return;
        const { node, token } = notice;
        void connection.whenWritten(2000).then(() => this.publish({ op: 'written', id: notice.id, node, token }));
        return;
      }
      case 'written':
        if (notice.node === this.history?.nodeId) this.flushWaiters.get(notice.token)?.();
        return;
      case 'abort':
        if (connection) {
          if (notice.reported) connection.retire();
          else connection.dispose(undefined, true);
        }
        this.hooks.markEnded(notice.id);
        return;
    }
  }
}
