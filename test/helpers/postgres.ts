// PostgreSQL chaos for tests: ends the database connections of one application (a cluster's pools and LISTEN
// connections, tagged with `application_name` in their URL), as a failover or an administrator would.

import pg from 'pg';

/** Terminates every backend of `applicationName` on `databaseUrl`'s database; resolves with how many ended. */
export async function terminateBackends(databaseUrl: string, applicationName: string): Promise<number> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
      [applicationName],
    );
    return rows.filter((row) => row.done).length;
  } finally {
    await admin.end();
  }
}
