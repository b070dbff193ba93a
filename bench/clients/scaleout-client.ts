// A client process of the scaleout bench: either the senders (sockets on node A, calling the chat hub's method at a
// set rate, or one socket invoking it in a closed loop) or the receivers (N sockets on node B, timing and counting
// every message). Raw `ws` sockets speak each protocol by hand, as in ../client.ts: the SignalR JSON handshake + pings
// for Hubwire (a paced call is `connection.send('send', name, message)`: a non-blocking invocation, no invocation
// id; the closed loop is `connection.invoke(...)`: with an id, waiting for its completion), engine.io v4 /
// Socket.IO v5 packets + pongs for Socket.IO (`socket.emit('send', name, message)`). One message per WebSocket
// frame for both, as their official clients send. The hub's `clients.all` (Socket.IO's `io.emit`) reaches the
// senders too: they read every frame (so that no buffer fills) and drop it. Every receiver does the same work per
// message whichever system it measures (find each message in the frame, read its stamp, record latency and seq).
// Usage: clients/scaleout-client.ts <hubwire|socketio> <senders|receivers> <ws://url>; driven over IPC.

import { Histogram, nowUs } from '../lib/common.js';
import {
  cpuUs,
  decodeStamp,
  encodeMessage,
  exitWithParent,
  type FromClient,
  MESSAGE_NAME,
  MESSAGE_START,
  type ReceiveReport,
  ROOM,
  type SendReport,
  type SystemName,
  type ToClient,
  toParent,
} from '../lib/scaleout.js';
import { WebSocket } from '../lib/ws.js';

const RECORD_SEPARATOR = '\x1e';
const SIGNALR_HANDSHAKE = `{"protocol":"json","version":1}${RECORD_SEPARATOR}`;
const SIGNALR_PING = `{"type":6}${RECORD_SEPARATOR}`;
/** Hubwire closes clients silent for 30 s (clientTimeoutInterval); the official client pings every 15 s. */
const SIGNALR_PING_INTERVAL_MS = 10_000;
const CONNECT_TIMEOUT_MS = 15_000;
/** An invocation without its completion after this long ends the closed loop with an error. */
const INVOKE_TIMEOUT_MS = 15_000;
const MESSAGE_BYTES = Number(process.env.BENCH_MESSAGE_BYTES ?? 100);
const COMPLETION = Buffer.from('"type":3');
const COMPLETION_ERROR = Buffer.from('"error"');
const ENGINE_IO_PING = 0x32; // '2'

const kind = process.argv[2] as SystemName;
const role = process.argv[3] as 'senders' | 'receivers';
const url = process.argv[4] as string;

interface Socket {
  ws: WebSocket;
  /** Closed on purpose (fewer senders): its close is not a loss. */
  leaving: boolean;
  /** Receivers: per seq of the current step, received yet? */
  seen: Uint8Array;
  distinct: number;
  /** Receivers: the last seq received from each sender (seq % senders). */
  lastSeq: Float64Array;
}

