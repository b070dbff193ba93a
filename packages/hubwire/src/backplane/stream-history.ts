// What an endpoint that outlives its node needs from the backplane (the classic SignalR 2 protocol: connections move
// between nodes without sticky sessions). One interface, implemented by Backplane: the streams' history (positions,
// replay, observe, wait), notices between the nodes' instances of one endpoint, and the store's shared keys.
// Modelled on centrifuge's Broker (History, StreamPosition) and its PubSubSync.

import type { Envelope } from '../bus/envelope.js';
import type { BackplaneStore } from './backplane-store.js';
import type { ReplayRow } from './replay.js';

/** Told of every envelope delivered from the streams, with its stream and row id. */
export type EnvelopeObserver = (envelope: Envelope, stream: number, id: number) => void;

export interface StreamHistory {
  /** This node (a fresh id per process). */
  readonly nodeId: string;
  /** The installation's epoch: a position from another installation (its tables were recreated) means nothing. */
  readonly epoch: string | undefined;
  /** The store, for its shared keys (`supportsKeys(store)`). */
  readonly store: BackplaneStore;
  /** Installs the schema and starts reading; resolves once it reads. Idempotent. */
  start(): Promise<void>;
  /** The highest row id delivered per stream (undefined before reading starts). */
  positions(): number[] | undefined;
  /** Changes whenever positions() does. */
  readonly positionVersion: number;
  /** Keeps recently delivered rows in memory from now on, so replays are served without the database. */
  retainRecentRows(): void;
  /** The rows after `from` up to `to` (per stream), merged in the order publishers saw them; what was trimmed is `missed`. */
  replay(
    from: readonly number[],
    to: readonly number[],
    maxRows?: number,
  ): Promise<{ rows: ReplayRow[]; missed: number }>;
  /** Calls `observer` for every envelope delivered from now on. Returns a remover. */
  observe(observer: EnvelopeObserver): () => void;
  /** True once this node delivered every stream up to `target`; false after `timeoutMs`. */
  waitFor(target: readonly number[], timeoutMs: number): Promise<boolean>;
  /** Where the envelopes addressed to `key` go when read (one handler per key and node). */
  register(key: string, handler: (envelope: Envelope) => void): void;
  /** Publishes an envelope to every node (notices between an endpoint's instances). */
  publish(envelope: Envelope): Promise<void>;
}
