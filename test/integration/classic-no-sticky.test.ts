// No sticky sessions for classic (SignalR 2) clients: two Hubwire processes on the PostgreSQL backplane behind a real
// round-robin HAProxy that balances every HTTP request on its own, so the page, negotiate, connect, start, send, each
// poll and each reconnect of one connection land on either node. The real jQuery client in Chromium, over
// longPolling, serverSentEvents and webSockets, receives numbered messages that a publisher sends at 50/s through the node that
// will survive (directly, not through the proxy):
// 1. with both nodes up, every client gets every message once, in order, while its requests alternate between nodes;
// 2. no node reports a live connection disconnected, past the (6 s) disconnect timeout;
// 3. the other node is SIGKILLed mid-stream: clients move to the survivor and still get every message once, in order,
//    including those published while they were moving;
// 4. and the survivor reports none of them disconnected.
// HUBWIRE_TEST_STICKY=1 runs the same test with `balance source` (every client on one node, the idle node killed):
// a check of the test itself, where only the alternation is not asserted.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { http, launchChromium } from '../classic/fixture.js';
import { type ClassicNodeProcess, dropSchema, startClassicNodeProcess } from '../helpers/classic-node.js';
import { type Haproxy, startRoundRobin } from '../helpers/haproxy.js';
import { cleanUpSteps, delay } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const STICKY = process.env.HUBWIRE_TEST_STICKY === '1';
/** The nodes' disconnect timeout (SignalR 2's minimum; keep-alive is a third of it). */
const DISCONNECT_TIMEOUT = 6000;
/** How long past the disconnect timeout we wait before asking the nodes whom they saw disconnect. */
const DISCONNECT_MARGIN = 3000;
const INTERVAL = 20; // 50 messages a second
const PHASE1 = { from: 1, count: 150 };
const PHASE2 = { from: 1001, count: 250 };
/** Into phase 2, when the other node is killed. */
const KILL_AFTER = 1500;
const TRANSPORTS = [
  ['longPolling', 3],
  ['serverSentEvents', 3],
  ['webSockets', 2],
] as const;

interface Client {
  name: string;
  transport: string;
  page: Page;
  id: string;
  token: string;
}

interface PageApi {
  received: unknown[];
  events: string[];
  start(transport: string, user: string): Promise<string>;
  call(method: string, ...args: unknown[]): Promise<unknown>;
  $: {
    connection: { hub: { id: string; token: string; state: number } & Record<string, (fn: unknown) => void> };
  };
}

interface ClassicRequest {
  route: string;
  transport: string | null;
  token: string | null;
}

/** Records the connection's state changes and errors in `window.events` (a string: no bundler helpers inside). */
const INSTRUMENT = `
  window.events = [];
  (function (hub) {
    function log(what) { events.push(new Date().toISOString().slice(17, 23) + ' ' + what); }
    hub.stateChanged(function (s) { log('state ' + s.oldState + '->' + s.newState); });
    hub.error(function (e) { log('error ' + e.message); });
  })($.connection.hub);
`;

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/** `1-5, 9, 12-14` (at most `max` runs). */
function runs(ids: number[], max = 15): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === (ids[j] as number) + 1) j++;
    parts.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return parts.length > max ? `${parts.slice(0, max).join(', ')}, … (${parts.length} runs)` : parts.join(', ');
}

/** What is wrong with `received` against `expected` (every id once, in order), or undefined. */
function compare(received: unknown[], expected: number[]): string | undefined {
  const wanted = new Set(expected);
  const counts = new Map<number, number>();
  const stray: unknown[] = [];
  const inRange: number[] = [];
  for (const value of received) {
    if (typeof value === 'number' && wanted.has(value)) {
      counts.set(value, (counts.get(value) ?? 0) + 1);
      inRange.push(value);
    } else stray.push(value);
  }
  const missing = expected.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  let outOfOrder = 0;
  for (let i = 1; i < inRange.length; i++) if ((inRange[i] as number) < (inRange[i - 1] as number)) outOfOrder++;
  if (missing.length === 0 && duplicated.length === 0 && outOfOrder === 0 && stray.length === 0) return undefined;
  const problems = [`got ${received.length} of ${expected.length}`];
  if (missing.length) problems.push(`missing ${missing.length} [${runs(missing)}]`);
  if (duplicated.length) problems.push(`duplicated ${duplicated.length} [${runs(duplicated)}]`);
  if (outOfOrder) problems.push(`${outOfOrder} out of order`);
  if (stray.length) problems.push(`${stray.length} not of this phase [${stray.slice(0, 10).join(', ')}]`);
  return problems.join(', ');
}

