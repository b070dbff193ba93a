// Pieces every bench process shares: the clock, the IPC messages, the latency histogram, the fd-limit check.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Microseconds on the monotonic clock. uv_hrtime is CLOCK_MONOTONIC, which all processes of the machine
 * share, so a server's stamp and a client's receive time are directly comparable (performance.now() is not:
 * it counts from each process's own start).
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** What every broadcast carries; the clients read `seq` and `ts` back out of the wire bytes. */
export interface Payload {
  seq: number;
  ts: number;
  body: string;
}

export type ServerName = 'hubwire' | 'ws' | 'socketio';

// --- IPC: parent <-> server child ----------------------------------------------------------------------

export type ToServer =
  | { type: 'broadcast'; seq: number }
  | { type: 'stats'; id: number }
  | { type: 'mem'; id: number }
  | { type: 'stop' };

export interface ServerStats {
  connections: number;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  heapUsed: number;
  rss: number;
  external: number;
}

export type FromServer =
  | { type: 'ready'; port: number; path: string }
  | { type: 'reply'; id: number; stats: ServerStats }
  | { type: 'fatal'; message: string };

// --- IPC: parent <-> client child ----------------------------------------------------------------------

export type ToClient =
  | { type: 'connect'; id: number; count: number; batch: number }
  | { type: 'disconnect'; id: number }
  /** Broadcasts of the round carry seq firstSeq .. firstSeq + broadcasts - 1. */
  | { type: 'round-start'; id: number; firstSeq: number; broadcasts: number }
  | { type: 'round-end'; id: number };

export interface RoundReport {
  received: number;
  /** Stamp of the earliest broadcast seen (the first one sent), µs. */
  firstSentUs: number;
  /** When the last message of the round arrived, µs. */
  lastReceivedUs: number;
  /** Latency histogram (see Histogram). */
  buckets: Uint32Array;
  /** CPU the client process used during the round (user + system), µs: shows when clients were the limit. */
  cpuUs: number;
}

export type FromClient =
  | { type: 'ready' }
  | { type: 'connected'; id: number; open: number; ms: number }
  | { type: 'disconnected'; id: number }
  | { type: 'round-started'; id: number }
  | { type: 'round'; id: number; report: RoundReport }
  /** Every client of this process has received broadcast `seq`. */
  | { type: 'got'; seq: number }
  | { type: 'lost'; open: number; reason: string }
  | { type: 'fatal'; message: string };

// --- Latency histogram ---------------------------------------------------------------------------------

/** Log buckets 2% wide from 1 µs to ~2 min: percentiles merge exactly across processes and rounds. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
export const HISTOGRAM_BUCKETS = 950;

export class Histogram {
  readonly buckets: Uint32Array;
  constructor(buckets?: Uint32Array) {
    this.buckets = buckets ?? new Uint32Array(HISTOGRAM_BUCKETS);
  }

  add(us: number): void {
    const index = us <= 1 ? 0 : Math.min(HISTOGRAM_BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.buckets[index] = (this.buckets[index] as number) + 1;
  }

  merge(other: Uint32Array): void {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      this.buckets[i] = (this.buckets[i] as number) + (other[i] as number);
    }
  }

  get count(): number {
    let n = 0;
    for (const c of this.buckets) n += c;
    return n;
  }

  /** The mean of the buckets' upper bounds (µs), so within 2% above the true mean; NaN when empty. */
  mean(): number {
    let total = 0;
    let sum = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      const c = this.buckets[i] as number;
      if (c === 0) continue;
      total += c;
      sum += c * GROWTH ** i;
    }
    return total === 0 ? Number.NaN : sum / total;
  }

  /** The upper bound (µs) of the bucket holding the q-quantile; NaN when empty. */
  quantile(q: number): number {
    const total = this.count;
    if (total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return GROWTH ** i;
    }
    return GROWTH ** (HISTOGRAM_BUCKETS - 1);
  }
}

// --- Limits --------------------------------------------------------------------------------------------

/** This process's soft limit on open files (RLIMIT_NOFILE), or undefined when it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (match) return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    // Not Linux: ask a shell, which inherits the same limit.
  }
  const shell = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const text = shell.stdout?.trim();
  if (!text) return undefined;
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text);
}

/** Descriptors a process needs beside its sockets (stdio, IPC, epoll, the loader's files, the listener). */
export const FD_HEADROOM = 128;

/** A problem with the machine or the configuration, not a bug: reported by its message alone. */
export class SetupError extends Error {}

/** Throws a clear error when this process may not open `sockets` sockets plus headroom. */
export function assertOpenFileLimit(sockets: number, role: string): void {
  const limit = openFileLimit();
  const needed = sockets + FD_HEADROOM;
  if (limit !== undefined && limit < needed) {
    throw new SetupError(
      `${role} needs ${needed} open files (${sockets} sockets + ${FD_HEADROOM} headroom) but ulimit -n is ${limit}. ` +
        `Raise it (e.g. \`ulimit -n ${Math.max(needed, 20000)}\` before \`npm run bench\`) or bench fewer ` +
        `connections (BENCH_SIZES=1000).`,
    );
  }
}

/** Sends over IPC; a child whose parent is gone has nothing left to do. */
export function send(message: FromServer | FromClient): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
}

/** Children exit with their parent: a closed IPC channel means the bench is over (or crashed). */
export function exitWithParent(): void {
  if (!process.send) {
    console.error('This file is a child process of bench/broadcast.ts; run `npm run bench`.');
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
}

/** An integer from the environment, with a default and a sanity range. */
export function envInt(name: string, fallback: number, min = 1, max = 1_000_000): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SetupError(`${name} must be an integer from ${min} to ${max} (got '${raw}').`);
  }
  return value;
}

/** A bench's configuration read from the environment; a bad value prints `<script>: <why>` and exits 2. */
export function configOrExit<T>(script: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    process.stderr.write(`${script}: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function log(text: string): void {
  process.stderr.write(`${text}\n`);
}
