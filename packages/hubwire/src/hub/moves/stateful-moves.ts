// Stateful reconnect across nodes. A stateful-reconnect connection (withStatefulReconnect(), WebSockets) without
// sticky sessions keeps its state in the backplane (portable-state.ts); its holder publishes checkpoints, and every
// node keeps the newest per connection. When the client's transport breaks and its reconnect reaches another node,
// that node asks the holder to let the connection go (if it is alive it fails the invocations it was running and
// answers), rebuilds the connection from the newest checkpoint and the rows after it, and announces the sequence id
// the checkpoint stands at: the client drops the ids it already had, so it gets everything once and in order.
//
// It needs one backplane stream (`tableCount: 1`, the default): with several, two nodes may deliver rows of
// different streams in different orders, and the numbering could not be rebuilt.

import type { StreamHistory } from '../../backplane/stream-history.js';
import type { MessageBus } from '../../bus/message-bus.js';
import type { ClusterLink } from '../../connection/cross-node.js';
import { type Checkpoint, parseCheckpoint } from './checkpoint.js';
import { PortableState } from './portable-state.js';

/** The key moves travel under on the backplane. */
export const MOVES_KEY = 'hubwire:moves';

/** How long a node the client moved to waits for a live holder to let the connection go (ms). */
const RELEASE_WAIT_MS = 1500;
/** Checkpoints of connections whose holder is gone are forgotten after this long (ms). */
const FORGET_AFTER_MS = 120_000;
const SWEEP_EVERY_MS = 30_000;
/** Checkpoints per notice (a notice is one envelope of a row). */
const CHECKPOINTS_PER_NOTICE = 256;
/** At most this many checkpoints are kept (the oldest go first). */
const MAX_CHECKPOINTS = 200_000;

/** A connection held here that another node may take over. */
export interface MovableConnection {
  /** Lets the connection go without ending it: fails what it runs, leaves the bus, writes nothing more. */
  moveAway(): void;
}

export interface TakeOver {
  checkpoint: Checkpoint;
  /** The holder answered: it let the connection go (and failed what it was running). */
  released: boolean;
}

interface Kept {
  checkpoint: Checkpoint;
  /** How many times the connection moved: a holder's checkpoint never replaces a newer holder's. */
  moves: number;
  seenAt: number;
}

