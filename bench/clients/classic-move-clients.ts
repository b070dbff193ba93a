// The clients process of the classic move bench (bench/classic-move.ts): BENCH_CLASSIC_MOVE_CLIENTS classic SignalR 2
// long-polling clients speaking the protocol by hand over a keep-alive agent, half homed on each node; their polls go
// to the home node (sticky) or alternate between the nodes (moving). Every message is checked: lost, duplicated,
// reordered; latency from its publish stamp. Usage: clients/classic-move-clients.ts <portA> <portB>; driven over IPC.

import { Agent, request as httpRequest } from 'node:http';
import { cpuUs, type Mode, type ToClients, toParent } from '../lib/classic-move.js';
import { envInt, Histogram, nowUs } from '../lib/common.js';

process.on('disconnect', () => process.exit(0));

/** Set by the parent. */
const CLIENTS = envInt('BENCH_CLASSIC_MOVE_CLIENTS', 100, 2, 5000);

interface Client {
  index: number;
  /** 0 = node A, 1 = node B: where it negotiated, connected and started, and where sticky polls go. */
  home: number;
  query: string;
  cursor: string;
  groupsToken: string | undefined;
  /** The node of its previous request. */
  at: number;
  /** Highest seq received so far (any phase), for the order check. */
  maxSeq: number;
}

interface Phase {
  firstSeq: number;
  count: number;
  /** Deliveries per (client, seq): client × count + (seq − firstSeq). */
  counts: Uint8Array;
  /** Distinct seqs of the phase each client has. */
  have: Uint32Array;
  complete: number;
  histogram: Histogram;
  received: number;
  duplicates: number;
  reordered: number;
  stray: number;
  lastUs: number;
  polls: number;
  moves: number;
  pollTimes: Histogram;
  resetsStart: number;
  cpuStart: number;
  examples: string[];
}

