// The options of a Backplane: what each one means, its default, and the checks on what a user passes.

import type { Acknowledge } from './outbox.js';

export interface BackplaneOptions {
  /** Messages (sends, group changes, client results) waiting for the database, at most. Default 10000. */
  maxQueueLength?: number;
  /**
   * When a send's promise resolves. `'accepted'` (default): once this node's ordered outbox took it, so that
   * awaited sends from one caller share rows instead of paying one commit each; a hub invocation's completion (and
   * a classic hub call's result) is still held until everything the call sent has committed, and
   * `engine.flush()` waits for the same from server code. `'committed'`: once its row committed. See the README's
   * "When a send resolves" for what a crash can lose in each mode.
   */
  acknowledge?: Acknowledge;
  /**
   * With `acknowledge: 'accepted'`: while fewer than this many messages wait for the database, a send resolves at
   * once; beyond it, once no more than this many accepted messages (its own included) are uncommitted
   * (backpressure on a sender that outruns the database). So this is also the most that server code can have been
   * told "sent" and that a crash of this process loses. Default 1024.
   */
  acceptWindow?: number;
  /** How long close() waits for accepted messages to commit before dropping them (ms). Default 5000. */
  closeTimeout?: number;
  /** Messages written per row (one transaction), at most. Default 512. */
  batchSize?: number;
  /** Rows read per query (delivered in one event-loop turn). Default 64. */
  readBatchSize?: number;
  /** Polling back-off when there are no push wake-ups (ms). Default 10 to 250. */
  pollInterval?: { min?: number; max?: number };
  /** Polling while push wake-ups work, to cover a lost notification (ms). Default 2000. */
  safetyPollInterval?: number;
  /** Retry back-off after a database error (ms). Default 25 to 5000. */
  retryDelay?: { min?: number; max?: number };
  /** Rows kept per stream: the newest `rows`, and every row younger than `ageMs`. Default 10000 rows, 60 s. */
  retention?: { rows?: number; ageMs?: number };
  /** How often old rows are trimmed (ms). Default 10000. */
  trimInterval?: number;
  /**
   * Recently delivered rows kept in memory per stream, so a replay (a classic client moving between nodes) is
   * served without reading the database: at most `rows` rows and `bytes` payload bytes per stream. Kept only when
   * a classic endpoint is mapped (or this option is given). Default 2048 rows, 8 MiB.
   */
  replayCache?: { rows?: number; bytes?: number };
  /**
   * The node registry (stores that keep one: the bundled ones do): how often this node refreshes its row (ms).
   * Default 5000.
   */
  heartbeatInterval?: number;
  /**
   * A node whose last heartbeat is older than this is taken for dead (`backplane.nodes()` says `alive: false`);
   * its row is removed after four times as long. Default 15000 (three missed heartbeats).
   */
  nodeTimeout?: number;
  /** Errors the backplane recovers from by itself (logged). Default: console.error, at most once per second per kind. */
  onError?: (error: unknown, where: string) => void;
}

/** The options with their defaults applied and checked (nested options flattened). */
export interface ResolvedOptions {
  maxQueueLength: number;
  acknowledge: Acknowledge;
  acceptWindow: number;
  closeTimeout: number;
  batchSize: number;
  readBatchSize: number;
  safetyPollInterval: number;
  trimInterval: number;
  pollMin: number;
  pollMax: number;
  retryMin: number;
  retryMax: number;
  keepRows: number;
  keepAgeMs: number;
  cacheRows: number;
  cacheBytes: number;
  heartbeatInterval: number;
  nodeTimeout: number;
}

/** How old a node's last heartbeat may be before it is taken for dead (ms): three missed heartbeats of 5 s. */
export const DEFAULT_NODE_TIMEOUT = 15_000;

/** Applies the defaults; throws a TypeError naming the option for anything out of range. */
export function resolveOptions(options: BackplaneOptions): ResolvedOptions {
  const numbers = {
    maxQueueLength: options.maxQueueLength ?? 10_000,
    acceptWindow: options.acceptWindow ?? 1024,
    closeTimeout: options.closeTimeout ?? 5000,
    batchSize: options.batchSize ?? 512,
    readBatchSize: options.readBatchSize ?? 64,
    safetyPollInterval: options.safetyPollInterval ?? 2000,
    trimInterval: options.trimInterval ?? 10_000,
    pollMin: options.pollInterval?.min ?? 10,
    pollMax: options.pollInterval?.max ?? 250,
    retryMin: options.retryDelay?.min ?? 25,
    retryMax: options.retryDelay?.max ?? 5000,
    keepRows: options.retention?.rows ?? 10_000,
    keepAgeMs: options.retention?.ageMs ?? 60_000,
    cacheRows: options.replayCache?.rows ?? 2048,
    cacheBytes: options.replayCache?.bytes ?? 8 * 1024 * 1024,
    heartbeatInterval: options.heartbeatInterval ?? 5000,
    nodeTimeout: options.nodeTimeout ?? DEFAULT_NODE_TIMEOUT,
  };
  for (const [key, value] of Object.entries(numbers)) {
    if (!(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
      throw new TypeError(`Backplane option '${key}' must be a non-negative number.`);
    }
  }
  if (numbers.batchSize < 1 || numbers.readBatchSize < 1) {
    throw new TypeError('Backplane batch sizes must be at least 1.');
  }
  if (numbers.heartbeatInterval < 100 || numbers.nodeTimeout <= numbers.heartbeatInterval) {
    throw new TypeError(
      "Backplane option 'heartbeatInterval' must be at least 100 ms, and 'nodeTimeout' longer than it.",
    );
  }
  const acknowledge = options.acknowledge ?? 'accepted';
  if (acknowledge !== 'accepted' && acknowledge !== 'committed') {
    throw new TypeError(`Backplane option 'acknowledge' must be 'accepted' or 'committed', got '${acknowledge}'.`);
  }
  return { ...numbers, acknowledge };
}

/** The default onError: console.error, at most once per second per kind of error. */
export function consoleReporter(kind: string): (error: unknown, where: string) => void {
  const lastReport = new Map<string, number>();
  return (error, where) => {
    const now = Date.now();
    if (now - (lastReport.get(where) ?? 0) < 1000) return;
    lastReport.set(where, now);
    console.error(`[hubwire] ${kind} backplane, ${where}:`, error instanceof Error ? error.message : error);
  };
}
