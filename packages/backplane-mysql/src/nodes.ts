// The node registry of MysqlStore (NodeStore from hubwire/backplane): one row per node in `<prefix>_nodes`, its
// times from the database's clock, so that nodes whose own clocks disagree still agree on who is alive.

import { type NodeRecord, validateNodeAge, validateNodeId, validateNodeInfo } from 'hubwire/backplane';
import type mysql from 'mysql2/promise';
import type { TableNames } from './schema.js';

/**
 * The database's clock in whole milliseconds since 1970, as SQL. Plain DATETIME arithmetic on `UTC_TIMESTAMP(3)`:
 * unlike `UNIX_TIMESTAMP(NOW(3))` the session time zone plays no part (an hour repeated by a daylight-saving change
 * cannot be misread), and `DIV` keeps it an integer. Evaluated once per statement, so both times of a new row agree.
 */
const NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000)";

/** Runs work on a pooled connection (the store's `withConnection`: broken connections are discarded). */
type Run = <T>(work: (connection: mysql.PoolConnection) => Promise<T>) => Promise<T>;

/** A time read as text (BIGINT exact whatever the pool's big-number settings) as a JS number. */
function parseTime(text: unknown): number {
  const value = Number(text);
  if (typeof text !== 'string' || text === '' || !Number.isSafeInteger(value)) {
    throw new RangeError(`Node time ${String(text)} is not a safe integer.`);
  }
  return value;
}

/**
 * The SQL of the node registry and its four calls; MysqlStore delegates its NodeStore methods here. Arguments are
 * validated before any connection is taken. Info travels as bytes both ways (a Buffer in, `CAST(info AS BINARY)`
 * out, decoded as UTF-8 here), so it is kept byte for byte whatever the connection's character set: a pool passed
 * in with `charset: 'latin1'` (or utf8mb3) would otherwise turn characters it lacks into `?`. A missing table (no
 * install() at schema version 3) rejects with the driver's ER_NO_SUCH_TABLE, as the keys do.
 */
export class NodeRegistry {
  readonly #run: Run;
  readonly #sql: { heartbeat: string; read: string; remove: string; prune: string };

  constructor(names: TableNames, run: Run) {
    this.#run = run;
    const table = names.nodesTable;
    this.#sql = {
      // One statement: inserted with both times now, or info and heartbeat updated (started_at kept). The id is
      // the primary key, so concurrent first heartbeats of one node make one row. (MySQL 8.0.20+ warns that
      // VALUES() is deprecated; MariaDB has no row alias, and VALUES() works on both.)
      heartbeat: `INSERT INTO ${table} (id, info, started_at, heartbeat_at)
          VALUES (?, CONVERT(? USING utf8mb4), ${NOW_MS}, ${NOW_MS})
          ON DUPLICATE KEY UPDATE info = VALUES(info), heartbeat_at = VALUES(heartbeat_at)`,
      // The clock and the rows in one statement (one snapshot, one `now`); the LEFT JOIN from the one-row clock
      // gives a row even when there are no nodes (its node columns NULL).
      read: `SELECT CAST(c.now AS CHAR) AS now, n.id, CAST(n.info AS BINARY) AS info,
            CAST(n.started_at AS CHAR) AS started_at, CAST(n.heartbeat_at AS CHAR) AS heartbeat_at
          FROM (SELECT ${NOW_MS} AS now) c LEFT JOIN ${table} n ON 1 = 1
          ORDER BY n.id`,
      remove: `DELETE FROM ${table} WHERE id = ?`,
      // "More than olderThanMs old": heartbeat_at < now - olderThanMs, as the memory store counts it.
      prune: `DELETE FROM ${table} WHERE heartbeat_at < ${NOW_MS} - ?`,
    };
  }

  async heartbeat(id: string, info: string): Promise<void> {
    validateNodeId(id);
    validateNodeInfo(info);
    await this.#run((connection) => connection.execute(this.#sql.heartbeat, [id, Buffer.from(info, 'utf8')]));
  }

  async read(): Promise<{ now: number; nodes: NodeRecord[] }> {
    const [rows] = await this.#run((connection) => connection.execute<mysql.RowDataPacket[]>(this.#sql.read));
    const now = parseTime(rows[0]?.now);
    const nodes: NodeRecord[] = [];
    for (const row of rows) {
      if (row.id === null) continue;
      nodes.push({
        id: Buffer.isBuffer(row.id) ? row.id.toString('latin1') : String(row.id),
        info: (row.info as Buffer).toString('utf8'),
        startedAt: parseTime(row.started_at),
        heartbeatAt: parseTime(row.heartbeat_at),
      });
    }
    return { now, nodes };
  }

  async remove(id: string): Promise<boolean> {
    validateNodeId(id);
    const [result] = await this.#run((connection) => connection.execute<mysql.ResultSetHeader>(this.#sql.remove, [id]));
    return result.affectedRows > 0;
  }

  async prune(olderThanMs: number): Promise<number> {
    validateNodeAge(olderThanMs);
    const [result] = await this.#run((connection) =>
      connection.execute<mysql.ResultSetHeader>(this.#sql.prune, [olderThanMs]),
    );
    return result.affectedRows;
  }
}
