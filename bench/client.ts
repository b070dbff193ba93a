// A client child: holds many WebSockets to one server and times every broadcast they receive.
//
// Every server is driven by the same raw `ws` sockets doing the minimum its protocol requires (SignalR
// handshake and keep-alive pings; engine.io open, Socket.IO CONNECT and pongs; nothing for bare ws), and the
// same per-message work (find the payload, parse it, record the latency), so the client side costs the same
// whichever server is measured. Usage: client.ts <hubwire|ws|socketio> <url>; driven over IPC.

import {
  assertOpenFileLimit,
  envInt,
  exitWithParent,
  type FromClient,
  Histogram,
  nowUs,
  type Payload,
  type ServerName,
  send,
  type ToClient,
} from './lib/common.js';
import { WebSocket } from './lib/ws.js';

const RECORD_SEPARATOR = '\x1e';
const SIGNALR_HANDSHAKE = `{"protocol":"json","version":1}${RECORD_SEPARATOR}`;
const SIGNALR_PING = `{"type":6}${RECORD_SEPARATOR}`;
/** Hubwire closes clients silent for 30 s (clientTimeoutInterval); the official client pings every 15 s. */
const SIGNALR_PING_INTERVAL_MS = 10_000;
const CONNECT_TIMEOUT_MS = 15_000;
const DISCONNECT_TIMEOUT_MS = 5_000;
const PAYLOAD_START = '{"seq":';

const kind = process.argv[2] as ServerName;
const url = process.argv[3] ?? '';
if (!url) throw new Error('usage: client.ts <server kind> <url>');

interface Round {
  firstSeq: number;
  /** Per broadcast: how many of this process's clients have it. */
  counts: Uint32Array;
  /** Clients that must receive each broadcast (those open when the round started). */
  expected: number;
  histogram: Histogram;
  received: number;
  firstSentUs: number;
  lastReceivedUs: number;
  startCpuUs: number;
}

const sockets = new Set<WebSocket>();
let round: Round | undefined;
let disconnecting = false;

function onBroadcast(text: string, start: number): void {
  const receivedUs = nowUs();
  const end = text.indexOf('}', start);
  const payload = JSON.parse(text.slice(start, end + 1)) as Payload;
  const r = round;
  if (!r) return;
  const index = payload.seq - r.firstSeq;
  if (index < 0 || index >= r.counts.length) return;
  r.histogram.add(receivedUs - payload.ts);
  r.received++;
  if (payload.ts < r.firstSentUs) r.firstSentUs = payload.ts;
  if (receivedUs > r.lastReceivedUs) r.lastReceivedUs = receivedUs;
  const count = (r.counts[index] as number) + 1;
  r.counts[index] = count;
  if (count === r.expected) send({ type: 'got', seq: payload.seq });
}

/** Opens one socket and completes the server's handshake; resolves once broadcasts can reach it. */
function connectOne(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    let ready = false;
    const timer = setTimeout(() => fail('no handshake within 15 s'), CONNECT_TIMEOUT_MS);
    const fail = (reason: string) => {
      if (ready) return;
      clearTimeout(timer);
      socket.terminate();
      reject(new Error(reason));
    };
    const markReady = () => {
      ready = true;
      clearTimeout(timer);
      sockets.add(socket);
      resolve(socket);
    };

    socket.on('open', () => {
      if (kind === 'hubwire') socket.send(SIGNALR_HANDSHAKE);
      else if (kind === 'ws') markReady();
      // Socket.IO: the server speaks first (the engine.io open packet).
    });
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      if (ready) {
        // A SignalR frame may hold several messages (Hubwire coalesces what one turn writes to a socket).
        let start = text.indexOf(PAYLOAD_START);
        if (start === -1 && kind === 'socketio' && text === '2') socket.send('3'); // engine.io ping -> pong
        for (; start !== -1; start = text.indexOf(PAYLOAD_START, start + 1)) onBroadcast(text, start);
        return;
      }
      if (kind === 'hubwire') {
        if (text.startsWith(`{}${RECORD_SEPARATOR}`)) markReady();
        else fail(`handshake refused: ${text.slice(0, 200)}`);
      } else if (kind === 'socketio') {
        // engine.io open -> Socket.IO CONNECT to the default namespace -> CONNECT acknowledged.
        if (text.startsWith('0{')) socket.send('40');
        else if (text.startsWith('40')) markReady();
        else fail(`unexpected Socket.IO packet during connect: ${text.slice(0, 200)}`);
      }
    });
    socket.on('error', (error) => fail(error.message));
    socket.on('close', (code) => {
      if (!ready) {
        fail(`closed (${code}) before the handshake completed`);
        return;
      }
      sockets.delete(socket);
      if (!disconnecting) send({ type: 'lost', open: sockets.size, reason: `a socket closed with code ${code}` });
    });
  });
}

