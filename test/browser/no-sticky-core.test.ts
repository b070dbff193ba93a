// No sticky sessions for the official client in a real browser (issue 15, WebSockets): Debian's Chromium, two pages
// loading @microsoft/signalr's browser bundle (one JSON, one MessagePack) from the proxy's origin, connecting over
// WebSockets through a real HAProxy in round robin with no affinity in front of two Hubwire processes on PostgreSQL.
// HAProxy's log (each request logged as its answer's headers arrive) tells where each page's negotiate and upgrade
// went; the pages connect one at a time, with one other request in between so that their WebSockets end up on
// different nodes. Then broadcasts, sends to a user, by connection id and to a group, and a client result cross
// between them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../classic/fixture.js';
import { dropSchema } from '../helpers/classic-node.js';
import { type Haproxy, type ProxiedRequest, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcess } from '../helpers/node-process.js';
import { openProxiedPage } from '../helpers/signalr-bundles.js';
import { cleanUpSteps, waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Any single browser action or wait. */
const STEP_MS = 10_000;

/** The page: the official bundles, and `start(user, protocol)` recording what the connection receives. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>no sticky</title>
<script src="/lib/signalr.js"></script>
<script src="/lib/signalr-protocol-msgpack.js"></script>
<script>
  window.received = [];
  window.start = async function (user, protocol) {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl('/test', { transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => user })
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
</script>`;

interface PageApi {
  received: unknown[];
  start(user: string, protocol: string): Promise<string>;
  call(method: string, ...args: unknown[]): Promise<unknown>;
}

interface Client {
  name: string;
  user: string;
  protocol: string;
  page: Page;
  id: string;
  negotiatedOn: number;
  upgradedOn: number;
}

describe('the official client in Chromium behind round-robin HAProxy, no sticky sessions', { timeout: 90_000 }, () => {
  const schema = `hw_nosticky_web_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let proxy: Haproxy | undefined;
  let browser: Browser | undefined;
  const clients: Client[] = [];
  const pageErrors: string[] = [];
  /** Deliveries checked, for the summary line. */
  const totals = { messages: 0, lost: 0, duplicated: 0 };

  before(async () => {
    nodes = await Promise.all(
      [0, 1].map(() => startNodeProcess(['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', '200'])),
    );
    proxy = await startRoundRobin({
      backends: nodes.map((node) => node.port),
      logAsap: true,
      pages: { '/page': PAGE },
    });
    browser = await launchChromium();
  });

  after(async () => {
    const crossed = clients.filter((c) => c.negotiatedOn !== c.upgradedOn).length;
    console.log(
      `[no-sticky-core browser] pages ${clients.length}, crossed nodes ${crossed}, ` +
        `websockets on ${clients.map((c) => `n${c.upgradedOn}`).join(' and ')}, ` +
        `messages ${totals.messages}, lost ${totals.lost}, duplicated ${totals.duplicated}`,
    );
    const steps: [string, () => Promise<unknown>][] = [
      ['browser', async () => browser?.close()],
      ['haproxy', async () => proxy?.close()],
      ['nodes', () => Promise.all(nodes.map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ];
    await cleanUpSteps(steps);
  });

  const logLine = (r: ProxiedRequest) => `n${r.server} ${r.status} ${r.method} ${r.uri}`;

  /** Node stderr, HAProxy's and the pages' errors, for failure messages. */
  function diagnostics(): string {
    return [
      ...nodes.map((n, i) => `node${i} stderr: ${n.stderr.join('').slice(-1500) || '(empty)'}`),
      `haproxy: ${proxy?.stderr.slice(-1500) ?? ''}`,
      `page errors: ${pageErrors.join(' | ') || '(none)'}`,
    ].join('\n');
  }

  /** Opens a page on the proxy's origin (served by the test, not the nodes) and connects it through the proxy. */
  async function open(name: string, protocol: string): Promise<Client> {
    const page = await openProxiedPage(browser as Browser, (proxy as Haproxy).url, name, pageErrors, STEP_MS);
    const log = (proxy as Haproxy).requests;
    const hub = () => log.filter((r) => r.uri.startsWith('/test'));
    const before = hub().length;
    const user = `web-${name}`;
    let id: string;
    try {
      id = await page.evaluate(([u, p]) => (window as unknown as PageApi).start(u, p), [user, protocol] as const);
    } catch (error) {
      throw new Error(
        `${name} (${protocol}) could not connect through the proxy: ${(error as Error).message.split('\n')[0]}\n` +
          `requests: ${hub().slice(before).map(logLine).join(' | ')}\n${diagnostics()}`,
      );
    }
    await waitFor(() => hub().length >= before + 2, 5000, `HAProxy to log ${name}'s negotiate and upgrade`);
    const mine = hub().slice(before);
    assert.equal(mine.length, 2, `${name}: negotiate and upgrade only:\n${mine.map(logLine).join('\n')}`);
    const [negotiated, upgraded] = mine as [ProxiedRequest, ProxiedRequest];
    assert.match(negotiated.uri, /^\/test\/negotiate\?/, logLine(negotiated));
    assert.match(upgraded.uri, /^\/test\?(.*&)?id=/, logLine(upgraded));
    assert.equal(upgraded.status, 101, logLine(upgraded));
    return { name, user, protocol, page, id, negotiatedOn: negotiated.server, upgradedOn: upgraded.server };
  }

  const call = (client: Client, method: string, ...args: unknown[]) =>
    client.page.evaluate(([m, a]) => (window as unknown as PageApi).call(m as string, ...(a as unknown[])), [
      method,
      args,
    ] as const);
  const received = (client: Client) => client.page.evaluate(() => (window as unknown as PageApi).received.slice());

  /** Waits until `client` received every one of `texts` (or the step's time passed); counts; each must come once. */
  async function expectReceived(client: Client, texts: string[]): Promise<void> {
    await client.page
      .waitForFunction((wanted) => wanted.every((t) => (window as unknown as PageApi).received.includes(t)), texts, {
        timeout: STEP_MS,
      })
      .catch(() => {}); // what is missing is counted and asserted below
    const got = await received(client);
    const counts = texts.map((text) => got.filter((item) => item === text).length);
    totals.messages += texts.length;
    totals.lost += counts.filter((n) => n === 0).length;
    totals.duplicated += counts.filter((n) => n > 1).length;
    assert.deepEqual(
      counts,
      texts.map(() => 1),
      `${client.name} (n${client.upgradedOn}) got each of ${texts.join(', ')} once: ${got.join(' | ')}\n${diagnostics()}`,
    );
  }

  test('two pages connect through the proxy; negotiate and the upgrade land on different nodes', async () => {
    clients.push(await open('ann', 'json'));
    // One request between the pages (any path: the node answers 404), so that round robin puts the second page's
    // WebSocket on the other node.
    await fetch(`${proxy?.url}/between-pages`, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer());
    clients.push(await open('bob', 'messagepack'));
    console.log(
      `negotiate → upgrade per page: ${clients.map((c) => `${c.name} (${c.protocol}) n${c.negotiatedOn}→n${c.upgradedOn}`).join(', ')}`,
    );
    assert.ok(
      clients.some((c) => c.negotiatedOn !== c.upgradedOn),
      'at least one page negotiated on one node and upgraded on the other',
    );
    const [ann, bob] = clients as [Client, Client];
    assert.notEqual(ann.upgradedOn, bob.upgradedOn, "the pages' WebSockets are on different nodes");
    assert.equal(await call(ann, 'getUserId'), ann.user);
    assert.equal(await call(bob, 'getConnectionId'), bob.id);
  });

  test('messages cross between the pages both ways: broadcast, user, connection id, group, client result', async () => {
    assert.equal(clients.length, 2, 'both pages connected (see the first test)');
    const [ann, bob] = clients as [Client, Client];
    await call(ann, 'joinGroup', 'pages');
    await call(bob, 'joinGroup', 'pages');
    for (const [from, to] of [
      [ann, bob],
      [bob, ann],
    ] as const) {
      await call(from, 'broadcast', `all from ${from.name}`);
      await call(from, 'toUser', to.user, `user from ${from.name}`);
      await call(from, 'toClient', to.id, `client from ${from.name}`);
      await call(from, 'toGroup', 'pages', `group from ${from.name}`);
      const both = [`all from ${from.name}`, `pages:group from ${from.name}`];
      await expectReceived(to, [...both, `user from ${from.name}`, `client from ${from.name}`]);
      await expectReceived(from, both);
      assert.equal(await call(from, 'askClient', to.id, 'ready?'), `${to.user} answers ready?`);
      totals.messages += 2; // the question and its answer
    }
    // After leaving, a page gets nothing more of the group; nothing addressed to one page reached the other.
    await call(bob, 'leaveGroup', 'pages');
    await call(bob, 'toGroup', 'pages', 'group after bob left');
    await expectReceived(ann, ['pages:group after bob left']);
    const common = ['all from ann', 'all from bob', 'pages:group from ann', 'pages:group from bob'];
    assert.deepEqual(
      (await received(ann)).sort(),
      [...common, 'client from bob', 'pages:group after bob left', 'user from bob'].sort(),
    );
    assert.deepEqual((await received(bob)).sort(), [...common, 'client from ann', 'user from ann'].sort());
    assert.deepEqual(pageErrors, [], 'no errors in the pages');
  });
});
