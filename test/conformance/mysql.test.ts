// The conformance suite on the MySQL/MariaDB backplane (a real database, the default single stream: one total order
// for every node). No push wake-ups: the engines poll with their short back-off.
// Database: HUBWIRE_TEST_MYSQL, default mysql://root@127.0.0.1:3306/test; skipped when unreachable without it.

import { test } from 'node:test';
import { MysqlStore } from '@hubwire/mysql';
import { Backplane } from 'hubwire';
import mysql from 'mysql2/promise';
import { runBackplaneConformance } from './backplane-suite.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test';
const prefix = `hw_conf_${process.pid}_${Date.now().toString(36)}`;

async function reachable(): Promise<string | undefined> {
  try {
    const connection = await mysql.createConnection({ uri: DATABASE_URL, connectTimeout: 3000 });
    connection.on('error', () => {});
    await connection.end();
    return undefined;
  } catch (error) {
    if (process.env.HUBWIRE_TEST_MYSQL) throw error;
    return `no MySQL/MariaDB at ${DATABASE_URL} (${(error as Error).message}); set HUBWIRE_TEST_MYSQL`;
  }
}

const skip = await reachable();
if (skip) {
  test('backplane conformance: mysql', { skip }, () => {});
} else {
  runBackplaneConformance('mysql', {
    createBackplane: () =>
      new Backplane(new MysqlStore({ connectionString: DATABASE_URL, schema: prefix }), {
        onError: () => {},
      }),
    async cleanup() {
      const connection = await mysql.createConnection({ uri: DATABASE_URL, connectTimeout: 10_000 });
      connection.on('error', () => {});
      try {
        const tables = ['schema_version', 'streams', 'messages_0', 'keys', 'nodes'].map(
          (name) => `\`${prefix}_${name}\``,
        );
        await connection.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`);
      } finally {
        await connection.end();
      }
    },
  });
}
