// Stateful reconnect across nodes in a real browser (issue 15): Debian's Chromium, four pages loading
// @microsoft/signalr's browser bundle (two JSON, two MessagePack) with withStatefulReconnect() over WebSockets,
// connected through a real HAProxy in round robin with no affinity in front of three Hubwire processes on PostgreSQL.
// Each page joins a group; a Node.js sender (the official client, through HAProxy) sends numbered messages with
// awaited invokes to the group and to each page's user. Mid-stream the node holding pages (and not the sender) is
// killed (SIGKILL): each of its pages' single immediate WebSocket reconnect reaches another node (HAProxy redispatches
// a refused connection, and its checks soon mark the node down), which rebuilds the connection from the backplane.
// Every page must get every acknowledged message once and in order, with no `onreconnecting` (an automatic reconnect
// policy is set, so a failed move would show as one), no close, the same connection id and user (its group still
// reaches it), and the moved pages on another node, each after exactly one reconnect (HAProxy's log).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../classic/fixture.js';
import { dropSchema } from '../helpers/classic-node.js';
import { startClient } from '../helpers/clients.js';
import { connectionIdOf } from '../helpers/connection-tokens.js';
import { type Haproxy, type ProxiedRequest, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { openProxiedPage } from '../helpers/signalr-bundles.js';
import { cleanUpSteps, delay, waitFor, withTimeout } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const NODES = 3;
const PROTOCOLS = ['json', 'messagepack', 'json', 'messagepack'] as const;
const GROUP = 'moving';
/** Any single browser action or wait. */
const STEP_MS = 10_000;
/** Sending before the kill: long enough for the pages to acknowledge and their holder to publish checkpoints. */
const BEFORE_KILL_MS = 2000;
/** Sending after every moved page's reconnect was answered (101) on another node. */
const AFTER_MOVE_MS = 1500;
/** How long the moved pages' reconnects may take (a takeover waits up to 1.5 s for a dead holder to answer). */
const MOVE_MS = 6000;
/** The most messages sent to each audience (the group, each page's user). */
const MAX_ROUNDS = 20_000;

/** The page: the official bundles, and `start(user, protocol)` recording what the connection receives. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>stateful move</title>
<script src="/lib/signalr.js"></script>
<script src="/lib/signalr-protocol-msgpack.js"></script>
<script>
  window.seen = { received: [], reconnecting: 0, reconnected: 0, closed: 0, closeError: null };
  window.start = async function (user, protocol) {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl('/test', { transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => user })
      .withStatefulReconnect()
      .withAutomaticReconnect([0, 500, 1000])
      .configureLogging(signalR.LogLevel.Warning);
    if (protocol === 'messagepack') builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
    window.connection = builder.build();
    connection.on('message', (n) => { seen.received.push('u' + n); });
    connection.on('groupMessage', (group, n) => { seen.received.push((group === '${GROUP}' ? 'g' : group + ':') + n); });
    connection.onreconnecting(() => { seen.reconnecting++; });
    connection.onreconnected(() => { seen.reconnected++; });
    connection.onclose((error) => { seen.closed++; seen.closeError = error ? String(error) : null; });
    await connection.start();
    return connection.connectionId;
  };
  window.call = (method, ...args) => connection.invoke(method, ...args);
</script>`;

interface Seen {
  received: string[];
  reconnecting: number;
  reconnected: number;
  closed: number;
  closeError: string | null;
}

interface PageApi {
  seen: Seen;
  connection: { connectionId: string | null; state: string };
  start(user: string, protocol: string): Promise<string>;
  call(method: string, ...args: unknown[]): Promise<unknown>;
}

interface Client {
  name: string;
  user: string;
  protocol: string;
  page: Page;
  id: string;
  /** Index of the node holding its WebSocket (HAProxy's server index = index in `nodes`). */
  on: number;
}

/** What one page got of one stream (its group's or its user's), against what the sender had acknowledged. */
function compare(got: number[], acked: number[]) {
  const counts = new Map<number, number>();
  for (const n of got) counts.set(n, (counts.get(n) ?? 0) + 1);
  let reordered = 0;
  for (let i = 1; i < got.length; i++) if ((got[i] as number) < (got[i - 1] as number)) reordered++;
  return {
    lost: acked.filter((n) => !counts.has(n)).length,
    duplicated: [...counts.values()].reduce((sum, c) => sum + c - 1, 0),
    reordered,
  };
}

