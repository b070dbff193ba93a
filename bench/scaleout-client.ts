// A client process of the scaleout bench: either the sender (one socket on node A, sending at a set rate) or the
// receivers (N sockets on node B, timing and counting every message). Raw `ws` sockets speak each protocol by
// hand, as in client.ts: the SignalR JSON handshake + pings for Hubwire (the sender calls the hub method as a
// non-blocking invocation, with no invocation id), engine.io v4 / Socket.IO v5 packets + pongs for Socket.IO.
// One message per WebSocket frame for both, as their official clients send. Every receiver does the same work
// per message whichever system it measures (find the payload, JSON.parse it, record latency and seq).
// Usage: scaleout-client.ts <hubwire|socketio> <sender|receivers> <ws://url>; driven over IPC.

import { Histogram, nowUs } from './lib/common.js';
import {
  cpuUs,
  encodePayload,
  exitWithParent,
  type FromClient,
  PAYLOAD_START,
  type ReceiveReport,
  type SystemName,
  type ToClient,
  toParent,
} from './lib/scaleout.js';
import { WebSocket } from './lib/ws.js';

const RECORD_SEPARATOR = '\x1e';
const SIGNALR_HANDSHAKE = `{"protocol":"json","version":1}${RECORD_SEPARATOR}`;
const SIGNALR_PING = `{"type":6}${RECORD_SEPARATOR}`;
/** Hubwire closes clients silent for 30 s (clientTimeoutInterval); the official client pings every 15 s. */
const SIGNALR_PING_INTERVAL_MS = 10_000;
const CONNECT_TIMEOUT_MS = 15_000;
const MESSAGE_BYTES = Number(process.env.BENCH_MESSAGE_BYTES ?? 100);

const kind = process.argv[2] as SystemName;
const role = process.argv[3] as 'sender' | 'receivers';
const url = process.argv[4] as string;

interface Receiver {
  socket: WebSocket;
  /** Per seq of the current step: received yet? */
  seen: Uint8Array;
  distinct: number;
  lastSeq: number;
}

interface Step {
  firstSeq: number;
  count: number;
  histogram: Histogram;
  received: number;
  duplicates: number;
  late: number;
  reordered: number;
  firstReceivedUs: number;
  lastReceivedUs: number;
  completeSockets: number;
  startCpuUs: number;
}

const receivers: Receiver[] = [];
let step: Step | undefined;
let closing = false;

function onPayload(receiver: Receiver, text: string, start: number): void {
  const receivedUs = nowUs();
  const end = text.indexOf('}', start);
  const payload = JSON.parse(text.slice(start, end + 1)) as { seq: number; ts: number };
  const s = step;
  if (!s) return;
  const index = payload.seq - s.firstSeq;
  if (index < 0) {
    s.late++;
    return;
  }
  if (index >= s.count) return;
  if (receiver.seen[index] === 1) {
    s.duplicates++;
    return;
  }
  receiver.seen[index] = 1;
  if (payload.seq < receiver.lastSeq) s.reordered++;
  receiver.lastSeq = payload.seq;
  s.histogram.add(receivedUs - payload.ts);
  s.received++;
  if (receivedUs < s.firstReceivedUs) s.firstReceivedUs = receivedUs;
  if (receivedUs > s.lastReceivedUs) s.lastReceivedUs = receivedUs;
  receiver.distinct++;
  if (receiver.distinct === s.count) {
    s.completeSockets++;
    if (s.completeSockets === receivers.length) toParent({ type: 'complete', firstSeq: s.firstSeq });
  }
}

/** Opens one socket and completes the protocol's handshake. */
function connectOne(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    let ready = false;
    const receiver: Receiver = { socket, seen: new Uint8Array(0), distinct: 0, lastSeq: -1 };
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
      if (role === 'receivers') receivers.push(receiver);
      resolve(socket);
    };
    socket.on('open', () => {
      if (kind === 'hubwire') socket.send(SIGNALR_HANDSHAKE);
      // Socket.IO: the server speaks first (the engine.io open packet).
    });
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      if (ready) {
        if (kind === 'socketio' && text === '2') {
          socket.send('3'); // engine.io ping -> pong
          return;
        }
        if (role !== 'receivers') return;
        // A SignalR frame may hold several records: take every payload in it.
        for (let start = text.indexOf(PAYLOAD_START); start !== -1; start = text.indexOf(PAYLOAD_START, start + 1)) {
          onPayload(receiver, text, start);
        }
        return;
      }
      if (kind === 'hubwire') {
        if (text.startsWith(`{}${RECORD_SEPARATOR}`)) markReady();
        else fail(`handshake refused: ${text.slice(0, 200)}`);
      } else if (text.startsWith('0{')) {
        socket.send('40'); // engine.io open -> Socket.IO CONNECT to the default namespace
      } else if (text.startsWith('40')) {
        markReady();
      } else {
        fail(`unexpected Socket.IO packet during connect: ${text.slice(0, 200)}`);
      }
    });
    socket.on('error', (error) => fail(error.message));
    socket.on('close', (code) => {
      if (!ready) {
        fail(`closed (${code}) before the handshake completed`);
        return;
      }
      if (!closing) toParent({ type: 'lost', reason: `a ${role} socket closed with code ${code}` });
    });
  });
}

