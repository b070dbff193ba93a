// The part every server child shares: the IPC loop with the parent (broadcast, stats, forced-GC memory),
// so the three servers differ only in how they accept sockets and fan a message out.

import {
  assertOpenFileLimit,
  envInt,
  exitWithParent,
  nowUs,
  type Payload,
  type ServerStats,
  send,
  type ToServer,
} from './common.js';

export interface ServerUnderTest {
  port: number;
  /** The URL path (and query) clients connect to. */
  path: string;
  /** Fully connected clients (past the protocol handshake). */
  connections(): number;
  /** Sends the payload to every connected client. */
  broadcast(payload: Payload): void;
  close(): Promise<void>;
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settledGc(): Promise<void> {
  if (!gc) throw new Error('Run server children with --expose-gc.');
  // Several passes with a turn of the event loop between: finalizers and weak callbacks free more on the second pass.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export async function runServer(name: string, start: () => Promise<ServerUnderTest>): Promise<void> {
  exitWithParent();
  try {
    if (!gc) throw new Error('Run server children with --expose-gc.');
    assertOpenFileLimit(envInt('BENCH_MAX_CONNECTIONS', 1000), `The ${name} server`);
    const body = 'x'.repeat(envInt('BENCH_BODY_BYTES', 64, 0, 1_000_000));
    const server = await start();

    const stats = (): ServerStats => {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      return {
        connections: server.connections(),
        cpuUs: cpu.user + cpu.system,
        heapUsed: memory.heapUsed,
        rss: memory.rss,
        external: memory.external,
      };
    };

    process.on('message', (message: ToServer) => {
      switch (message.type) {
        case 'broadcast':
          // Stamped right before the fan-out: the latency clients see includes the whole send loop.
          server.broadcast({ seq: message.seq, ts: nowUs(), body });
          return;
        case 'stats':
          send({ type: 'reply', id: message.id, stats: stats() });
          return;
        case 'mem':
          settledGc().then(() => send({ type: 'reply', id: message.id, stats: stats() }));
          return;
        case 'stop':
          server.close().finally(() => process.exit(0));
          // Do not hang on a server that will not close.
          setTimeout(() => process.exit(0), 2000).unref();
          return;
      }
    });
    send({ type: 'ready', port: server.port, path: server.path });
  } catch (error) {
    send({ type: 'fatal', message: `${name}: ${(error as Error).message}` });
    process.exit(1);
  }
}
