// The SQLite store on real files in temp directories: the store conformance suite (test/conformance/store-suite.ts),
// then what is SQLite's own: install races across 4 processes, gap-free ids across 4 appending processes, a locked
// file rejecting instead of blocking, wake-ups from another process and their recovery, option and path errors.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  createStore,
  installSchema,
  pathFromUrl,
  SCHEMA_VERSION,
  SqliteStore,
  type SqliteStoreOptions,
} from '@hubwire/sqlite';
import Database from 'better-sqlite3';
import { type BackplanePackage, backplaneFromUrl } from 'hubwire';
import { WalWatcher } from '../../packages/backplane-sqlite/src/wakeup.js';
import { runStoreConformance } from '../conformance/store-suite.js';
import { waitFor } from '../helpers/wait.js';

const root = new URL('../..', import.meta.url).pathname;
const tempRoot = mkdtempSync(join(tmpdir(), 'hubwire-sqlite-'));
let fileCounter = 0;
const stores: SqliteStore[] = [];
const handles: Database.Database[] = [];

/** A fresh database path in its own directory (so wake-up watches see only this test's files). */
function freshPath(): string {
  return join(tempRoot, `t${++fileCounter}`, 'hub.db');
}

function makeStore(options: Partial<SqliteStoreOptions> & { path: string }): SqliteStore {
  const store = new SqliteStore(options);
  stores.push(store);
  return store;
}

/** A separate connection, as another program would hold it. */
function rawHandle(path: string): Database.Database {
  const db = new Database(path, { timeout: 0 });
  handles.push(db);
  return db;
}

interface Worker<T> {
  /** Resolves when the worker waits at its barrier ("ready"). */
  ready: Promise<void>;
  /** Lets it pass the barrier. */
  go(): void;
  /** The JSON line it printed last. */
  result: Promise<T>;
}