/** Checks the publisher's answer; returns how long publishing took (ms). */
function publishedOk(body: string, count: number): number {
  const answer = JSON.parse(body) as { sent: number; failed: number; error?: string; ms: number };
  assert.deepEqual(
    { sent: answer.sent, failed: answer.failed, error: answer.error },
    { sent: count, failed: 0, error: undefined },
    'the publisher sent everything',
  );
  return answer.ms;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await http(url, { timeoutMs: 5000 });
  assert.equal(response.status, 200, `${url}: ${response.body}`);
  return JSON.parse(response.body) as T;
}

describe('classic clients behind round-robin HAProxy, no sticky sessions', { timeout: 150_000 }, () => {
  const schema = `hw_nosticky_${process.pid}_${Date.now().toString(36)}`;
  let nodes: ClassicNodeProcess[] = [];
  let proxy: Haproxy | undefined;
  let browser: Browser | undefined;
  const clients: Client[] = [];
  /** Index of the node killed in phase 2; the other one publishes and survives. */
  let victim = 0;
  const survivor = () => nodes[1 - victim] as ClassicNodeProcess;

  before(async () => {
    nodes = await Promise.all(
      [0, 1].map(() =>
        startClassicNodeProcess([
          '--backplane',
          DATABASE_URL,
          '--schema',
          schema,
          '--disconnect-timeout',
          String(DISCONNECT_TIMEOUT),
        ]),
      ),
    );
    proxy = await startRoundRobin({ backends: nodes.map((n) => n.port), balance: STICKY ? 'source' : 'roundrobin' });
    browser = await launchChromium();
  });

  after(async () => {
    const steps: [string, () => Promise<unknown>][] = [
      ['browser', async () => browser?.close()],
      ['haproxy', async () => proxy?.close()],
      ['nodes', () => Promise.all(nodes.map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ];
    await cleanUpSteps(steps);
  });

  /** Node stderr and HAProxy's, for failure messages. */
  function diagnostics(): string {
    const tail = (text: string) => (text.length > 1500 ? `…${text.slice(-1500)}` : text);
    return [
      ...nodes.map((n, i) => `node${i} stderr: ${tail(n.stderr.join('')) || '(empty)'}`),
      `haproxy: ${tail(proxy?.stderr ?? '')}`,
    ].join('\n');
  }

  async function openClient(name: string, transport: string): Promise<Client> {
    const page = await (browser as Browser).newPage(); // a context of its own: its own cookies and connections
    page.setDefaultTimeout(15_000);
    await page.goto(`${proxy?.url}/page`);
    await page.evaluate(INSTRUMENT);
    let id: string;
    try {
      id = await page.evaluate(([t, u]) => (window as unknown as PageApi).start(t, u), [transport, name] as const);
    } catch (error) {
      const events = await page.evaluate(() => (window as unknown as PageApi).events).catch(() => []);
      throw new Error(
        `${name} (${transport}) could not start through the proxy: ${(error as Error).message.split('\n')[0]}; ` +
          `client events: ${events.join(' | ')}\n${diagnostics()}`,
      );
    }
    const token = await page.evaluate(() => (window as unknown as PageApi).$.connection.hub.token);
    return { name, transport, page, id, token };
  }

  /** The later tests need every client of the first one (no vacuous pass). */
  function assertStarted(): void {
    const expected = TRANSPORTS.reduce((sum, [, count]) => sum + count, 0);
    assert.equal(clients.length, expected, 'every client started (see the first test)');
  }

  const received = (client: Client) => client.page.evaluate(() => (window as unknown as PageApi).received.slice());

  /** Waits until every client got `last`, or until nothing new arrived for `quietMs`, or `ms` passed. */
  async function waitForLast(last: number, ms: number, quietMs = 4000): Promise<void> {
    const deadline = Date.now() + ms;
    let lastTotal = -1;
    let lastChange = Date.now();
    while (Date.now() < deadline) {
      const all = await Promise.all(clients.map(received));
      if (all.every((r) => r.includes(last))) return;
      const total = all.reduce((sum, r) => sum + r.length, 0);
      if (total !== lastTotal) {
        lastTotal = total;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > quietMs) return;
      await delay(200);
    }
  }

  /** One line per client that did not get exactly `expected` in order (after its first `skip` items). */
  async function deliveryProblems(expected: number[], skip: number[] = []): Promise<string[]> {
    const problems: string[] = [];
    for (const [i, client] of clients.entries()) {
      const got = (await received(client)).slice(skip[i] ?? 0);
      const problem = compare(got, expected);
      if (problem) {
        const events = await client.page.evaluate(() => (window as unknown as PageApi).events.slice(-8));
        problems.push(`${client.name} (${client.transport}): ${problem}; client events: ${events.join(' | ')}`);
      }
    }
    return problems;
  }

  /** Live connections (still connected, same id) that a node reported disconnected; and dead ones. */
  async function disconnectProblems(ask: ClassicNodeProcess[]): Promise<string[]> {
    const problems: string[] = [];
    const live = new Map(clients.map((c) => [c.id, c]));
    for (const node of ask) {
      const seen = await getJson<{ disconnected: { id: string; error?: string }[] }>(`${node.base}/observations`);
      for (const { id, error } of seen.disconnected) {
        const client = live.get(id);
        if (client) {
          problems.push(
            `node${nodes.indexOf(node)} reported ${client.name} (${client.transport}, ${id}) disconnected: ${error ?? 'no error'}`,
          );
        }
      }
    }
    for (const client of clients) {
      const { id, state } = await client.page.evaluate(() => {
        const hub = (window as unknown as PageApi).$.connection.hub;
        return { id: hub.id, state: hub.state };
      });
      if (state !== 1 || id !== client.id) {
        problems.push(`${client.name} (${client.transport}) is no longer connected: state ${state}, id ${id}`);
      }
    }
    return problems;
  }

  test('clients connect through the proxy and call the hub through it', async () => {
    const started = Date.now();
    const names = TRANSPORTS.flatMap(([transport, count]) => range(0, count).map((i) => [transport, i] as const));
    clients.push(...(await Promise.all(names.map(([transport, i]) => openClient(`${transport}-${i}`, transport)))));
    // A few calls each (`/send`, round-robin too): each answers with the caller's connection id, wherever it ran.
    await Promise.all(
      clients.map(async (client) => {
        for (let i = 0; i < 4; i++) {
          const id = await client.page.evaluate(() => (window as unknown as PageApi).call('getConnectionId'));
          assert.equal(id, client.id, `${client.name}: getConnectionId`);
        }
      }),
    );
    console.log(`${clients.length} clients started and called the hub in ${Date.now() - started} ms`);
    const seen = await Promise.all(nodes.map((n) => getJson<{ connected: string[] }>(`${n.base}/observations`)));
    for (const client of clients) {
      assert.ok(
        seen.some((s) => s.connected.includes(client.id)),
        `onConnected ran for ${client.name} on some node`,
      );
    }
    if (STICKY) {
      // Every client is on one node: the other one is the victim, so that phase 2 kills no client's node.
      const logs = await Promise.all(nodes.map((n) => getJson<ClassicRequest[]>(`${n.base}/classic-requests`)));
      victim = (logs[0]?.length ?? 0) ? 1 : 0;
    }
  });

  test('phase 1: every client gets every message once, in order, while its requests alternate', async () => {
    assertStarted();
    const publisher = survivor();
    const started = Date.now();
    const result = await http(
      `${publisher.base}/publish?from=${PHASE1.from}&count=${PHASE1.count}&interval=${INTERVAL}`,
      { method: 'POST', timeoutMs: 30_000 },
    );
    const published = publishedOk(result.body, PHASE1.count);
    await waitForLast(PHASE1.from + PHASE1.count - 1, 15_000);
    await delay(300); // duplicates, if any, would show up now
    const problems = await deliveryProblems(range(PHASE1.from, PHASE1.count));

    // Where each connection's requests went, as the nodes saw them.
    const logs = await Promise.all(nodes.map((n) => getJson<ClassicRequest[]>(`${n.base}/classic-requests`)));
    const distribution: string[] = [];
    const alternation: string[] = [];
    let sseOnBoth = 0;
    for (const client of clients) {
      const perNode = logs.map((log) => log.filter((r) => r.token === client.token));
      const summary = perNode.map((requests, i) => {
        const routes = new Map<string, number>();
        for (const r of requests) routes.set(r.route, (routes.get(r.route) ?? 0) + 1);
        return `node${i}: ${[...routes].map(([route, n]) => `${route}×${n}`).join(' ') || '-'}`;
      });
      distribution.push(`${client.name}: ${summary.join(' / ')}`);
      // Long polling: both nodes answered polls of this connection (tens of polls each, so always). SSE: both nodes
      // served it (stream, start, sends): only a handful of requests, which the proxy's one round-robin over every
      // client's requests may all send to one node, so at least one SSE connection must show it. A WebSocket stays
      // on the node it was opened on (hub calls travel on it; upgrades are not logged).
      const counted = perNode.map(
        (requests) => requests.filter((r) => client.transport !== 'longPolling' || r.route === 'poll').length,
      );
      const both = counted.every((n) => n > 0);
      if (client.transport === 'longPolling' && !both) alternation.push(`${client.name}: ${summary.join(' / ')}`);
      if (client.transport === 'serverSentEvents' && both) sseOnBoth++;
    }
    if (sseOnBoth === 0) alternation.push('no serverSentEvents connection was served by both nodes');
    console.log(
      `phase 1: published in ${published} ms, all received by ${Date.now() - started} ms; classic requests per connection:\n${distribution.join('\n')}`,
    );
    if (problems.length) assert.fail(`phase 1 deliveries:\n${problems.join('\n')}\n${diagnostics()}`);
    if (!STICKY) {
      if (alternation.length)
        assert.fail(`requests of these connections did not reach both nodes:\n${alternation.join('\n')}`);
    }
  });

  test('phase 1: no node reports a live connection disconnected, past the disconnect timeout', async () => {
    assertStarted();
    await delay(DISCONNECT_TIMEOUT + DISCONNECT_MARGIN);
    const problems = await disconnectProblems(nodes);
    if (problems.length) assert.fail(`false disconnects:\n${problems.join('\n')}`);
  });

  test('phase 2: the other node is killed mid-stream; every client still gets every message once, in order', async () => {
    assertStarted();
    const publisher = survivor();
    const marks = await Promise.all(clients.map(async (c) => (await received(c)).length));
    const started = Date.now();
    const publishing = http(
      `${publisher.base}/publish?from=${PHASE2.from}&count=${PHASE2.count}&interval=${INTERVAL}`,
      { method: 'POST', timeoutMs: 30_000 },
    );
    await delay(KILL_AFTER);
    await nodes[victim]?.kill();
    const killedAt = Date.now() - started;
    const result = await publishing;
    const published = publishedOk(result.body, PHASE2.count);
    await waitForLast(PHASE2.from + PHASE2.count - 1, 20_000, 6000);
    await delay(300);
    const problems = await deliveryProblems(range(PHASE2.from, PHASE2.count), marks);
    // Which clients went through a reconnect (their transport was on the killed node).
    const moved: string[] = [];
    for (const client of clients) {
      const events = await client.page.evaluate(() => (window as unknown as PageApi).events);
      if (events.some((e) => e.includes('->2'))) moved.push(client.name);
    }
    console.log(
      `phase 2: node${victim} killed at ${killedAt} ms, published in ${published} ms, all received by ${Date.now() - started} ms; reconnected: ${moved.join(', ') || 'none'}`,
    );
    if (problems.length) assert.fail(`phase 2 deliveries:\n${problems.join('\n')}\n${diagnostics()}`);
  });

  test('phase 2: the survivor reports no live connection disconnected, past the disconnect timeout', async () => {
    assertStarted();
    assert.ok(nodes[victim]?.child.signalCode === 'SIGKILL', 'phase 2 killed the other node');
    await delay(DISCONNECT_TIMEOUT + DISCONNECT_MARGIN);
    const problems = await disconnectProblems([survivor()]);
    if (problems.length) assert.fail(`false disconnects:\n${problems.join('\n')}`);
  });
});