export class StatefulMoves {
  private readonly checkpoints = new Map<string, Kept>();
  private readonly held = new Map<string, { connection: MovableConnection; moves: number }>();
  private readonly answers = new Map<string, () => void>();
  private queued: { checkpoint: Checkpoint; moves: number }[] = [];
  private nextRequest = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly link: ClusterLink,
    readonly history: StreamHistory,
    private readonly reportError: (error: unknown, where: string) => void,
  ) {
    link.listen((data) => this.receive(data));
    // A move replays the last second or so of rows: from memory, not the database.
    history.retainRecentRows();
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** The backplane side of a connection starting (or resuming) here. */
  createState(
    connectionId: string,
    bus: MessageBus,
    protocol: string,
    failed: (error: unknown) => void,
  ): PortableState | undefined {
    const record = bus.record?.bind(bus);
    if (!record || bus.historyKey === undefined) return undefined;
    const moves = () => this.held.get(connectionId)?.moves ?? 0;
    return new PortableState(
      {
        nodeId: this.link.nodeId,
        positions: () => this.history.positions(),
        record: (entry) => record(connectionId, entry),
        checkpoint: (checkpoint) => this.queue(checkpoint, moves()),
        failed,
      },
      connectionId,
      bus.historyKey,
      protocol,
    );
  }

  /** The connection is held here from now on (`moves`: how many times it moved before). */
  hold(connectionId: string, connection: MovableConnection, moves = 0): void {
    this.held.set(connectionId, { connection, moves });
  }

  /** The connection ended here (`ended`: for good, every node forgets it; else it moved away). */
  letGo(connectionId: string, ended: boolean): void {
    const entry = this.held.get(connectionId);
    if (!entry) return;
    this.held.delete(connectionId);
    if (!ended) return;
    this.link.publish({ op: 'end', id: connectionId, moves: entry.moves }).catch((error: unknown) => {
      this.reportError(error, `telling other nodes that connection '${connectionId}' ended`);
    });
  }

  private queue(checkpoint: Checkpoint, moves: number): void {
    this.queued.push({ checkpoint, moves });
    if (this.queued.length === 1) setImmediate(() => this.flush());
  }

  /** Publishes the checkpoints queued this turn, a bounded number per notice. */
  private flush(): void {
    const list = this.queued;
    this.queued = [];
    for (let i = 0; i < list.length; i += CHECKPOINTS_PER_NOTICE) {
      const chunk = list.slice(i, i + CHECKPOINTS_PER_NOTICE);
      this.link
        .publish({ op: 'checkpoints', list: chunk.map((entry) => ({ ...entry.checkpoint, moves: entry.moves })) })
        .catch((error: unknown) => this.reportError(error, 'publishing stateful-reconnect checkpoints'));
    }
  }

  /**
   * A client reconnects here to a connection another node held: the newest checkpoint of it (after reading every
   * one committed so far), once its holder let it go or did not answer in time; undefined when none is known.
   */
  async takeOver(connectionId: string, hub: string): Promise<(TakeOver & { moves: number }) | undefined> {
    await this.caughtUp();
    const kept = this.checkpoints.get(connectionId);
    if (!kept || kept.checkpoint.hub !== hub) return undefined;
    let released = false;
    if (kept.checkpoint.node !== this.link.nodeId) {
      released = await this.askRelease(connectionId, kept.checkpoint.node);
    }
    // The holder may have published a newer one before it let go.
    const newest = this.checkpoints.get(connectionId) ?? kept;
    return { checkpoint: newest.checkpoint, released, moves: newest.moves + 1 };
  }

  private async caughtUp(): Promise<void> {
    try {
      await this.link.barrier(2000);
    } catch {
      // the stream heads cannot be read: go on with what this node has read
    }
  }

  /** Asks `node` to let the connection go; true once it answered (false: dead, or too slow). */
  private async askRelease(connectionId: string, node: string): Promise<boolean> {
    let alive: ReadonlySet<string> | undefined;
    try {
      alive = await this.link.aliveNodes();
    } catch {
      alive = undefined;
    }
    if (alive && !alive.has(node)) return false;
    const request = `${this.link.nodeId}:${++this.nextRequest}`;
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<boolean>((resolve) => {
      this.answers.set(request, () => resolve(true));
      timer = setTimeout(() => resolve(false), RELEASE_WAIT_MS);
    });
    try {
      await this.link.publish({ op: 'release', id: connectionId, node: this.link.nodeId, request });
      return await answered;
    } catch (error) {
      this.reportError(error, `asking node ${node} to let connection '${connectionId}' go`);
      return false;
    } finally {
      clearTimeout(timer);
      this.answers.delete(request);
    }
  }

  private receive(data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    const message = data as Record<string, unknown>;
    switch (message.op) {
      case 'checkpoints':
        if (Array.isArray(message.list)) for (const item of message.list) this.keep(item);
        return;
      case 'end': {
        const kept = typeof message.id === 'string' ? this.checkpoints.get(message.id) : undefined;
        if (kept && typeof message.moves === 'number' && kept.moves <= message.moves) {
          this.checkpoints.delete(message.id as string);
        }
        return;
      }
      case 'release': {
        if (typeof message.id !== 'string' || typeof message.node !== 'string') return;
        if (message.node === this.link.nodeId) return;
        const held = this.held.get(message.id);
        if (!held) return;
        this.held.delete(message.id);
        held.connection.moveAway();
        // Published after the records of moveAway: the asking node reads those first.
        this.link.publish({ op: 'released', request: message.request, to: message.node }).catch((error: unknown) => {
          this.reportError(error, `letting connection '${message.id as string}' go to node ${message.node as string}`);
        });
        return;
      }
      case 'released':
        if (message.to === this.link.nodeId && typeof message.request === 'string') {
          this.answers.get(message.request)?.();
        }
        return;
    }
  }

  private keep(item: unknown): void {
    const checkpoint = parseCheckpoint(item);
    const moves = (item as { moves?: unknown }).moves;
    if (!checkpoint || typeof moves !== 'number') return;
    const kept = this.checkpoints.get(checkpoint.id);
    if (kept && kept.moves > moves) return; // from a node the connection has moved away from
    const held = this.held.get(checkpoint.id);
    if (held && checkpoint.node !== this.link.nodeId && moves > held.moves) {
      // It moved on while this node did not hear the request to let it go in time.
      this.held.delete(checkpoint.id);
      held.connection.moveAway();
    }
    this.checkpoints.delete(checkpoint.id);
    this.checkpoints.set(checkpoint.id, { checkpoint, moves, seenAt: Date.now() });
    if (this.checkpoints.size > MAX_CHECKPOINTS) {
      const oldest = this.checkpoints.keys().next().value;
      if (oldest !== undefined) this.checkpoints.delete(oldest);
    }
  }

  /** Forgets the checkpoints of connections whose holder is no longer alive. */
  private async sweep(): Promise<void> {
    let alive: ReadonlySet<string> | undefined;
    try {
      alive = await this.link.aliveNodes();
    } catch {
      return;
    }
    if (!alive) return;
    const before = Date.now() - FORGET_AFTER_MS;
    for (const [id, kept] of this.checkpoints) {
      if (!alive.has(kept.checkpoint.node) && kept.seenAt < before) this.checkpoints.delete(id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
