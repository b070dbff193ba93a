// The MySQL/MariaDB store against a real server: the store conformance suite (test/conformance/store-suite.ts),
// then what is MySQL's own: late commits, repaired installs, users and grants, big ids, broken connections,
// GET_LOCK trim locks, and no push wake-ups.
// Database: HUBWIRE_TEST_MYSQL, default mysql://root@127.0.0.1:3306/test. Each test has its own table prefix.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createStore, installSchema, MysqlStore, type MysqlStoreOptions, SCHEMA_VERSION } from '@hubwire/mysql';
import mysql from 'mysql2/promise';
import { runStoreConformance } from '../conformance/store-suite.js';
import { checkLateCommit } from '../helpers/late-commit.js';
import { waitFor } from '../helpers/wait.js';

const url = process.env.HUBWIRE_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test';
const database = decodeURIComponent(new URL(url).pathname.slice(1));

// Without HUBWIRE_TEST_MYSQL an unreachable default server skips the suite; with it, the suite must run.
async function probe(): Promise<string | undefined> {
  try {
    const connection = await mysql.createConnection({ uri: url, connectTimeout: 3000 });
    connection.on('error', () => {});
    await connection.end();
    return undefined;
  } catch (error) {
    if (process.env.HUBWIRE_TEST_MYSQL) throw error;
    return `no MySQL/MariaDB at ${url} (${(error as Error).message}); set HUBWIRE_TEST_MYSQL`;
  }
}
const skip = await probe();

const admin = mysql.createPool({ uri: url, connectionLimit: 4, supportBigNumbers: true, bigNumberStrings: true });
const prefixes: string[] = [];
const users: string[] = [];
const stores: MysqlStore[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

function freshPrefix(): string {
  const prefix = `hw_test_${randomBytes(5).toString('hex')}`;
  prefixes.push(prefix);
  return prefix;
}

function makeStore(options: Partial<MysqlStoreOptions> & { schema: string }): MysqlStore {
  const store = new MysqlStore({ connectionString: url, ...options });
  stores.push(store);
  return store;
}

/** Drops every table of a prefix (exact prefix, so hw_test_ab never drops hw_test_abc's tables). */
async function dropTables(prefix: string): Promise<void> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()',
  );
  const names = rows.map((row) => String(row.name)).filter((name) => name.startsWith(`${prefix}_`));
  if (names.length > 0) await admin.query(`DROP TABLE IF EXISTS ${names.map((name) => `\`${name}\``).join(', ')}`);
}

/** A connection for manual transactions, ended after the test. */
async function manualConnection(): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true });
  connection.on('error', () => {});
  cleanups.push(() => connection.end().catch(() => connection.destroy()));
  return connection;
}

/** Inserts `count` rows with ids from..from+count-1 an hour old, straight into a stream table. */
async function insertOldRows(prefix: string, from: number, count: number): Promise<void> {
  const values = Array.from({ length: count }, (_, i) => [from + i, 'old', from + i, '1970-01-01', Buffer.from([0])]);
  await admin.query(`INSERT INTO \`${prefix}_messages_0\` (id, publisher, batch_seq, created_at, payload) VALUES ?`, [
    values,
  ]);
  await admin.query(
    `UPDATE \`${prefix}_messages_0\` SET created_at = UTC_TIMESTAMP(3) - INTERVAL 1 HOUR WHERE id BETWEEN ? AND ?`,
    [from, from + count - 1],
  );
}

async function cleanup(): Promise<void> {
  for (const done of cleanups.splice(0)) await done();
  await Promise.all(stores.splice(0).map((store) => store.close()));
  for (const prefix of prefixes.splice(0)) await dropTables(prefix);
  for (const user of users.splice(0)) await admin.query('DROP USER IF EXISTS ?@?', [user, '%']);
}
after(() => admin.end());