interface Step {
  firstSeq: number;
  /** Messages of the step: known at start, or (closed loop) told by 'expect' at the end. */
  count: number;
  /** Size of `seen`: count, or an upper bound until 'expect'. */
  capacity: number;
  senders: number;
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

const sockets: Socket[] = [];
let step: Step | undefined;
let closing = false;
/** Senders, closed loop: called with a completion frame. */
let onCompletion: ((data: Buffer) => void) | undefined;

function onMessage(socket: Socket, text: string, start: number): void {
  const receivedUs = nowUs();
  const s = step;
  if (!s) return;
  const { seq, ts } = decodeStamp(text, start);
  if (seq < 0) return;
  const index = seq - s.firstSeq;
  if (index < 0) {
    s.late++;
    return;
  }
  if (index >= s.capacity) return;
  if (socket.seen[index] === 1) {
    s.duplicates++;
    return;
  }
  socket.seen[index] = 1;
  const lane = seq % s.senders;
  if (seq < (socket.lastSeq[lane] as number)) s.reordered++;
  socket.lastSeq[lane] = seq;
  s.histogram.add(receivedUs - ts);
  s.received++;
  if (receivedUs < s.firstReceivedUs) s.firstReceivedUs = receivedUs;
  if (receivedUs > s.lastReceivedUs) s.lastReceivedUs = receivedUs;
  socket.distinct++;
  if (socket.distinct === s.count) {
    s.completeSockets++;
    if (s.completeSockets === sockets.length) toParent({ type: 'complete', firstSeq: s.firstSeq });
  }
}

/** Opens one socket and completes the protocol's handshake. */
function connectOne(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    let ready = false;
    const socket: Socket = {
      ws,
      leaving: false,
      seen: new Uint8Array(0),
      distinct: 0,
      lastSeq: new Float64Array(0),
    };
    const timer = setTimeout(() => fail('no handshake within 15 s'), CONNECT_TIMEOUT_MS);
    const fail = (reason: string) => {
      if (ready) return;
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(reason));
    };
    let joining = false;
    const markReady = () => {
      if (role === 'receivers' && !joining) {
        // Receivers join the room (the `room100` shape sends to it; the others reach everyone anyway).
        joining = true;
        ws.send(
          kind === 'hubwire'
            ? `{"type":1,"invocationId":"join","target":"joinGroup","arguments":["${ROOM}"]}${RECORD_SEPARATOR}`
            : `421["joinGroup","${ROOM}"]`,
        );
        return;
      }
      ready = true;
      clearTimeout(timer);
      resolve(socket);
    };
    ws.on('open', () => {
      if (kind === 'hubwire') ws.send(SIGNALR_HANDSHAKE);
      // Socket.IO: the server speaks first (the engine.io open packet).
    });
    ws.on('message', (data: Buffer) => {
      if (ready) {
        if (kind === 'socketio' && data.length === 1 && data[0] === ENGINE_IO_PING) {
          ws.send('3'); // engine.io ping -> pong
          return;
        }
        if (role === 'senders') {
          // Our own broadcasts come back (clients.all): read and dropped. Completions end a closed-loop call.
          if (onCompletion && data.includes(COMPLETION)) onCompletion(data);
          return;
        }
        // A SignalR frame may hold several records: take every message in it.
        const text = data.toString();
        for (let start = text.indexOf(MESSAGE_START); start !== -1; start = text.indexOf(MESSAGE_START, start + 2)) {
          onMessage(socket, text, start + 1);
        }
        return;
      }
      const text = data.toString();
      if (joining) {
        // The join's completion (Hubwire) or acknowledgement (Socket.IO); pings may come first.
        if (kind === 'hubwire' && text.includes('"invocationId":"join"')) {
          if (text.includes('"error"')) fail(`joinGroup failed: ${text.slice(0, 200)}`);
          else markReady();
        } else if (kind === 'socketio' && text.startsWith('431')) markReady();
        else if (kind === 'socketio' && data.length === 1 && data[0] === ENGINE_IO_PING) ws.send('3');
        return;
      }
      if (kind === 'hubwire') {
        if (text.startsWith(`{}${RECORD_SEPARATOR}`)) markReady();
        else fail(`handshake refused: ${text.slice(0, 200)}`);
      } else if (text.startsWith('0{')) {
        ws.send('40'); // engine.io open -> Socket.IO CONNECT to the default namespace
      } else if (text.startsWith('40')) {
        markReady();
      } else {
        fail(`unexpected Socket.IO packet during connect: ${text.slice(0, 200)}`);
      }
    });
    ws.on('error', (error) => fail(error.message));
    ws.on('close', (code) => {
      if (!ready) {
        fail(`closed (${code}) before the handshake completed`);
        return;
      }
      const index = sockets.indexOf(socket);
      if (index !== -1) sockets.splice(index, 1);
      if (!closing && !socket.leaving) toParent({ type: 'lost', reason: `a ${role} socket closed with code ${code}` });
    });
  });
}

/** Opens or closes sockets until exactly `count` are open. */
async function connect(count: number): Promise<number> {
  while (sockets.length > count) {
    const socket = sockets.pop() as Socket;
    socket.leaving = true;
    socket.ws.close();
  }
  const opened = await Promise.all(Array.from({ length: count - sockets.length }, () => connectOne()));
  sockets.push(...opened);
  return sockets.length;
}

function frame(target: string, message: string, invocationId?: number): string {
  const args = `${target === 'sendToGroup' ? `"${ROOM}",` : ''}"${MESSAGE_NAME}","${message}"`;
  if (kind === 'socketio') return `42["${target}",${args}]`;
  const id = invocationId === undefined ? '' : `"invocationId":"${invocationId}",`;
  return `{"type":1,${id}"target":"${target}","arguments":[${args}]}${RECORD_SEPARATOR}`;
}

/**
 * Sends `count` messages paced at `rate`/s in total (message i is due at start + i / rate), in bursts every ~1 ms;
 * message seq goes out on socket seq % senders.
 */
function sendStep(id: number, firstSeq: number, count: number, rate: number, senders: number, target: string): void {
  if (sockets.length < senders) throw new Error(`${senders} senders asked for, ${sockets.length} connected`);
  const startCpu = cpuUs();
  const startUs = nowUs();
  let firstUs = 0;
  let lastUs = 0;
  let sent = 0;
  let maxBufferedBytes = 0;
  const tick = () => {
    const due = Math.min(count, Math.floor(((nowUs() - startUs) * rate) / 1e6) + 1);
    while (sent < due) {
      const seq = firstSeq + sent;
      const ts = nowUs();
      (sockets[seq % senders] as Socket).ws.send(frame(target, encodeMessage(seq, ts, MESSAGE_BYTES)));
      if (sent === 0) firstUs = ts;
      lastUs = ts;
      sent++;
    }
    for (let i = 0; i < senders; i++) {
      const buffered = (sockets[i] as Socket).ws.bufferedAmount;
      if (buffered > maxBufferedBytes) maxBufferedBytes = buffered;
    }
    if (sent < count) {
      setTimeout(tick, 1);
      return;
    }
    const report: SendReport = { sent, firstUs, lastUs, maxBufferedBytes, cpuUs: cpuUs() - startCpu };
    toParent({ type: 'sent', id, report });
  };
  tick();
}

