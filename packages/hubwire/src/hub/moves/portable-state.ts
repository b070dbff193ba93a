// The backplane side of one stateful-reconnect connection that may move between nodes (connection-record.ts).
// Its client's messages are numbered from backplane rows only: what the hub writes to it directly (completions,
// stream items, client-result invocations) is published as a record and written when read back, and every client
// message it takes is marked in the stream before the hub runs it. So the numbering, the groups, the client
// messages taken and the invocations still running all follow from the rows, and a checkpoint of them at a position
// lets any node carry on from there.

import type { ConnectionRecord, RecordedMessage } from '../../bus/connection-record.js';
import { type HubMessage, MessageType } from '../../protocol/messages.js';
import type { Checkpoint } from './checkpoint.js';

/** What the state needs of the node: its backplane position, and where records and checkpoints go. */
export interface PortableHost {
  readonly nodeId: string;
  /** The highest row id delivered per stream (undefined before the backplane reads). */
  positions(): number[] | undefined;
  /** Publishes a record for the connection (resolves once accepted). */
  record(record: ConnectionRecord): Promise<void>;
  /** Queues a checkpoint for every node (published with others of this node). */
  checkpoint(checkpoint: Checkpoint): void;
  /** A record the backplane would not take: the connection cannot go on. */
  failed(error: unknown): void;
}

interface Boundary {
  seq: number;
  position: readonly number[];
  groups: readonly string[];
  received: number;
  open: readonly string[];
  at: number;
}

/** A checkpoint at most this often per connection (ms). */
const CHECKPOINT_EVERY_MS = 1000;
/** A connection with nothing new still moves its checkpoint's position on this often (ms): trims may pass it by. */
const REFRESH_EVERY_MS = 30_000;
/** Boundaries kept for the client to acknowledge (one per tick at most). */
const MAX_BOUNDARIES = 64;
/** Records in flight past which a writer that can wait does. */
const PAUSE_RECORDS = 256;

export class PortableState {
  /** The highest client sequence id taken, as read back (what may be acknowledged to the client). */
  received = 0;
  /** Invocations taken and not completed, as read back. */
  readonly open = new Set<string>();
  /** The connection's groups on this node (told by the bus index). */
  readonly groups = new Set<string>();
  /** Invocations this node runs for it (taken here, completion not published yet). */
  private readonly running = new Set<string>();
  /** Something a checkpoint holds changed since the last boundary. */
  private dirty = true;
  private boundaries: Boundary[] = [];
  private published: Boundary | undefined;
  private publishedAt = 0;
  private inFlight = 0;
  private drained: Promise<void> | undefined;
  private wakeDrained: (() => void) | undefined;

  constructor(
    private readonly host: PortableHost,
    readonly connectionId: string,
    readonly hub: string,
    readonly protocol: string,
  ) {}

  /** Starts from a checkpoint (the connection moved here), before the rows after it are replayed. */
  startFrom(checkpoint: Checkpoint): void {
    this.received = checkpoint.received;
    for (const id of checkpoint.open) this.open.add(id);
    for (const group of checkpoint.groups) this.groups.add(group);
  }

  /** The client's trackable message `sequenceId` is taken: marked in the stream before the hub runs it. */
  take(sequenceId: number, message: HubMessage): void {
    const invocationId =
      (message.type === MessageType.Invocation || message.type === MessageType.StreamInvocation) &&
      message.invocationId !== undefined
        ? message.invocationId
        : undefined;
    if (invocationId !== undefined) this.running.add(invocationId);
    this.publish({ kind: 'mark', sequenceId, invocationId });
  }

  /** A message for the client: written when read back (onRecord). */
  send(message: RecordedMessage): void {
    if (message.type === MessageType.Completion) this.running.delete(message.invocationId);
    this.publish({ kind: 'message', message });
  }

  /** Invocations this node runs for the connection. */
  runningHere(): string[] {
    return [...this.running];
  }

  private publish(record: ConnectionRecord): void {
    this.inFlight++;
    this.host.record(record).then(
      () => this.settled(),
      (error: unknown) => {
        this.settled();
        this.host.failed(error);
      },
    );
  }

