// The SQL of the PostgreSQL store, built once per store from validated names: append (with its NOTIFY, with the
// row pushed in it, or quiet), read, trim, top and the keys. Each statement is named (a prepared statement, parsed
// and planned once per connection) unless preparedStatements is off.

import { createHash } from 'node:crypto';
import { TRIM_BLOCK_ROWS } from 'hubwire/backplane';
import { notifyExpression } from './push.js';
import type { SchemaNames } from './schema.js';

/** How many rows one trim statement deletes: small enough to keep each transaction short. */
export const TRIM_BLOCK = TRIM_BLOCK_ROWS;

/** A statement of the store: its text, and a name when it is prepared. */
export interface Statement {
  readonly name?: string;
  readonly text: string;
}

export interface Statements {
  /** Per stream: the append with its NOTIFY (none with notify off), with its row in the NOTIFY, without NOTIFY. */
  readonly append: Statement[];
  readonly appendPush: Statement[];
  readonly appendQuiet: Statement[];
  readonly read: Statement[];
  readonly trim: Statement[];
  readonly top: Statement;
  readonly keys: { read: string; newer: string; insert: string; delete: string };
}

/** A prepared statement's name, from its text: the same text shares a name, different texts (schemas) never do. */
function statementName(text: string): string {
  return `hubwire_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
}

export function buildStatements(
  names: SchemaNames,
  streamCount: number,
  options: { notify: boolean; prepared: boolean },
): Statements {
  const statement = (text: string): Statement => (options.prepared ? { name: statementName(text), text } : { text });
  const sql = {
    append: [] as Statement[],
    appendPush: [] as Statement[],
    appendQuiet: [] as Statement[],
    read: [] as Statement[],
    trim: [] as Statement[],
  };
  for (let stream = 0; stream < streamCount; stream++) {
    const table = names.messagesTable(stream);
    // One statement, so one round trip and one implicit transaction. The UPDATE takes the stream row's lock
    // and holds it to commit; a concurrent append waits, then reads the committed last_id. pg_notify queues at
    // most one notification, sent at commit and only if the insert committed. A duplicate (publisher,
    // batch_seq) fails the whole statement, so the UPDATE is rolled back too: no gap.
    const append = (notify: string | undefined) =>
      statement(`WITH next AS (
        UPDATE ${names.streamsTable} SET last_id = last_id + 1 WHERE stream = $1 RETURNING last_id
      ), inserted AS (
        INSERT INTO ${table} (id, publisher, batch_seq, payload)
        SELECT last_id, $2, $3, $4 FROM next
        RETURNING id
      )
      SELECT id::text AS id${notify ? `, ${notify}` : ''} FROM inserted`);
    sql.appendQuiet[stream] = append(undefined);
    sql.append[stream] = options.notify ? append(notifyExpression(false)) : append(undefined);
    sql.appendPush[stream] = append(notifyExpression(true));
    // ORDER BY the column m.id, not the text alias `id` (that would sort '10' before '9').
    sql.read[stream] = statement(
      `SELECT m.id::text AS id, m.payload FROM ${table} m WHERE m.id > $1 ORDER BY m.id LIMIT $2`,
    );
    // One block per statement. The transaction-scoped try-lock skips the block when another node is trimming
    // this stream, and is released at the end of the statement, so it works through PgBouncer too. Bounds:
    // rows beyond the newest `keepRows` (from the committed top) AND older than the age; the lower bound $4
    // moves past each block so that later blocks do not rescan the dead index entries of earlier ones.
    sql.trim[stream] = statement(`WITH lock AS MATERIALIZED (
        SELECT pg_try_advisory_xact_lock($1, $2) AS held
      ), doomed AS (
        SELECT m.id FROM ${table} m
         WHERE (SELECT held FROM lock)
           AND m.id > $4
           AND m.id <= (SELECT last_id - $3 FROM ${names.streamsTable} WHERE stream = $2)
           AND m.created_at < now() - $5::float8 * interval '1 millisecond'
         ORDER BY m.id
         LIMIT ${TRIM_BLOCK}
      ), gone AS (
        DELETE FROM ${table} m USING doomed WHERE m.id = doomed.id RETURNING m.id
      )
      SELECT (SELECT held FROM lock) AS held, count(*)::int AS deleted, max(id)::text AS last FROM gone`);
  }
  const top = statement(`SELECT last_id::text AS id FROM ${names.streamsTable} WHERE stream = $1`);
  // Ties of created_at are ordered by id in byte order (COLLATE "C"), whatever the database's collation.
  const keys = {
    read: `SELECT id, secret, created_at::text AS created_at FROM ${names.keysTable}
            WHERE purpose = $1 ORDER BY created_at DESC, id COLLATE "C" DESC`,
    newer: `SELECT 1 FROM ${names.keysTable} WHERE purpose = $1 AND created_at > $2 LIMIT 1`,
    insert: `INSERT INTO ${names.keysTable} (purpose, id, secret, created_at) VALUES ($1, $2, $3, $4)`,
    delete: `DELETE FROM ${names.keysTable} WHERE purpose = $1 AND created_at < $2`,
  };
  return { ...sql, top, keys };
}
