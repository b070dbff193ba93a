// The server under test of the hostile-clients bench (bench/hostile.ts): one Hubwire node running examples/chat's
// ChatHub at /chat and the same hub as classic SignalR 2 at /signalr (`mapClassicHubs('/signalr', { chatHub:
// '/chat' })`), no backplane, default options but one: `allowStatefulReconnects: true`, which scenario 6 needs (the
// server grants stateful reconnect only to clients that ask for it, so it changes nothing for the others).
//
// The hub is the example's, untouched; a subclass only counts completed joinGroup calls, so the parent knows when
// a hostile client that cannot read its answer (long polling that never polls) is in the group. Over IPC the
// parent asks for memory (optionally after forced GC: run with --expose-gc) and the event-loop delay.

import { Hubwire } from 'hubwire';
import { ChatHub } from '../../examples/chat/src/chat-hub.js';
import { Histogram } from '../lib/common.js';
import type { FromServer, ServerSample, ToServer } from '../lib/hostile.js';

let joins = 0;

class CountingChatHub extends ChatHub {
  override async joinGroup(group: string): Promise<void> {
    await super.joinGroup(group);
    joins++;
  }
}

function toParent(message: FromServer): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settledGc(): Promise<void> {
  if (!gc) return;
  // Several passes with a turn of the event loop between: finalizers and weak callbacks free more on later passes.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  if (!process.send) {
    console.error('This file is a child process of bench/hostile.ts; run `npm run bench:hostile`.');
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
  if (!gc) throw new Error('Run the hostile bench server with --expose-gc.');

  // Event-loop delay: how late a 10 ms interval timer runs. (Not monitorEventLoopDelay: after reset() it records
  // nothing for the first interval, so a stall that starts right after a reset is missed.)
  const LOOP_INTERVAL_MS = 10;
  let loop = new Histogram();
  let loopMaxMs = 0;
  let lastTick = performance.now();
  setInterval(() => {
    const now = performance.now();
    const delayMs = Math.max(0, now - lastTick - LOOP_INTERVAL_MS);
    lastTick = now;
    loop.add(delayMs * 1000);
    if (delayMs > loopMaxMs) loopMaxMs = delayMs;
  }, LOOP_INTERVAL_MS);
  const hubwire = new Hubwire({
    allowStatefulReconnects: true,
    onError: (error, where) => console.error(`[hostile server] ${where}:`, (error as Error)?.message ?? error),
  });
  hubwire.mapHub('/chat', CountingChatHub);
  hubwire.mapClassicHubs('/signalr', { chatHub: '/chat' });
  const port = await hubwire.listen(0, '127.0.0.1');

  const sample = (): ServerSample => {
    const memory = process.memoryUsage();
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      joins,
      loopMaxMs,
      loopP99Ms: loop.count > 0 ? loop.quantile(0.99) / 1000 : 0,
    };
  };

  process.on('message', (message: ToServer) => {
    switch (message.type) {
      case 'mem':
        if (message.gc) void settledGc().then(() => toParent({ type: 'mem', id: message.id, sample: sample() }));
        else toParent({ type: 'mem', id: message.id, sample: sample() });
        if (message.resetLoop) {
          loop = new Histogram();
          loopMaxMs = 0;
        }
        return;
      case 'stop':
        // Do not wait long for a server full of stuck sockets.
        setTimeout(() => process.exit(0), 1000).unref();
        hubwire.close().finally(() => process.exit(0));
        return;
    }
  });
  toParent({ type: 'ready', port, pid: process.pid });
}

main().catch((error: unknown) => {
  toParent({ type: 'fatal', message: `hostile server: ${(error as Error).message}` });
  process.exit(1);
});
