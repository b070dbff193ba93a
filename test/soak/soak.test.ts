// A soak sized for CI (issue 12): one server process, for SOAK_MS (default 90 s), under
// - churn: short-lived WebSocket connections (handshake, a few echoes, then a clean close or an abrupt drop), a few
//   thousand in all;
// - slow clients: group members that stop reading (the server closes them once too much waits), replaced as they go;
// - the well-behaved: readers of the same group, each of which must get every message of the publisher, in order.
// Checked: nothing lost for the well-behaved, the slow ones closed as slow, and the server's memory (after a forced
// GC) and open file descriptors back near where they started, not growing with the connections it served.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { type NodeProcess, startFixture } from '../helpers/node-process.js';

const SOAK_MS = Number(process.env.SOAK_MS ?? 90_000);
const RS = '\x1e';
const GROUP = 'soak';
const READERS = 10;
const PUBLISH_PER_SECOND = 500;
const CHURN_IN_FLIGHT = 40;
const SLOW_AT_ONCE = 3;
const TEXT = 'p'.repeat(2000);

let server: NodeProcess;
let base = '';

before(async () => {
  const node = await startFixture('soak-node.ts', [], 30_000, { nodeArgs: ['--expose-gc'] });
  server = { ...node, url: '' };
  base = `http://127.0.0.1:${node.port}`;
});
after(async () => {
  await server?.stop();
});

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

async function memory(gc = false): Promise<Memory> {
  return (await (await fetch(`${base}/memory${gc ? '?gc=1' : ''}`)).json()) as Memory;
}

function openFds(): number {
  return readdirSync(`/proc/${server.child.pid}/fd`).length;
}

/** A raw JSON hub connection (skip negotiation): invoke with ids, and everything else to `onMessage`. */
async function connect(onMessage?: (message: Record<string, unknown>) => void) {
  const socket = new WebSocket(`${base.replace('http', 'ws')}/soak`);
  const waiting = new Map<string, (message: Record<string, unknown>) => void>();
  let handshaken: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    handshaken = resolve;
  });
  socket.on('message', (data) => {
    for (const part of String(data).split(RS)) {
      if (!part) continue;
      if (part === '{}') {
        handshaken?.();
        continue;
      }
      const message = JSON.parse(part) as Record<string, unknown>;
      const id = message.invocationId;
      if (message.type === 3 && typeof id === 'string') waiting.get(id)?.(message);
      else onMessage?.(message);
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(`{"protocol":"json","version":1}${RS}`);
  await ready;
  // Keep-alive, as the official client does (every 15 s): without it the server drops the connection once its
  // clientTimeout (30 s) passes with nothing received.
  const keepAlive = setInterval(() => {
    if (socket.readyState === WebSocket.OPEN) socket.send(`{"type":6}${RS}`);
  }, 15_000);
  socket.once('close', () => clearInterval(keepAlive));
  let next = 0;
  const invoke = (target: string, args: unknown[]) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = String(++next);
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ type: 1, invocationId: id, target, arguments: args }) + RS);
      setTimeout(() => reject(new Error(`no completion of ${target} within 10 s`)), 10_000).unref();
    });
  return { socket, invoke };
}