  private settled(): void {
    this.inFlight--;
    if (this.inFlight < PAUSE_RECORDS / 2 && this.wakeDrained) {
      const wake = this.wakeDrained;
      this.drained = undefined;
      this.wakeDrained = undefined;
      wake();
    }
  }

  /** Undefined unless many records wait to be accepted; then resolves when fewer do. */
  whenWritable(): Promise<void> | undefined {
    if (this.inFlight < PAUSE_RECORDS) return undefined;
    if (!this.drained) {
      this.drained = new Promise((resolve) => {
        this.wakeDrained = resolve;
      });
    }
    return this.drained;
  }

  /** A record read back (live, or replayed while moving here): the message to write to the client, if any. */
  read(record: ConnectionRecord): RecordedMessage | undefined {
    if (record.kind === 'mark') {
      if (record.sequenceId > this.received) this.received = record.sequenceId;
      if (record.invocationId !== undefined) this.open.add(record.invocationId);
      this.dirty = true;
      return undefined;
    }
    if (record.message.type === MessageType.Completion && this.open.delete(record.message.invocationId)) {
      this.dirty = true;
    }
    return record.message;
  }

  groupChanged(group: string, added: boolean): void {
    if (added) this.groups.add(group);
    else this.groups.delete(group);
    this.dirty = true;
  }

  /**
   * Once per tick: notes where the connection stands now (`seq`: the last outgoing sequence id given) and, at most
   * once a second, queues a checkpoint at the newest such point the client has acknowledged (`acked`).
   */
  tick(now: number, seq: number, acked: number): void {
    const last = this.boundaries.at(-1) ?? this.published;
    if (!last || last.seq !== seq || this.dirty || now - (last?.at ?? 0) >= REFRESH_EVERY_MS) this.mark(now, seq);
    if (now - this.publishedAt < CHECKPOINT_EVERY_MS) return;
    let pick = -1;
    for (let i = this.boundaries.length - 1; i >= 0; i--) {
      if ((this.boundaries[i] as Boundary).seq <= acked) {
        pick = i;
        break;
      }
    }
    if (pick < 0) return;
    const boundary = this.boundaries[pick] as Boundary;
    this.boundaries = this.boundaries.slice(pick + 1);
    this.published = boundary;
    this.publishedAt = now;
    this.host.checkpoint(this.checkpointAt(boundary));
  }

  /** The connection moved here from `checkpoint`: published again as this node's (it still holds). */
  adopt(checkpoint: Checkpoint): void {
    const boundary: Boundary = {
      seq: checkpoint.seq,
      position: checkpoint.position,
      groups: checkpoint.groups,
      received: checkpoint.received,
      open: checkpoint.open,
      at: Date.now(),
    };
    this.boundaries = [];
    this.published = boundary;
    this.publishedAt = boundary.at;
    this.dirty = true;
    this.host.checkpoint(this.checkpointAt(boundary));
  }

  /** Notes a boundary now and publishes it at once (the connection just started here, or just moved here). */
  publishNow(seq: number): void {
    const now = Date.now();
    const boundary = this.mark(now, seq);
    if (!boundary) return;
    this.boundaries = [];
    this.published = boundary;
    this.publishedAt = now;
    this.host.checkpoint(this.checkpointAt(boundary));
  }

  private mark(now: number, seq: number): Boundary | undefined {
    const position = this.host.positions();
    if (!position) return undefined;
    const boundary: Boundary = {
      seq,
      position,
      groups: [...this.groups],
      received: this.received,
      open: [...this.open],
      at: now,
    };
    this.dirty = false;
    this.boundaries.push(boundary);
    if (this.boundaries.length > MAX_BOUNDARIES) this.boundaries.shift();
    return boundary;
  }

  private checkpointAt(boundary: Boundary): Checkpoint {
    return {
      id: this.connectionId,
      node: this.host.nodeId,
      hub: this.hub,
      protocol: this.protocol,
      seq: boundary.seq,
      position: boundary.position,
      groups: boundary.groups,
      received: boundary.received,
      open: boundary.open,
    };
  }
}