/** Runs test/fixtures/sqlite-worker.ts with a task. */
function startWorker<T>(task: Record<string, unknown>): Worker<T> {
  const child = spawn(
    process.execPath,
    ['--conditions=hubwire-source', '--import', 'tsx', 'test/fixtures/sqlite-worker.ts', JSON.stringify(task)],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stdin.on('error', () => {}); // a worker that already exited
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) onReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const result = new Promise<T>((resolve, reject) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`worker exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() as string) as T);
    });
  });
  return { ready: Promise.race([ready, result.then(() => {})]), go: () => child.stdin.end('go\n'), result };
}

/** Runs a worker that needs no barrier. */
function runWorker<T>(task: Record<string, unknown>): Promise<T> {
  const worker = startWorker<T>(task);
  worker.go();
  return worker.result;
}

/** Starts `count` workers, lets them all pass the barrier at once, and collects their results. */
async function raceWorkers<T>(tasks: Record<string, unknown>[]): Promise<T[]> {
  const workers = tasks.map((task) => startWorker<T>(task));
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.go();
  return Promise.all(workers.map((w) => w.result));
}

async function cleanup(): Promise<void> {
  for (const handle of handles.splice(0)) if (handle.open) handle.close();
  await Promise.all(stores.splice(0).map((store) => store.close()));
}
after(() => rmSync(tempRoot, { recursive: true, force: true }));

runStoreConformance('sqlite', {
  wakeups: true,
  fresh() {
    const path = freshPath();
    return {
      path,
      create: (options = {}) => makeStore({ path, tableCount: options.tableCount, wakeups: options.wakeups }),
    };
  },
  cleanup,
  async age({ path }, stream, throughId, ms) {
    rawHandle(path)
      .prepare(`UPDATE hubwire_messages_${stream} SET created_at = created_at - ? WHERE id <= ?`)
      .run(ms, throughId);
  },
  named: (schema) => new SqliteStore({ path: freshPath(), schema }).close(),
  async afterInstallRace({ path }) {
    const db = rawHandle(path);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(db.prepare('SELECT id, version FROM hubwire_schema_version').all(), [
      { id: 1, version: SCHEMA_VERSION },
    ]);
    assert.deepEqual(db.prepare('SELECT stream, last_id FROM hubwire_streams ORDER BY stream').all(), [
      { stream: 0, last_id: 0 },
      { stream: 1, last_id: 0 },
    ]);
  },
  async downgradeToVersion1({ path }) {
    const db = rawHandle(path);
    db.exec('DROP TABLE hubwire_keys');
    db.exec('DROP TABLE hubwire_nodes');
    db.exec('UPDATE hubwire_schema_version SET version = 1');
  },
});

describe('SqliteStore', { timeout: 120_000 }, () => {
  afterEach(cleanup);

  describe('install', () => {
    test('4 processes racing on a fresh file agree on the epoch', async () => {
      const path = freshPath();
      const results = await raceWorkers<{ epoch: string }>(
        Array.from({ length: 4 }, () => ({ kind: 'install', path, tableCount: 3 })),
      );
      assert.equal(new Set(results.map((r) => r.epoch)).size, 1);
      const store = makeStore({ path, tableCount: 3 });
      assert.deepEqual(await store.install(), results[0]);
      const db = rawHandle(path);
      assert.equal(db.prepare('SELECT count(*) FROM hubwire_schema_version').pluck().get(), 1);
      assert.equal(db.prepare('SELECT count(*) FROM hubwire_streams').pluck().get(), 3);
    });

    test('key rings loading at once in 4 processes on a fresh file make one key and all sign with it', async () => {
      const path = freshPath();
      await makeStore({ path }).install();
      const results = await raceWorkers<{ signingKey: string }>(
        Array.from({ length: 4 }, () => ({ kind: 'key-ring', path, purpose: 'tokens' })),
      );
      assert.equal(new Set(results.map((r) => r.signingKey)).size, 1);
      const keys = await makeStore({ path }).readKeys('tokens');
      assert.equal(keys.length, 1);
      assert.equal(keys[0]!.secret.toString('hex'), results[0]!.signingKey);
    });

    test('installSchema and createStore take sqlite: URLs; backplaneFromUrl loads this package', async () => {
      const path = freshPath();
      const installed = await installSchema(`sqlite:${path}`, { schema: 'pre', tableCount: 2 });
      assert.equal(installed.version, SCHEMA_VERSION);
      const store = createStore(`sqlite://${path}`, { schema: 'pre', tableCount: 2 });
      stores.push(store);
      assert.equal(store.path, path);
      assert.equal(store.streamCount, 2);
      assert.equal((await store.install()).epoch, installed.epoch);
      const engine = await backplaneFromUrl(`sqlite:${path}`, { schema: 'pre', onError: () => {} });
      assert.equal(engine.store.kind, 'sqlite');
      await engine.close();
      const pkg: BackplanePackage = await import('@hubwire/sqlite');
      assert.equal(typeof pkg.createStore, 'function');
    });

    test('URL and path forms', () => {
      assert.equal(pathFromUrl('sqlite:./data/hub.db'), join(process.cwd(), 'data/hub.db'));
      assert.equal(pathFromUrl('sqlite:data/hub.db'), join(process.cwd(), 'data/hub.db'));
      assert.equal(pathFromUrl('sqlite:///abs/path.db'), '/abs/path.db');
      assert.equal(pathFromUrl('sqlite:/abs/path.db?mode=x'), '/abs/path.db');
      assert.equal(pathFromUrl('SQLITE:///a%20b/hub.db'), '/a b/hub.db');
      assert.equal(pathFromUrl('file:///abs/hub.sqlite'), '/abs/hub.sqlite');
      assert.equal(pathFromUrl('./hub.sqlite3'), join(process.cwd(), 'hub.sqlite3'));
      assert.throws(() => pathFromUrl('sqlite::memory:'), /in-memory/);
      assert.throws(() => pathFromUrl('sqlite:'), /needs a path/);
    });

    test('invalid options are rejected before touching the file', () => {
      const path = freshPath();
      for (const schema of ['', '1abc', 'a-b', 'a"b', 'x; DROP TABLE y', 'a'.repeat(52)]) {
        assert.throws(() => new SqliteStore({ path, schema }), TypeError, schema);
      }
      assert.throws(() => createStore(path, { schema: 'no spaces' }), /Invalid SQLite table prefix/);
      assert.throws(() => new SqliteStore({ path, tablePrefix: 'a', schema: 'b' }), /differ/);
      for (const tableCount of [0, 65, 1.5, -1]) {
        assert.throws(() => new SqliteStore({ path, tableCount }), RangeError);
      }
      assert.throws(() => new SqliteStore({ path, busyTimeout: -1 }), RangeError);
      assert.throws(() => new SqliteStore({ path: '' }), TypeError);
      // A prefix of 51 characters is fine.
      new SqliteStore({ path, schema: `_${'a'.repeat(50)}` });
    });

    test('a path in a non-writable place rejects clearly, and nothing throws synchronously', async () => {
      const blocker = join(tempRoot, 'a-regular-file');
      writeFileSync(blocker, 'not a directory');
      const store = makeStore({ path: join(blocker, 'sub', 'hub.db') });
      const installing = store.install();
      await assert.rejects(installing, /Cannot open the SQLite database .*a-regular-file.*cannot create its directory/);
      await assert.rejects(store.append(0, 'p', 1, Buffer.from('x')), /Cannot open the SQLite database/);
      await assert.rejects(store.top(0), /Cannot open/);
    });

    test('a store used before install() says so', async () => {
      const store = makeStore({ path: freshPath() });
      await assert.rejects(store.append(0, 'p', 1, Buffer.from('x')), /not installed.*call install\(\) first/);
      await assert.rejects(store.top(0), /not installed/);
      await assert.rejects(store.readAfter(0, 0, 1), /not installed/);
      await assert.rejects(store.readNodes(), /nodes table is not installed.*call install\(\) first/);
      await assert.rejects(store.heartbeatNode('n', '{}'), /nodes table is not installed/);
    });

    test('node registry arguments are rejected before the file is opened', async () => {
      const path = freshPath();
      const store = makeStore({ path });
      await assert.rejects(store.heartbeatNode('has space', '{}'), TypeError);
      await assert.rejects(store.heartbeatNode('n', 'x'.repeat(4097)), TypeError);
      await assert.rejects(store.removeNode(''), TypeError);
      await assert.rejects(store.pruneNodes(-1), RangeError);
      assert.equal(existsSync(dirname(path)), false, 'nothing was created');
    });

    test('a file at schema version 2 gets the nodes table from install(), keeping its keys and epoch', async () => {
      const path = freshPath();
      const store = makeStore({ path });
      const { epoch } = await store.install();
      assert.equal(await store.addKey('p', { id: 'k', secret: Buffer.alloc(32, 1), createdAt: 1 }, -1), true);
      const db = rawHandle(path);
      db.exec('DROP TABLE hubwire_nodes');
      db.exec('UPDATE hubwire_schema_version SET version = 2');
      const migrated = makeStore({ path });
      await assert.rejects(migrated.readNodes(), /nodes table is not installed/);
      assert.equal((await migrated.install()).epoch, epoch);
      assert.equal(db.prepare('SELECT version FROM hubwire_schema_version').pluck().get(), SCHEMA_VERSION);
      assert.deepEqual(
        (await migrated.readKeys('p')).map((k) => k.id),
        ['k'],
      );
      await migrated.heartbeatNode('n', '{"a":1}');
      await migrated.heartbeatNode('n', '{"a":2}');
      const { now, nodes } = await store.readNodes();
      assert.equal(nodes.length, 1);
      assert.equal(nodes[0]?.info, '{"a":2}');
      assert.ok(nodes[0]!.startedAt <= nodes[0]!.heartbeatAt && nodes[0]!.heartbeatAt <= now);
    });
  });

  describe('append and read', () => {
    test('4 processes appending 200 rows each to one stream: ids exactly 1..800, every payload once', async (t) => {
      const path = freshPath();
      const store = makeStore({ path });
      await store.install();
      const results = await raceWorkers<{ ids: number[]; busyRetries: number }>(
        Array.from({ length: 4 }, (_, w) => ({ kind: 'append', path, stream: 0, count: 200, tag: `w${w}` })),
      );
      t.diagnostic(`SQLITE_BUSY retries: ${results.map((r) => r.busyRetries).join(', ')}`);
      const all = results.flatMap((r) => r.ids);
      assert.deepEqual(
        [...all].sort((a, b) => a - b),
        Array.from({ length: 800 }, (_, i) => i + 1),
      );
      for (const r of results) {
        assert.deepEqual(
          r.ids,
          [...r.ids].sort((a, b) => a - b),
          "each process's ids rise in its commit order",
        );
      }
      const rows = await store.readAfter(0, 0, 10_000);
      assert.deepEqual(
        rows.map((r) => r.id),
        Array.from({ length: 800 }, (_, i) => i + 1),
      );
      const payloads = rows.map((r) => r.payload.toString());
      assert.equal(new Set(payloads).size, 800);
      for (let w = 0; w < 4; w++) {
        for (let i = 0; i < 200; i++) assert.ok(payloads.includes(`w${w}:${i}`), `w${w}:${i}`);
      }
      // They interleaved rather than ran one after another (the test would prove little otherwise).
      const firstWriter = payloads.slice(0, 200).map((p) => p.split(':')[0]);
      assert.ok(new Set(firstWriter).size > 1, 'writers interleaved');
      assert.equal(await store.top(0), 800);
    });

    test('while another connection holds the write lock, append rejects quickly with SQLITE_BUSY, then succeeds', async () => {
      const path = freshPath();
      const store = makeStore({ path });
      await store.install();
      await store.append(0, 'p', 1, Buffer.from('before'));
      const blocker = rawHandle(path);
      blocker.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      let appending: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        appending = store.append(0, 'p', 2, Buffer.from('blocked'));
      });
      await assert.rejects(appending as Promise<unknown>, (error: Error & { code?: string }) => {
        assert.match(String(error.code), /^SQLITE_BUSY/);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 400, `rejected after ${elapsed} ms`);
      // Readers are not blocked by the writer (WAL).
      assert.equal(await store.top(0), 1);
      assert.equal((await store.readAfter(0, 0, 10)).length, 1);
      blocker.exec('COMMIT');
      assert.deepEqual(await store.append(0, 'p', 2, Buffer.from('after')), { id: 2 });
    });
  });

  describe('wake-ups', () => {
    test("another process's append fires onChange for its stream only; our own appends do not", async () => {
      const path = freshPath();
      const store = makeStore({ path, tableCount: 2 });
      await store.install();
      const changes: number[] = [];
      let reconnects = 0;
      const stop = await store.subscribe(
        (stream) => changes.push(stream),
        () => reconnects++,
      );
      await store.append(0, 'me', 1, Buffer.from('mine'));
      await delay(100);
      assert.deepEqual(changes, [], 'our own append is not reported');
      await runWorker({ kind: 'append-once', path, stream: 1, tag: 'from a child' });
      await waitFor(() => changes.length > 0, 2000, 'a wake-up');
      assert.deepEqual(changes, [1]);
      assert.equal(reconnects, 0);
      await stop?.();
      await runWorker({ kind: 'append-once', path, stream: 1, tag: 'after stop' });
      await delay(100);
      assert.deepEqual(changes, [1], 'nothing after the subscription stopped');
    });

    test('another store in this process wakes us, many appends coalesce, and a checkpoint does not deafen', async () => {
      const path = freshPath();
      const store = makeStore({ path });
      const writer = makeStore({ path });
      await store.install();
      const changes: number[] = [];
      await store.subscribe(
        (stream) => {
          changes.push(stream);
          if (changes.length === 1) throw new Error('a throwing callback does not stop wake-ups');
        },
        () => {},
      );
      await writer.append(0, 'w', 1, Buffer.from('a'));
      await waitFor(() => changes.length === 1, 2000, 'the first wake-up');
      for (let i = 2; i <= 50; i++) await writer.append(0, 'w', i, Buffer.from('b'));
      await waitFor(() => changes.length >= 2, 2000, 'a wake-up for the burst');
      assert.ok(changes.length <= 50);
      // Truncating the WAL (a checkpoint) keeps the file's inode and the directory's watch.
      rawHandle(path).pragma('wal_checkpoint(TRUNCATE)');
      const before = changes.length;
      await writer.append(0, 'w', 51, Buffer.from('c'));
      await waitFor(() => changes.length > before, 2000, 'a wake-up after the checkpoint');
    });

    test('wakeups: false never calls back', async () => {
      const path = freshPath();
      const store = makeStore({ path, wakeups: false });
      await store.install();
      let calls = 0;
      const stop = await store.subscribe(
        () => calls++,
        () => calls++,
      );
      await makeStore({ path }).append(0, 'w', 1, Buffer.from('x'));
      await runWorker({ kind: 'append-once', path, stream: 0, tag: 'child' });
      await delay(150);
      assert.equal(calls, 0);
      assert.equal(stop, undefined, 'tells the engine there are no push wake-ups');
    });

    test('a watch lost with its directory is set up again, then onReconnect is called', async () => {
      const dir = join(tempRoot, `watch-${++fileCounter}`);
      const file = join(dir, 'hub.db');
      mkdirSync(dir);
      let top = 0;
      const changes: number[] = [];
      const errors: Error[] = [];
      let reconnects = 0;
      const watcher = new WalWatcher({
        file,
        readTops: () => [top],
        onChange: (stream) => changes.push(stream),
        onReconnect: () => reconnects++,
        onError: (error) => errors.push(error),
      });
      watcher.start();
      try {
        top = 1;
        writeFileSync(`${file}-wal`, 'x');
        await waitFor(() => changes.length === 1, 2000, 'a change');
        writeFileSync(join(dir, 'unrelated.txt'), 'x');
        top = 2;
        await delay(50);
        assert.equal(changes.length, 1, 'other files are ignored');
        rmSync(dir, { recursive: true });
        await waitFor(() => errors.length > 0, 2000, 'the loss to be noticed');
        mkdirSync(dir);
        await waitFor(() => reconnects === 1, 5000, 'onReconnect');
        top = 3;
        writeFileSync(`${file}-wal`, 'y');
        await waitFor(() => changes.length === 2, 2000, 'a change after re-watching');
      } finally {
        watcher.stop();
      }
    });
  });

  describe('lifecycle', () => {
    test('close() closes the file; later calls reject; close twice is fine', async () => {
      const path = freshPath();
      const store = makeStore({ path });
      await store.install();
      const stop = await store.subscribe(
        () => {},
        () => {},
      );
      await store.close();
      await store.close();
      await stop?.();
      await assert.rejects(store.append(0, 'p', 1, Buffer.from('x')), /closed/);
      await assert.rejects(store.top(0), /closed/);
      await assert.rejects(
        store.subscribe(
          () => {},
          () => {},
        ),
        /closed/,
      );
      // Our connection was the last one: SQLite checkpointed and removed the WAL.
      assert.equal(existsSync(`${path}-wal`), false);
    });
  });
});