/** Hubwire only: `invoke('send', …)` on the first socket, each after the previous one's completion. */
function invokeLoop(id: number, firstSeq: number, durationMs: number): void {
  const socket = sockets[0];
  if (!socket) throw new Error('no sender is connected');
  if (kind !== 'hubwire') throw new Error('the closed loop is Hubwire only');
  const startCpu = cpuUs();
  const startUs = nowUs();
  const endUs = startUs + durationMs * 1000;
  const rtt = new Histogram();
  let firstUs = 0;
  let lastUs = 0;
  let sent = 0;
  let errors = 0;
  let pendingTs = 0;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    const ts = nowUs();
    if (ts >= endUs) {
      onCompletion = undefined;
      const report: SendReport = {
        sent,
        firstUs,
        lastUs,
        maxBufferedBytes: 0,
        cpuUs: cpuUs() - startCpu,
        rttBuckets: rtt.buckets,
        invokeErrors: errors,
      };
      toParent({ type: 'sent', id, report });
      return;
    }
    const seq = firstSeq + sent;
    pendingTs = ts;
    socket.ws.send(frame('send', encodeMessage(seq, ts, MESSAGE_BYTES), seq));
    if (sent === 0) firstUs = ts;
    lastUs = ts;
    sent++;
  };
  timer = setInterval(() => {
    if (onCompletion && nowUs() - pendingTs > INVOKE_TIMEOUT_MS * 1000) {
      clearInterval(timer);
      toParent({ type: 'fatal', message: `invocation ${firstSeq + sent - 1}: no completion within 15 s` });
    }
  }, 1000);
  onCompletion = (data) => {
    rtt.add(nowUs() - pendingTs);
    if (data.includes(COMPLETION_ERROR)) errors++;
    if (nowUs() >= endUs) clearInterval(timer);
    next();
  };
  next();
}

function startReceiving(firstSeq: number, count: number, capacity: number, senders: number): void {
  for (const socket of sockets) {
    socket.seen = new Uint8Array(capacity);
    socket.distinct = 0;
    socket.lastSeq = new Float64Array(senders).fill(-1);
  }
  step = {
    firstSeq,
    count,
    capacity,
    senders,
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

/** The closed loop's receivers learn the step's size at its end; some may have everything already. */
function expect(count: number): void {
  const s = step;
  if (!s) throw new Error('expect without step-start');
  s.count = count;
  s.completeSockets = sockets.filter((socket) => socket.distinct >= count).length;
  if (s.completeSockets === sockets.length) toParent({ type: 'complete', firstSeq: s.firstSeq });
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
    minPerSocket: Math.min(...sockets.map((r) => r.distinct)),
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
if (!['hubwire', 'socketio'].includes(kind) || !['senders', 'receivers'].includes(role) || !url?.startsWith('ws://')) {
  reply({
    type: 'fatal',
    message: `usage: clients/scaleout-client.ts <hubwire|socketio> <senders|receivers> <ws://url>`,
  });
  process.exit(1);
}
if (kind === 'hubwire') {
  // The server-side client timeout would otherwise end quiet sockets between steps.
  setInterval(() => {
    for (const socket of sockets) socket.ws.send(SIGNALR_PING);
  }, SIGNALR_PING_INTERVAL_MS);
}
process.on('disconnect', () => {
  closing = true;
});

/** Upper bound of a closed loop's invocations per second, for the receivers' arrays. */
const MAX_INVOKES_PER_SECOND = 50_000;

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
        if (role === 'senders') {
          sendStep(message.id, message.firstSeq, message.count, message.rate, message.senders, message.target);
        } else {
          startReceiving(message.firstSeq, message.count, message.count, message.senders);
          reply({ type: 'step-started', id: message.id });
        }
        return;
      case 'invoke-start':
        if (role === 'senders') invokeLoop(message.id, message.firstSeq, message.durationMs);
        else {
          const capacity = Math.ceil((message.durationMs / 1000) * MAX_INVOKES_PER_SECOND);
          startReceiving(message.firstSeq, capacity, capacity, 1);
          reply({ type: 'step-started', id: message.id });
        }
        return;
      case 'expect':
        expect(message.count);
        reply({ type: 'expected', id: message.id });
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