describe('stateful reconnect across nodes in Chromium: the node holding pages is killed', { timeout: 90_000 }, () => {
  const schema = `hw_move_web_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let proxy: Haproxy | undefined;
  let browser: Browser | undefined;
  let sender: signalR.HubConnection | undefined;
  const clients: Client[] = [];
  const pageErrors: string[] = [];
  const totals = {
    onKilled: 0,
    moved: 0,
    messages: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    groupSent: 0,
    killedAfter: 0,
  };

  before(async () => {
    nodes = await startNodeProcesses(NODES, ['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', '200']);
    proxy = await startRoundRobin({
      backends: nodes.map((node) => node.port),
      logAsap: true,
      pages: { '/page': PAGE },
    });
    browser = await launchChromium();
  });

  after(async () => {
    console.log(
      `[stateful-move browser] pages ${clients.length}, on the killed node ${totals.onKilled}, moved ${totals.moved}, ` +
        `messages ${totals.messages} (${totals.groupSent} to the group, kill after ${totals.killedAfter}), lost ${totals.lost}, ` +
        `duplicated ${totals.duplicated}, reordered ${totals.reordered}`,
    );
    const steps: [string, () => Promise<unknown>][] = [
      ['sender', async () => sender?.stop()],
      ['browser', async () => browser?.close()],
      ['haproxy', async () => proxy?.close()],
      ['nodes', () => Promise.all(nodes.map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ];
    await cleanUpSteps(steps);
  });

  const logLine = (r: ProxiedRequest) => `n${r.server} ${r.status} ${r.method} ${r.uri.slice(0, 60)}`;
  const nodeOfPid = (pid: unknown) => nodes.findIndex((node) => node.child.pid === pid);

  /** Node stderr, HAProxy's and the pages' errors, for failure messages. */
  function diagnostics(): string {
    return [
      ...nodes.map((n, i) => `node${i} stderr: ${n.stderr.join('').slice(-1500) || '(empty)'}`),
      `haproxy: ${proxy?.stderr.slice(-1500) ?? ''}`,
      `page errors: ${pageErrors.join(' | ') || '(none)'}`,
    ].join('\n');
  }

  /** Opens a page on the proxy's origin (not connected yet). */
  async function load(name: string): Promise<Page> {
    return openProxiedPage(browser as Browser, (proxy as Haproxy).url, name, pageErrors, STEP_MS);
  }

  /** Connects a loaded page through the proxy; asks its node which process it is. */
  async function connect(name: string, protocol: string, page: Page): Promise<Client> {
    const user = `web-${name}`;
    let id: string;
    try {
      id = await page.evaluate(([u, p]) => (window as unknown as PageApi).start(u, p), [user, protocol] as const);
    } catch (error) {
      throw new Error(
        `${name} (${protocol}) could not connect through the proxy: ${(error as Error).message.split('\n')[0]}\n${diagnostics()}`,
      );
    }
    const pid = await page.evaluate(() => (window as unknown as PageApi).call('processId'));
    const on = nodeOfPid(pid);
    assert.ok(on >= 0, `${name}'s node process ${String(pid)} is one of ours`);
    return { name, user, protocol, page, id, on };
  }

  const call = (client: Client, method: string, ...args: unknown[]) =>
    client.page.evaluate(([m, a]) => (window as unknown as PageApi).call(m as string, ...(a as unknown[])), [
      method,
      args,
    ] as const);
  const seen = (client: Client) =>
    client.page.evaluate(() => {
      const { seen, connection } = window as unknown as PageApi;
      return {
        ...seen,
        received: seen.received.slice(),
        connectionId: connection.connectionId,
        state: connection.state,
      };
    });
  /** The 101s HAProxy logged for `client`'s WebSocket (its first one, then its reconnects). */
  const upgradesOf = (client: Client) =>
    (proxy as Haproxy).requests.filter((r) => r.status === 101 && connectionIdOf(r.uri) === client.id);

  test('pages with stateful reconnect keep every message, in order, when their node is killed', async () => {
    const testStarted = Date.now();
    // The sender first; then the pages, one at a time: round robin spreads their WebSockets over the three nodes.
    sender = await startClient(`${(proxy as Haproxy).url}/test`, { token: 'sender' });
    const senderOn = nodeOfPid(await sender.invoke('processId'));
    assert.ok(senderOn >= 0, "the sender's node is one of ours");
    const pages = await Promise.all(PROTOCOLS.map((_, i) => load(`p${i}`)));
    for (const [i, protocol] of PROTOCOLS.entries()) clients.push(await connect(`p${i}`, protocol, pages[i] as Page));
    for (const client of clients) await call(client, 'joinGroup', GROUP);
    await waitFor(() => clients.every((c) => upgradesOf(c).length > 0), 5000, "HAProxy to log the pages' upgrades");
    for (const client of clients) {
      assert.equal(upgradesOf(client).length, 1, `${client.name}: one WebSocket so far`);
      assert.equal(upgradesOf(client)[0]?.server, client.on, `${client.name}: HAProxy and processId agree`);
    }

    // The node to kill: the one holding the most pages, other than the sender's (its awaited sends go on).
    const pagesOn = (node: number) => clients.filter((c) => c.on === node).length;
    const candidates = nodes.map((_, i) => i).filter((i) => i !== senderOn && pagesOn(i) > 0);
    console.log(
      `connected in ${Date.now() - testStarted} ms; sender on n${senderOn}; pages: ${clients.map((c) => `${c.name} (${c.protocol}) on n${c.on}`).join(', ')}`,
    );
    assert.ok(candidates.length > 0, `a node other than the sender's holds pages\n${diagnostics()}`);
    const victim = candidates.reduce((best, i) => (pagesOn(i) > pagesOn(best) ? i : best));
    const moving = clients.filter((c) => c.on === victim);
    totals.onKilled = moving.length;

    // Numbered sends, each awaited (acknowledged), to the group and to every page's user.
    const ackedGroup: number[] = [];
    const ackedUser = new Map<string, number[]>(clients.map((c) => [c.user, []]));
    const senderErrors: string[] = [];
    let killAt = 0;
    let killedAt = 0;
    let killed: Promise<void> | undefined;
    let movedAt = 0;
    const started = Date.now();
    const acked = async (list: number[], method: string, target: string, n: number) => {
      try {
        await sender?.invoke(method, target, n);
        list.push(n);
      } catch (error) {
        senderErrors.push(`${method} ${target} ${n}: ${(error as Error).message}`);
      }
    };
    // One sequence per audience (each awaited in order), the sequences side by side; the kill is decided between
    // rounds of the group's sequence and not awaited: the sends go on while the node dies.
    let done = false;
    let groupSent = 0;
    const sequence = async (list: number[], method: string, target: string, decides: boolean) => {
      for (let n = 1; !done && n <= MAX_ROUNDS; n++) {
        await acked(list, method, target, n);
        if (!decides) continue;
        groupSent = n;
        if (!killed && Date.now() - started >= BEFORE_KILL_MS) {
          killAt = n;
          killedAt = Date.now();
          killed = nodes[victim]?.kill();
        }
        if (killed && !movedAt && moving.every((c) => upgradesOf(c).length >= 2)) movedAt = Date.now();
        if (movedAt && Date.now() - movedAt >= AFTER_MOVE_MS) done = true;
        if (killed && !movedAt && Date.now() - killedAt > MOVE_MS) done = true; // the asserts below tell
      }
      done = true;
    };
    await Promise.all([
      sequence(ackedGroup, 'toGroup', GROUP, true),
      ...clients.map((c) => sequence(ackedUser.get(c.user) as number[], 'toUser', c.user, false)),
    ]);
    await withTimeout(killed ?? Promise.resolve(), 5000, 'the killed node to exit');
    totals.killedAfter = killAt;
    totals.groupSent = groupSent;
    const elapsed = Date.now() - started;

    // Everything acknowledged arrives in every page (or the wait ends and the comparison says what is missing).
    const expected = (client: Client) => [
      ...ackedGroup.map((n) => `g${n}`),
      ...(ackedUser.get(client.user) as number[]).map((n) => `u${n}`),
    ];
    await Promise.all(
      clients.map(
        (client) =>
          client.page
            .waitForFunction(
              (wanted) => {
                const got = new Set((window as unknown as PageApi).seen.received);
                return wanted.every((item) => got.has(item));
              },
              expected(client),
              { timeout: STEP_MS, polling: 50 },
            )
            .catch(() => {}), // what is missing is counted and asserted below
      ),
    );
    await delay(300); // anything late and extra (a duplicate) shows too
    const waited = Date.now() - started - elapsed;

    const reports: string[] = [];
    const failures: string[] = [];
    for (const client of clients) {
      const now = await seen(client);
      const group = now.received.filter((r) => r.startsWith('g')).map((r) => Number(r.slice(1)));
      const user = now.received.filter((r) => r.startsWith('u')).map((r) => Number(r.slice(1)));
      const other = now.received.filter((r) => !/^[gu]\d+$/.test(r));
      const userAcked = ackedUser.get(client.user) as number[];
      const g = compare(group, ackedGroup);
      const u = compare(user, userAcked);
      totals.messages += ackedGroup.length + userAcked.length;
      totals.lost += g.lost + u.lost;
      totals.duplicated += g.duplicated + u.duplicated;
      totals.reordered += g.reordered + u.reordered;
      const pid = await call(client, 'processId').catch((error: Error) => `(failed: ${error.message})`);
      const nowOn = nodeOfPid(pid);
      const moved = client.on === victim;
      const upgrades = upgradesOf(client);
      reports.push(
        `${client.name} (${client.protocol}) n${client.on}→n${nowOn}${moved ? ' (moved)' : ''}: ` +
          `group ${group.length}/${ackedGroup.length}, user ${user.length}/${userAcked.length}, ` +
          `lost ${g.lost + u.lost}, duplicated ${g.duplicated + u.duplicated}, reordered ${g.reordered + u.reordered}, ` +
          `reconnecting ${now.reconnecting}, closed ${now.closed}, upgrades ${upgrades.map((r) => `n${r.server}`).join(',')}`,
      );
      const check = (ok: boolean, what: string) => {
        if (!ok) failures.push(`${client.name}: ${what}`);
      };
      // Exactly the acknowledged messages (the sender's node lives: none of its sends fails), once, in order.
      check(
        JSON.stringify(group) === JSON.stringify(ackedGroup),
        `group messages once and in order (lost ${g.lost}, duplicated ${g.duplicated}, reordered ${g.reordered})`,
      );
      check(
        JSON.stringify(user) === JSON.stringify(userAcked),
        `user messages once and in order (lost ${u.lost}, duplicated ${u.duplicated}, reordered ${u.reordered})`,
      );
      check(other.length === 0, `nothing else: ${other.slice(0, 5).join(', ')}`);
      check(now.reconnecting === 0, `no onreconnecting (got ${now.reconnecting})`);
      check(now.closed === 0, `no onclose (got ${now.closed}: ${now.closeError})`);
      check(now.state === 'Connected', `still connected (${now.state})`);
      check(now.connectionId === client.id, `same connection id (${client.id} → ${now.connectionId})`);
      check((await call(client, 'getConnectionId').catch(() => null)) === client.id, 'the hub sees the same id');
      check((await call(client, 'getUserId').catch(() => null)) === client.user, 'the hub sees the same user');
      if (moved) {
        const before = failures.length;
        check(nowOn >= 0 && nowOn !== victim, `now on another live node (process ${String(pid)})`);
        check(upgrades.length === 2, `exactly one reconnect (${upgrades.map(logLine).join(' | ')})`);
        check(
          upgrades[1]?.server === nowOn,
          `the reconnect went where it now is (${upgrades.map(logLine).join(' | ')})`,
        );
        if (failures.length === before && now.connectionId === client.id) totals.moved++;
      } else {
        check(nowOn === client.on, `still on n${client.on} (now n${nowOn})`);
        check(upgrades.length === 1, `no reconnect (${upgrades.map(logLine).join(' | ')})`);
      }
    }
    console.log(
      `killed n${victim} after group message ${killAt}; ${groupSent} sent to the group in ${elapsed} ms (then ${waited} ms for the last deliveries); ` +
        `reconnects answered ${movedAt ? `${movedAt - killedAt} ms after the kill` : 'never'}\n  ${reports.join('\n  ')}`,
    );
    if (!movedAt) failures.push(`not every page of the killed node reconnected on another node within ${MOVE_MS} ms`);
    assert.deepEqual(failures, [], `${reports.join('\n')}\n${diagnostics()}`);
    assert.deepEqual(senderErrors, [], "the sender's awaited sends all succeed (its node lives)");

    // The group and the users still work after the move, on every page.
    await sender.invoke('toGroup', GROUP, -1);
    for (const client of clients) await sender.invoke('toUser', client.user, -1);
    await Promise.all(
      clients.map((client) =>
        client.page.waitForFunction(
          () => {
            const got = (window as unknown as PageApi).seen.received;
            return got.includes('g-1') && got.includes('u-1');
          },
          undefined,
          { timeout: STEP_MS, polling: 50 },
        ),
      ),
    );
    assert.deepEqual(pageErrors, [], 'no errors in the pages');
  });
});
