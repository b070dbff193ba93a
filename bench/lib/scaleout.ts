// What the scaleout bench's processes share: the IPC messages between the parent, the server nodes and the
// client processes, the 100-byte message, and the child-side plumbing (report to the parent, die with it).

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ScaleoutStats } from 'hubwire';

export type SystemName = 'hubwire' | 'socketio';
export const SYSTEM_LABEL: Record<SystemName, string> = { hubwire: 'Hubwire', socketio: 'Socket.IO' };

// --- The message ---------------------------------------------------------------------------------------------

/**
 * What the sender sends and every receiver gets back: `{"seq":…,"ts":…,"body":"xx…"}`, padded to exactly `bytes`
 * bytes of JSON. `ts` is the sender's clock (µs, CLOCK_MONOTONIC, shared by every process of the machine) read
 * right before the message is handed to its WebSocket.
 */
export function encodePayload(seq: number, ts: number, bytes: number): string {
  const head = `{"seq":${seq},"ts":${ts},"body":"`;
  const pad = Math.max(0, bytes - head.length - 2);
  return `${head}${PADDING.slice(0, pad)}"}`;
}
const PADDING = 'x'.repeat(100_000);

/** Where a payload starts in a received frame (Hubwire: inside the invocation's arguments; Socket.IO: the event). */
export const PAYLOAD_START = '{"seq":';

// --- IPC: parent <-> node (bench/servers/*-node.ts) ------------------------------------------------------------

export type ToNode = { type: 'stats'; id: number } | { type: 'stop' };

export interface NodeStats {
  /** Clients past the protocol handshake. */
  connections: number;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  /** Messages the sender's client handed to this node (hub method calls / 'm' events). */
  fromSender: number;
  /** Backplane publishes that failed (a fire-and-forget send rejected, an adapter error). */
  sendErrors: number;
  /** Event-loop delay since the previous stats call (ms): how long ready work waited for the thread. */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
  /**
   * Hubwire only: time spent in the store's calls (the node wraps its PostgresStore instance): counts and totals
   * cumulative, maxima since the previous stats call.
   */
  store?: { appends: number; appendMs: number; appendMaxMs: number; reads: number; readMs: number; readMaxMs: number };
  /** Socket.IO only: the adapter's queries on its pool (one `pg_notify` per message), timed like `store`. */
  pool?: { queries: number; queryMs: number; queryMaxMs: number; waiting: number };
  /** Hubwire only: the engine's counters. */
  backplane?: Pick<
    ScaleoutStats,
    'published' | 'rowsWritten' | 'rowsRead' | 'delivered' | 'errors' | 'gaps' | 'queueLength'
  >;
}

export type FromNode =
  | { type: 'ready'; port: number; path: string }
  | { type: 'reply'; id: number; stats: NodeStats }
  | { type: 'fatal'; message: string };

// --- IPC: parent <-> client process (bench/scaleout-client.ts) -------------------------------------------------

export type ToClient =
  | { type: 'connect'; id: number; count: number }
  /** Sender: send `count` messages (seq firstSeq…) at `rate`/s, then answer 'sent'. Receivers: expect them. */
  | { type: 'step-start'; id: number; firstSeq: number; count: number; rate: number }
  /** Receivers: stop counting and report. */
  | { type: 'step-end'; id: number };

export interface SendReport {
  sent: number;
  /** Stamp of the first and the last message sent, µs. */
  firstUs: number;
  lastUs: number;
  /** Largest WebSocket bufferedAmount seen (bytes not yet handed to the kernel): sender-side queueing. */
  maxBufferedBytes: number;
  cpuUs: number;
}

export interface ReceiveReport {
  /** Distinct (socket, seq) pairs of the step received. */
  received: number;
  /** The same (socket, seq) received again. */
  duplicates: number;
  /** Messages of earlier steps that arrived during this one. */
  late: number;
  /** Messages received out of seq order on a socket. */
  reordered: number;
  /** The fewest distinct messages any one socket received. */
  minPerSocket: number;
  firstReceivedUs: number;
  lastReceivedUs: number;
  /** Latency histogram (see Histogram in common.ts): receive time − `ts`. */
  buckets: Uint32Array;
  cpuUs: number;
}

export type FromClient =
  | { type: 'ready' }
  | { type: 'connected'; id: number; open: number }
  | { type: 'step-started'; id: number }
  | { type: 'sent'; id: number; report: SendReport }
  /** Receivers: every socket has every message of the step starting at firstSeq. */
  | { type: 'complete'; firstSeq: number }
  | { type: 'report'; id: number; report: ReceiveReport }
  | { type: 'lost'; reason: string }
  | { type: 'fatal'; message: string };

// --- Child plumbing --------------------------------------------------------------------------------------------

/** Reports to the parent; a child whose parent is gone has nothing left to do. */
export function toParent(message: FromNode | FromClient): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
}

/** Children exit with their parent: a closed IPC channel means the bench is over (or crashed). */
export function exitWithParent(): void {
  if (!process.send) {
    console.error('This file is a child process of bench/scaleout.ts; run `npm run bench:scaleout`.');
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
}

/** Runs a node: `start` listens and returns how to report and stop; IPC with the parent is handled here. */
export async function runNode(
  name: string,
  start: () => Promise<{ port: number; path: string; stats(): NodeStats; close(): Promise<void> }>,
): Promise<void> {
  exitWithParent();
  try {
    const node = await start();
    process.on('message', (message: ToNode) => {
      if (message.type === 'stats') {
        toParent({ type: 'reply', id: message.id, stats: node.stats() });
      } else if (message.type === 'stop') {
        node.close().finally(() => process.exit(0));
        // Do not hang on a node that will not close.
        setTimeout(() => process.exit(0), 3000).unref();
      }
    });
    toParent({ type: 'ready', port: node.port, path: node.path });
  } catch (error) {
    toParent({ type: 'fatal', message: `${name}: ${(error as Error).stack ?? error}` });
    process.exit(1);
  }
}

/** Event-loop delay percentiles since the previous call (the histogram restarts at every call). */
export function eventLoopMonitor(): () => NodeStats['eventLoop'] {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return () => {
    const result = {
      p50Ms: histogram.percentile(50) / 1e6,
      p99Ms: histogram.percentile(99) / 1e6,
      maxMs: histogram.max / 1e6,
    };
    histogram.reset();
    return result;
  };
}

export function cpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** A required environment variable of a child. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this process is started by bench/scaleout.ts).`);
  return value;
}