describe('soak', { timeout: SOAK_MS + 120_000 }, () => {
  test(`${SOAK_MS / 1000} s of churn, slow and well-behaved clients: nothing lost, memory and descriptors flat`, async () => {
    // Warm-up, then the baseline.
    for (let i = 0; i < 50; i++) {
      const client = await connect();
      await client.invoke('echo', [i]);
      client.socket.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const baseMemory = await memory(true);
    const baseFds = openFds();

    // The well-behaved readers.
    const received: number[][] = Array.from({ length: READERS }, () => []);
    const readerClosed: string[] = [];
    const deadline = Date.now() + SOAK_MS;
    const readers = await Promise.all(
      received.map(async (list) => {
        const reader = await connect((message) => {
          if (message.target === 'm') list.push((message.arguments as number[])[0] as number);
        });
        await reader.invoke('joinGroup', [GROUP]);
        reader.socket.once('close', (code, reason) => {
          if (Date.now() < deadline) readerClosed.push(`reader closed with ${code} ${String(reason)}`);
        });
        return reader;
      }),
    );
    const publisher = await connect();
    let published = 0;
    const publishing = (async () => {
      const started = Date.now();
      while (Date.now() < deadline) {
        const due = Math.floor(((Date.now() - started) / 1000) * PUBLISH_PER_SECOND);
        const batch: Promise<unknown>[] = [];
        while (published < due) batch.push(publisher.invoke('toGroup', [GROUP, ++published, TEXT]));
        await Promise.all(batch);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    // Churn: short-lived connections, some closed cleanly, some dropped.
    let churned = 0;
    const churn = async () => {
      while (Date.now() < deadline) {
        const client = await connect();
        for (let i = 0; i < 3; i++) await client.invoke('echo', [churned, i]);
        if (churned++ % 3 === 0) client.socket.terminate();
        else client.socket.close();
      }
    };
    const churning = Promise.all(Array.from({ length: CHURN_IN_FLIGHT }, churn));

    // Slow clients: join the group and stop reading; the server closes them once the kernel's socket buffers and
    // maxQueuedBytes are full (a closed socket shows once it is read again); then a new one takes its place.
    let slowClosed = 0;
    const slow = async () => {
      while (deadline - Date.now() > 2000) {
        const client = await connect();
        await client.invoke('joinGroup', [GROUP]);
        const raw = (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
        const closed = new Promise<void>((resolve) => client.socket.once('close', () => resolve()));
        raw.pause();
        await new Promise((resolve) => setTimeout(resolve, Math.min(15_000, deadline - Date.now() - 1000)));
        raw.resume();
        const gone = await Promise.race([
          closed.then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
        ]);
        if (gone) slowClosed++;
        client.socket.terminate();
      }
    };
    const slowing = Promise.all(Array.from({ length: SLOW_AT_ONCE }, slow));

    const samples: { at: number; rss: number; fds: number }[] = [];
    const sampling = (async () => {
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5000));
        samples.push({ at: Date.now(), rss: (await memory()).rss, fds: openFds() });
      }
    })();

    await Promise.all([publishing, churning, slowing, sampling]);
    // The last messages arrive.
    const arrived = () => received.every((list) => list.length >= published);
    for (let i = 0; i < 100 && !arrived(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(readerClosed, [], 'no well-behaved reader was closed while the soak ran');
    for (const [index, list] of received.entries()) {
      assert.equal(list.length, published, `reader ${index} got every message (${list.length} of ${published})`);
      assert.ok(
        list.every((seq, i) => seq === i + 1),
        `reader ${index} got them once, in order`,
      );
    }
    for (const reader of readers) reader.socket.close();
    publisher.socket.close();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const endMemory = await memory(true);
    const endFds = openFds();
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `[soak] ${SOAK_MS / 1000} s: ${churned} short connections, ${slowClosed} slow clients closed, ${published} messages to ${READERS} readers; heap ${mb(baseMemory.heapUsed)} → ${mb(endMemory.heapUsed)} MiB, external ${mb(baseMemory.external)} → ${mb(endMemory.external)} MiB, RSS ${mb(baseMemory.rss)} → ${mb(endMemory.rss)} MiB (samples ${samples.map((s) => mb(s.rss)).join(', ')}), fds ${baseFds} → ${endFds} (samples ${samples.map((s) => s.fds).join(', ')})`,
    );
    assert.ok(churned >= 1000, `enough churn (${churned} connections)`);
    assert.ok(slowClosed >= SLOW_AT_ONCE, `slow clients were closed by the server (${slowClosed})`);
    // Nothing is kept per connection once it is gone.
    assert.ok(endFds <= baseFds + 5, `file descriptors back to the baseline (${baseFds} → ${endFds})`);
    assert.ok(
      endMemory.heapUsed <= baseMemory.heapUsed + 8 * 1024 * 1024,
      `heap back near the baseline (${mb(baseMemory.heapUsed)} → ${mb(endMemory.heapUsed)} MiB)`,
    );
    assert.ok(
      endMemory.external <= baseMemory.external + 8 * 1024 * 1024,
      `external memory back near the baseline (${mb(baseMemory.external)} → ${mb(endMemory.external)} MiB)`,
    );
    // RSS: bounded while it ran (what the allocator keeps is not returned, so no "back to baseline" here).
    const peak = Math.max(...samples.map((s) => s.rss));
    assert.ok(peak <= baseMemory.rss + 128 * 1024 * 1024, `RSS stayed bounded (peak ${mb(peak)} MiB)`);
  });
});
