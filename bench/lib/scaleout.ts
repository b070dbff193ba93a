// What the scaleout bench's processes share: the shapes, the chat message, the IPC messages between the parent,
// the server nodes and the client processes, and the child-side plumbing (report to the parent, die with it).

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Histogram, nowUs } from './common.js';

/** `hubwire-nometrics`: Hubwire created with `metrics: false` (BENCH_METRICS), beside or instead of `hubwire`. */
export type SystemName = 'hubwire' | 'hubwire-nometrics' | 'socketio';
export const SYSTEM_LABEL: Record<SystemName, string> = {
  hubwire: 'Hubwire',
  'hubwire-nometrics': 'Hubwire, metrics off',
  socketio: 'Socket.IO',
};
/** The code a system runs: its nodes (bench/servers/<code>-node.ts) and its clients' protocol. */
export const SYSTEM_CODE: Record<SystemName, 'hubwire' | 'socketio'> = {
  hubwire: 'hubwire',
  'hubwire-nometrics': 'hubwire',
  socketio: 'socketio',
};

export type DatabaseName = 'postgres' | 'sqlite' | 'mysql';
export const DATABASE_LABEL: Record<DatabaseName, string> = {
  postgres: 'PostgreSQL',
  sqlite: 'SQLite',
  mysql: 'MariaDB',
};

// --- Shapes ------------------------------------------------------------------------------------------------------

export type ShapeName = 'send1' | 'send10' | 'send50' | 'send100' | 'room100' | 'publisher' | 'forget' | 'invoke';

export interface Shape {
  name: ShapeName;
  label: string;
  /**
   * paced: client sockets on node A call a hub method as non-blocking invocations at the offered rate (split
   * evenly among them); publisher: node A's own code broadcasts at the offered rate; invoke: one client awaits
   * each invocation's completion before the next (closed loop, no offered rate).
   */
  kind: 'paced' | 'publisher' | 'invoke';
  /** Client sockets on node A. */
  senders: number;
  /**
   * The hub method the clients call: `send` returns the broadcast's promise (README), `sendForget` does not,
   * `sendToGroup` sends to the receivers' group (examples/chat's ChatHub), which the senders are not in.
   */
  target: 'send' | 'sendForget' | 'sendToGroup';
}

export const SHAPES: Record<ShapeName, Shape> = {
  send1: { name: 'send1', label: '1 sender', kind: 'paced', senders: 1, target: 'send' },
  send10: { name: 'send10', label: '10 senders', kind: 'paced', senders: 10, target: 'send' },
  send50: { name: 'send50', label: '50 senders', kind: 'paced', senders: 50, target: 'send' },
  send100: { name: 'send100', label: '100 senders', kind: 'paced', senders: 100, target: 'send' },
  room100: { name: 'room100', label: '100 senders, room', kind: 'paced', senders: 100, target: 'sendToGroup' },
  publisher: { name: 'publisher', label: 'server publisher', kind: 'publisher', senders: 0, target: 'send' },
  forget: { name: 'forget', label: 'fire-and-forget', kind: 'paced', senders: 1, target: 'sendForget' },
  invoke: { name: 'invoke', label: 'invoke (closed loop)', kind: 'invoke', senders: 1, target: 'send' },
};
export const SHAPE_NAMES = Object.keys(SHAPES) as ShapeName[];
/** What a run without BENCH_SHAPES measures: `send50` only on request (issue 11's table has a 50-sender row). */
export const DEFAULT_SHAPES = SHAPE_NAMES.filter((name) => name !== 'send50');

// --- The message -------------------------------------------------------------------------------------------------

/** The group every receiver joins at connect (`joinGroup`), the one `sendToGroup` sends to. */
export const ROOM = 'room';

/** The chat's `name` argument: what every sender calls itself. */
export const MESSAGE_NAME = 'bench';

/**
 * The chat's `message` argument: a string of exactly `bytes` characters, `#<seq>:<ts>:xxx…`. `ts` is the sender's
 * clock (µs, CLOCK_MONOTONIC, shared by every process of the machine) read right before the message is handed to
 * its WebSocket (or, for the server-side publisher, to `broadcastMessage`).
 */
