// The floor: a bare `ws` server and a loop sending one pre-serialized string to every socket. No protocol, no
// registry, no framing beyond WebSocket: what any hub server on `ws` pays at least.

import type { AddressInfo } from 'node:net';
import { runServer } from '../lib/harness.js';
import { WebSocketServer } from '../lib/ws.js';

await runServer('ws', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  return {
    port: (wss.address() as AddressInfo).port,
    path: '/',
    connections: () => wss.clients.size,
    broadcast: (payload) => {
      const text = JSON.stringify(payload);
      for (const socket of wss.clients) socket.send(text);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  };
});
