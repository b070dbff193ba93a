// One Socket.IO 4 node of the scaleout bench: WebSocket transport only, `@socket.io/postgres-adapter` on a pg.Pool
// of the adapter's documented setup (default size 10), with its own channel prefix and attachments table for this
// run. The chat: `socket.on('send', (name, message) => io.emit('broadcastMessage', name, message))` — every local
// socket, the sender included, and one `pg_notify` per message for the other nodes (payloads under 8000 B never
// touch the attachments table). Socket.IO's emit is never awaited, so the fire-and-forget shape's `sendForget` is
// the same handler. Node A also runs the server-side publisher on request: `io.emit(...)` paced to the offered rate.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/postgres-adapter';
import pg from 'pg';
import { Server } from 'socket.io';
import {
  cpuUs,
  eventLoopMonitor,
  MESSAGE_NAME,
  type NodeStats,
  publishPaced,
  requireEnv,
  runNode,
} from '../lib/scaleout.js';

const MESSAGE_BYTES = Number(process.env.BENCH_MESSAGE_BYTES ?? 100);
let sendErrors = 0;
let lastLogged = 0;

function onError(error: unknown): void {
  sendErrors++;
  const now = Date.now();
  if (now - lastLogged < 1000) return;
  lastLogged = now;
  console.error(`[socket.io node ${process.env.BENCH_NODE}]`, (error as Error).message ?? error);
}

/** Times the adapter's queries (pool checkout included) from the outside; nothing else changes. */
function timePool(pool: pg.Pool): () => NonNullable<NodeStats['pool']> {
  const totals = { queries: 0, queryMs: 0, queryMaxMs: 0 };
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
    const started = performance.now();
    try {
      return await query(...args);
    } finally {
      const ms = performance.now() - started;
      totals.queries++;
      totals.queryMs += ms;
      if (ms > totals.queryMaxMs) totals.queryMaxMs = ms;
    }
  };
  return () => {
    const snapshot = { ...totals, waiting: pool.waitingCount };
    totals.queryMaxMs = 0;
    return snapshot;
  };
}

await runNode(`socket.io node ${process.env.BENCH_NODE}`, async () => {
  const eventLoop = eventLoopMonitor();
  const pool = new pg.Pool({ connectionString: requireEnv('BENCH_DB_URL'), application_name: 'socketio-bench' });
  pool.on('error', onError);
  const poolTimes = timePool(pool);
  const http = createServer();
  const io = new Server(http, {
    transports: ['websocket'],
    serveClient: false,
    adapter: createAdapter(pool, {
      tableName: requireEnv('BENCH_SIO_TABLE'),
      channelPrefix: requireEnv('BENCH_SIO_CHANNEL'),
      errorHandler: onError,
    }),
  });
  io.on('connection', (socket) => {
    const chat = (name: string, message: string) => io.emit('broadcastMessage', name, message);
    socket.on('send', chat);
    socket.on('sendForget', chat);
    socket.on('joinGroup', (room: string, ack?: () => void) => {
      void socket.join(room);
      ack?.();
    });
    socket.on('sendToGroup', (room: string, name: string, message: string) =>
      io.to(room).emit('broadcastMessage', name, message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });

  /** The server-side publisher: `io.emit` at the offered rate (each due at start + i / rate), ~1 ms bursts. */
  const publish = (firstSeq: number, count: number, rate: number) =>
    publishPaced(firstSeq, count, rate, MESSAGE_BYTES, (message) => {
      io.emit('broadcastMessage', MESSAGE_NAME, message);
      return undefined;
    });

  return {
    port: (http.address() as AddressInfo).port,
    path: '/socket.io/?EIO=4&transport=websocket',
    stats: () => ({
      connections: io.of('/').sockets.size,
      cpuUs: cpuUs(),
      sendErrors,
      eventLoop: eventLoop(),
      pool: poolTimes(),
    }),
    publish,
    close: async () => {
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await pool.end();
    },
  };
});