async function connect(count: number, batch: number): Promise<void> {
  // Batches keep the server's accept queue (backlog 511) and the handshake work bounded.
  for (let done = 0; done < count; done += batch) {
    const size = Math.min(batch, count - done);
    const attempts = await Promise.allSettled(Array.from({ length: size }, () => connectOne()));
    const failed = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
    const first = failed[0];
    if (first) {
      throw new Error(
        `${failed.length} of ${size} connections failed after ${sockets.size} were open: ` +
          `${(first.reason as Error).message}`,
      );
    }
  }
}

async function disconnectAll(): Promise<void> {
  disconnecting = true;
  const closing = [...sockets].map(
    (socket) =>
      new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(1000);
      }),
  );
  const timer = setTimeout(() => {
    for (const socket of sockets) socket.terminate();
  }, DISCONNECT_TIMEOUT_MS);
  await Promise.all(closing);
  clearTimeout(timer);
  sockets.clear();
  disconnecting = false;
}

function reply(message: FromClient): void {
  send(message);
}

function cpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

exitWithParent();
try {
  if (!['hubwire', 'ws', 'socketio'].includes(kind) || !url?.startsWith('ws://')) {
    throw new Error(`usage: client.ts <hubwire|ws|socketio> <ws://url> (got '${kind}' '${url}').`);
  }
  assertOpenFileLimit(envInt('BENCH_MAX_CONNECTIONS', 1000), `A ${kind} client process`);
} catch (error) {
  reply({ type: 'fatal', message: (error as Error).message });
  process.exit(1);
}

if (kind === 'hubwire') {
  // The server-side client timeout would otherwise end idle sockets during long phases.
  setInterval(() => {
    for (const socket of sockets) socket.send(SIGNALR_PING);
  }, SIGNALR_PING_INTERVAL_MS);
}

process.on('message', (message: ToClient) => {
  switch (message.type) {
    case 'connect': {
      const started = Date.now();
      connect(message.count, message.batch).then(
        () => reply({ type: 'connected', id: message.id, open: sockets.size, ms: Date.now() - started }),
        (error: Error) => reply({ type: 'fatal', message: `${kind} clients: ${error.message}` }),
      );
      return;
    }
    case 'disconnect':
      disconnectAll().then(() => reply({ type: 'disconnected', id: message.id }));
      return;
    case 'round-start':
      round = {
        firstSeq: message.firstSeq,
        counts: new Uint32Array(message.broadcasts),
        expected: sockets.size,
        histogram: new Histogram(),
        received: 0,
        firstSentUs: Number.POSITIVE_INFINITY,
        lastReceivedUs: 0,
        startCpuUs: cpuUs(),
      };
      reply({ type: 'round-started', id: message.id });
      return;
    case 'round-end': {
      const r = round;
      round = undefined;
      reply({
        type: 'round',
        id: message.id,
        report: {
          received: r?.received ?? 0,
          firstSentUs: r?.firstSentUs ?? Number.POSITIVE_INFINITY,
          lastReceivedUs: r?.lastReceivedUs ?? 0,
          buckets: r?.histogram.buckets ?? new Histogram().buckets,
          cpuUs: r ? cpuUs() - r.startCpuUs : 0,
        },
      });
      return;
    }
  }
});
reply({ type: 'ready' });
