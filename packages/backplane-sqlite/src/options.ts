// The options of SqliteStore (what each means, and its default), and how a `sqlite:` URL names its file.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreOptions } from 'hubwire/backplane';

/**
 * Options of {@link SqliteStore}. The options every store has (`schema`, `tableCount`, `wakeups`, `onError`) mean
 * the same in each (see `StoreOptions` of `hubwire/backplane`).
 */
export interface SqliteStoreOptions extends StoreOptions {
  /** The database file, e.g. `./data/hub.db`. Relative paths resolve against the working directory at creation. */
  readonly path: string;
  /**
   * Starts every table name (`<schema>_streams`, ...): SQLite has no schemas inside a file, so the prefix plays
   * that part. Default `hubwire`. Letters, digits and `_`, at most 51.
   */
  readonly schema?: string;
  /**
   * The old name of `schema`.
   * @deprecated Use `schema`, the name every store uses (a DeprecationWarning says so once).
   */
  readonly tablePrefix?: string;
  /** Number of streams, one table each, 1..64. Default 1. */
  readonly tableCount?: number;
  /** Wake this process when another one appends (a watch on the WAL). With `false`, only polling. Default `true`. */
  readonly wakeups?: boolean;
  /**
   * How long a call waits for another connection's write lock before it fails with SQLITE_BUSY (ms). The wait
   * blocks the event loop (better-sqlite3 is synchronous), so keep it short: the engine queues and retries.
   * Default 50.
   */
  readonly busyTimeout?: number;
  /** Errors the store handles itself (a failed watch and its recovery), for logging only. Default: ignored. */
  readonly onError?: (error: Error) => void;
}

/**
 * The database file of a `sqlite:` URL or a bare path: `sqlite:./data/hub.db` and `sqlite:data/hub.db` are
 * relative to the working directory, `sqlite:///abs/hub.db` and `sqlite:/abs/hub.db` absolute, and a `file:` URL
 * or a plain path are taken as they are. Returns an absolute path.
 */
export function pathFromUrl(url: string): string {
  if (typeof url !== 'string') throw new TypeError('A SQLite URL or path must be a string.');
  let path = url;
  if (/^file:/i.test(url)) path = fileURLToPath(url);
  else if (/^sqlite:/i.test(url)) {
    path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    path = path.replace(/[?#].*$/, '');
    path = decodeURIComponent(path);
  }
  return resolveDatabasePath(path);
}

export function resolveDatabasePath(path: unknown): string {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new TypeError('SqliteStore needs a path: the database file, e.g. ./data/hub.db.');
  }
  if (path === ':memory:' || path.startsWith('file::memory:')) {
    throw new TypeError('An in-memory SQLite database cannot be shared by processes: use MemoryStore instead.');
  }
  return resolve(path);
}
