// How MysqlStore tells MySQL/MariaDB errors apart: a retried batch, a broken connection, a missing install.

import { PUBLISHER_KEY } from './schema.js';

/** ER_DUP_ENTRY on the (publisher, batch_seq) key, not on the primary key (which would be a real fault). */
export function isDuplicateBatch(error: unknown): boolean {
  const { errno, sqlMessage } = error as { errno?: unknown; sqlMessage?: unknown };
  // MariaDB names the key as `'publisher_batch_seq'`, MySQL 8.0.19+ as `'<table>.publisher_batch_seq'`.
  return (
    errno === 1062 &&
    typeof sqlMessage === 'string' &&
    new RegExp(`for key '(?:[^']*\\.)?${PUBLISHER_KEY}'$`).test(sqlMessage)
  );
}

/**
 * Whether the connection is unusable after this error: mysql2 marks network and protocol errors `fatal`; server
 * errors (with an SQLSTATE) and our own argument errors leave it usable.
 */
export function isBroken(error: unknown): boolean {
  if (error instanceof RangeError || error instanceof TypeError || error instanceof NotInstalledError) return false;
  if (error === null || typeof error !== 'object') return true;
  const { fatal, sqlState } = error as { fatal?: unknown; sqlState?: unknown };
  return fatal === true || typeof sqlState !== 'string';
}

/** A stream's id row is missing: install() was not run (or not with this tableCount). */
export class NotInstalledError extends Error {
  override readonly name = 'NotInstalledError';
}