let sender: WebSocket | undefined;

async function connect(count: number): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: count }, () => connectOne()));
  if (role === 'sender') sender = sockets[0];
  return sockets.length;
}

function frame(payload: string): string {
  return kind === 'hubwire'
    ? `{"type":1,"target":"broadcast","arguments":[${payload}]}${RECORD_SEPARATOR}`
    : `42["m",${payload}]`;
}

/** Sends `count` messages paced at `rate`/s (message i is due at start + i / rate), in bursts every ~1 ms. */
function sendStep(id: number, firstSeq: number, count: number, rate: number): void {
  const socket = sender;
  if (!socket) throw new Error('the sender is not connected');
  const startCpu = cpuUs();
  const startUs = nowUs();
  let firstUs = 0;
  let lastUs = 0;
  let sent = 0;
  let maxBufferedBytes = 0;
  const tick = () => {
    const due = Math.min(count, Math.floor(((nowUs() - startUs) * rate) / 1e6) + 1);
    while (sent < due) {
      const ts = nowUs();
      socket.send(frame(encodePayload(firstSeq + sent, ts, MESSAGE_BYTES)));
      if (sent === 0) firstUs = ts;
      lastUs = ts;
      sent++;
    }
    if (socket.bufferedAmount > maxBufferedBytes) maxBufferedBytes = socket.bufferedAmount;
    if (sent < count) {
      setTimeout(tick, 1);
      return;
    }
    toParent({
      type: 'sent',
      id,
      report: { sent, firstUs, lastUs, maxBufferedBytes, cpuUs: cpuUs() - startCpu },
    });
  };
  tick();
}

function startReceiving(firstSeq: number, count: number): void {
  for (const receiver of receivers) {
    receiver.seen = new Uint8Array(count);
    receiver.distinct = 0;
    receiver.lastSeq = -1;
  }
  step = {
    firstSeq,
    count,
    histogram: new Histogram(),
    received: 0,
    duplicates: 0,
    late: 0,
    reordered: 0,
    firstReceivedUs: Number.POSITIVE_INFINITY,
    lastReceivedUs: 0,
    completeSockets: 0,
    startCpuUs: cpuUs(),
  };
}

function endReceiving(): ReceiveReport {
  const s = step;
  step = undefined;
  if (!s) throw new Error('step-end without step-start');
  return {
    received: s.received,
    duplicates: s.duplicates,
    late: s.late,
    reordered: s.reordered,
    minPerSocket: Math.min(...receivers.map((r) => r.distinct)),
    firstReceivedUs: s.firstReceivedUs,
    lastReceivedUs: s.lastReceivedUs,
    buckets: s.histogram.buckets,
    cpuUs: cpuUs() - s.startCpuUs,
  };
}

function reply(message: FromClient): void {
  toParent(message);
}

exitWithParent();
if (!['hubwire', 'socketio'].includes(kind) || !['sender', 'receivers'].includes(role) || !url?.startsWith('ws://')) {
  reply({ type: 'fatal', message: `usage: scaleout-client.ts <hubwire|socketio> <sender|receivers> <ws://url>` });
  process.exit(1);
}
if (kind === 'hubwire') {
  // The server-side client timeout would otherwise end quiet sockets between steps.
  setInterval(() => {
    if (sender) sender.send(SIGNALR_PING);
    for (const r of receivers) r.socket.send(SIGNALR_PING);
  }, SIGNALR_PING_INTERVAL_MS);
}
process.on('disconnect', () => {
  closing = true;
});

process.on('message', (message: ToClient) => {
  try {
    switch (message.type) {
      case 'connect':
        connect(message.count).then(
          (open) => reply({ type: 'connected', id: message.id, open }),
          (error: Error) => reply({ type: 'fatal', message: `${kind} ${role}: ${error.message}` }),
        );
        return;
      case 'step-start':
        if (role === 'sender') sendStep(message.id, message.firstSeq, message.count, message.rate);
        else {
          startReceiving(message.firstSeq, message.count);
          reply({ type: 'step-started', id: message.id });
        }
        return;
      case 'step-end':
        reply({ type: 'report', id: message.id, report: endReceiving() });
        return;
    }
  } catch (error) {
    reply({ type: 'fatal', message: `${kind} ${role}: ${(error as Error).message}` });
  }
});
reply({ type: 'ready' });
