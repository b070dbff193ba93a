// Borrowing a pooled connection for MysqlStore: the acquire timeout mysql2 pools lack, and an 'error' listener on
// every connection, so that an error of an idle connection is reported instead of killing the process.

import { CONNECT_TIMEOUT_MS } from 'hubwire/backplane';
import type mysql from 'mysql2/promise';

/**
 * A pooled connection within CONNECT_TIMEOUT_MS, with `onError` listening on it (added once per connection:
 * `watched` holds the core connections that have it). mysql2's own listener is a `once`, and an 'error' event
 * without a listener kills the process. mysql2 pools have no acquire timeout, so one is added here (a connection
 * that arrives late goes straight back).
 */
export async function acquireConnection(
  pool: mysql.Pool,
  watched: WeakSet<object>,
  onError: (error: Error) => void,
): Promise<mysql.PoolConnection> {
  const pending = pool.getConnection();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${CONNECT_TIMEOUT_MS} ms waiting for a MySQL connection.`)),
      CONNECT_TIMEOUT_MS,
    );
  });
  try {
    const connection = await Promise.race([pending, timeout]);
    const core = connection.connection as unknown as NodeJS.EventEmitter;
    if (!watched.has(core)) {
      watched.add(core);
      core.on('error', onError);
    }
    return connection;
  } catch (error) {
    pending.then(
      (late) => late.release(),
      () => {},
    );
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
