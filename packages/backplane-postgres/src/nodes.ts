// The node registry of the PostgreSQL store (NodeStore from hubwire/backplane): one row per node in the schema's
// `nodes` table (made by migration step 3), with every time read from the database's clock.

import { type NodeRecord, validateNodeAge, validateNodeId, validateNodeInfo } from 'hubwire/backplane';
import type pg from 'pg';
import type { SchemaNames } from './schema.js';

/** One query on a pooled connection: the store's own helper (a server-side error keeps the connection). */
export type NodeQuery = <Row extends pg.QueryResultRow>(
  text: string,
  values: unknown[],
) => Promise<pg.QueryResult<Row>>;

/**
 * The database's clock in ms since 1970. clock_timestamp(), not now(): the time the statement actually runs, not
 * when its transaction started (an upsert may wait on another's row lock). It is volatile, so each statement
 * evaluates it once, in a MATERIALIZED CTE, and uses that one value everywhere (a new row's started_at and
 * heartbeat_at are equal; prune compares every row with the same bound).
 */
const CLOCK = `WITH clock AS MATERIALIZED (
    SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now
  )`;

interface NodeRow {
  now: string;
  id: string | null;
  info: string | null;
  started_at: string | null;
  heartbeat_at: string | null;
}

/**
 * The bodies of PostgresStore's heartbeatNode, readNodes, removeNode and pruneNodes. Arguments are validated
 * before any connection is taken; each method is one statement (one round trip, an implicit transaction) with
 * its values as parameters. A missing table (install() not run, or a schema not yet migrated to version 3)
 * rejects with the driver's error, code 42P01, as the key methods do.
 */
export class PostgresNodes {
  readonly #query: NodeQuery;
  readonly #sql: { heartbeat: string; read: string; remove: string; prune: string };

  constructor(names: SchemaNames, query: NodeQuery) {
    this.#query = query;
    const table = names.nodesTable;
    this.#sql = {
      // One upsert: concurrent heartbeats of one id queue on its row (or its unique index entry), none is lost.
      heartbeat: `${CLOCK}
        INSERT INTO ${table} (id, info, started_at, heartbeat_at)
        SELECT $1, $2, clock.now, clock.now FROM clock
        ON CONFLICT (id) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at`,
      // The clock joined with the rows: one row (with null columns) when there is no node, so `now` always comes
      // back. Read in the same statement as the rows, after its snapshot: no committed heartbeat is newer.
      // Ids in byte order (COLLATE "C"), whatever the database's collation.
      read: `${CLOCK}
        SELECT clock.now::text AS now, n.id, n.info, n.started_at::text AS started_at,
               n.heartbeat_at::text AS heartbeat_at
          FROM clock LEFT JOIN ${table} n ON true
         ORDER BY n.id COLLATE "C"`,
      remove: `DELETE FROM ${table} WHERE id = $1`,
      prune: `${CLOCK}
        DELETE FROM ${table} WHERE heartbeat_at < (SELECT now FROM clock) - $1::bigint`,
    };
  }

  /** Inserted with startedAt = heartbeatAt = the database's now, or info and heartbeat updated (startedAt kept). */
  async heartbeat(id: string, info: string): Promise<void> {
    validateNodeId(id);
    validateNodeInfo(info);
    // PostgreSQL text cannot hold U+0000: a clear TypeError here rather than an encoding error from the server.
    // (JSON.stringify never writes one: it escapes it as \u0000.)
    if (info.includes('\0')) throw new TypeError('Node info cannot contain U+0000 (NUL) in PostgreSQL text.');
    await this.#query(this.#sql.heartbeat, [id, info]);
  }

  async read(): Promise<{ now: number; nodes: NodeRecord[] }> {
    const result = await this.#query<NodeRow>(this.#sql.read, []);
    const first = result.rows[0];
    if (!first) throw new Error('The node registry query returned no row.');
    const nodes: NodeRecord[] = [];
    for (const row of result.rows) {
      if (row.id === null) continue;
      nodes.push({
        id: row.id,
        info: row.info as string,
        startedAt: parseTime(row.started_at),
        heartbeatAt: parseTime(row.heartbeat_at),
      });
    }
    return { now: parseTime(first.now), nodes };
  }

  async remove(id: string): Promise<boolean> {
    validateNodeId(id);
    const result = await this.#query(this.#sql.remove, [id]);
    return (result.rowCount ?? 0) > 0;
  }

  async prune(olderThanMs: number): Promise<number> {
    validateNodeAge(olderThanMs);
    const result = await this.#query(this.#sql.prune, [olderThanMs]);
    return result.rowCount ?? 0;
  }
}

/** A bigint column read as text: ms since 1970, which must be a safe integer (else a RangeError, never rounded). */
function parseTime(text: string | null): number {
  const value = Number(text);
  if (text === null || text === '' || !Number.isSafeInteger(value)) {
    throw new RangeError(`Node time ${String(text)} is not a safe integer.`);
  }
  return value;
}
