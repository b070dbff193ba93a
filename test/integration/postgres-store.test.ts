// The PostgreSQL store against a real server: the store conformance suite (test/conformance/store-suite.ts), then
// what is PostgreSQL's own: late commits, roles and grants, big ids, the trim lock, LISTEN wake-ups and their
// recovery after the backend is killed.
// Database: HUBWIRE_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test. Each test has its own schema.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  createStore,
  installSchema,
  PostgresStore,
  type PostgresStoreOptions,
  SCHEMA_VERSION,
} from '@hubwire/postgres';
import { Backplane } from 'hubwire';
import pg from 'pg';
import { runStoreConformance } from '../conformance/store-suite.js';
import { checkLateCommit } from '../helpers/late-commit.js';
import { waitFor } from '../helpers/wait.js';

const url = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

// Without HUBWIRE_TEST_POSTGRES an unreachable default server skips the suite; with it, the suite must run.
async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    if (process.env.HUBWIRE_TEST_POSTGRES) throw error;
    return `no PostgreSQL at ${url} (${(error as Error).message}); set HUBWIRE_TEST_POSTGRES`;
  } finally {
    await client.end().catch(() => {});
  }
}
const skip = await probe();

const admin = new pg.Pool({ connectionString: url, max: 4 });
admin.on('error', () => {});
const schemas: string[] = [];
const roles: string[] = [];
const stores: PostgresStore[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

function freshSchema(): string {
  const schema = `hw_test_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

function makeStore(options: Partial<PostgresStoreOptions> & { schema: string }): PostgresStore {
  const store = new PostgresStore({ connectionString: url, ...options });
  stores.push(store);
  return store;
}

/** A connected client for manual transactions, ended after the test. */
async function manualClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  cleanups.push(() => client.end().catch(() => {}));
  return client;
}

async function cleanup(): Promise<void> {
  for (const done of cleanups.splice(0)) await done();
  await Promise.all(stores.splice(0).map((store) => store.close()));
  for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  // Last: a role cannot be dropped while it still owns or has grants on anything.
  for (const role of roles.splice(0)) await admin.query(`DROP ROLE IF EXISTS "${role}"`);
}
after(() => admin.end());

runStoreConformance('postgres', {
  skip,
  wakeups: true,
  fresh() {
    const schema = freshSchema();
    return {
      schema,
      create: (options = {}) =>
        makeStore({ schema, tableCount: options.tableCount, poolSize: options.poolSize, wakeups: options.wakeups }),
    };
  },
  cleanup,
  async age({ schema }, stream, throughId, ms) {
    await admin.query(
      `UPDATE "${schema}".messages_${stream} SET created_at = created_at - $1 * interval '1 millisecond' WHERE id <= $2`,
      [ms, throughId],
    );
  },
  named: (schema) => new PostgresStore({ connectionString: url, schema }).close(),
  async afterInstallRace({ schema }, epoch) {
    const version = await admin.query(`SELECT version, epoch FROM "${schema}".schema_version`);
    assert.deepEqual(version.rows, [{ version: SCHEMA_VERSION, epoch }]);
    const streams = await admin.query(`SELECT stream, last_id FROM "${schema}".streams ORDER BY stream`);
    assert.deepEqual(streams.rows, [
      { stream: 0, last_id: '0' },
      { stream: 1, last_id: '0' },
    ]);
  },
  async afterGrow({ schema }) {
    const tables = await admin.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
      [schema],
    );
    assert.deepEqual(
      tables.rows.map((row) => row.table_name),
      ['keys', 'messages_0', 'messages_1', 'messages_2', 'nodes', 'schema_version', 'streams'],
    );
  },
  async downgradeToVersion1({ schema }) {
    // Every table of the steps after version 1: keys (step 2), nodes (step 3).
    await admin.query(`DROP TABLE "${schema}".keys, "${schema}".nodes`);
    await admin.query(`UPDATE "${schema}".schema_version SET version = 1`);
  },
});

describe('PostgresStore', { skip, timeout: 60_000 }, () => {
  afterEach(cleanup);

  describe('install', () => {
    test('installing again changes nothing in the schema; installSchema returns the same epoch', async () => {
      const schema = freshSchema();
      const first = await makeStore({ schema }).install();
      const before = await admin.query(`SELECT installed_at FROM "${schema}".schema_version`);
      const second = await makeStore({ schema }).install();
      const third = await installSchema(url, { schema });
      assert.equal(second.epoch, first.epoch);
      assert.deepEqual(third, { epoch: first.epoch, version: SCHEMA_VERSION });
      const after = await admin.query(`SELECT installed_at FROM "${schema}".schema_version`);
      assert.deepEqual(after.rows, before.rows);
    });

    test('installSchema pre-installs for a store that then only reads at install', async () => {
      const schema = freshSchema();
      const { epoch } = await installSchema(url, { schema, tableCount: 2 });
      assert.equal((await makeStore({ schema, tableCount: 2 }).install()).epoch, epoch);
      // The URL entry point used by backplaneFromUrl builds the same store.
      const fromUrl = createStore(url, { schema, tableCount: 2 });
      stores.push(fromUrl);
      assert.equal(fromUrl.streamCount, 2);
      assert.equal((await fromUrl.install()).epoch, epoch);
    });

    test('an application role with only the documented grants runs on a pre-installed schema', async () => {
      const schema = freshSchema();
      const { epoch } = await installSchema(url, { schema, tableCount: 2 });
      const role = `${schema}_app`;
      await admin.query(`CREATE ROLE "${role}" LOGIN`);
      roles.push(role);
      await admin.query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
      await admin.query(`GRANT SELECT ON "${schema}".schema_version TO "${role}"`);
      await admin.query(`GRANT SELECT, UPDATE ON "${schema}".streams TO "${role}"`);
      await admin.query(`GRANT SELECT, INSERT, DELETE ON "${schema}".messages_0, "${schema}".messages_1 TO "${role}"`);
      await admin.query(`GRANT SELECT, INSERT, DELETE ON "${schema}".keys TO "${role}"`);
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON "${schema}".nodes TO "${role}"`);
      const roleUrl = new URL(url);
      roleUrl.username = role;
      roleUrl.password = '';
      const store = makeStore({ schema, tableCount: 2, connectionString: roleUrl.href });
      assert.equal((await store.install()).epoch, epoch);
      const woken: number[] = [];
      await store.subscribe(
        (stream) => woken.push(stream),
        () => {},
      );
      assert.equal((await store.append(1, 'p', 1, Buffer.from('x'))).id, 1);
      assert.equal((await store.append(1, 'p', 1, Buffer.from('x'))).id, undefined);
      assert.equal((await store.readAfter(1, 0, 10)).length, 1);
      assert.equal(await store.top(1), 1);
      assert.equal(await store.trim(1, 0, 0), 1);
      const secret = randomBytes(32);
      assert.equal(await store.addKey('p', { id: 'k', secret, createdAt: 1 }, -1), true);
      assert.deepEqual(await store.readKeys('p'), [{ id: 'k', secret, createdAt: 1 }]);
      assert.equal(await store.deleteKeys('p', 2), 1);
      await store.heartbeatNode('n', '{}');
      await store.heartbeatNode('n', '{"again":true}');
      assert.deepEqual(
        (await store.readNodes()).nodes.map((node) => [node.id, node.info]),
        [['n', '{"again":true}']],
      );
      assert.equal(await store.pruneNodes(60_000), 0);
      assert.equal(await store.removeNode('n'), true);
      await waitFor(() => woken.length === 1, 5000, 'a wake-up');
      // Growing tableCount needs CREATE on the schema, which this role lacks: a clear permission error.
      await assert.rejects(makeStore({ schema, tableCount: 3, connectionString: roleUrl.href }).install(), {
        code: '42501',
      });
    });

    test('an existing empty schema owned by the installing role needs no CREATE on the database', async () => {
      const schema = freshSchema();
      const role = `${schema}_owner`;
      await admin.query(`CREATE ROLE "${role}" LOGIN`);
      roles.push(role);
      await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${role}"`);
      const roleUrl = new URL(url);
      roleUrl.username = role;
      const store = makeStore({ schema, connectionString: roleUrl.href });
      const { epoch } = await store.install();
      assert.match(epoch, /^[0-9a-f-]{36}$/);
      assert.equal((await store.append(0, 'p', 1, Buffer.from('x'))).id, 1);
    });

    test('invalid options are rejected before touching the database', async () => {
      for (const schema of ['bad-name', '1abc', '', 'a'.repeat(52), 'x"; DROP TABLE y; --', 'sch ema']) {
        assert.throws(() => new PostgresStore({ connectionString: url, schema }), TypeError, schema);
        await assert.rejects(installSchema(url, { schema }), TypeError);
      }
      assert.doesNotThrow(() => new PostgresStore({ connectionString: url, schema: `_${'a'.repeat(50)}` }).close());
      for (const tableCount of [0, 65, 1.5]) {
        assert.throws(() => new PostgresStore({ connectionString: url, tableCount }), RangeError);
      }
      assert.throws(() => new PostgresStore({}), /connectionString or a pool/);
    });
  });

  describe('append, readAfter, top', () => {
    for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
      test(`a late-committing transaction is never skipped (${outcome})`, async () => {
        const schema = freshSchema();
        const store = makeStore({ schema });
        await store.install();
        await store.append(0, 'p', 1, Buffer.from('first'));
        // A writer that took the next id and has not committed yet, as a slow append would.
        const late = await manualClient();
        await late.query('BEGIN');
        await late.query(
          `WITH next AS (UPDATE "${schema}".streams SET last_id = last_id + 1 WHERE stream = 0 RETURNING last_id)
           INSERT INTO "${schema}".messages_0 (id, publisher, batch_seq, payload)
           SELECT last_id, 'late', 1, '\\x6c617465' FROM next`,
        );
        await checkLateCommit(store, outcome, (end) => late.query(end));
      });
    }

    test('an id beyond 2^53 is a clear error, not a rounded id', async () => {
      const schema = freshSchema();
      const store = makeStore({ schema });
      await store.install();
      await admin.query(
        `INSERT INTO "${schema}".messages_0 (id, publisher, batch_seq, payload) VALUES (9007199254740993, 'p', 1, '\\x00')`,
      );
      await assert.rejects(store.readAfter(0, 0, 10), /exceeds Number.MAX_SAFE_INTEGER/);
    });
  });

  describe('trim', () => {
    test('skips a stream that another node is trimming', async () => {
      const schema = freshSchema();
      const store = makeStore({ schema });
      await store.install();
      for (let seq = 1; seq <= 5; seq++) await store.append(0, 'p', seq, Buffer.from('x'));
      const other = await manualClient();
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1, $2)', [store.names.lockNamespace, 0]);
      assert.equal(await store.trim(0, 0, 0), 0);
      await other.query('COMMIT');
      assert.equal(await store.trim(0, 0, 0), 5);
    });
  });

  describe('node registry', () => {
    test("times are the database's clock; a NUL in info is refused before touching the database", async () => {
      const schema = freshSchema();
      const store = makeStore({ schema });
      await store.install();
      const clock = async () => {
        const result = await admin.query(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::text AS now`);
        return Number(result.rows[0].now);
      };
      const before = await clock();
      await store.heartbeatNode('n', '{}');
      const { now, nodes } = await store.readNodes();
      const after = await clock();
      assert.ok(before <= nodes[0]!.heartbeatAt && nodes[0]!.heartbeatAt <= now && now <= after);
      const stored = await admin.query(`SELECT started_at::text, heartbeat_at::text FROM "${schema}".nodes`);
      assert.deepEqual(stored.rows, [
        { started_at: String(nodes[0]!.startedAt), heartbeat_at: String(nodes[0]!.heartbeatAt) },
      ]);
      await assert.rejects(store.heartbeatNode('m', '{"a":"\0"}'), TypeError);
      assert.deepEqual(
        (await store.readNodes()).nodes.map((node) => node.id),
        ['n'],
      );
    });

    test('a namespace at version 2 (keys, no nodes) gets the nodes table and keeps its keys', async () => {
      const schema = freshSchema();
      const { epoch } = await makeStore({ schema }).install();
      await admin.query(`DROP TABLE "${schema}".nodes`);
      await admin.query(`UPDATE "${schema}".schema_version SET version = 2`);
      const store = makeStore({ schema });
      await assert.rejects(store.readNodes(), { code: '42P01' });
      assert.deepEqual(await installSchema(url, { schema }), { epoch, version: SCHEMA_VERSION });
      await store.heartbeatNode('n', '{}');
      assert.equal((await store.readNodes()).nodes.length, 1);
      assert.equal((await store.readKeys('hubwire.push')).length, 1, 'the push key made at the first install');
    });
  });

  describe('subscribe', () => {
    test('wake-ups carry the stream number, one per append', async () => {
      const schema = freshSchema();
      const listener = makeStore({ schema, tableCount: 2 });
      const writer = makeStore({ schema, tableCount: 2 });
      await listener.install();
      const woken: number[] = [];
      let reconnects = 0;
      await listener.subscribe(
        (stream) => woken.push(stream),
        () => reconnects++,
      );
      const expected = [1, 1, 0, 1, 0];
      for (const [seq, stream] of expected.entries()) await writer.append(stream, 'w', seq, Buffer.from('x'));
      await waitFor(() => woken.length >= expected.length, 5000, 'wake-ups');
      await delay(200);
      assert.deepEqual(woken, expected);
      assert.equal(reconnects, 0);
      // A duplicate append commits nothing, so it wakes no one.
      await writer.append(0, 'w', 2, Buffer.from('dup'));
      await delay(200);
      assert.equal(woken.length, expected.length);
    });

    test('after pg_terminate_backend of the LISTEN connection, onReconnect is called and wake-ups resume', async () => {
      const schema = freshSchema();
      const errors: Error[] = [];
      const store = makeStore({ schema, onError: (error) => errors.push(error) });
      await store.install();
      const woken: number[] = [];
      let reconnects = 0;
      const stop = await store.subscribe(
        (stream) => woken.push(stream),
        () => reconnects++,
      );
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE query = $1 AND datname = current_database()`,
        [`LISTEN "hubwire_${schema}"`],
      );
      assert.deepEqual(killed.rows, [{ done: true }]);
      await waitFor(() => reconnects === 1, 10_000, 'onReconnect');
      assert.ok(errors.length >= 1, 'the loss was reported to onError');
      await store.append(0, 'p', 1, Buffer.from('x'));
      await waitFor(() => woken.length === 1, 5000, 'a wake-up after reconnecting');
      assert.deepEqual(woken, [0]);
      await stop?.();
      await store.append(0, 'p', 2, Buffer.from('y'));
      await delay(200);
      assert.deepEqual(woken, [0], 'nothing after stop');
    });

    test('wakeups: false never calls back and never NOTIFYs', async () => {
      const schema = freshSchema();
      const quiet = makeStore({ schema, wakeups: false });
      await quiet.install();
      const raw = await manualClient();
      const heard: string[] = [];
      raw.on('notification', (message) => heard.push(message.channel));
      await raw.query(`LISTEN "hubwire_${schema}"`);
      let calls = 0;
      const stop = await quiet.subscribe(
        () => calls++,
        () => calls++,
      );
      assert.equal(stop, undefined, 'tells the engine there are no push wake-ups');
      for (let seq = 1; seq <= 3; seq++) await quiet.append(0, 'q', seq, Buffer.from('x'));
      // A notifying store on the same schema proves the raw listener works.
      await makeStore({ schema }).append(0, 'n', 1, Buffer.from('x'));
      await waitFor(() => heard.length >= 1, 5000, 'the notifying store');
      await delay(200);
      assert.equal(heard.length, 1);
      assert.equal(calls, 0);
    });
  });

  describe('rows pushed in their NOTIFY', () => {
    /** A raw LISTEN on the store's channel: every notification's text, as anyone who can connect would see it. */
    async function eavesdrop(schema: string): Promise<{ heard: string[]; client: pg.Client }> {
      const client = await manualClient();
      const heard: string[] = [];
      client.on('notification', (message) => heard.push(message.payload ?? ''));
      await client.query(`LISTEN "hubwire_${schema}"`);
      return { heard, client };
    }

    test('a small row arrives with its wake-up, encrypted; a big row, a forged or tampered one is only a wake-up', async () => {
      const schema = freshSchema();
      const errors: Error[] = [];
      const listener = makeStore({ schema, onError: (error) => errors.push(error) });
      const writer = makeStore({ schema, pushRowBytes: 1000 });
      await listener.install();
      await writer.install();
      const calls: { stream: number; publisher?: string; row?: { id: number; payload: string } }[] = [];
      await listener.subscribe(
        (stream, publisher, row) =>
          calls.push({ stream, publisher, row: row && { id: row.id, payload: row.payload.toString() } }),
        () => {},
      );
      const { heard, client } = await eavesdrop(schema);
      const secret = 'the launch code is 0000';
      assert.equal((await writer.append(0, 'w', 1, Buffer.from(secret))).id, 1);
      await waitFor(() => calls.length === 1 && heard.length === 1, 5000, 'the pushed row');
      assert.deepEqual(calls[0], { stream: 0, publisher: 'w', row: { id: 1, payload: secret } });
      // What an eavesdropper sees: no plaintext, in any encoding.
      const text = heard[0] as string;
      assert.ok(text.startsWith('0:w:1:'), text);
      for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex')]) {
        assert.ok(!text.includes(form), 'the row is not readable from the notification');
      }
      // Bigger than pushRowBytes: a wake-up with the id, no row.
      await writer.append(0, 'w', 2, Buffer.alloc(1001, 1));
      await waitFor(() => calls.length === 2, 5000, 'the big row wake-up');
      assert.deepEqual(calls[1], { stream: 0, publisher: 'w', row: undefined });
      // A genuine notification replayed under another id, or with a changed ciphertext, carries no row.
      const [, publisher, , mac, sealed] = text.split(':') as string[];
      const forged = [
        `0:${publisher}:3:${mac}:${sealed}`,
        `0:${publisher}:1:${mac}:${Buffer.from(Buffer.from(sealed as string, 'base64').map((b, i) => (i === 20 ? b ^ 1 : b))).toString('base64')}`,
        `0:${publisher}:3:${Buffer.alloc(32).toString('base64')}:${Buffer.from('fake').toString('base64')}`,
      ];
      for (const forgery of forged) await client.query('SELECT pg_notify($1, $2)', [`hubwire_${schema}`, forgery]);
      await waitFor(() => calls.length === 5, 5000, 'the forged notifications');
      assert.deepEqual(
        calls.slice(2).map((call) => call.row),
        [undefined, undefined, undefined],
      );
      assert.ok(errors.some((error) => /does not authenticate/.test(error.message)));
      // Replayed unchanged, it is the genuine row 1 again (a receiver already has it: delivered ids are skipped).
      await client.query('SELECT pg_notify($1, $2)', [`hubwire_${schema}`, text]);
      await waitFor(() => calls.length === 6, 5000, 'the replay');
      assert.deepEqual(calls[5]?.row, { id: 1, payload: secret });
    });

    test('pushRowBytes: 0 pushes nothing; invalid values are refused', async () => {
      const schema = freshSchema();
      const listener = makeStore({ schema });
      const writer = makeStore({ schema, pushRowBytes: 0 });
      await Promise.all([listener.install(), writer.install()]);
      const rows: unknown[] = [];
      await listener.subscribe(
        (_stream, _publisher, row) => rows.push(row),
        () => {},
      );
      await writer.append(0, 'w', 1, Buffer.from('x'));
      await waitFor(() => rows.length === 1, 5000, 'a wake-up');
      assert.deepEqual(rows, [undefined]);
      for (const pushRowBytes of [-1, 5601, 1.5]) {
        assert.throws(() => new PostgresStore({ connectionString: url, schema, pushRowBytes }), RangeError);
      }
    });

    test('two engines: rows cross through their NOTIFY, not through reads', async () => {
      const schema = freshSchema();
      const engines = [0, 1].map(
        () => new Backplane(makeStore({ schema }), { onError: () => {}, safetyPollInterval: 60_000 }),
      );
      const received: unknown[] = [];
      engines[1]?.register('/h', (envelope) => {
        if (envelope.kind === 1) received.push(envelope.args[0]);
      });
      engines[0]?.register('/h', () => {});
      await Promise.all(engines.map((engine) => engine.start()));
      const [a, b] = engines as [Backplane, Backplane];
      // A first message, so that B's first poll (at start) is over: it may read a row committed meanwhile.
      await a.publish({ kind: 1, hub: '/h', audience: { all: true }, target: 'm', args: ['first'] });
      await waitFor(() => received.length === 1, 5000, 'the first message');
      await delay(50);
      received.length = 0;
      const readsBefore = b.stats().rowsRead;
      const pushedBefore = b.stats().rowsPushed;
      for (let i = 0; i < 20; i++) {
        await a.publish({ kind: 1, hub: '/h', audience: { all: true }, target: 'm', args: [i] });
        await a.flush();
      }
      await waitFor(() => received.length === 20, 5000, 'every message on the other node');
      assert.deepEqual(
        received,
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal(b.stats().rowsPushed - pushedBefore, 20);
      assert.equal(b.stats().rowsRead - readsBefore, 0, 'no row was read back');
      await Promise.all(engines.map((engine) => engine.close()));
    });

    test('a full notification queue does not stop appends: they go on without NOTIFY for a while', async () => {
      const schema = freshSchema();
      const errors: Error[] = [];
      const store = makeStore({ schema, onError: (error) => errors.push(error) });
      await store.install();
      const { heard } = await eavesdrop(schema);
      // PostgreSQL's own error for a full queue, raised once (a sequence is not rolled back with the statement).
      await admin.query(`CREATE SEQUENCE "${schema}".full_once`);
      await admin.query(`CREATE FUNCTION "${schema}".queue_full() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('"${schema}".full_once') = 1 THEN
            RAISE EXCEPTION 'too many notifications in the NOTIFY queue' USING ERRCODE = '54000';
          END IF;
          RETURN NEW;
        END $$`);
      await admin.query(
        `CREATE TRIGGER queue_full BEFORE INSERT ON "${schema}".messages_0 FOR EACH ROW EXECUTE FUNCTION "${schema}".queue_full()`,
      );
      assert.equal((await store.append(0, 'p', 1, Buffer.from('x'))).id, 1);
      assert.equal((await store.append(0, 'p', 2, Buffer.from('y'))).id, 2);
      assert.ok(errors.some((error) => /too many notifications.*without NOTIFY/.test(error.message)));
      await delay(300);
      assert.deepEqual(heard, [], 'no NOTIFY while quiet');
      assert.deepEqual(
        (await store.readAfter(0, 0, 10)).map((row) => row.payload.toString()),
        ['x', 'y'],
      );
    });
  });

  test('an unreachable database gives clear rejections and no crash', async () => {
    const dead = 'postgres://postgres@127.0.0.1:1/test';
    const errors: Error[] = [];
    const store = new PostgresStore({ connectionString: dead, schema: 'hubwire', onError: (e) => errors.push(e) });
    stores.push(store);
    await assert.rejects(store.install(), /ECONNREFUSED/);
    await assert.rejects(store.append(0, 'p', 1, Buffer.from('x')), /ECONNREFUSED/);
    await assert.rejects(store.readAfter(0, 0, 10), /ECONNREFUSED/);
    await assert.rejects(store.top(0), /ECONNREFUSED/);
    await assert.rejects(store.trim(0, 0, 0), /ECONNREFUSED/);
    await assert.rejects(
      store.subscribe(
        () => {},
        () => {},
      ),
      /Cannot LISTEN on PostgreSQL channel hubwire_hubwire: .*ECONNREFUSED/,
    );
    await assert.rejects(installSchema(dead), /ECONNREFUSED/);
    await store.close();
    await store.close();
  });

  test('a pool passed in is used and left open on close', async () => {
    const schema = freshSchema();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
    const store = new PostgresStore({ pool, schema });
    await store.install();
    const woken: number[] = [];
    await store.subscribe(
      (stream) => woken.push(stream),
      () => {},
    );
    await store.append(0, 'p', 1, Buffer.from('x'));
    await waitFor(() => woken.length === 1, 5000, 'a wake-up through the pool settings');
    await store.close();
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
  });
});
