// The prepared statements of the SQLite store's key methods (readKeys, addKey, deleteKeys), on `<prefix>_keys`.

import type Database from 'better-sqlite3';
import { asError, type StoredKey } from 'hubwire/backplane';
import type { TableNames } from './schema.js';

export interface KeyStatements {
  read: Database.Statement<[string], { id: string; secret: Buffer; created_at: number }>;
  add(purpose: string, key: StoredKey, unlessNewerThan: number): boolean;
  delete: Database.Statement<[string, number]>;
}

/** Prepares the key statements on `db`; throws a clear error when the keys table is not installed. */
export function prepareKeyStatements(db: Database.Database, names: TableNames, path: string): KeyStatements {
  const table = names.keysTable;
  try {
    const newer = db.prepare<[string, number], number>(
      `SELECT 1 FROM ${table} WHERE purpose = ? AND created_at > ? LIMIT 1`,
    );
    const insert = db.prepare<[string, string, Buffer, number]>(
      `INSERT INTO ${table} (purpose, id, secret, created_at) VALUES (?, ?, ?, ?)`,
    );
    const add = db.transaction((purpose: string, key: StoredKey, unlessNewerThan: number): boolean => {
      if (newer.get(purpose, unlessNewerThan) !== undefined) return false;
      insert.run(purpose, key.id, key.secret, key.createdAt);
      return true;
    });
    return {
      read: db.prepare(
        `SELECT id, secret, created_at FROM ${table} WHERE purpose = ? ORDER BY created_at DESC, id DESC`,
      ),
      // IMMEDIATE: the write lock first, then the check (see SqliteStore.addKey).
      add: (purpose, key, unlessNewerThan) => add.immediate(purpose, key, unlessNewerThan),
      delete: db.prepare(`DELETE FROM ${table} WHERE purpose = ? AND created_at < ?`),
    };
  } catch (error) {
    if (/no such table/i.test(asError(error).message)) {
      throw new Error(`The keys table is not installed in ${path} (prefix '${names.prefix}'): call install() first.`, {
        cause: error,
      });
    }
    throw error;
  }
}