runStoreConformance('mysql', {
  skip,
  // No push wake-ups: subscribe always resolves undefined and the engine polls.
  wakeups: false,
  fresh() {
    const prefix = freshPrefix();
    return {
      prefix,
      create: (options = {}) =>
        makeStore({ schema: prefix, tableCount: options.tableCount, poolSize: options.poolSize }),
    };
  },
  cleanup,
  async age({ prefix }, stream, throughId, ms) {
    await admin.query(
      `UPDATE \`${prefix}_messages_${stream}\` SET created_at = created_at - INTERVAL ? MICROSECOND WHERE id <= ?`,
      [ms * 1000, throughId],
    );
  },
  named: (schema) => new MysqlStore({ connectionString: url, schema }).close(),
  async afterInstallRace({ prefix }, epoch) {
    const [version] = await admin.query<mysql.RowDataPacket[]>(`SELECT version, epoch FROM ${prefix}_schema_version`);
    assert.deepEqual(
      version.map((row) => ({ ...row })),
      [{ version: SCHEMA_VERSION, epoch }],
    );
    const [streams] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT stream, last_id FROM ${prefix}_streams ORDER BY stream`,
    );
    assert.deepEqual(
      streams.map((row) => ({ ...row })),
      [
        { stream: 0, last_id: '0' },
        { stream: 1, last_id: '0' },
      ],
    );
    const [engines] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT DISTINCT engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?`,
      [`${prefix}\\_%`],
    );
    assert.deepEqual(
      engines.map((row) => String(row.engine ?? row.ENGINE)),
      ['InnoDB'],
    );
  },
  async afterGrow({ prefix }) {
    const [tables] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = DATABASE() AND table_name LIKE ? ORDER BY table_name`,
      [`${prefix}\\_%`],
    );
    assert.deepEqual(
      tables.map((row) => row.name),
      ['keys', 'messages_0', 'messages_1', 'messages_2', 'nodes', 'schema_version', 'streams'].map(
        (name) => `${prefix}_${name}`,
      ),
    );
  },
  async downgradeToVersion1({ prefix }) {
    await admin.query(`DROP TABLE \`${prefix}_keys\`, \`${prefix}_nodes\``);
    await admin.query(`UPDATE \`${prefix}_schema_version\` SET version = 1`);
  },
});

