// The node registry of the SQLite store (NodeStore from hubwire/backplane): one row per node in `<prefix>_nodes`,
// with its prepared statements, cached like the key statements and dropped by install() and close().

import type Database from 'better-sqlite3';
import { asError, type NodeRecord, validateNodeAge, validateNodeId, validateNodeInfo } from 'hubwire/backplane';
import { retryBusy, type TableNames } from './schema.js';

interface NodeStatements {
  heartbeat: Database.Statement<[string, string, number, number]>;
  read: Database.Statement<[], { id: string; info: string; started_at: number; heartbeat_at: number }>;
  remove: Database.Statement<[string]>;
  prune: Database.Statement<[number]>;
}

/**
 * The bodies of SqliteStore's heartbeatNode, readNodes, removeNode and pruneNodes. Arguments are validated before
 * the database is opened; every statement is one autocommit statement, retried on SQLITE_BUSY as the key methods are.
 *
 * The clock: the file is shared only by processes of one host, so they all read the same clock, and `Date.now()`
 * passed as a parameter is the "database clock" of the contract. readNodes returns it as `now`.
 */
export class SqliteNodes {
  readonly #names: TableNames;
  readonly #path: string;
  readonly #connection: () => Promise<Database.Database>;
  #statements: NodeStatements | undefined;

  constructor(names: TableNames, path: string, connection: () => Promise<Database.Database>) {
    this.#names = names;
    this.#path = path;
    this.#connection = connection;
  }

  /** Forgets the prepared statements (new tables after install(), or a closed connection). */
  reset(): void {
    this.#statements = undefined;
  }

  /** One upsert: a new row starts with startedAt = heartbeatAt = now; an existing one keeps its startedAt. */
  async heartbeat(id: string, info: string): Promise<void> {
    validateNodeId(id);
    validateNodeInfo(info);
    const statements = await this.#prepared();
    await retryBusy(() => {
      const now = Date.now();
      statements.heartbeat.run(id, info, now, now);
    });
  }

  async read(): Promise<{ now: number; nodes: NodeRecord[] }> {
    const statements = await this.#prepared();
    return retryBusy(() => {
      // Read before the rows, so no row is newer than `now`.
      const now = Date.now();
      const nodes = statements.read.all().map(
        (row): NodeRecord => ({
          id: row.id,
          info: row.info,
          startedAt: row.started_at,
          heartbeatAt: row.heartbeat_at,
        }),
      );
      return { now, nodes };
    });
  }

  async remove(id: string): Promise<boolean> {
    validateNodeId(id);
    const statements = await this.#prepared();
    return retryBusy(() => statements.remove.run(id).changes > 0);
  }

  async prune(olderThanMs: number): Promise<number> {
    validateNodeAge(olderThanMs);
    const statements = await this.#prepared();
    return retryBusy(() => statements.prune.run(Date.now() - olderThanMs).changes);
  }

  async #prepared(): Promise<NodeStatements> {
    const db = await this.#connection();
    if (this.#statements) return this.#statements;
    const table = this.#names.nodesTable;
    try {
      this.#statements = {
        heartbeat: db.prepare(
          `INSERT INTO ${table} (id, info, started_at, heartbeat_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at`,
        ),
        read: db.prepare(`SELECT id, info, started_at, heartbeat_at FROM ${table} ORDER BY id`),
        remove: db.prepare(`DELETE FROM ${table} WHERE id = ?`),
        prune: db.prepare(`DELETE FROM ${table} WHERE heartbeat_at < ?`),
      };
    } catch (error) {
      if (/no such table/i.test(asError(error).message)) {
        throw new Error(
          `The nodes table is not installed in ${this.#path} (prefix '${this.#names.prefix}'): call install() first.`,
          { cause: error },
        );
      }
      throw error;
    }
    return this.#statements;
  }
}
