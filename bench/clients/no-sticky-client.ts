// The clients of bench/no-sticky.ts: official `@microsoft/signalr` connections (JSON, one transport per scenario)
// through HAProxy to two Hubwire nodes. Connection i uses URL i % urls.length (affinity: one proxy per node, so a
// client's every request reaches one node; no affinity: one round-robin proxy). The first `senders` connections
// call the README's hub method `send(name, message)` in a closed loop (the next invoke when the previous one
// completes); every connection (senders included) receives every broadcast and records sender stamp → receipt.
// Churn: connections started and stopped one after another, to time a connection's start (negotiate → connected).
// Transport `WebSockets+stateful`: WebSockets, every connection built with `withStatefulReconnect()`.

import * as signalR from '@microsoft/signalr';
import { Histogram, nowUs } from '../lib/common.js';
import {
  type ChurnReport,
  clientTransport,
  type FromNoStickyClient,
  type RunReport,
  type ToNoStickyClient,
} from '../lib/no-sticky.js';
import { cpuUs, decodeStamp, encodeMessage, exitWithParent, MESSAGE_NAME } from '../lib/scaleout.js';

const MESSAGE_BYTES = Number(process.env.BENCH_MESSAGE_BYTES ?? 100);

function toParent(message: FromNoStickyClient): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
}

interface Receiver {
  connection: signalR.HubConnection;
  /** Messages of the current run received (seq ≥ firstSeq). */
  received: number;
  duplicates: number;
  seen: Set<number>;
}

let urls: string[] = [];
let transport: signalR.HttpTransportType = signalR.HttpTransportType.WebSockets;
let stateful = false;
const receivers: Receiver[] = [];
let senders = 0;
let runFirstSeq = Number.POSITIVE_INFINITY;
let delivery = new Histogram();
let nextSeq = 1;
let stopping = false;

function build(url: string): signalR.HubConnection {
  const builder = new signalR.HubConnectionBuilder().withUrl(url, { transport });
  if (stateful) builder.withStatefulReconnect();
  return builder.configureLogging(signalR.LogLevel.None).build();
}

/** Starts one connection; its start time (negotiate → connected, µs) goes to `starts`. */
async function start(url: string, starts: Histogram): Promise<signalR.HubConnection> {
  const connection = build(url);
  const t0 = nowUs();
  await connection.start();
  starts.add(nowUs() - t0);
  return connection;
}

async function connect(count: number, senderCount: number, nudge: boolean): Promise<Uint32Array> {
  senders = senderCount;
  const starts = new Histogram();
  for (let i = 0; i < count; i++) {
    // Round robin over 2 nodes puts every WebSocket on one node (negotiate on A, upgrade on B, again and again):
    // one request of its own before every other connection spreads them.
    if (nudge && i % 2 === 1) await fetch(new URL('/', urls[0] as string)).then((r) => r.arrayBuffer());
    const connection = await start(urls[i % urls.length] as string, starts);
    const receiver: Receiver = { connection, received: 0, duplicates: 0, seen: new Set() };
    connection.on('broadcastMessage', (_name: string, message: string) => {
      const stamp = decodeStamp(message, 0);
      if (stamp.seq < runFirstSeq) return;
      if (receiver.seen.has(stamp.seq)) {
        receiver.duplicates++;
        return;
      }
      receiver.seen.add(stamp.seq);
      receiver.received++;
      delivery.add(nowUs() - stamp.ts);
    });
    connection.onclose((error) => {
      if (!stopping) toParent({ type: 'lost', reason: `connection ${i} closed: ${error?.message}` });
    });
    receivers.push(receiver);
  }
  return starts.buckets;
}

async function churn(count: number, offset: number): Promise<ChurnReport> {
  const starts = new Histogram();
  const stops = new Histogram();
  let errors = 0;
  const cpu0 = cpuUs();
  for (let i = 0; i < count; i++) {
    try {
      const connection = await start(urls[(offset + i) % urls.length] as string, starts);
      const t0 = nowUs();
      await connection.stop();
      stops.add(nowUs() - t0);
    } catch {
      errors++;
    }
  }
  return { starts: starts.buckets, stops: stops.buckets, errors, cpuUs: cpuUs() - cpu0 };
}

async function run(durationMs: number, graceMs: number): Promise<RunReport> {
  runFirstSeq = nextSeq;
  delivery = new Histogram();
  for (const r of receivers) {
    r.received = 0;
    r.duplicates = 0;
    r.seen.clear();
  }
  const rtt = new Histogram();
  let sent = 0;
  let errors = 0;
  const cpu0 = cpuUs();
  const t0 = nowUs();
  const end = t0 + durationMs * 1000;
  await Promise.all(
    receivers.slice(0, senders).map(async ({ connection }) => {
      while (nowUs() < end) {
        const ts = nowUs();
        try {
          await connection.invoke('send', MESSAGE_NAME, encodeMessage(nextSeq++, ts, MESSAGE_BYTES));
          sent++;
        } catch {
          errors++;
        }
        rtt.add(nowUs() - ts);
      }
    }),
  );
  const sendUs = nowUs() - t0;
  // Every connection gets every message: wait for the last deliveries (bounded).
  const expected = sent * receivers.length;
  const deadline = nowUs() + graceMs * 1000;
  const got = () => receivers.reduce((n, r) => n + r.received, 0);
  while (got() < expected && nowUs() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const report: RunReport = {
    sent,
    errors,
    sendUs,
    rtt: rtt.buckets,
    delivery: delivery.buckets,
    deliveries: got(),
    expected,
    duplicates: receivers.reduce((n, r) => n + r.duplicates, 0),
    cpuUs: cpuUs() - cpu0,
  };
  runFirstSeq = Number.POSITIVE_INFINITY;
  return report;
}

exitWithParent();
process.on('message', (message: ToNoStickyClient) => {
  const fail = (error: Error) => toParent({ type: 'fatal', message: `no-sticky client: ${error.stack ?? error}` });
  switch (message.type) {
    case 'connect':
      urls = message.urls;
      transport = signalR.HttpTransportType[clientTransport(message.transport).http];
      stateful = clientTransport(message.transport).stateful;
      connect(message.count, message.senders, message.nudge).then(
        (starts) => toParent({ type: 'connected', id: message.id, starts }),
        fail,
      );
      break;
    case 'churn':
      churn(message.count, message.offset).then(
        (report) => toParent({ type: 'churned', id: message.id, report }),
        fail,
      );
      break;
    case 'run':
      run(message.durationMs, message.graceMs).then(
        (report) => toParent({ type: 'ran', id: message.id, report }),
        fail,
      );
      break;
    case 'stop':
      stopping = true;
      Promise.allSettled(receivers.map((r) => r.connection.stop())).finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 3000).unref();
      break;
  }
});
toParent({ type: 'ready' });