async function clients(ports: [number, number]): Promise<void> {
  const count = CLIENTS;
  // No socket cap: every client holds a poll open, on either node. With an agent `timeout`, Node closes idle sockets
  // a second before the server's `Keep-Alive: timeout=5` hint (without one it ignores the hint); the race that is
  // left (the server closes an idle socket just as a request goes out on it) is retried below.
  const agent = new Agent({ keepAlive: true, timeout: 60_000 });
  /** Requests sent again after a reused keep-alive socket was reset (Node's documented retry). */
  let resets = 0;
  const hubs = encodeURIComponent(JSON.stringify([{ name: 'benchhub' }]));
  const list: Client[] = [];
  let mode: Mode = 'sticky';
  let phase: Phase | undefined;
  /** Messages that arrived between two phases (late ones of the phase before): counted as stray in the next. */
  let betweenPhases = 0;
  let stopping = false;

  /**
   * One request. A reused keep-alive socket that the server closed meanwhile fails with ECONNRESET before the server
   * read anything: the request is sent again, once (for a poll: the same cursor, so nothing is lost or repeated).
   */
  async function http(nodeIndex: number, path: string, method = 'GET', body?: string): Promise<string> {
    try {
      return await httpOnce(nodeIndex, path, method, body);
    } catch (error) {
      if (!(error as { reusedSocket?: boolean }).reusedSocket || stopping) throw error;
      resets++;
      return httpOnce(nodeIndex, path, method, body);
    }
  }

  function httpOnce(nodeIndex: number, path: string, method: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        `http://127.0.0.1:${ports[nodeIndex]}${path}`,
        {
          method,
          agent,
          headers: body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {},
          // A poll is held up to 110 s; nothing in this bench waits that long.
          timeout: 60_000,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () =>
            response.statusCode === 200
              ? resolve(text)
              : reject(
                  new Error(
                    `${method} ${path.split('?')[0]} on node ${'AB'[nodeIndex]}: ${response.statusCode} ${text}`,
                  ),
                ),
          );
          response.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${path.split('?')[0]}: no answer in 60 s`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        const reset = error.code === 'ECONNRESET' && req.reusedSocket;
        reject(
          Object.assign(
            new Error(
              `${method} ${path.split('?')[0]} on node ${'AB'[nodeIndex]}: ${error.message}` +
                `${req.reusedSocket ? ' (on a reused keep-alive socket)' : ''}`,
            ),
            { reusedSocket: reset },
          ),
        );
      });
      req.end(body);
    });
  }

  function onMessages(client: Client, items: { A?: unknown[] }[]): void {
    const receivedUs = nowUs();
    const p = phase;
    for (const item of items) {
      const seq = item.A?.[0] as number;
      const ts = item.A?.[1] as number;
      if (typeof seq !== 'number' || typeof ts !== 'number') continue;
      const newer = seq > client.maxSeq;
      if (newer) client.maxSeq = seq;
      if (!p) {
        betweenPhases++;
        continue;
      }
      const index = seq - p.firstSeq;
      if (index < 0 || index >= p.count) {
        p.stray++;
        continue;
      }
      p.received++;
      p.lastUs = receivedUs;
      p.histogram.add(receivedUs - ts);
      const slot = client.index * p.count + index;
      const times = p.counts[slot] as number;
      p.counts[slot] = Math.min(255, times + 1);
      if (times > 0) {
        p.duplicates++;
        if (p.examples.length < 5) p.examples.push(`client ${client.index}: seq ${seq} again (mode ${mode})`);
        continue;
      }
      if (!newer) p.reordered++;
      const have = (p.have[client.index] as number) + 1;
      p.have[client.index] = have;
      if (have === p.count) {
        p.complete++;
        if (p.complete === count) toParent({ type: 'complete', firstSeq: p.firstSeq });
      }
    }
  }

  async function pollLoop(client: Client): Promise<void> {
    while (!stopping) {
      const target = mode === 'sticky' ? client.home : 1 - client.at;
      const form = new URLSearchParams({ messageId: client.cursor });
      if (client.groupsToken !== undefined) form.set('groupsToken', client.groupsToken);
      const sentUs = nowUs();
      const text = await http(target, `/signalr/poll?${client.query}`, 'POST', form.toString());
      if (stopping) return;
      if (phase) {
        phase.pollTimes.add(nowUs() - sentUs);
        phase.polls++;
        if (target !== client.at) phase.moves++;
      }
      client.at = target;
      const trimmed = text.trim(); // keep-alive spaces may come first
      const envelope = JSON.parse(trimmed) as { C?: string; G?: string; T?: number; M?: { A?: unknown[] }[] };
      if (!envelope.C)
        throw new Error(`poll on node ${'AB'[target]} answered without a cursor: ${trimmed.slice(0, 200)}`);
      if (envelope.T === 1) throw new Error(`poll on node ${'AB'[target]} asked to reconnect (T:1)`);
      client.cursor = envelope.C;
      if (envelope.G !== undefined) client.groupsToken = envelope.G;
      if (envelope.M?.length) onMessages(client, envelope.M);
    }
  }

  async function connect(index: number): Promise<Client> {
    const home = index % 2;
    const negotiated = JSON.parse(await http(home, `/signalr/negotiate?clientProtocol=2.1&connectionData=${hubs}`)) as {
      ConnectionToken: string;
    };
    const query = `transport=longPolling&clientProtocol=2.1&connectionToken=${encodeURIComponent(negotiated.ConnectionToken)}&connectionData=${hubs}`;
    const init = JSON.parse((await http(home, `/signalr/connect?${query}`, 'POST', '')).trim()) as {
      C: string;
      G?: string;
      S?: number;
    };
    if (init.S !== 1 || !init.C) throw new Error(`connect: unexpected init message ${JSON.stringify(init)}`);
    const started = await http(home, `/signalr/start?${query}`);
    if (!started.includes('started')) throw new Error(`start: unexpected answer ${started}`);
    return { index, home, query, cursor: init.C, groupsToken: init.G, at: home, maxSeq: 0 };
  }

  process.on('message', (message: ToClients) => {
    if (message.type === 'connect') {
      const t0 = Date.now();
      (async () => {
        for (let i = 0; i < count; i += 50) {
          const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => connect(i + j)));
          list.push(...batch);
        }
        for (const client of list) {
          pollLoop(client).catch((error: Error) => {
            if (!stopping)
              toParent({ type: 'fatal', message: `client ${client.index} (mode ${mode}): ${error.message}` });
          });
        }
        toParent({
          type: 'connected',
          id: message.id,
          ms: Date.now() - t0,
          home: [list.filter((c) => c.home === 0).length, list.filter((c) => c.home === 1).length],
        });
      })().catch((error: Error) => toParent({ type: 'fatal', message: `connecting: ${error.message}` }));
    } else if (message.type === 'mode') {
      mode = message.mode;
      toParent({ type: 'ack', id: message.id });
    } else if (message.type === 'phase') {
      phase = {
        firstSeq: message.firstSeq,
        count: message.count,
        counts: new Uint8Array(count * message.count),
        have: new Uint32Array(count),
        complete: 0,
        histogram: new Histogram(),
        received: 0,
        duplicates: 0,
        reordered: 0,
        stray: betweenPhases,
        lastUs: 0,
        polls: 0,
        moves: 0,
        pollTimes: new Histogram(),
        resetsStart: resets,
        cpuStart: cpuUs(),
        examples: [],
      };
      betweenPhases = 0;
      toParent({ type: 'ack', id: message.id });
    } else if (message.type === 'end') {
      const p = phase;
      phase = undefined;
      if (!p) {
        toParent({ type: 'fatal', message: 'clients: end of a phase that was not started' });
        return;
      }
      let lost = 0;
      for (let c = 0; c < count; c++) {
        const missing = p.count - (p.have[c] as number);
        if (missing === 0) continue;
        lost += missing;
        if (p.examples.length < 10) {
          const seqs: number[] = [];
          for (let i = 0; i < p.count && seqs.length < 5; i++)
            if (p.counts[c * p.count + i] === 0) seqs.push(p.firstSeq + i);
          const client = list[c] as Client;
          p.examples.push(
            `client ${c} (home ${'AB'[client.home]}, last request on ${'AB'[client.at]}): ${missing} missing, e.g. seq ${seqs.join(', ')}; cursor ${client.cursor.slice(0, 80)}`,
          );
        }
      }
      toParent({
        type: 'report',
        id: message.id,
        report: {
          received: p.received,
          lost,
          duplicates: p.duplicates,
          reordered: p.reordered,
          stray: p.stray,
          lastUs: p.lastUs,
          buckets: p.histogram.buckets,
          polls: p.polls,
          moves: p.moves,
          pollBuckets: p.pollTimes.buckets,
          resets: resets - p.resetsStart,
          cpuUs: cpuUs() - p.cpuStart,
          examples: p.examples,
        },
      });
    } else if (message.type === 'stop') {
      stopping = true;
      agent.destroy();
      process.exit(0);
    }
  });
}

clients([Number(process.argv[2]), Number(process.argv[3])]).catch((error: Error) => {
  toParent({ type: 'fatal', message: `clients: ${error.stack ?? error.message}` });
  process.exit(1);
});
