// The scaleout bench's run (bench/scaleout.ts): its configuration from the environment, what it records, and its
// time budget. Imported by the parent's modules only (the nodes and clients are configured by their environment).

import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configOrExit, envInt, SetupError } from './common.js';
import { assertLocalMysql } from './mysql.js';
import { assertLocalDatabase } from './postgres.js';
import {
  type DatabaseName,
  DEFAULT_SHAPES,
  SHAPE_NAMES,
  type ShapeName,
  SYSTEM_CODE,
  type SystemName,
} from './scaleout.js';
import type { ReportConfig, Results } from './scaleout-results.js';

// --- Configuration -----------------------------------------------------------------------------------------------

function list<T extends string>(name: string, fallback: string, allowed: readonly T[]): T[] {
  const values = (process.env[name] || fallback).split(',').map((s) => s.trim());
  for (const v of values) {
    if (!allowed.includes(v as T)) throw new SetupError(`${name}: '${v}' is not one of ${allowed.join(', ')}.`);
  }
  return [...new Set(values)] as T[];
}

/**
 * Hubwire's nodes with metrics `on` (default options, the Prometheus text collected once a second), `off`
 * (`metrics: false`: the system `hubwire-nometrics`), or `both`, side by side like two systems (BENCH_METRICS).
 */
function withMetrics(systems: SystemName[]): SystemName[] {
  const [metrics] = list<'on' | 'off' | 'both'>('BENCH_METRICS', 'on', ['on', 'off', 'both']);
  const hubwire: SystemName[] =
    metrics === 'on' ? ['hubwire'] : metrics === 'off' ? ['hubwire-nometrics'] : ['hubwire', 'hubwire-nometrics'];
  return systems.flatMap((s) => (s === 'hubwire' ? hubwire : [s]));
}

const DEFAULT_RATES = '500,1000,2000,5000,10000,20000,40000,80000';

function rates(name: string, fallback: string): number[] {
  const values = fallback.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new SetupError(`${name}: bad rate '${s}'.`);
    return n;
  });
  if (values.some((r, i) => i > 0 && r <= (values[i - 1] as number))) throw new SetupError(`${name} must increase.`);
  return values;
}

function readConfig() {
  const dbUrl = process.env.BENCH_DB_URL || 'postgres://postgres@127.0.0.1:5432/test';
  assertLocalDatabase(dbUrl);
  const mysqlUrl = process.env.BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
  assertLocalMysql(mysqlUrl);
  const shapes = list<ShapeName>('BENCH_SHAPES', DEFAULT_SHAPES.join(','), SHAPE_NAMES);
  const shapeRates = {} as Record<ShapeName, number[]>;
  for (const shape of SHAPE_NAMES) {
    const own = `BENCH_RATES_${shape.toUpperCase()}`;
    shapeRates[shape] = process.env[own]
      ? rates(own, process.env[own] as string)
      : rates('BENCH_RATES', process.env.BENCH_RATES || DEFAULT_RATES);
  }
  return {
    dbUrl,
    mysqlUrl,
    databases: list<DatabaseName>('BENCH_DATABASES', 'postgres,sqlite,mysql', ['postgres', 'sqlite', 'mysql']),
    systems: withMetrics(list<SystemName>('BENCH_SYSTEMS', 'hubwire,socketio', ['hubwire', 'socketio'])),
    shapes,
    rates: shapeRates,
    /** How long the senders send at each step. */
    stepMs: envInt('BENCH_STEP_MS', 3000, 200, 60_000),
    /** How long the closed loop of invokes runs. */
    invokeMs: envInt('BENCH_INVOKE_MS', 5000, 200, 60_000),
    /** How long after the last send a message may still arrive without counting as lost. */
    graceMs: envInt('BENCH_GRACE_MS', 1500, 100, 60_000),
    passes: envInt('BENCH_PASSES', 1, 1, 20),
    receivers: envInt('BENCH_RECEIVERS', 10, 1, 1000),
    messageBytes: envInt('BENCH_MESSAGE_BYTES', 100, 60, 7000),
    p99LimitMs: envInt('BENCH_P99_LIMIT_MS', 100, 1, 60_000),
    /** A failed step is run again (on fresh processes) this many times before the ladder stops. */
    retries: envInt('BENCH_RETRIES', 1, 0, 5),
    /** pgbench seconds per client count; 0 skips it. */
    pgbenchSeconds: envInt('BENCH_PGBENCH_S', 10, 0, 120),
    pgbenchClients: [1, 4],
    /** Statements per step of the append anatomy; 0 skips it. */
    anatomyIterations: envInt('BENCH_ANATOMY_N', 3000, 0, 100_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 900, 30, 7200),
    /** BENCH_PROFILE=1: every node writes a V8 CPU profile here at exit. */
    profileDir: process.env.BENCH_PROFILE === '1' ? join(tmpdir(), 'hubwire-scaleout-profiles') : undefined,
    /** BENCH_NODE_ARGS: extra Node flags for every server node (e.g. `--trace-gc`), space-separated. */
    nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
  };
}

