// The conformance suite on the PostgreSQL backplane (a real database, the default single stream: one total order
// for every node).

import { PostgresStore } from '@hubwire/postgres';
import { Backplane } from 'hubwire';
import pg from 'pg';
import { runBackplaneConformance } from './backplane-suite.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `hw_conf_${process.pid}_${Date.now().toString(36)}`;

runBackplaneConformance('postgres', {
  createBackplane: () =>
    new Backplane(new PostgresStore({ connectionString: DATABASE_URL, schema }), {
      onError: () => {},
    }),
  async cleanup() {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  },
});