describe('MysqlStore', { skip, timeout: 60_000 }, () => {
  afterEach(cleanup);

  describe('install', () => {
    test('installing again changes nothing in the tables; installSchema returns the same epoch', async () => {
      const prefix = freshPrefix();
      const first = await makeStore({ schema: prefix }).install();
      const [before] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT CAST(installed_at AS CHAR) AS at FROM ${prefix}_schema_version`,
      );
      const second = await makeStore({ schema: prefix }).install();
      const third = await installSchema(url, { schema: prefix });
      assert.equal(second.epoch, first.epoch);
      assert.deepEqual(third, { epoch: first.epoch, version: SCHEMA_VERSION });
      const [after] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT CAST(installed_at AS CHAR) AS at FROM ${prefix}_schema_version`,
      );
      assert.deepEqual(after, before);
    });

    test('a half-made install (id row or table dropped by hand) is completed without reusing ids', async () => {
      const prefix = freshPrefix();
      const store = makeStore({ schema: prefix, tableCount: 2 });
      const { epoch } = await store.install();
      for (let seq = 1; seq <= 3; seq++) await store.append(0, 'p', seq, Buffer.from('x'));
      await admin.query(`DELETE FROM ${prefix}_streams WHERE stream = 0`);
      await admin.query(`DROP TABLE ${prefix}_messages_1`);
      assert.equal((await makeStore({ schema: prefix, tableCount: 2 }).install()).epoch, epoch);
      assert.equal(await store.top(0), 3, 'the id row restarts from the highest id in the table');
      assert.equal((await store.append(0, 'p', 4, Buffer.from('x'))).id, 4);
      assert.equal((await store.append(1, 'p', 1, Buffer.from('x'))).id, 1);
    });

    test('installSchema pre-installs for a store that then only reads at install; URLs of both schemes', async () => {
      const prefix = freshPrefix();
      const { epoch } = await installSchema(url, { schema: prefix, tableCount: 2 });
      assert.equal((await makeStore({ schema: prefix, tableCount: 2 }).install()).epoch, epoch);
      // The URL entry point used by backplaneFromUrl builds the same store, for mysql:// and mariadb://.
      for (const scheme of ['mysql:', 'mariadb:']) {
        const schemeUrl = new URL(url);
        const fromUrl = createStore(`${scheme}${schemeUrl.href.slice(schemeUrl.protocol.length)}`, {
          schema: prefix,
          tableCount: 2,
        });
        stores.push(fromUrl);
        assert.equal(fromUrl.streamCount, 2);
        assert.equal(fromUrl.kind, 'mysql');
        assert.equal((await fromUrl.install()).epoch, epoch);
      }
    });

    test('an application user with only the documented grants runs on pre-installed tables', async () => {
      const prefix = freshPrefix();
      const { epoch } = await installSchema(url, { schema: prefix, tableCount: 2 });
      const user = `${prefix}_app`.slice(0, 32);
      await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', 'app-secret']);
      users.push(user);
      await admin.query(`GRANT SELECT ON \`${database}\`.\`${prefix}_schema_version\` TO ?@?`, [user, '%']);
      await admin.query(`GRANT SELECT, UPDATE ON \`${database}\`.\`${prefix}_streams\` TO ?@?`, [user, '%']);
      await admin.query(`GRANT SELECT, INSERT, DELETE ON \`${database}\`.\`${prefix}_keys\` TO ?@?`, [user, '%']);
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${database}\`.\`${prefix}_nodes\` TO ?@?`, [
        user,
        '%',
      ]);
      for (const stream of [0, 1]) {
        await admin.query(`GRANT SELECT, INSERT, DELETE ON \`${database}\`.\`${prefix}_messages_${stream}\` TO ?@?`, [
          user,
          '%',
        ]);
      }
      const userUrl = new URL(url);
      userUrl.username = user;
      userUrl.password = 'app-secret';
      const store = makeStore({ schema: prefix, tableCount: 2, connectionString: userUrl.href });
      assert.equal((await store.install()).epoch, epoch);
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
        (await store.readNodes()).nodes.map((node) => node.info),
        ['{"again":true}'],
      );
      assert.equal(await store.pruneNodes(60_000), 0);
      assert.equal(await store.removeNode('n'), true);
      // Growing tableCount needs CREATE, which this user lacks: a clear permission error.
      await assert.rejects(makeStore({ schema: prefix, tableCount: 3, connectionString: userUrl.href }).install(), {
        code: 'ER_TABLEACCESS_DENIED_ERROR',
      });
    });

    test('invalid options are rejected before touching the database', async () => {
      for (const prefix of ['bad-name', '1abc', '', 'a'.repeat(42), 'x`; DROP TABLE y; --', 'pre fix', 'é']) {
        assert.throws(() => new MysqlStore({ connectionString: url, prefix }), TypeError, prefix);
        await assert.rejects(installSchema(url, { schema: prefix }), TypeError);
        assert.throws(() => createStore(url, { schema: prefix }), TypeError);
      }
      const longest = new MysqlStore({ connectionString: url, schema: `_${'a'.repeat(40)}`, tableCount: 64 });
      await longest.close();
      for (const tableCount of [0, 65, 1.5]) {
        assert.throws(() => new MysqlStore({ connectionString: url, tableCount }), RangeError);
      }
      assert.throws(() => new MysqlStore({ connectionString: url, poolSize: 0 }), RangeError);
      assert.throws(() => new MysqlStore({}), /connectionString or a pool/);
    });

    test('a URL without a database is a clear error', async () => {
      const noDatabase = new URL(url);
      noDatabase.pathname = '/';
      const store = makeStore({ schema: freshPrefix(), connectionString: noDatabase.href });
      await assert.rejects(store.install(), /No database selected/);
    });

    test('tables of a newer schema version are refused, not downgraded', async () => {
      const prefix = freshPrefix();
      await installSchema(url, { schema: prefix });
      await admin.query(`UPDATE ${prefix}_schema_version SET version = ?`, [SCHEMA_VERSION + 1]);
      await assert.rejects(makeStore({ schema: prefix }).install(), /newer than this @hubwire\/mysql supports/);
      // The install lock was released: another install is not kept waiting.
      await admin.query(`UPDATE ${prefix}_schema_version SET version = ?`, [SCHEMA_VERSION]);
      await makeStore({ schema: prefix }).install();
    });
  });

  describe('append, readAfter, top', () => {
    test('calls on streams whose tables do not exist (install() never ran) fail clearly', async () => {
      const uninstalled = makeStore({ schema: freshPrefix() });
      await assert.rejects(uninstalled.top(0), { code: 'ER_NO_SUCH_TABLE' });
      await assert.rejects(uninstalled.append(0, 'p', 1, Buffer.from('x')), { code: 'ER_NO_SUCH_TABLE' });
    });

    test('a publisher longer than 255 characters is rejected', async () => {
      const store = makeStore({ schema: freshPrefix() });
      await store.install();
      await assert.rejects(store.append(0, 'p'.repeat(256), 1, Buffer.from('x')), RangeError);
    });

    test('publishers differing only in case or trailing spaces are different publishers', async () => {
      const store = makeStore({ schema: freshPrefix() });
      await store.install();
      assert.equal((await store.append(0, 'node', 1, Buffer.from('a'))).id, 1);
      assert.equal((await store.append(0, 'NODE', 1, Buffer.from('b'))).id, 2);
      assert.equal((await store.append(0, 'node ', 1, Buffer.from('c'))).id, 3);
      assert.equal((await store.append(0, 'nöde', 1, Buffer.from('d'))).id, 4);
      assert.equal((await store.append(0, 'node', 1, Buffer.from('a again'))).id, undefined);
    });

    for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
      test(`a late-committing transaction is never skipped (${outcome})`, async () => {
        const prefix = freshPrefix();
        const store = makeStore({ schema: prefix });
        await store.install();
        await store.append(0, 'p', 1, Buffer.from('first'));
        // A writer that took the next id and has not committed yet, as a slow append would.
        const late = await manualConnection();
        await late.query('START TRANSACTION');
        await late.query(`UPDATE ${prefix}_streams SET last_id = LAST_INSERT_ID(last_id + 1) WHERE stream = 0`);
        await late.query(
          `INSERT INTO ${prefix}_messages_0 (id, publisher, batch_seq, created_at, payload)
           VALUES (LAST_INSERT_ID(), 'late', 1, UTC_TIMESTAMP(3), 'late')`,
        );
        await checkLateCommit(store, outcome, (end) => late.query(end));
      });
    }

    test('a duplicate append leaves no transaction open on its pooled connection', async () => {
      const prefix = freshPrefix();
      const store = makeStore({ schema: prefix, poolSize: 1 });
      await store.install();
      assert.deepEqual(await store.append(0, 'node-a', 7, Buffer.from('one')), { id: 1 });
      assert.deepEqual(await store.append(0, 'node-a', 7, Buffer.from('one again')), { id: undefined });
      // No transaction was left open on the pooled connection by the duplicate: another connection's lock is free.
      const other = await manualConnection();
      await other.query('SET SESSION innodb_lock_wait_timeout = 2');
      await other.query(`UPDATE ${prefix}_streams SET last_id = last_id WHERE stream = 0`);
    });

    test('ids of 2^31 and more are exact; past 2^53 they are a clear error, not a rounded id', async () => {
      const prefix = freshPrefix();
      const store = makeStore({ schema: prefix });
      await store.install();
      await admin.query(`UPDATE ${prefix}_streams SET last_id = ? WHERE stream = 0`, ['4294967296']);
      assert.deepEqual(await store.append(0, 'p', 1, Buffer.from('big')), { id: 4294967297 });
      assert.deepEqual(
        (await store.readAfter(0, 4294967296, 10)).map((row) => row.id),
        [4294967297],
      );
      await admin.query(`UPDATE ${prefix}_streams SET last_id = ? WHERE stream = 0`, ['9007199254740990']);
      assert.deepEqual(await store.append(0, 'p', 2, Buffer.from('last')), { id: 9007199254740991 });
      assert.equal(await store.top(0), Number.MAX_SAFE_INTEGER);
      await assert.rejects(store.append(0, 'p', 3, Buffer.from('too far')), /exceeds Number.MAX_SAFE_INTEGER/);
      assert.equal(await store.top(0), Number.MAX_SAFE_INTEGER, 'the refused append rolled back');
      await admin.query(
        `INSERT INTO ${prefix}_messages_0 (id, publisher, batch_seq, created_at, payload)
         VALUES (9007199254740993, 'p', 9, UTC_TIMESTAMP(3), 'x')`,
      );
      await assert.rejects(store.readAfter(0, Number.MAX_SAFE_INTEGER, 10), /exceeds Number.MAX_SAFE_INTEGER/);
    });

    test('a connection killed while waiting for the stream row is discarded; the retry stores one row', async () => {
      const prefix = freshPrefix();
      const errors: Error[] = [];
      const store = makeStore({ schema: prefix, poolSize: 1, onError: (error) => errors.push(error) });
      await store.install();
      const holder = await manualConnection();
      await holder.query('START TRANSACTION');
      await holder.query(`SELECT last_id FROM ${prefix}_streams WHERE stream = 0 FOR UPDATE`);
      const appending = store.append(0, 'p', 1, Buffer.from('x'));
      appending.catch(() => {});
      let waiting: number | undefined;
      await waitFor(
        async () => {
          const [found] = await admin.query<mysql.RowDataPacket[]>(
            `SELECT id FROM information_schema.processlist WHERE info LIKE ? AND id <> CONNECTION_ID()`,
            [`UPDATE \`${prefix}_streams\`%`],
          );
          waiting = found[0] ? Number(found[0].id) : undefined;
          return waiting !== undefined;
        },
        5000,
        'the append to wait on the row lock',
      );
      await admin.query(`KILL ${Number(waiting)}`);
      await assert.rejects(appending);
      await holder.query('ROLLBACK');
      // The same batch again on a new connection (the pool has room for one only: the dead one was discarded).
      assert.deepEqual(await store.append(0, 'p', 1, Buffer.from('x')), { id: 1 });
      assert.deepEqual(await store.append(0, 'p', 1, Buffer.from('x')), { id: undefined });
      assert.equal(await store.top(0), 1);
    });

    test('idle pooled connections killed by the server: no crash, the next calls work', async () => {
      const prefix = freshPrefix();
      const errors: Error[] = [];
      // A pool of our own, so that only its connections are killed (other test files run at the same time).
      const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
      cleanups.push(() => pool.end());
      const threads: number[] = [];
      pool.on('connection', (connection) => threads.push(connection.threadId));
      const store = new MysqlStore({ pool, prefix, onError: (error) => errors.push(error) });
      stores.push(store);
      await store.install();
      await Promise.all([store.top(0), store.top(0), store.append(0, 'p', 1, Buffer.from('x'))]);
      assert.ok(threads.length >= 1);
      for (const thread of threads) await admin.query(`KILL ${Number(thread)}`).catch(() => {});
      await waitFor(() => errors.length >= 1, 5000, 'the lost connections to be reported');
      // A connection whose death was not yet noticed may fail one call; the store recovers on the next.
      let id: number | undefined;
      for (let attempt = 0; attempt < 3 && id === undefined; attempt++) {
        id = await store.append(0, 'p', 2, Buffer.from('y')).then(
          (result) => result.id,
          () => undefined,
        );
      }
      assert.equal(id, 2);
      assert.equal(await store.top(0), 2);
    });
  });

  describe('trim', () => {
    test('holes wider than a block do not stop the trim; a young row does', async () => {
      const prefix = freshPrefix();
      const store = makeStore({ schema: prefix });
      await store.install();
      await insertOldRows(prefix, 1, 3000);
      await admin.query(`UPDATE ${prefix}_streams SET last_id = 3000 WHERE stream = 0`);
      await admin.query(`DELETE FROM ${prefix}_messages_0 WHERE id BETWEEN 500 AND 1700`);
      // A row that is young although older rows follow it (a clock step): kept, and the trim stops in its block.
      await admin.query(`UPDATE ${prefix}_messages_0 SET created_at = UTC_TIMESTAMP(3) WHERE id = 2600`);
      const deleted = await store.trim(0, 0, 60_000);
      const left = (await store.readAfter(0, 0, 10_000)).map((row) => row.id);
      assert.equal(left[0], 2600, 'everything before the young row is gone');
      assert.equal(deleted + left.length, 3000 - 1201);
      assert.equal(await store.trim(0, 0, 0), left.length);
    });

    test('skips a stream that another node is trimming', async () => {
      const prefix = freshPrefix();
      const store = makeStore({ schema: prefix });
      await store.install();
      for (let seq = 1; seq <= 5; seq++) await store.append(0, 'p', seq, Buffer.from('x'));
      const other = await manualConnection();
      const lock = store.names.trimLock(database, 0);
      assert.equal(lock, `${database}.${prefix}_trim_0`);
      const [[taken]] = await other.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS held', [lock]);
      assert.equal(Number(taken!.held), 1);
      assert.equal(await store.trim(0, 0, 0), 0);
      await other.query('SELECT RELEASE_LOCK(?)', [lock]);
      assert.equal(await store.trim(0, 0, 0), 5);
      // The store released its own lock: another session can take it at once.
      const [[again]] = await other.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS held', [lock]);
      assert.equal(Number(again!.held), 1);
      await other.query('SELECT RELEASE_LOCK(?)', [lock]);
    });

    test('lock names stay within 64 characters and differ per database and prefix', () => {
      const names = makeStore({ schema: `p${'x'.repeat(40)}` }).names;
      const long = names.trimLock('d'.repeat(64), 63);
      assert.ok(long.length <= 64, long);
      assert.notEqual(long, names.trimLock('e'.repeat(64), 63));
      assert.notEqual(names.lockName('a', 'install'), names.lockName('b', 'install'));
    });
  });

  describe('node registry', () => {
    test("times are the database's clock, not the node's", async () => {
      const prefix = freshPrefix();
      await installSchema(url, { schema: prefix });
      // A server whose clock stands at 2001-09-09T01:46:40Z for this pool's sessions (SET timestamp).
      const pool = mysql.createPool({ uri: url, connectionLimit: 1 });
      cleanups.push(() => pool.end());
      pool.on('connection', (connection) => connection.query('SET SESSION timestamp = 1000000000'));
      const skewed = new MysqlStore({ pool, schema: prefix });
      stores.push(skewed);
      await skewed.heartbeatNode('skewed', '{}');
      const seen = await skewed.readNodes();
      assert.equal(seen.now, 1_000_000_000_000);
      assert.deepEqual(seen.nodes, [
        { id: 'skewed', info: '{}', startedAt: 1_000_000_000_000, heartbeatAt: 1_000_000_000_000 },
      ]);
      assert.equal(await skewed.pruneNodes(0), 0, 'its heartbeat is its database now');
      // On the real clock that heartbeat is decades old: pruned, however big the age asked.
      const store = makeStore({ schema: prefix });
      assert.ok(Math.abs((await store.readNodes()).now - Date.now()) < 60_000);
      assert.equal(await store.pruneNodes(Number.MAX_SAFE_INTEGER), 0);
      assert.equal(await store.pruneNodes(60_000), 1);
    });

    test('info is kept byte for byte over a latin1 connection; ids are compared exactly', async () => {
      const prefix = freshPrefix();
      await installSchema(url, { schema: prefix });
      const pool = mysql.createPool({ uri: url, connectionLimit: 1, charset: 'latin1' });
      cleanups.push(() => pool.end());
      const store = new MysqlStore({ pool, schema: prefix });
      stores.push(store);
      const info = JSON.stringify({ text: `ü😀€${'\u{10FFFF}'}`.repeat(300) });
      assert.ok(Buffer.byteLength(info) <= 4096);
      await store.heartbeatNode('node', info);
      await store.heartbeatNode('NODE', 'x');
      const { nodes } = await store.readNodes();
      assert.deepEqual(
        nodes.map((node) => [node.id, node.info]),
        [
          ['NODE', 'x'],
          ['node', info],
        ],
      );
      const [[raw]] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT HEX(info) AS hex FROM \`${prefix}_nodes\` WHERE id = 'node'`,
      );
      assert.equal(raw!.hex, Buffer.from(info).toString('hex').toUpperCase());
    });

    test('a namespace at schema version 2 is migrated; before that the calls fail clearly', async () => {
      const prefix = freshPrefix();
      const { epoch } = await installSchema(url, { schema: prefix });
      const store = makeStore({ schema: prefix });
      assert.equal(await store.addKey('p', { id: 'k', secret: randomBytes(32), createdAt: 1 }, -1), true);
      await admin.query(`DROP TABLE \`${prefix}_nodes\``);
      await admin.query(`UPDATE \`${prefix}_schema_version\` SET version = 2`);
      await assert.rejects(store.readNodes(), { code: 'ER_NO_SUCH_TABLE' });
      await assert.rejects(store.heartbeatNode('n', '{}'), { code: 'ER_NO_SUCH_TABLE' });
      assert.equal((await makeStore({ schema: prefix }).install()).epoch, epoch);
      const [[version]] = await admin.query<mysql.RowDataPacket[]>(`SELECT version FROM \`${prefix}_schema_version\``);
      assert.equal(version!.version, SCHEMA_VERSION);
      await store.heartbeatNode('n', '{}');
      assert.equal((await store.readNodes()).nodes.length, 1);
      assert.equal((await store.readKeys('p')).length, 1, 'the keys are kept');
    });
  });

  describe('subscribe', () => {
    test('resolves undefined: no push wake-ups, the engine polls', async () => {
      const store = makeStore({ schema: freshPrefix() });
      let calls = 0;
      const stop = await store.subscribe(
        () => calls++,
        () => calls++,
      );
      assert.equal(stop, undefined);
      await store.install();
      await store.append(0, 'p', 1, Buffer.from('x'));
      await delay(100);
      assert.equal(calls, 0);
      await store.close();
      await assert.rejects(
        store.subscribe(
          () => {},
          () => {},
        ),
        /closed/,
      );
      await assert.rejects(store.top(0), /closed/);
    });
  });

  test('an unreachable server gives clear rejections and no crash', async () => {
    const dead = 'mysql://root@127.0.0.1:1/test';
    const errors: Error[] = [];
    const store = new MysqlStore({ connectionString: dead, onError: (e) => errors.push(e) });
    stores.push(store);
    await assert.rejects(store.install(), /ECONNREFUSED/);
    await assert.rejects(store.append(0, 'p', 1, Buffer.from('x')), /ECONNREFUSED/);
    await assert.rejects(store.readAfter(0, 0, 10), /ECONNREFUSED/);
    await assert.rejects(store.top(0), /ECONNREFUSED/);
    await assert.rejects(store.trim(0, 0, 0), /ECONNREFUSED/);
    assert.equal(
      await store.subscribe(
        () => {},
        () => {},
      ),
      undefined,
    );
    await assert.rejects(installSchema(dead), /ECONNREFUSED/);
    await store.close();
    await store.close();
  });

  test('a pool passed in is used and left open on close', async () => {
    const prefix = freshPrefix();
    const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
    cleanups.push(() => pool.end());
    const store = new MysqlStore({ pool, prefix });
    await store.install();
    assert.equal((await store.append(0, 'p', 1, Buffer.from('x'))).id, 1);
    assert.equal(await store.top(0), 1);
    await store.close();
    const [[row]] = await pool.query<mysql.RowDataPacket[]>('SELECT 1 AS one');
    assert.equal(row!.one, 1);
  });
});
