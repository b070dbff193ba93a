// The scaleout bench's "append anatomy": what one append costs on an idle PostgreSQL, taken apart. From one Node
// `pg.Client`, sequentially (one statement in flight, as one node's appends are), each step `iterations` times
// after a warm-up: a round trip, the plain single-row INSERT the issue compares against (unnamed and prepared), the
// id-row UPDATE alone, the store's append statement without and with `pg_notify` (built here from the shape of
// PostgresStore's: `WITH next AS (UPDATE streams …) , inserted AS (INSERT …) SELECT id, pg_notify(…)`), the same
// with a LISTEN connection open (as nodes have), and finally `PostgresStore.append()` itself (pool and all).

import { PostgresStore } from '@hubwire/postgres';
import pg from 'pg';

export interface AnatomyRow {
  name: string;
  /** What the step runs. */
  sql: string;
  iterations: number;
  p50Ms: number;
  p99Ms: number;
  avgMs: number;
  maxMs: number;
}

export interface Anatomy {
  schema: string;
  iterations: number;
  warmup: number;
  payloadBytes: number;
  rows: AnatomyRow[];
  /** Notifications the LISTEN connection received (each append with pg_notify while it listened sends one). */
  notificationsReceived: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export async function measureAnatomy(
  url: string,
  schema: string,
  iterations: number,
  payloadBytes: number,
  log: (line: string) => void,
): Promise<Anatomy> {
  const warmup = Math.min(300, Math.max(20, Math.round(iterations / 10)));
  const store = new PostgresStore({ connectionString: url, schema });
  const client = new pg.Client({ connectionString: url, application_name: 'bench-anatomy' });
  const listener = new pg.Client({ connectionString: url, application_name: 'bench-anatomy-listen' });
  client.on('error', () => {});
  listener.on('error', () => {});
  const rows: AnatomyRow[] = [];
  let notificationsReceived = 0;
  try {
    await store.install();
    await client.connect();
    const names = store.names;
    const plainTable = `${names.quoted}.anatomy_plain`;
    await client.query(`CREATE TABLE ${plainTable} (id bigserial PRIMARY KEY, payload bytea NOT NULL)`);
    const payload = Buffer.alloc(payloadBytes, 0xab);
    const publisher = 'bench-anatomy';
    let batchSeq = 0;
    const appendSql = (notify: boolean) => `WITH next AS (
        UPDATE ${names.streamsTable} SET last_id = last_id + 1 WHERE stream = $1 RETURNING last_id
      ), inserted AS (
        INSERT INTO ${names.messagesTable(0)} (id, publisher, batch_seq, payload)
        SELECT last_id, $2, $3, $4 FROM next
        RETURNING id
      )
      SELECT id::text AS id${notify ? ', pg_notify($5, $6)' : ''} FROM inserted`;
    const appendValues = (notify: boolean) =>
      notify
        ? [0, publisher, ++batchSeq, payload, names.channel, `0:${publisher}`]
        : [0, publisher, ++batchSeq, payload];

    const measure = async (name: string, sql: string, run: () => Promise<unknown>) => {
      for (let i = 0; i < warmup; i++) await run();
      const times = new Array<number>(iterations);
      for (let i = 0; i < iterations; i++) {
        const started = performance.now();
        await run();
        times[i] = performance.now() - started;
      }
      times.sort((a, b) => a - b);
      const row: AnatomyRow = {
        name,
        sql,
        iterations,
        p50Ms: quantile(times, 0.5),
        p99Ms: quantile(times, 0.99),
        avgMs: times.reduce((a, b) => a + b, 0) / iterations,
        maxMs: times[iterations - 1] as number,
      };
      rows.push(row);
      log(`  ${name}: p50 ${row.p50Ms.toFixed(3)} ms, p99 ${row.p99Ms.toFixed(3)} ms, avg ${row.avgMs.toFixed(3)} ms`);
    };

    const insertSql = `INSERT INTO ${plainTable} (payload) VALUES ($1)`;
    const updateSql = `UPDATE ${names.streamsTable} SET last_id = last_id + 1 WHERE stream = $1`;
    await measure('SELECT 1 (round trip)', 'SELECT 1', () => client.query('SELECT 1'));
    await measure(`INSERT ${payloadBytes} B bytea`, insertSql, () => client.query(insertSql, [payload]));
    await measure(`INSERT ${payloadBytes} B bytea, prepared`, insertSql, () =>
      client.query({ name: 'anatomy_insert', text: insertSql, values: [payload] }),
    );
    await measure('UPDATE streams (id row) alone', updateSql, () => client.query(updateSql, [0]));
    await measure('append statement, no pg_notify', appendSql(false), () =>
      client.query(appendSql(false), appendValues(false)),
    );
    await measure('append statement + pg_notify', appendSql(true), () =>
      client.query(appendSql(true), appendValues(true)),
    );
    await measure('append + pg_notify, prepared', appendSql(true), () =>
      client.query({ name: 'anatomy_append', text: appendSql(true), values: appendValues(true) }),
    );
    await listener.connect();
    listener.on('notification', () => {
      notificationsReceived++;
    });
    await listener.query(`LISTEN "${names.channel}"`);
    await measure('append + pg_notify, 1 listener', appendSql(true), () =>
      client.query(appendSql(true), appendValues(true)),
    );
    await measure('PostgresStore.append(), 1 listener', 'store.append(0, publisher, batchSeq, payload)', () =>
      store.append(0, publisher, ++batchSeq, payload),
    );
  } finally {
    await client.end().catch(() => {});
    await listener.end().catch(() => {});
    await store.close().catch(() => {});
  }
  return { schema, iterations, warmup, payloadBytes, rows, notificationsReceived };
}