export const CONFIG = configOrExit('bench:scaleout', readConfig);

export const REPORT_CONFIG: ReportConfig = {
  databases: CONFIG.databases,
  shapes: CONFIG.shapes,
  rates: CONFIG.rates,
  receivers: CONFIG.receivers,
  p99LimitMs: CONFIG.p99LimitMs,
  pgbenchSeconds: CONFIG.pgbenchSeconds,
  messageBytes: CONFIG.messageBytes,
};

/** Below this share of the offered rate, the step measured the sender process (or the awaited publisher's limit). */
export const SENDER_SHORTFALL = 0.9;
export const READY_TIMEOUT_MS = 30_000;
export const REQUEST_TIMEOUT_MS = 15_000;
export const WARMUP_RATE = 500;
export const WARMUP_MS = 1000;
export const WARMUP_ATTEMPTS = 5;
/** Upper bound of a closed loop's invocations per second: its seq range (and the receivers' arrays). */
export const MAX_INVOKES_PER_SECOND = 50_000;
/** Engine fields that are gauges (reported as at the step's end), not counters. */
export const ENGINE_GAUGES = new Set(['queueLength']);

// --- Results -----------------------------------------------------------------------------------------------------

export const results: Results = { steps: [], shapes: [] };
export const errors: string[] = [];
export const notes: string[] = [];

export const startedAt = new Date();
export const loadAtStart = loadavg();

// --- Helpers -----------------------------------------------------------------------------------------------------

export { log, sleep } from './common.js';

// --- The time budget ---------------------------------------------------------------------------------------------

export function elapsedSeconds(): number {
  return (Date.now() - startedAt.getTime()) / 1000;
}

/** Time left before the soft deadline (the hard one kills everything 30 s later). */
export function timeLeftSeconds(): number {
  return CONFIG.deadlineSeconds - 30 - elapsedSeconds();
}

/**
 * The time budget: each database of the run, then each shape of a database, gets an equal share of the time left
 * (what one does not use goes to the next), so that a tight deadline shortens ladders instead of skipping the
 * last database. Seconds since the start.
 */
export const budget = { end: Number.POSITIVE_INFINITY };

/** The end of a share `weight / totalWeight` of the time left until `until`. */
export function shareOfTimeLeft(weight: number, totalWeight: number, until = CONFIG.deadlineSeconds - 30): number {
  return elapsedSeconds() + (Math.max(0, until - elapsedSeconds()) * weight) / Math.max(weight, totalWeight);
}

/** The systems a database runs (Socket.IO runs on PostgreSQL only). */
export function systemsOf(database: DatabaseName): SystemName[] {
  return CONFIG.systems.filter((s) => SYSTEM_CODE[s] === 'hubwire' || database === 'postgres');
}

export function budgetLeftSeconds(): number {
  return Math.min(timeLeftSeconds(), budget.end - elapsedSeconds());
}