export function encodeMessage(seq: number, ts: number, bytes: number): string {
  const head = `#${seq}:${ts}:`;
  return head + PADDING.slice(0, Math.max(0, bytes - head.length));
}
const PADDING = 'x'.repeat(100_000);

/** Where a message starts in a received frame: the JSON string's quote and the `#`. */
export const MESSAGE_START = '"#';

/** The stamp of a message found at `start` (the index of its `#`); seq -1 when it is not one of ours. */
export function decodeStamp(text: string, start: number): { seq: number; ts: number } {
  let i = start + 1;
  let seq = 0;
  let c = text.charCodeAt(i);
  if (c < 48 || c > 57) return { seq: -1, ts: 0 };
  while (c >= 48 && c <= 57) {
    seq = seq * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  if (c !== 58) return { seq: -1, ts: 0 };
  let ts = 0;
  c = text.charCodeAt(++i);
  while (c >= 48 && c <= 57) {
    ts = ts * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  return { seq, ts };
}

// --- IPC: parent <-> node (bench/servers/*-node.ts) --------------------------------------------------------------

export type ToNode =
  | { type: 'stats'; id: number }
  /** Node A: broadcast `count` messages (seq firstSeq…) from server code, paced at `rate`/s; answer 'published'. */
  | { type: 'publish'; id: number; firstSeq: number; count: number; rate: number }
  | { type: 'stop' };

/** Timings a Hubwire node takes from outside its hub (see bench/servers/hubwire-node.ts), since the last stats. */
export interface NodeTimings {
  /** Sender stamp → `engine.publish` on this node (WebSocket, frame parse, dispatch, invocation queue), µs. */
  toPublish: Uint32Array;
  /** `engine.publish` → the same message delivered back on this node (queue, the row's append, resolve), µs. */
  publishToLocal: Uint32Array;
  /** Sender stamp → handed to this node's hub from a row this node read (another node's), µs. */
  toRemoteHub: Uint32Array;
  /** Each `store.append` call, µs. */
  append: Uint32Array;
}

export interface NodeStats {
  /** Clients past the protocol handshake. */
  connections: number;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  /** Backplane publishes that failed (a send rejected, an adapter error): cumulative. */
  sendErrors: number;
  /** Event-loop delay since the previous stats call (ms): how long ready work waited for the thread. */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
  /**
   * Hubwire only: time spent in the store's calls (the node wraps its store instance's methods): counts and totals
   * cumulative, maxima since the previous stats call.
   */
  store?: {
    appends: number;
    appendMs: number;
    appendMaxMs: number;
    reads: number;
    readMs: number;
    readMaxMs: number;
    rowsRead: number;
    /** `store.top` calls (stream heads read: at start-up, and before adopting a connection). */
    tops: number;
  };
  /** Hubwire only: since the previous stats call. */
  timings?: NodeTimings;
  /**
   * Hubwire only: every number of `backplane.stats()` (nested objects flattened as `a.b`), whatever fields the
   * engine has: counters are cumulative, `queueLength` is a gauge.
   */
  engine?: Record<string, number>;
  /**
   * Hubwire only: envelopes this node published, by what they carry (cumulative): `sends`, `recordMarks` and
   * `recordMessages` (connection records of stateful-reconnect connections that may move), `checkpointNotices` and
   * the `checkpoints` in them, `other`.
   */
  publishes?: Record<string, number>;
  /** Socket.IO only: the adapter's queries on its pool (one `pg_notify` per message), timed like `store`. */
  pool?: { queries: number; queryMs: number; queryMaxMs: number; waiting: number };
}

/** What node A's server-side publisher did during a step. */
export interface PublishReport {
  sent: number;
  firstUs: number;
  lastUs: number;
  /** Time each `await …broadcastMessage(…)` took (Socket.IO's `io.emit` is synchronous: its call time), µs. */
  awaitBuckets: Uint32Array;
  errors: number;
}

export type FromNode =
  | { type: 'ready'; port: number; path: string }
  | { type: 'reply'; id: number; stats: NodeStats }
  | { type: 'published'; id: number; report: PublishReport }
  | { type: 'fatal'; message: string };

// --- IPC: parent <-> client process (bench/clients/scaleout-client.ts) -----------------------------------------------

export type ToClient =
  /** Have exactly `count` sockets open (opens more or closes the newest). */
  | { type: 'connect'; id: number; count: number }
  /**
   * Sender: send `count` messages (seq firstSeq…) at `rate`/s in total, message seq on socket seq % senders, to
   * hub method `target`, then answer 'sent'. Receivers: expect them (order is checked per sender).
   */
  | {
      type: 'step-start';
      id: number;
      firstSeq: number;
      count: number;
      rate: number;
      senders: number;
      target: Shape['target'];
    }
  /** Sender: invoke (with an invocation id) one at a time for `durationMs` on its first socket; answer 'invoked'. */
  | { type: 'invoke-start'; id: number; firstSeq: number; durationMs: number }
  /** Receivers: the step (started with an upper bound) has exactly `count` messages. */
  | { type: 'expect'; id: number; count: number }
  /** Receivers: stop counting and report. */
  | { type: 'step-end'; id: number };

export interface SendReport {
  sent: number;
  /** Stamp of the first and the last message sent, µs. */
  firstUs: number;
  lastUs: number;
  /** Largest WebSocket bufferedAmount seen on a socket (bytes not yet handed to the kernel): sender queueing. */
  maxBufferedBytes: number;
  cpuUs: number;
  /** invoke-start only: each invocation's round trip (send → completion), µs, and completions with an error. */
  rttBuckets?: Uint32Array;
  invokeErrors?: number;
}

export interface ReceiveReport {
  /** Distinct (socket, seq) pairs of the step received. */
  received: number;
  /** The same (socket, seq) received again. */
  duplicates: number;
  /** Messages of earlier steps that arrived during this one. */
  late: number;
  /** Messages received out of seq order from the same sender on a socket. */
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
  | { type: 'expected'; id: number }
  | { type: 'sent'; id: number; report: SendReport }
  /** Receivers: every socket has every message of the step starting at firstSeq. */
  | { type: 'complete'; firstSeq: number }
  | { type: 'report'; id: number; report: ReceiveReport }
  | { type: 'lost'; reason: string }
  | { type: 'fatal'; message: string };

// --- Child plumbing ----------------------------------------------------------------------------------------------

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

export interface RunningNode {
  port: number;
  path: string;
  stats(): NodeStats;
  publish(firstSeq: number, count: number, rate: number): Promise<PublishReport>;
  close(): Promise<void>;
}

/** Runs a node: `start` listens and returns how to report and stop; IPC with the parent is handled here. */
export async function runNode(name: string, start: () => Promise<RunningNode>): Promise<void> {
  exitWithParent();
  try {
    const node = await start();
    process.on('message', (message: ToNode) => {
      if (message.type === 'stats') {
        toParent({ type: 'reply', id: message.id, stats: node.stats() });
      } else if (message.type === 'publish') {
        node.publish(message.firstSeq, message.count, message.rate).then(
          (report) => toParent({ type: 'published', id: message.id, report }),
          (error: Error) => toParent({ type: 'fatal', message: `${name}: publisher: ${error.stack ?? error}` }),
        );
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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The server-side publisher's loop: message i (seq firstSeq + i, stamped when sent) is due at start + i / rate; each
 * `send` is awaited before the next when it returns a promise (Hubwire's `await …broadcastMessage()`), so a sender
 * that does not await (Socket.IO's `io.emit`) sends each ~1 ms burst in one go. Failed sends count as errors.
 */
export async function publishPaced(
  firstSeq: number,
  count: number,
  rate: number,
  bytes: number,
  send: (message: string) => Promise<void> | undefined,
  onError: (error: unknown) => void = () => {},
): Promise<PublishReport> {
  const calls = new Histogram();
  const startUs = nowUs();
  let firstUs = 0;
  let lastUs = 0;
  let errors = 0;
  for (let sent = 0; sent < count; ) {
    const due = Math.floor(((nowUs() - startUs) * rate) / 1e6) + 1;
    if (sent >= due) {
      await sleep(1);
      continue;
    }
    const ts = nowUs();
    try {
      await send(encodeMessage(firstSeq + sent, ts, bytes));
    } catch (error) {
      errors++;
      onError(error);
    }
    calls.add(nowUs() - ts);
    if (sent === 0) firstUs = ts;
    lastUs = ts;
    sent++;
  }
  return { sent: count, firstUs, lastUs, awaitBuckets: calls.buckets, errors };
}
