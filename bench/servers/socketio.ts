// Socket.IO 4 under test: WebSocket transport only, default options, `io.emit('m', payload)` to the default
// namespace.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { runServer } from '../lib/harness.js';

await runServer('socketio', async () => {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], serveClient: false });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (http.address() as AddressInfo).port,
    // What socket.io-client opens with transports: ['websocket'] (engine.io protocol v4).
    path: '/socket.io/?EIO=4&transport=websocket',
    // Sockets of the namespace: past the engine.io open and the Socket.IO CONNECT.
    connections: () => io.of('/').sockets.size,
    broadcast: (payload) => {
      io.emit('m', payload);
    },
    close: () => new Promise<void>((resolve) => io.close(() => resolve())),
  };
});
