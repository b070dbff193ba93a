// The store conformance suite: every BackplaneStore (memory, PostgreSQL, MySQL/MariaDB, SQLite) runs it unchanged.
// It checks the contract of packages/hubwire/src/backplane/backplane-store.ts: install races and migrations,
// consecutive ids in commit order under concurrency, idempotent appends, trimming, wake-ups, and the key methods
// (readKeys, addKey with its one-winner race, deleteKeys). What only one
// database has (late-commit locks, LISTEN, GET_LOCK, busy files, rights, big ids) stays in its own test file.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { BackplaneStore, KeyStore, StoredKey } from 'hubwire';
import { type NodeStore, supportsKeys, supportsNodes } from 'hubwire';
import { waitFor } from '../helpers/wait.js';

export interface StoreOptions {
  /** Number of streams; the store's default (1) when not given. */
  tableCount?: number;
  /** Connections in the store's pool, where the store has one. */
  poolSize?: number;
  /** false: a store configured without push wake-ups (wakeups: false). */
  wakeups?: boolean;
}

/** A fresh namespace (schema, table prefix, file, in-memory database) of the database under test. */
export interface StoreNamespace {
  /** A new store on this namespace; closed by the factory's cleanup. */
  create(options?: StoreOptions): BackplaneStore;
}

export interface StoreFactory<N extends StoreNamespace = StoreNamespace> {
  /** A new, empty namespace. */
  fresh(): N;
  /** Closes the stores and removes the namespaces made since the last call (after each test). */
  cleanup(): Promise<void>;
  /** Makes the rows of `stream` with id ≤ `throughId` older by `ms`, as if written that long ago. */
  age(namespace: N, stream: number, throughId: number, ms: number): Promise<void>;
  /** True when the store pushes wake-ups by default (subscribe resolves with a stop function). */
  wakeups: boolean;
  /**
   * Creates (and closes) a store on a namespace with this name; must throw a TypeError for an invalid name.
   * Not given when the store has no named namespace.
   */
  named?(name: string): Promise<void> | void;
  /** False when the store does not validate stream numbers, ids and limits (see the caller for why). */
  validatesArguments?: boolean;
  /** False when a store cannot be configured without push wake-ups (`wakeups: false` is not supported). */
  disablesWakeups?: boolean;
  /** False when a namespace cannot grow its number of streams. */
  grows?: boolean;
  /** Extra checks on the namespace after 8 stores raced to install it with tableCount 2. */
  afterInstallRace?(namespace: N, epoch: string): Promise<void>;
  /** Extra checks on the namespace after it grew from 1 to 3 streams. */
  afterGrow?(namespace: N): Promise<void>;
  /**
   * Takes an installed namespace back to schema version 1 (no keys table), as a database installed by an earlier
   * release; the next install() must migrate it. Not given when the store has no schema versions.
   */
  downgradeToVersion1?(namespace: N): Promise<void>;
  /** Skips the whole suite (e.g. the database is unreachable). */
  skip?: string;
}

/** The store's key methods, which every store under test must have. */
function keyStore(store: BackplaneStore): BackplaneStore & KeyStore {
  assert.ok(supportsKeys(store), `the ${store.kind} store has readKeys, addKey and deleteKeys`);
  return store;
}

/** The store's node-registry methods, which every store under test must have. */
function nodeStore(store: BackplaneStore): BackplaneStore & NodeStore {
  assert.ok(supportsNodes(store), `the ${store.kind} store has heartbeatNode, readNodes, removeNode and pruneNodes`);
  return store;
}

const key = (id: string, createdAt: number, secret: Buffer = randomBytes(32)): StoredKey => ({ id, secret, createdAt });

/** Keys without their secrets, for comparisons. */
const ids = (keys: readonly StoredKey[]) => keys.map((k) => [k.id, k.createdAt]);

const rows = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => Buffer.from(`${prefix}${i}`));

