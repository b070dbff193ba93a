// Classic SignalR 2 vs ASP.NET Core SignalR broadcast on the same Hubwire hub: deliveries/s, p50/p99 latency and
// server CPU per delivery over classic WebSockets and Core WebSockets (same node, same hub, interleaved rounds),
// and the cost per message of classic long polling. See bench/README.md ("Classic benchmark").
//
// One file, three roles: the parent (no argument), `server` (Hubwire: hub at /hub, classic at /signalr) and
// `clients <port>` (raw `ws` sockets and HTTP polls speaking each protocol by hand). Each role is its own process.

import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Hub, Hubwire } from 'hubwire';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import { assertOpenFileLimit, envInt, HISTOGRAM_BUCKETS, Histogram, nowUs } from './lib/common.js';
import { WebSocket, wsVersion } from './lib/ws.js';

type Kind = 'core' | 'classic' | 'longPolling';
const KINDS: Kind[] = ['core', 'classic', 'longPolling'];
const LABEL: Record<Kind, string> = {
  core: 'Core WebSockets',
  classic: 'classic WebSockets',
  longPolling: 'classic long polling',
};

type ToServer = { type: 'broadcast'; kind: Kind; seq: number } | { type: 'cpu'; id: number } | { type: 'stop' };
type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'cpu'; id: number; us: number; members: Record<Kind, number> }
  | { type: 'fatal'; message: string };
type ToClients =
  | { type: 'connect'; kind: Kind; count: number }
  | { type: 'round'; kind: Kind; firstSeq: number; broadcasts: number }
  | { type: 'report'; kind: Kind }
  | { type: 'stop' };
type FromClients =
  | { type: 'connected'; kind: Kind; count: number }
  | { type: 'got'; kind: Kind; seq: number }
  | { type: 'report'; kind: Kind; buckets: Uint32Array; received: number; firstUs: number; lastUs: number }
  | { type: 'fatal'; message: string };

const role = process.argv[2];
const BODY = 'x'.repeat(envInt('BENCH_BODY_BYTES', 64, 0, 100_000));
const toParent = (message: FromServer | FromClients) => process.send?.(message);
process.on('disconnect', () => process.exit(0));

// --- Server ----------------------------------------------------------------------------------------------
async function server(): Promise<void> {
  const members: Record<Kind, number> = { core: 0, classic: 0, longPolling: 0 };
  /** Each client names its kind in the query (`?kind=`): one group per kind, so rounds do not mix. */
  const kindOf = (context: { request?: { query: URLSearchParams } }) =>
    (context.request?.query.get('kind') ?? 'core') as Kind;
  class BenchHub extends Hub {
    override async onConnected(): Promise<void> {
      const kind = kindOf(this.context);
      members[kind]++;
      await this.groups.add(this.context.connectionId, kind);
    }
    override onDisconnected(): void {
      members[kindOf(this.context)]--;
    }
  }
  const hubwire = new Hubwire({ onError: (error, where) => console.error(`[hubwire] ${where}:`, error) });
  const hub = hubwire.mapHub('/hub', BenchHub);
  hubwire.mapClassicHubs('/signalr', { BenchHub: '/hub' });
  const port = await hubwire.listen(0, '127.0.0.1');
  process.on('message', (message: ToServer) => {
    if (message.type === 'broadcast') {
      const payload = { seq: message.seq, ts: nowUs(), body: BODY };
      hub.clients
        .group(message.kind)
        .send('m', payload)
        .catch((error: unknown) => console.error(error));
    } else if (message.type === 'cpu') {
      const usage = process.cpuUsage();
      toParent({ type: 'cpu', id: message.id, us: usage.user + usage.system, members: { ...members } });
    } else if (message.type === 'stop') void hubwire.close().then(() => process.exit(0));
  });
  toParent({ type: 'ready', port });
}

// --- Clients ---------------------------------------------------------------------------------------------
const RS = '\x1e';
const PAYLOAD_START = '{"seq":';

