// No sticky sessions for the official client in a real browser over Server-Sent Events and long polling (issue 15):
// Debian's Chromium, three pages loading @microsoft/signalr's browser bundle from the proxy's origin (SSE with JSON,
// long polling with JSON, long polling with MessagePack), connecting through a real HAProxy in round robin with no
// affinity in front of three Hubwire processes on PostgreSQL. HAProxy balances every HTTP request on its own, so a
// page's negotiate, event stream or polls, its sends and its DELETE land on different nodes; HAProxy's log (each
// request's `id=` token names its connection) shows each connection's requests spread over the nodes. Numbered
// broadcasts cross between all pages (each once, in each sender's order), then sends to a user, by connection id
// and to a group, and client results.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../classic/fixture.js';
import { dropSchema } from '../helpers/classic-node.js';
import { connectionIdOf, nodesOfConnection } from '../helpers/connection-tokens.js';
import { type Haproxy, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { openProxiedPage } from '../helpers/signalr-bundles.js';
import { cleanUpSteps, delay, waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const NODES = 3;
/** Broadcasts per page. */
const SENDS = 10;
/** Any single browser action or wait. */
const STEP_MS = 10_000;

/** The page: the official bundles, and `start(user, transport, protocol)` recording what the connection receives. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>no sticky over http</title>
<script src="/lib/signalr.js"></script>
<script src="/lib/signalr-protocol-msgpack.js"></script>
<script>
  window.received = [];
  window.start = async function (user, transport, protocol) {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl('/test', { transport: signalR.HttpTransportType[transport], accessTokenFactory: () => user })
      .configureLogging(signalR.LogLevel.Warning);
    if (protocol === 'messagepack') builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
    window.connection = builder.build();
    connection.on('message', (text) => { received.push(text); });
    connection.on('groupMessage', (group, text) => { received.push(group + ':' + text); });
    connection.on('answer', (question) => user + ' answers ' + question);
    await connection.start();
    return connection.connectionId;
  };
  window.call = (method, ...args) => connection.invoke(method, ...args);
  window.broadcastAll = async (prefix, count) => {
    for (let n = 0; n < count; n++) await connection.invoke('broadcast', prefix + '#' + n);
  };
  window.stop = () => connection.stop();
  window.state = () => connection.state;
</script>`;

interface PageApi {
  received: unknown[];
  start(user: string, transport: string, protocol: string): Promise<string>;
  call(method: string, ...args: unknown[]): Promise<unknown>;
  broadcastAll(prefix: string, count: number): Promise<void>;
  stop(): Promise<void>;
  state(): string;
}

const KINDS = [
  { name: 'sse', transport: 'ServerSentEvents', protocol: 'json' },
  { name: 'lp', transport: 'LongPolling', protocol: 'json' },
  { name: 'lpmp', transport: 'LongPolling', protocol: 'messagepack' },
] as const;

interface Client {
  name: string;
  user: string;
  transport: string;
  protocol: string;
  page: Page;
  id: string;
}

describe('the official client in Chromium over SSE and long polling, round robin, no sticky sessions', {
  timeout: 90_000,
}, () => {
  const schema = `hw_nosticky_webhttp_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let proxy: Haproxy | undefined;
  let browser: Browser | undefined;
  const clients: Client[] = [];
  const pageErrors: string[] = [];
  const summary = { deliveries: 0, lost: 0, duplicated: 0, reordered: 0, nodesPerConnection: [] as string[] };

  before(async () => {
    nodes = await startNodeProcesses(NODES, ['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', '200']);
    proxy = await startRoundRobin({ backends: nodes.map((node) => node.port), pages: { '/page': PAGE } });
    browser = await launchChromium();
  });

  after(async () => {
    console.log(
      `[no-sticky-core-http browser] pages ${clients.length} (${clients.map((c) => `${c.transport}/${c.protocol}`).join(', ')}), ` +
        `nodes per connection ${summary.nodesPerConnection.join(' ')}, deliveries ${summary.deliveries}, ` +
        `lost ${summary.lost}, duplicated ${summary.duplicated}, reordered ${summary.reordered}`,
    );
    const steps: [string, () => Promise<unknown>][] = [
      ['browser', async () => browser?.close()],
      ['haproxy', async () => proxy?.close()],
      ['nodes', () => Promise.all(nodes.map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ];
    await cleanUpSteps(steps);
  });

  function diagnostics(): string {
    return [
      ...nodes.map((n, i) => `node${i} stderr: ${n.stderr.join('').slice(-1500) || '(empty)'}`),
      `haproxy: ${proxy?.stderr.slice(-1500) ?? ''}`,
      `page errors: ${pageErrors.join(' | ') || '(none)'}`,
    ].join('\n');
  }

  async function open(kind: (typeof KINDS)[number]): Promise<Client> {
    const page = await openProxiedPage(browser as Browser, (proxy as Haproxy).url, kind.name, pageErrors, STEP_MS);
    const user = `web-${kind.name}`;
    let id: string;
    try {
      id = await page.evaluate(([u, t, p]) => (window as unknown as PageApi).start(u, t, p), [
        user,
        kind.transport,
        kind.protocol,
      ] as const);
    } catch (error) {
      throw new Error(
        `${kind.name} could not connect through the proxy: ${(error as Error).message.split('\n')[0]}\n${diagnostics()}`,
      );
    }
    return { name: kind.name, user, transport: kind.transport, protocol: kind.protocol, page, id };
  }

  const call = (client: Client, method: string, ...args: unknown[]) =>
    client.page.evaluate(([m, a]) => (window as unknown as PageApi).call(m as string, ...(a as unknown[])), [
      method,
      args,
    ] as const);
  const received = async (client: Client) =>
    (await client.page.evaluate(() => (window as unknown as PageApi).received.slice())) as string[];

  /** Waits until every page received every one of `texts` (bounded); the caller checks counts and order. */
  async function waitEverywhere(texts: string[], who: Client[] = clients): Promise<void> {
    await Promise.all(
      who.map(
        (client) =>
          client.page
            .waitForFunction(
              (wanted) => wanted.every((t) => (window as unknown as PageApi).received.includes(t)),
              texts,
              { timeout: STEP_MS, polling: 50 },
            )
            .catch(() => {}), // what is missing is counted and asserted by the caller
      ),
    );
  }

  test('three pages connect through the proxy on SSE and long polling', async () => {
    for (const kind of KINDS) clients.push(await open(kind));
    for (const client of clients) {
      assert.equal(await call(client, 'getUserId'), client.user);
      assert.equal(await call(client, 'getConnectionId'), client.id);
      assert.equal(await call(client, 'getTransport'), client.transport);
    }
  });

  test('numbered broadcasts cross between every page, each once and in order', async () => {
    assert.equal(clients.length, KINDS.length, 'every page connected (see the first test)');
    await Promise.all(
      clients.map((client) =>
        client.page.evaluate(([prefix, count]) => (window as unknown as PageApi).broadcastAll(prefix, count), [
          client.name,
          SENDS,
        ] as const),
      ),
    );
    const all = clients.flatMap((sender) => Array.from({ length: SENDS }, (_, n) => `${sender.name}#${n}`));
    await waitEverywhere(all);
    await delay(300); // a quiet period: a duplicate would show up in it
    const problems: string[] = [];
    for (const receiver of clients) {
      const got = await received(receiver);
      for (const sender of clients) {
        const seen = got.filter((m) => m.startsWith(`${sender.name}#`)).map((m) => Number(m.split('#')[1]));
        const distinct = new Set(seen).size;
        const lost = SENDS - distinct;
        const duplicated = seen.length - distinct;
        const reordered = seen.some((n, k) => k > 0 && n < (seen[k - 1] as number));
        summary.deliveries += SENDS;
        summary.lost += lost;
        summary.duplicated += duplicated;
        summary.reordered += reordered ? 1 : 0;
        if (lost || duplicated || reordered) {
          problems.push(`${receiver.name} got from ${sender.name}: [${seen.join(',')}]`);
        }
      }
    }
    assert.deepEqual(problems, [], `broadcasts\n${diagnostics()}`);
  });

  test('users, connection ids, a group and client results work between the pages', async () => {
    assert.equal(clients.length, KINDS.length, 'every page connected (see the first test)');
    for (const [i, from] of clients.entries()) {
      const to = clients[(i + 1) % clients.length] as Client;
      await call(from, 'toUser', to.user, `user from ${from.name}`);
      await call(from, 'toClient', to.id, `client from ${from.name}`);
      assert.equal(await call(from, 'askClient', to.id, `${from.name}?`), `${to.user} answers ${from.name}?`);
      summary.deliveries += 4; // two sends, the question and its answer
    }
    const members = clients.filter((c) => c.name !== 'lp');
    for (const member of members) await call(member, 'joinGroup', 'pages');
    // Sent by the page outside the group, then by a member.
    await call(clients[1] as Client, 'toGroup', 'pages', 'from lp');
    await call(members[0] as Client, 'toGroup', 'pages', `from ${members[0]?.name}`);
    for (const [i, to] of clients.entries()) {
      const from = clients[(i + clients.length - 1) % clients.length] as Client;
      await waitEverywhere([`user from ${from.name}`, `client from ${from.name}`], [to]);
    }
    await waitEverywhere(['pages:from lp', `pages:from ${members[0]?.name}`], members);
    await delay(300); // a quiet period: a duplicate, or a group message to a non-member, would show up in it
    for (const [i, to] of clients.entries()) {
      const from = clients[(i + clients.length - 1) % clients.length] as Client;
      const got = (await received(to)).filter((m) => !/#\d+$/.test(m));
      const expected = [`user from ${from.name}`, `client from ${from.name}`];
      if (members.includes(to)) expected.push('pages:from lp', `pages:from ${members[0]?.name}`);
      summary.deliveries += expected.length;
      assert.deepEqual(got.sort(), expected.sort(), `${to.name} got exactly its sends\n${diagnostics()}`);
    }
    assert.deepEqual(pageErrors, [], 'no errors in the pages');
  });

  test("each connection's requests landed on more than one node; stopping ends them on every node", async () => {
    assert.equal(clients.length, KINDS.length, 'every page connected (see the first test)');
    const requests = (proxy as Haproxy).requests;
    const spread = clients.map((client) => ({ client, servers: nodesOfConnection(requests, client.id) }));
    summary.nodesPerConnection = spread.map(({ client, servers }) => {
      const count = requests.filter((r) => connectionIdOf(r.uri) === client.id).length;
      return `${client.name}:${count} requests on [${servers.map((s) => `n${s}`)}]`;
    });
    for (const { client, servers } of spread) {
      const count = requests.filter((r) => connectionIdOf(r.uri) === client.id).length;
      assert.ok(
        servers.length >= 2,
        `${client.name}'s ${count} requests landed on more than one node (${servers.join(',')})`,
      );
    }
    // Stopping through the proxy (long polling's DELETE lands anywhere) ends the connection on its node.
    for (const client of clients) {
      await client.page.evaluate(() => (window as unknown as PageApi).stop());
      assert.equal(await client.page.evaluate(() => (window as unknown as PageApi).state()), 'Disconnected');
    }
    await waitFor(
      async () => {
        const busy = await Promise.all(
          nodes.map(async (node) => {
            const text = await (
              await fetch(`http://127.0.0.1:${node.port}/metrics`, { signal: AbortSignal.timeout(2000) })
            ).text();
            return /^hubwire_connections\{[^}]*hubwire_hub="\/test"[^}]*\} [1-9]/m.test(text);
          }),
        );
        return busy.every((b) => !b);
      },
      10_000,
      'every node to drop its connections',
    );
  });
});