export function runStoreConformance<N extends StoreNamespace>(name: string, factory: StoreFactory<N>): void {
  describe(`store conformance: ${name}`, { skip: factory.skip, timeout: 120_000 }, () => {
    afterEach(() => factory.cleanup());

    describe('install', () => {
      test('8 stores racing on a fresh namespace all succeed with one epoch', async () => {
        const namespace = factory.fresh();
        const racers = Array.from({ length: 8 }, () => namespace.create({ tableCount: 2, poolSize: 1 }));
        const results = await Promise.all(racers.map((store) => store.install()));
        const epochs = new Set(results.map((result) => result.epoch));
        assert.equal(epochs.size, 1);
        assert.equal(typeof results[0]!.epoch, 'string');
        assert.ok(results[0]!.epoch.length > 0);
        assert.equal(racers[0]!.streamCount, 2);
        await factory.afterInstallRace?.(namespace, results[0]!.epoch);
      });

      test('installing again is a no-op that returns the same epoch and keeps the data', async () => {
        const namespace = factory.fresh();
        const first = await namespace.create().install();
        const store = namespace.create();
        await store.append(0, 'p', 1, Buffer.from('kept'));
        assert.deepEqual(await store.install(), first);
        assert.deepEqual(await namespace.create().install(), first);
        assert.equal(await store.top(0), 1);
        assert.equal((await store.readAfter(0, 0, 10))[0]?.payload.toString(), 'kept');
      });

      test('growing tableCount from 1 to 3 adds streams, keeping data and epoch', {
        skip: factory.grows === false && 'the namespace has a fixed number of streams',
      }, async () => {
        const namespace = factory.fresh();
        const small = namespace.create({ tableCount: 1 });
        const { epoch } = await small.install();
        await small.append(0, 'p', 1, Buffer.from('kept'));
        const large = namespace.create({ tableCount: 3 });
        assert.equal((await large.install()).epoch, epoch);
        assert.equal(large.streamCount, 3);
        await factory.afterGrow?.(namespace);
        assert.equal(await large.top(0), 1);
        assert.equal(await large.top(2), 0);
        assert.deepEqual((await large.append(2, 'p', 1, Buffer.from('x'))).id, 1);
        assert.deepEqual(
          (await large.readAfter(0, 0, 10)).map((row) => row.payload.toString()),
          ['kept'],
        );
        // The smaller store keeps working on its streams.
        assert.equal((await small.append(0, 'p', 2, Buffer.from('y'))).id, 2);
      });

      test('an invalid namespace name is rejected before touching the database', {
        skip: !factory.named && 'the store has no named namespace',
      }, async () => {
        for (const bad of ['bad-name', '1abc', '', 'x"; DROP TABLE y; --', 'a b']) {
          await assert.rejects(async () => factory.named!(bad), TypeError, JSON.stringify(bad));
        }
        await factory.named!(`_${'a'.repeat(40)}`);
        await factory.named!('hw_valid_name');
      });
    });

    describe('append, readAfter, top', () => {
      test('basics: consecutive ids, binary payloads, readAfter pages in id order, top', async () => {
        const store = factory.fresh().create({ tableCount: 2 });
        await store.install();
        assert.equal(await store.top(0), 0);
        assert.deepEqual(await store.readAfter(0, 0, 10), []);
        const payloads = [
          Buffer.from([0, 1, 2, 255, 0]),
          Buffer.alloc(0),
          randomBytes(200_000),
          ...rows(3, 'm'),
          Buffer.alloc(1 << 20, 7),
        ];
        for (const [index, payload] of payloads.entries()) {
          assert.deepEqual(await store.append(0, 'node-a', index + 1, payload), { id: index + 1 });
        }
        assert.equal(await store.top(0), 7);
        assert.equal(await store.top(1), 0);
        assert.deepEqual(await store.readAfter(1, 0, 10), []);
        const all = await store.readAfter(0, 0, 100);
        assert.deepEqual(
          all.map((row) => row.id),
          [1, 2, 3, 4, 5, 6, 7],
        );
        for (const [index, row] of all.entries()) {
          assert.ok(Buffer.isBuffer(row.payload), `payload ${row.id} is a Buffer`);
          assert.ok(row.payload.equals(payloads[index]!), `payload ${row.id}`);
        }
        assert.deepEqual(
          (await store.readAfter(0, 0, 2)).map((row) => row.id),
          [1, 2],
        );
        assert.deepEqual(
          (await store.readAfter(0, 3, 3)).map((row) => [row.id, row.payload.toString()]),
          [
            [4, 'm0'],
            [5, 'm1'],
            [6, 'm2'],
          ],
        );
        assert.deepEqual(
          (await store.readAfter(0, 4, 10)).map((row) => row.id),
          [5, 6, 7],
        );
        assert.deepEqual(await store.readAfter(0, 7, 10), []);
        // The other stream has its own ids.
        assert.deepEqual(await store.append(1, 'node-a', 1, Buffer.from('other')), { id: 1 });
        assert.equal(await store.top(1), 1);
        assert.equal(await store.top(0), 7);
      });

      test('invalid stream numbers, ids, limits and publishers are rejected', {
        skip: factory.validatesArguments === false && 'the store does not validate its arguments',
      }, async () => {
        const store = factory.fresh().create({ tableCount: 2 });
        await store.install();
        await assert.rejects(store.append(2, 'p', 1, Buffer.from('x')), RangeError);
        await assert.rejects(store.append(-1, 'p', 1, Buffer.from('x')), RangeError);
        await assert.rejects(store.append(0, '', 1, Buffer.from('x')), TypeError);
        await assert.rejects(store.append(0, 'p', 1.5, Buffer.from('x')), TypeError);
        await assert.rejects(store.readAfter(0, -1, 10), RangeError);
        await assert.rejects(store.readAfter(0, 0, 0), RangeError);
        await assert.rejects(store.top(1.5), RangeError);
        await assert.rejects(store.trim(0, -1, 0), RangeError);
        assert.equal(await store.top(0), 0, 'nothing was stored');
      });

      test('40 concurrent appenders on 2 streams: ids exactly 1..N per stream, every payload once', async () => {
        const namespace = factory.fresh();
        await namespace.create({ tableCount: 2 }).install();
        const appenders = Array.from({ length: 40 }, () => namespace.create({ tableCount: 2, poolSize: 1 }));
        const perAppender = 8;
        const returned: Array<Set<number>> = [new Set(), new Set()];
        // Readers polling during the appends must only ever see the next consecutive ids after their cursor.
        const reading = namespace.create({ tableCount: 2, poolSize: 2 });
        let appending = true;
        const readers = [0, 1].map(async (stream) => {
          let cursor = 0;
          let reads = 0;
          while (appending) {
            reads++;
            for (const row of await reading.readAfter(stream, cursor, 7)) {
              assert.equal(row.id, cursor + 1, `stream ${stream}: a reader at ${cursor} never skips`);
              cursor = row.id;
            }
            // A store whose calls complete synchronously would otherwise starve the appenders.
            await delay(0);
          }
          return { cursor, reads };
        });
        // Handled here so an early failure is not an unhandled rejection; awaited (and rethrown) below.
        for (const read of readers) read.catch(() => {});
        await Promise.all(
          appenders.map(async (store, appender) => {
            for (let seq = 1; seq <= perAppender; seq++) {
              await delay(Math.random() * 8);
              const stream = (appender + seq) % 2;
              const { id } = await store.append(stream, `pub-${appender}`, seq, Buffer.from(`${appender}:${seq}`));
              assert.ok(id !== undefined && !returned[stream]!.has(id), `id ${id} on stream ${stream} given twice`);
              returned[stream]!.add(id);
            }
          }),
        ).finally(() => {
          appending = false;
        });
        const progress = await Promise.all(readers);
        assert.ok(
          progress.every((reader) => reader.reads > 1),
          'the readers ran during the appends',
        );
        const reader = appenders[0]!;
        let total = 0;
        for (const stream of [0, 1]) {
          const read = await reader.readAfter(stream, 0, 10_000);
          assert.deepEqual(
            read.map((row) => row.id),
            Array.from({ length: read.length }, (_, i) => i + 1),
            `stream ${stream} ids are 1..N`,
          );
          assert.deepEqual(
            [...returned[stream]!].sort((a, b) => a - b),
            read.map((row) => row.id),
            `stream ${stream}: the ids returned are the ids stored`,
          );
          assert.equal(await reader.top(stream), read.length);
          const payloads = read.map((row) => row.payload.toString());
          assert.equal(new Set(payloads).size, payloads.length, 'every payload once');
          total += read.length;
        }
        assert.equal(total, 40 * perAppender);
      });

      test('the same publisher and batchSeq twice stores one row, and the next id follows without a gap', async () => {
        const namespace = factory.fresh();
        const store = namespace.create();
        const other = namespace.create();
        await store.install();
        assert.deepEqual(await store.append(0, 'node-a', 7, Buffer.from('one')), { id: 1 });
        assert.deepEqual(await store.append(0, 'node-a', 7, Buffer.from('one again')), { id: undefined });
        assert.deepEqual(await other.append(0, 'node-a', 7, Buffer.from('retry elsewhere')), { id: undefined });
        assert.equal(await store.top(0), 1, 'the duplicate took no id');
        assert.deepEqual(await store.append(0, 'node-b', 7, Buffer.from('other publisher')), { id: 2 });
        assert.deepEqual(await store.append(0, 'node-a', 8, Buffer.from('two')), { id: 3 });
        assert.equal(await store.top(0), 3);
        assert.deepEqual(
          (await store.readAfter(0, 0, 10)).map((row) => row.payload.toString()),
          ['one', 'other publisher', 'two'],
        );
      });
    });

    describe('trim', () => {
      test('deletes only rows outside the newest keepRows and older than maxAge', async () => {
        const namespace = factory.fresh();
        const store = namespace.create();
        await store.install();
        for (let i = 1; i <= 30; i++) await store.append(0, 'p', i, Buffer.from(`m${i}`));
        assert.equal(await store.trim(0, 10, 60_000), 0, 'every row is young');
        // Rows 1..25 become two minutes old.
        await factory.age(namespace, 0, 25, 120_000);
        assert.equal(await store.trim(0, 10, 60_000), 20, 'old rows outside the newest 10');
        assert.deepEqual(
          (await store.readAfter(0, 0, 100)).map((r) => r.id),
          Array.from({ length: 10 }, (_, i) => i + 21),
        );
        assert.equal(await store.trim(0, 2, 60_000), 5, 'the young rows 26..30 stay even outside keepRows');
        assert.deepEqual(
          (await store.readAfter(0, 0, 100)).map((r) => r.id),
          [26, 27, 28, 29, 30],
        );
        assert.equal(await store.trim(0, 100, 0), 0, 'all within keepRows');
        assert.equal(await store.top(0), 30, 'the top never goes back');
        assert.deepEqual(await store.append(0, 'p', 31, Buffer.from('next')), { id: 31 });
        await delay(5); // rows are "older than 0 ms" once the clock has moved on
        // With no age limit the young rows go too, except the newest keepRows.
        assert.equal(await store.trim(0, 2, 0), 4);
        assert.deepEqual(
          (await store.readAfter(0, 0, 100)).map((r) => r.id),
          [30, 31],
        );
      });

      test('trims more than a block (1000 rows) at once, keeping the newest and the young rows', async () => {
        const namespace = factory.fresh();
        const store = namespace.create();
        await store.install();
        for (let i = 1; i <= 2600; i++) await store.append(0, 'p', i, Buffer.from(`m${i}`));
        // Rows 1..2500 become an hour old; 2501..2600 stay young.
        await factory.age(namespace, 0, 2500, 3_600_000);
        assert.equal(await store.trim(0, 200, 60_000), 2400, 'keeps the newest 200');
        assert.equal((await store.readAfter(0, 0, 1))[0]!.id, 2401);
        assert.equal(await store.trim(0, 0, 60_000), 100, 'keeps the young rows');
        const left = await store.readAfter(0, 0, 10_000);
        assert.equal(left.length, 100);
        assert.equal(left[0]?.id, 2501);
        assert.deepEqual(
          left.map((row) => row.id),
          Array.from({ length: 100 }, (_, i) => i + 2501),
        );
        assert.equal(await store.top(0), 2600, 'trimming never lowers the top');
        assert.equal(await store.trim(0, 0, 60_000), 0);
        // With no age limit the young rows go too, except the newest keepRows.
        assert.equal(await store.trim(0, 2, 0), 98);
        assert.equal((await store.append(0, 'p', 2601, Buffer.from('after trim'))).id, 2601);
        assert.equal(await store.trim(0, 10, 0), 0, 'fewer rows than keepRows');
      });
    });

    describe('keys', () => {
      test('an installed namespace has no keys; addKey then readKeys, newest first, bytes exact, per purpose', async () => {
        const namespace = factory.fresh();
        const store = keyStore(namespace.create());
        await store.install();
        assert.deepEqual(await store.readKeys('tokens'), []);
        const now = Date.now();
        const secrets = [Buffer.from([0, 1, 2, 255, 0, 128]), randomBytes(32), Buffer.alloc(1024, 0xff)];
        assert.equal(await store.addKey('tokens', key('k-old', now - 2000, secrets[0]), -1), true);
        assert.equal(await store.addKey('tokens', key('k-new', now, secrets[1]), now - 1000), true);
        assert.equal(await store.addKey('tokens', key('k-mid', now - 1000, secrets[2]), now - 1000), false);
        assert.equal(await store.addKey('other', key('k-other', Number.MAX_SAFE_INTEGER), -1), true);
        const other = keyStore(namespace.create());
        const read = await other.readKeys('tokens');
        assert.deepEqual(ids(read), [
          ['k-new', now],
          ['k-old', now - 2000],
        ]);
        assert.ok(read.every((k) => Buffer.isBuffer(k.secret)));
        assert.ok(read[0]!.secret.equals(secrets[1]!));
        assert.ok(read[1]!.secret.equals(secrets[0]!));
        assert.deepEqual(ids(await other.readKeys('other')), [['k-other', Number.MAX_SAFE_INTEGER]]);
        assert.deepEqual(await other.readKeys('Tokens'), [], 'purposes are case-sensitive');
        // The same id in another purpose is another key; in the same purpose it is an error.
        assert.equal(await store.addKey('third', key('k-new', 5), -1), true);
        await assert.rejects(store.addKey('tokens', key('k-new', now + 5000), Number.MAX_SAFE_INTEGER));
        assert.equal((await store.readKeys('tokens')).length, 2, 'the duplicate was not stored');
      });

      test('addKey adds only when no key of the purpose is newer than unlessNewerThan', async () => {
        const store = keyStore(factory.fresh().create());
        await store.install();
        assert.equal(await store.addKey('p', key('a', 1000), 5000), true, 'no key at all');
        assert.equal(await store.addKey('p', key('b', 2000), -1), false, '-1: only when the purpose is empty');
        assert.equal(await store.addKey('p', key('b', 2000), 999), false, 'a is newer than 999');
        assert.equal(await store.addKey('p', key('b', 2000), 1000), true, 'a is not newer than 1000');
        assert.equal(await store.addKey('p', key('c', 3000), 1999), false, 'b is newer than 1999');
        assert.equal(await store.addKey('q', key('c', 3000), 1999), true, 'another purpose is not looked at');
        // A key "from the future" (a fast clock) blocks adding until the bound passes it.
        assert.equal(await store.addKey('p', key('future', 9000), 2000), true);
        assert.equal(await store.addKey('p', key('d', 4000), 3000), false);
        assert.deepEqual(ids(await store.readKeys('p')), [
          ['future', 9000],
          ['b', 2000],
          ['a', 1000],
        ]);
      });

      test('8 stores adding a key at once on one namespace: exactly one is added, in every round', async () => {
        const namespace = factory.fresh();
        await namespace.create().install();
        const racers = Array.from({ length: 8 }, () => keyStore(namespace.create({ poolSize: 1 })));
        let bound = -1;
        const winners: string[] = [];
        for (let round = 0; round < 3; round++) {
          const base = 1_000_000 + round * 1000;
          const results = await Promise.all(
            racers.map(async (store, index) => {
              await delay(Math.random() * 5);
              return store.addKey('race', key(`r${round}-${index}`, base + index), bound);
            }),
          );
          assert.equal(results.filter(Boolean).length, 1, `round ${round}: one winner, got ${results}`);
          const winner = `r${round}-${results.indexOf(true)}`;
          winners.unshift(winner);
          const read = await racers[0]!.readKeys('race');
          assert.deepEqual(
            read.map((k) => k.id),
            winners,
          );
          bound = read[0]!.createdAt;
        }
      });

      test('deleteKeys deletes the keys of one purpose created before the bound', async () => {
        const store = keyStore(factory.fresh().create());
        await store.install();
        for (const [id, at] of [
          ['k1', 1000],
          ['k2', 2000],
          ['k3', 3000],
        ] as const) {
          assert.equal(await store.addKey('p', key(id, at), at - 1), true);
          assert.equal(await store.addKey('q', key(id, at), at - 1), true);
        }
        assert.equal(await store.deleteKeys('p', 1000), 0, 'strictly before');
        assert.equal(await store.deleteKeys('p', 2001), 2);
        assert.deepEqual(ids(await store.readKeys('p')), [['k3', 3000]]);
        assert.equal((await store.readKeys('q')).length, 3, 'other purposes are untouched');
        assert.equal(await store.deleteKeys('p', 2001), 0);
        assert.equal(await store.deleteKeys('p', Number.MAX_SAFE_INTEGER), 1);
        assert.deepEqual(await store.readKeys('p'), []);
        assert.equal(await store.addKey('p', key('k4', 500), -1), true, 'an emptied purpose takes a first key again');
      });

      test('invalid purposes, keys and bounds are rejected without storing anything', async () => {
        const store = keyStore(factory.fresh().create());
        await store.install();
        const good = key('good', 1000);
        for (const purpose of ['', 'a b', 'é', 'x'.repeat(101), 42 as unknown as string]) {
          await assert.rejects(store.readKeys(purpose), TypeError, JSON.stringify(purpose));
          await assert.rejects(store.addKey(purpose, good, -1), TypeError, JSON.stringify(purpose));
          await assert.rejects(store.deleteKeys(purpose, 0), TypeError, JSON.stringify(purpose));
        }
        const bad: unknown[] = [
          null,
          { ...good, id: '' },
          { ...good, id: 'has space' },
          { ...good, id: 'x'.repeat(65) },
          { ...good, secret: Buffer.alloc(0) },
          { ...good, secret: Buffer.alloc(1025) },
          { ...good, secret: 'not bytes' },
          { ...good, createdAt: 1.5 },
          { ...good, createdAt: -1 },
          { ...good, createdAt: Number.NaN },
        ];
        for (const candidate of bad) await assert.rejects(store.addKey('p', candidate as StoredKey, -1));
        await assert.rejects(store.addKey('p', good, Number.NaN), RangeError);
        await assert.rejects(store.addKey('p', good, 1.5), RangeError);
        await assert.rejects(store.deleteKeys('p', Number.POSITIVE_INFINITY), RangeError);
        assert.deepEqual(await store.readKeys('p'), []);
        // The longest valid purpose and id work.
        const longest = 'p'.repeat(100);
        assert.equal(await store.addKey(longest, key('i'.repeat(64), 1), -1), true);
        assert.deepEqual(ids(await store.readKeys(longest)), [['i'.repeat(64), 1]]);
      });

      test('a namespace of schema version 1 is migrated by install(): keys work, epoch and rows are kept', {
        skip: !factory.downgradeToVersion1 && 'the store has no schema versions',
      }, async () => {
        const namespace = factory.fresh();
        const store = keyStore(namespace.create());
        const { epoch } = await store.install();
        await store.append(0, 'p', 1, Buffer.from('kept'));
        await factory.downgradeToVersion1!(namespace);
        await assert.rejects(keyStore(namespace.create()).readKeys('p'), 'no keys table before the migration');
        const racers = Array.from({ length: 4 }, () => keyStore(namespace.create({ poolSize: 1 })));
        const results = await Promise.all(racers.map((racer) => racer.install()));
        assert.deepEqual(new Set(results.map((result) => result.epoch)), new Set([epoch]));
        const migrated = racers[0]!;
        assert.deepEqual(await migrated.readKeys('p'), []);
        assert.equal(await migrated.addKey('p', key('k', 1), -1), true);
        assert.equal((await migrated.readKeys('p')).length, 1);
        assert.equal((await migrated.readAfter(0, 0, 10))[0]?.payload.toString(), 'kept');
        assert.equal((await migrated.append(0, 'p', 2, Buffer.from('next'))).id, 2);
      });
    });

    describe('node registry', () => {
      test('heartbeatNode registers then refreshes; readNodes sees every node with the database clock', async () => {
        const namespace = factory.fresh();
        const store = nodeStore(namespace.create());
        await store.install();
        assert.deepEqual((await store.readNodes()).nodes, []);
        const before = Date.now();
        await store.heartbeatNode('node-a', '{"address":"10.0.0.1:8080","connections":0}');
        await store.heartbeatNode('node-b', '{}');
        const other = nodeStore(namespace.create());
        const first = await other.readNodes();
        assert.deepEqual(first.nodes.map((n) => [n.id, n.info]).sort(), [
          ['node-a', '{"address":"10.0.0.1:8080","connections":0}'],
          ['node-b', '{}'],
        ]);
        // Times are milliseconds since 1970 from the database's clock (which runs beside ours, within a minute).
        assert.ok(Math.abs(first.now - before) < 60_000, `the store's now (${first.now}) is a time in ms`);
        for (const node of first.nodes) {
          assert.ok(Number.isSafeInteger(node.startedAt) && Number.isSafeInteger(node.heartbeatAt));
          assert.equal(node.startedAt, node.heartbeatAt, 'a new row starts with its first heartbeat');
          assert.ok(node.heartbeatAt <= first.now + 1);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        await store.heartbeatNode('node-a', '{"connections":5}');
        const second = await other.readNodes();
        const a1 = first.nodes.find((n) => n.id === 'node-a')!;
        const a2 = second.nodes.find((n) => n.id === 'node-a')!;
        assert.equal(a2.info, '{"connections":5}');
        assert.equal(a2.startedAt, a1.startedAt, 'startedAt is kept');
        assert.ok(a2.heartbeatAt > a1.heartbeatAt, 'the heartbeat moved on');
        assert.equal(second.nodes.length, 2);
      });

      test('removeNode removes one row; pruneNodes removes the nodes whose heartbeat is too old', async () => {
        const namespace = factory.fresh();
        const store = nodeStore(namespace.create());
        await store.install();
        await store.heartbeatNode('stale', '{}');
        await new Promise((resolve) => setTimeout(resolve, 300));
        await store.heartbeatNode('fresh', '{}');
        await store.heartbeatNode('leaving', '{}');
        assert.equal(await store.removeNode('leaving'), true);
        assert.equal(await store.removeNode('leaving'), false, 'a second remove finds nothing');
        assert.equal(await store.pruneNodes(60_000), 0, 'nobody is a minute old');
        assert.equal(await store.pruneNodes(150), 1, 'the stale node');
        assert.deepEqual(
          (await store.readNodes()).nodes.map((n) => n.id),
          ['fresh'],
        );
      });

      test('8 nodes heartbeating at once on a fresh namespace: one row each, none lost', async () => {
        const namespace = factory.fresh();
        await namespace.create().install();
        const stores = Array.from({ length: 8 }, () => nodeStore(namespace.create({ poolSize: 1 })));
        for (let round = 0; round < 3; round++) {
          await Promise.all(stores.map((store, i) => store.heartbeatNode(`n${i}`, JSON.stringify({ round }))));
        }
        const { nodes } = await stores[0]!.readNodes();
        assert.deepEqual(nodes.map((n) => n.id).sort(), ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']);
        assert.ok(nodes.every((n) => n.info === '{"round":2}'));
      });

      test('invalid ids, infos and ages are rejected without storing anything', async () => {
        const namespace = factory.fresh();
        const store = nodeStore(namespace.create());
        await store.install();
        for (const id of ['', 'has space', 'x'.repeat(65), 'é', 42]) {
          await assert.rejects(store.heartbeatNode(id as string, '{}'), TypeError, String(id));
        }
        await assert.rejects(store.heartbeatNode('n', 'x'.repeat(4097)), TypeError);
        await assert.rejects(store.heartbeatNode('n', undefined as unknown as string), TypeError);
        for (const ms of [-1, 1.5, Number.NaN]) await assert.rejects(store.pruneNodes(ms), RangeError);
        await assert.rejects(store.removeNode('has space'), TypeError);
        assert.deepEqual((await store.readNodes()).nodes, []);
        // The largest info is kept byte for byte (multi-byte characters count as their UTF-8 bytes).
        const info = JSON.stringify({ text: 'ü'.repeat(2040) });
        assert.ok(Buffer.byteLength(info) <= 4096);
        await store.heartbeatNode('x'.repeat(64), info);
        assert.equal((await store.readNodes()).nodes[0]?.info, info);
      });

      test('a namespace installed before the registry existed is migrated by install()', {
        skip: !factory.downgradeToVersion1 && 'the store has no schema versions',
      }, async () => {
        const namespace = factory.fresh();
        const { epoch } = await namespace.create().install();
        await factory.downgradeToVersion1!(namespace);
        await assert.rejects(nodeStore(namespace.create()).readNodes(), 'no nodes table before the migration');
        const store = nodeStore(namespace.create());
        assert.equal((await store.install()).epoch, epoch);
        await store.heartbeatNode('n', '{}');
        assert.equal((await store.readNodes()).nodes.length, 1);
      });
    });

    describe('subscribe', () => {
      test("another store's appends wake a subscriber with the stream number, until it stops", {
        skip: !factory.wakeups && 'the store has no push wake-ups',
      }, async () => {
        const namespace = factory.fresh();
        const listener = namespace.create({ tableCount: 2 });
        const writer = namespace.create({ tableCount: 2 });
        await listener.install();
        const woken: number[] = [];
        let reconnects = 0;
        const stop = await listener.subscribe(
          (stream) => woken.push(stream),
          () => reconnects++,
        );
        assert.equal(typeof stop, 'function', 'push wake-ups resolve with a stop function');
        await writer.append(1, 'w', 1, Buffer.from('x'));
        await waitFor(() => woken.length >= 1, 5000, 'a wake-up');
        assert.deepEqual(new Set(woken), new Set([1]));
        await writer.append(0, 'w', 2, Buffer.from('y'));
        await waitFor(() => woken.includes(0), 5000, 'a wake-up for stream 0');
        assert.equal(reconnects, 0);
        await stop?.();
        await delay(100);
        const count = woken.length;
        await writer.append(1, 'w', 3, Buffer.from('after stop'));
        await delay(200);
        assert.equal(woken.length, count, 'nothing after stop');
      });

      test('without push wake-ups, subscribe resolves undefined and never calls back', {
        skip: factory.disablesWakeups === false && 'the store cannot be configured without wake-ups',
      }, async () => {
        const namespace = factory.fresh();
        const quiet = namespace.create({ wakeups: false });
        await quiet.install();
        let calls = 0;
        const stop = await quiet.subscribe(
          () => calls++,
          () => calls++,
        );
        assert.equal(stop, undefined, 'tells the engine there are no push wake-ups');
        for (let seq = 1; seq <= 3; seq++) await quiet.append(0, 'q', seq, Buffer.from('x'));
        await namespace.create().append(0, 'other', 1, Buffer.from('x'));
        await delay(150);
        assert.equal(calls, 0);
      });
    });
  });
}