async function clients(port: number): Promise<void> {
  // No socket cap: each long-polling client holds a poll open.
  const agent = new Agent({ keepAlive: true });
  const base = `http://127.0.0.1:${port}`;
  const hubs = encodeURIComponent(JSON.stringify([{ name: 'benchhub' }]));
  const rounds = new Map<Kind, Round>();
  const sockets: WebSocket[] = [];
  let stopping = false;
  interface Round {
    firstSeq: number;
    counts: Uint32Array;
    expected: number;
    histogram: Histogram;
    received: number;
    firstUs: number;
    lastUs: number;
  }

  /** Every payload in a frame or poll answer (a classic envelope may carry several). */
  function onText(kind: Kind, text: string): void {
    const receivedUs = nowUs();
    const r = rounds.get(kind);
    let start = text.indexOf(PAYLOAD_START);
    while (start >= 0) {
      const end = text.indexOf('}', start);
      const payload = JSON.parse(text.slice(start, end + 1)) as { seq: number; ts: number };
      start = text.indexOf(PAYLOAD_START, end);
      if (!r) continue;
      const index = payload.seq - r.firstSeq;
      if (index < 0 || index >= r.counts.length) continue;
      r.histogram.add(receivedUs - payload.ts);
      r.received++;
      r.lastUs = receivedUs;
      const count = (r.counts[index] as number) + 1;
      r.counts[index] = count;
      if (count === r.expected) toParent({ type: 'got', kind, seq: payload.seq });
    }
  }

  function http(path: string, method = 'GET', form?: Record<string, string>): Promise<string> {
    return new Promise((resolve, reject) => {
      const body = form ? new URLSearchParams(form).toString() : undefined;
      const req = httpRequest(
        `${base}${path}`,
        {
          method,
          agent,
          headers: body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {},
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () =>
            response.statusCode === 200 ? resolve(text) : reject(new Error(`${path}: ${response.statusCode} ${text}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  function open(url: string, kind: Kind, onOpen: (socket: WebSocket) => void, isReady: (text: string) => boolean) {
    return new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
      let ready = false;
      socket.on('open', () => onOpen(socket));
      socket.on('message', (data: Buffer) => {
        const text = data.toString();
        if (!ready) {
          if (!isReady(text)) return reject(new Error(`${kind}: unexpected first frame ${text}`));
          ready = true;
          sockets.push(socket);
          resolve();
          return;
        }
        onText(kind, text);
      });
      socket.on('error', reject);
      socket.on('close', () => {
        if (!stopping) toParent({ type: 'fatal', message: `a ${kind} socket closed` });
      });
    });
  }

  async function connectCore(): Promise<void> {
    await open(
      `ws://127.0.0.1:${port}/hub?kind=core`,
      'core',
      (socket) => {
        socket.send(`{"protocol":"json","version":1}${RS}`);
        // Hubwire drops clients silent for 30 s.
        setInterval(() => socket.send(`{"type":6}${RS}`), 10_000).unref();
      },
      (text) => text.startsWith('{}'),
    );
  }

  async function negotiate(): Promise<string> {
    const body = await http(`/signalr/negotiate?clientProtocol=2.1&connectionData=${hubs}&kind=x`);
    return encodeURIComponent((JSON.parse(body) as { ConnectionToken: string }).ConnectionToken);
  }
  const query = (transport: string, token: string, kind: Kind) =>
    `transport=${transport}&clientProtocol=2.1&connectionToken=${token}&connectionData=${hubs}&kind=${kind}`;

  async function connectClassic(): Promise<void> {
    const token = await negotiate();
    await open(
      `ws://127.0.0.1:${port}/signalr/connect?${query('webSockets', token, 'classic')}`,
      'classic',
      () => {},
      (text) => text.includes('"S":1'),
    );
    await http(`/signalr/start?${query('webSockets', token, 'classic')}`);
  }

  async function connectLongPolling(): Promise<void> {
    const token = await negotiate();
    const q = query('longPolling', token, 'longPolling');
    const init = JSON.parse(await http(`/signalr/connect?${q}`, 'POST', {})) as { C: string };
    await http(`/signalr/start?${q}`);
    let cursor = init.C;
    const loop = async () => {
      while (!stopping) {
        const text = await http(`/signalr/poll?${q}`, 'POST', { messageId: cursor });
        const at = text.indexOf('{"C":"') + 6; // keep-alive spaces may come first
        cursor = text.slice(at, text.indexOf('"', at));
        onText('longPolling', text);
      }
    };
    loop().catch((error: Error) => {
      if (!stopping) toParent({ type: 'fatal', message: `long polling: ${error.message}` });
    });
  }

  process.on('message', (message: ToClients) => {
    if (message.type === 'connect') {
      const connect = { core: connectCore, classic: connectClassic, longPolling: connectLongPolling }[message.kind];
      (async () => {
        for (let i = 0; i < message.count; i += 100) {
          await Promise.all(Array.from({ length: Math.min(100, message.count - i) }, () => connect()));
        }
        toParent({ type: 'connected', kind: message.kind, count: message.count });
      })().catch((error: Error) =>
        toParent({ type: 'fatal', message: `connecting ${message.kind}: ${error.message}` }),
      );
    } else if (message.type === 'round') {
      const expected = message.kind === 'longPolling' ? LP_COUNT : WS_COUNT;
      rounds.set(message.kind, {
        firstSeq: message.firstSeq,
        counts: new Uint32Array(message.broadcasts),
        expected,
        histogram: new Histogram(),
        received: 0,
        firstUs: nowUs(),
        lastUs: 0,
      });
    } else if (message.type === 'report') {
      const r = rounds.get(message.kind);
      rounds.delete(message.kind);
      if (!r) return;
      toParent({
        type: 'report',
        kind: message.kind,
        buckets: r.histogram.buckets,
        received: r.received,
        firstUs: r.firstUs,
        lastUs: r.lastUs,
      });
    } else if (message.type === 'stop') {
      stopping = true;
      for (const socket of sockets) socket.terminate();
      agent.destroy();
      process.exit(0);
    }
  });
}

// --- Parent ----------------------------------------------------------------------------------------------
const WS_COUNT = envInt('BENCH_CLASSIC_CONNECTIONS', 1000);
const LP_COUNT = envInt('BENCH_CLASSIC_LP_CONNECTIONS', 200);
const ROUNDS = envInt('BENCH_ROUNDS', 7);
const DELIVERIES = envInt('BENCH_DELIVERIES', 300_000);
const LP_DELIVERIES = envInt('BENCH_LP_DELIVERIES', 40_000);
const WINDOW = envInt('BENCH_WINDOW', 2);
const DEADLINE_S = envInt('BENCH_DEADLINE_S', 170);

interface RoundResult {
  deliveriesPerSec: number;
  p50Us: number;
  p99Us: number;
  serverUsPerDelivery: number;
  received: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function parent(): Promise<void> {
  assertOpenFileLimit(WS_COUNT * 2 + LP_COUNT, 'the classic bench');
  const started = Date.now();
  const deadline = setTimeout(() => {
    console.error(`bench:classic: deadline of ${DEADLINE_S} s passed; stopping.`);
    killAllChildren();
    process.exit(1);
  }, DEADLINE_S * 1000);
  deadline.unref();
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

  const script = join(ROOT, 'bench/classic.ts');
  const srv = new Child<ToServer, FromServer>('server', script, ['server'], {});
  const { port } = (await srv.wait((m) => m.type === 'ready', 20_000, 'server start')) as { port: number };
  const cli = new Child<ToClients, FromClients>('clients', script, ['clients', String(port)], {});
  let cpuId = 0;
  const serverCpu = async () => {
    const id = ++cpuId;
    const reply = srv.wait((m) => m.type === 'cpu' && m.id === id, 10_000, 'server cpu');
    srv.send({ type: 'cpu', id });
    return (await reply) as Extract<FromServer, { type: 'cpu' }>;
  };

  for (const [kind, count] of [
    ['core', WS_COUNT],
    ['classic', WS_COUNT],
    ['longPolling', LP_COUNT],
  ] as const) {
    cli.send({ type: 'connect', kind, count });
    await cli.wait((m) => m.type === 'connected' && m.kind === kind, 120_000, `connecting ${kind}`);
  }
  let members = (await serverCpu()).members;
  for (let i = 0; i < 50 && members.core !== WS_COUNT; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100)); // onConnected may trail the handshake
    members = (await serverCpu()).members;
  }
  if (members.core !== WS_COUNT || members.classic !== WS_COUNT || members.longPolling !== LP_COUNT) {
    throw new Error(`the hub counts ${JSON.stringify(members)} connections`);
  }
  console.log(
    `connected: ${WS_COUNT} Core WS, ${WS_COUNT} classic WS, ${LP_COUNT} classic LP (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );

  let seq = 0;
  async function round(kind: Kind): Promise<RoundResult> {
    const clientsOfKind = kind === 'longPolling' ? LP_COUNT : WS_COUNT;
    const broadcasts = Math.max(10, Math.round((kind === 'longPolling' ? LP_DELIVERIES : DELIVERIES) / clientsOfKind));
    const firstSeq = seq + 1;
    seq += broadcasts;
    cli.send({ type: 'round', kind, firstSeq, broadcasts });
    const cpuBefore = (await serverCpu()).us;
    const firstSentUs = nowUs();
    await new Promise<void>((resolve, reject) => {
      let next = firstSeq;
      let done = 0;
      const sendNext = () => {
        if (next < firstSeq + broadcasts) srv.send({ type: 'broadcast', kind, seq: next++ });
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`${kind}: round not done in 60 s (${done}/${broadcasts})`));
      }, 60_000);
      const stop = cli.listen((m) => {
        if (m.type !== 'got' || m.kind !== kind) return;
        done++;
        if (done === broadcasts) {
          clearTimeout(timer);
          stop();
          resolve();
        } else sendNext();
      });
      for (let i = 0; i < WINDOW; i++) sendNext();
    });
    const cpuAfter = (await serverCpu()).us;
    cli.send({ type: 'report', kind });
    const report = (await cli.wait((m) => m.type === 'report' && m.kind === kind, 10_000, 'report')) as Extract<
      FromClients,
      { type: 'report' }
    >;
    const histogram = new Histogram(report.buckets);
    return {
      deliveriesPerSec: report.received / ((report.lastUs - firstSentUs) / 1e6),
      p50Us: histogram.quantile(0.5),
      p99Us: histogram.quantile(0.99),
      serverUsPerDelivery: (cpuAfter - cpuBefore) / report.received,
      received: report.received,
    };
  }

  const results: Record<Kind, RoundResult[]> = { core: [], classic: [], longPolling: [] };
  // One warm-up round each, then measured rounds in rotating order, so a noisy neighbour hurts all alike.
  for (const kind of KINDS) await round(kind);
  for (let r = 0; r < ROUNDS; r++) {
    const order = [...KINDS.slice(r % 3), ...KINDS.slice(0, r % 3)];
    for (const kind of order) results[kind].push(await round(kind));
  }

  const summary = Object.fromEntries(
    KINDS.map((kind) => {
      const rounds = results[kind];
      return [
        kind,
        {
          deliveriesPerSec: median(rounds.map((r) => r.deliveriesPerSec)),
          p50Us: median(rounds.map((r) => r.p50Us)),
          p99Us: median(rounds.map((r) => r.p99Us)),
          serverUsPerDelivery: median(rounds.map((r) => r.serverUsPerDelivery)),
        },
      ];
    }),
  ) as Record<Kind, Omit<RoundResult, 'received'>>;
  const perRoundRatio = results.classic.map(
    (r, i) => r.deliveriesPerSec / (results.core[i] as RoundResult).deliveriesPerSec,
  );
  const ratios = {
    classicOverCoreDeliveries: summary.classic.deliveriesPerSec / summary.core.deliveriesPerSec,
    classicOverCoreDeliveriesRange: [Math.min(...perRoundRatio), Math.max(...perRoundRatio)],
    classicOverCoreServerCpu: summary.classic.serverUsPerDelivery / summary.core.serverUsPerDelivery,
    longPollingOverClassicWsServerCpu: summary.longPolling.serverUsPerDelivery / summary.classic.serverUsPerDelivery,
  };

  const ms = (us: number) => (us / 1000).toFixed(2);
  console.log('');
  console.log('| transport              | clients | deliveries/s | p50 ms | p99 ms | srv µs/deliv |');
  console.log('| ---------------------- | ------: | -----------: | -----: | -----: | -----------: |');
  for (const kind of KINDS) {
    const s = summary[kind];
    const n = kind === 'longPolling' ? LP_COUNT : WS_COUNT;
    console.log(
      `| ${LABEL[kind].padEnd(22)} | ${String(n).padStart(7)} | ${Math.round(s.deliveriesPerSec).toLocaleString('en-US').padStart(12)} | ${ms(s.p50Us).padStart(6)} | ${ms(s.p99Us).padStart(6)} | ${s.serverUsPerDelivery.toFixed(2).padStart(12)} |`,
    );
  }
  console.log('');
  console.log(
    `classic WS / Core WS deliveries/s: ${ratios.classicOverCoreDeliveries.toFixed(2)}× (per round ${ratios.classicOverCoreDeliveriesRange.map((x) => x.toFixed(2)).join('–')}; target ≥ 0.8×)`,
  );
  console.log(`classic WS / Core WS server CPU per delivery: ${ratios.classicOverCoreServerCpu.toFixed(2)}×`);
  console.log(
    `classic long polling: ${summary.longPolling.serverUsPerDelivery.toFixed(2)} µs server CPU per message (${ratios.longPollingOverClassicWsServerCpu.toFixed(2)}× classic WS)`,
  );

  const file = join(ROOT, 'bench/results', `classic-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        config: {
          wsConnections: WS_COUNT,
          lpConnections: LP_COUNT,
          rounds: ROUNDS,
          deliveriesPerRound: DELIVERIES,
          lpDeliveriesPerRound: LP_DELIVERIES,
          window: WINDOW,
          bodyBytes: BODY.length,
          histogramBuckets: HISTOGRAM_BUCKETS,
        },
        machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, totalMem: totalmem(), wsVersion },
        summary,
        ratios,
        rounds: results,
        seconds: (Date.now() - started) / 1000,
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  cli.send({ type: 'stop' });
  srv.send({ type: 'stop' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  killAllChildren();
  process.exit(0);
}

const main = role === 'server' ? server() : role === 'clients' ? clients(Number(process.argv[3])) : parent();
main.catch((error: Error) => {
  if (process.send) toParent({ type: 'fatal', message: error.stack ?? error.message });
  console.error(error);
  killAllChildren();
  process.exit(1);
});
