// No sticky sessions for Core (@microsoft/signalr) clients over WebSockets (issue 15's interop proof, WebSockets
// slice): three Hubwire processes on the PostgreSQL backplane behind a real HAProxy in round robin with no affinity,
// which balances every HTTP request on its own. The official client, JSON and MessagePack, negotiates through the
// proxy and its WebSocket upgrade lands on whichever node comes next. From HAProxy's log (logged as soon as each
// answer's headers arrive, so an open WebSocket's 101 is there), connecting the clients one at a time, each client's
// negotiate and upgrade are the last two requests: the test reports on which nodes they landed and requires that the
// connection works when they differ. Then, between clients whose WebSockets are on different nodes: broadcasts,
// sends to users, groups (join, send, leave), sends by connection id and client results, each delivered once and
// in each sender's order. Last, tokens: forged, another user's and spent ones are refused by every node directly.
// Server-Sent Events and long polling across nodes: no-sticky-core-http.test.ts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { dropSchema } from '../helpers/classic-node.js';
import { type ProtocolName, startClient } from '../helpers/clients.js';
import { type Haproxy, type ProxiedRequest, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { cleanUpSteps, delay, settle, waitFor, withTimeout } from '../helpers/wait.js';
import {
  bearer,
  HubSocket,
  negotiate,
  RawSocket,
  RS,
  type Target,
  upgradeStatus,
  wsUrl,
} from '../helpers/wire-client.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const HEARTBEAT_MS = 200;
const NODES = 3;
/** Clients per protocol; connected alternately (json, messagepack, json, …). */
const PER_PROTOCOL = 6;
const PROTOCOLS: ProtocolName[] = ['json', 'messagepack'];
/** Any one wait for deliveries. */
const DELIVERY_MS = 10_000;
/** After everything expected arrived: how long a duplicate has to show up. */
const QUIET_MS = 300;
/** Broadcasts each client sends. */
const BROADCASTS = 3;

interface Client {
  name: string;
  user: string;
  protocol: ProtocolName;
  connection: signalR.HubConnection;
  id: string;
  /** Server indexes (in the proxy's backend list) that answered the negotiate and the upgrade. */
  negotiatedOn: number;
  upgradedOn: number;
  /** `message(text)` and `groupMessage(group, text)` calls, as `text` and `group:text`. */
  messages: string[];
  groupMessages: string[];
}

/** Deliveries checked, for the summary line. */
const totals = { messages: 0, lost: 0, duplicated: 0, reordered: 0, unexpected: 0 };

describe('Core clients behind round-robin HAProxy, no sticky sessions (WebSockets)', { timeout: 120_000 }, () => {
  const schema = `hw_nosticky_core_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let proxy: Haproxy | undefined;
  const clients: Client[] = [];
  const sockets: HubSocket[] = [];
  const tokenChecks = { refused: 0, total: 0 };

  before(async () => {
    nodes = await startNodeProcesses(NODES, [
      '--backplane',
      DATABASE_URL,
      '--schema',
      schema,
      '--heartbeat-ms',
      String(HEARTBEAT_MS),
    ]);
    proxy = await startRoundRobin({ backends: nodes.map((node) => node.port), logAsap: true });
  });

  after(async () => {
    const crossed = clients.filter((c) => c.negotiatedOn !== c.upgradedOn).length;
    const perNode = nodes.map((_, i) => clients.filter((c) => c.upgradedOn === i).length);
    console.log(
      `[no-sticky-core] connections ${clients.length} (${PROTOCOLS.map((p) => `${p} ${clients.filter((c) => c.protocol === p).length}`).join(', ')}), ` +
        `crossed nodes ${crossed}, websockets per node [${perNode.join(', ')}], messages ${totals.messages}, ` +
        `lost ${totals.lost}, duplicated ${totals.duplicated}, reordered ${totals.reordered}, ` +
        `unexpected ${totals.unexpected}, bad tokens refused ${tokenChecks.refused}/${tokenChecks.total}`,
    );
    const steps: [string, () => Promise<unknown>][] = [
      ['clients', () => Promise.all(clients.map((c) => c.connection.stop().catch(() => {})))],
      [
        'raw sockets',
        async () => {
          for (const socket of sockets) socket.close();
        },
      ],
      ['haproxy', async () => proxy?.close()],
      ['nodes', () => Promise.all(nodes.map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ];
    await cleanUpSteps(steps);
  });

  const proxyTarget = (): Target => ({ url: `${proxy?.url}/test`, port: proxy?.port as number });
  const nodeTarget = (node: NodeProcess): Target => ({ url: node.url, port: node.port });
  const logLine = (r: ProxiedRequest | undefined) => (r ? `n${r.server} ${r.status} ${r.method} ${r.uri}` : '-');

  /** Node stderr and HAProxy's, for failure messages. */
  function diagnostics(): string {
    const tail = (text: string) => (text.length > 1500 ? `…${text.slice(-1500)}` : text);
    return [
      ...nodes.map((n, i) => `node${i} stderr: ${tail(n.stderr.join('')) || '(empty)'}`),
      `haproxy: ${tail(proxy?.stderr ?? '')}`,
      `last requests:\n${(proxy?.requests ?? []).slice(-8).map(logLine).join('\n')}`,
    ].join('\n');
  }

  /** Connects one client through the proxy; reads where its negotiate and upgrade went from HAProxy's log. */
  async function connect(name: string, protocol: ProtocolName): Promise<Client> {
    const log = (proxy as Haproxy).requests;
    const before = log.length;
    const user = `user-${name}`;
    let connection: signalR.HubConnection;
    try {
      connection = await withTimeout(
        startClient(`${proxy?.url}/test`, { transport: 'WebSockets', protocol, token: user }),
        10_000,
        `${name} starting`,
      );
    } catch (error) {
      throw new Error(
        `${name} (${protocol}) could not start through the proxy: ${(error as Error).message}\n${diagnostics()}`,
      );
    }
    // HAProxy also logs connections that sent no request (its readiness probe): not requests of a client.
    const requestsSince = () => log.slice(before).filter((r) => r.method !== '<BADREQ>');
    await waitFor(() => requestsSince().length >= 2, 5000, `HAProxy to log ${name}'s negotiate and upgrade`);
    const mine = requestsSince();
    assert.equal(
      mine.length,
      2,
      `only ${name}'s two requests went through the proxy:\n${mine.map(logLine).join('\n')}`,
    );
    const [negotiated, upgraded] = mine as [ProxiedRequest, ProxiedRequest];
    assert.match(negotiated.uri, /^\/test\/negotiate\?/, logLine(negotiated));
    assert.equal(negotiated.status, 200, logLine(negotiated));
    assert.match(upgraded.uri, /^\/test\?(.*&)?id=/, logLine(upgraded));
    assert.equal(upgraded.status, 101, logLine(upgraded));
    const client: Client = {
      name,
      user,
      protocol,
      connection,
      id: connection.connectionId as string,
      negotiatedOn: negotiated.server,
      upgradedOn: upgraded.server,
      messages: [],
      groupMessages: [],
    };
    // Handlers of sends return nothing (a value would be a result the server did not ask for).
    connection.on('message', (text: string) => {
      client.messages.push(text);
    });
    connection.on('groupMessage', (group: string, text: string) => {
      client.groupMessages.push(`${group}:${text}`);
    });
    connection.on('answer', (question: string) => `${user} answers ${question}`);
    return client;
  }

  /** The clients, after the first test connected them all (no vacuous pass). */
  function connected(): Client[] {
    assert.equal(clients.length, PER_PROTOCOL * PROTOCOLS.length, 'every client connected (see the first test)');
    return clients;
  }

  /** Peers of a client whose WebSockets are on another node: the next such client, and the next of its protocol. */
  function peersOf(client: Client): Client[] {
    const all = connected();
    const start = all.indexOf(client);
    const after = [...all.slice(start + 1), ...all.slice(0, start)].filter((c) => c.upgradedOn !== client.upgradedOn);
    const peers = [after[0], after.find((c) => c.protocol === client.protocol)].filter((c): c is Client => !!c);
    assert.ok(peers.length > 0, `${client.name} has a peer on another node`);
    return [...new Set(peers)];
  }

  /**
   * Waits until every client got what `expected` lists for it (what `read` returns for it, items tagged
   * `<sender>#<n>` after any prefix), then a moment for duplicates; counts and asserts: each item once, nothing else,
   * each sender's items in order.
   */
  async function expectDeliveries(what: string, expected: Map<Client, string[]>, read: (c: Client) => string[]) {
    const complete = () => connected().every((c) => (expected.get(c) ?? []).every((item) => read(c).includes(item)));
    await settle(complete, DELIVERY_MS);
    await delay(QUIET_MS);
    const problems: string[] = [];
    for (const client of connected()) {
      const want = expected.get(client) ?? [];
      const got = read(client);
      const counts = new Map<string, number>();
      for (const item of got) counts.set(item, (counts.get(item) ?? 0) + 1);
      const missing = want.filter((item) => !counts.has(item));
      const duplicated = [...counts].filter(([, n]) => n > 1).map(([item]) => item);
      const unexpected = got.filter((item) => !want.includes(item));
      const sender = (item: string) => item.slice(0, item.lastIndexOf('#'));
      const reordered = [...new Set(want.map(sender))].filter((s) => {
        const mine = got.filter((item) => sender(item) === s && want.includes(item));
        return mine.join() !== want.filter((item) => sender(item) === s).join();
      });
      totals.messages += want.length;
      totals.lost += missing.length;
      totals.duplicated += duplicated.length;
      totals.unexpected += unexpected.length;
      totals.reordered += duplicated.length || missing.length ? 0 : reordered.length;
      if (missing.length || duplicated.length || unexpected.length || (reordered.length && !missing.length)) {
        problems.push(
          `${client.name} (${client.protocol}, websocket on n${client.upgradedOn}): got ${got.length} of ${want.length}` +
            `${missing.length ? `; missing ${missing.join(' ')}` : ''}` +
            `${duplicated.length ? `; duplicated ${duplicated.join(' ')}` : ''}` +
            `${unexpected.length ? `; unexpected ${unexpected.join(' ')}` : ''}` +
            `${reordered.length ? `; out of order from ${reordered.join(' ')}` : ''}`,
        );
      }
    }
    if (problems.length) assert.fail(`${what}:\n${problems.join('\n')}\n${diagnostics()}`);
  }

  /** Items of `list` with `prefix`, without it. */
  const tagged = (list: string[], prefix: string) =>
    list.filter((item) => item.startsWith(prefix)).map((item) => item.slice(prefix.length));

  test('clients connect one at a time through the proxy; negotiate and the upgrade land on different nodes', async () => {
    for (let i = 0; i < PER_PROTOCOL; i++) {
      for (const protocol of PROTOCOLS) clients.push(await connect(`${protocol}-${i}`, protocol));
    }
    // Each connection works where its WebSocket is, as the user that negotiated, with the id negotiate gave it.
    await Promise.all(
      clients.map(async (client) => {
        assert.equal(await client.connection.invoke('getConnectionId'), client.id, `${client.name}: connection id`);
        assert.equal(await client.connection.invoke('getUserId'), client.user, `${client.name}: user`);
      }),
    );
    const crossed = clients.filter((c) => c.negotiatedOn !== c.upgradedOn);
    console.log(
      `negotiate → upgrade per connection: ${clients.map((c) => `${c.name} n${c.negotiatedOn}→n${c.upgradedOn}`).join(', ')}; ` +
        `${crossed.length} of ${clients.length} crossed nodes`,
    );
    assert.ok(crossed.length > 0, 'at least one connection negotiated on one node and upgraded on another');
    // With three servers in round robin and nothing else going through the proxy, every one does.
    assert.equal(crossed.length, clients.length, 'every connection negotiated and upgraded on different nodes');
    const used = new Set(clients.map((c) => c.upgradedOn));
    assert.equal(used.size, NODES, 'the WebSockets are spread over every node');
  });

  test('broadcasts from every node reach every client once, in order', async () => {
    const all = connected();
    await Promise.all(
      all.map(async (client) => {
        for (let n = 1; n <= BROADCASTS; n++) await client.connection.invoke('broadcast', `all:${client.name}#${n}`);
      }),
    );
    const sent = all.flatMap((c) => Array.from({ length: BROADCASTS }, (_, n) => `${c.name}#${n + 1}`));
    await expectDeliveries('broadcast', new Map(all.map((c) => [c, sent])), (c) => tagged(c.messages, 'all:'));
  });

  test('sends to a user and to a connection id reach the client on another node, and only it', async () => {
    const all = connected();
    for (const [method, prefix, address] of [
      ['toUser', 'user:', (c: Client) => c.user],
      ['toClient', 'client:', (c: Client) => c.id],
    ] as const) {
      const expected = new Map<Client, string[]>();
      await Promise.all(
        all.map(async (sender) => {
          for (const peer of peersOf(sender)) {
            const tag = `${sender.name}>${peer.name}#1`;
            expected.set(peer, [...(expected.get(peer) ?? []), tag]);
            await sender.connection.invoke(method, address(peer), `${prefix}${tag}`);
          }
        }),
      );
      await expectDeliveries(method, expected, (c) => tagged(c.messages, prefix));
    }
  });

  test('groups span nodes: members on every node get what any node sends; those who left get nothing more', async () => {
    const all = connected();
    const group = 'red';
    const members = all.filter((_, i) => i % 4 < 2); // both protocols
    const leavers = members.filter((_, i) => i % 2 === 0);
    const stayers = members.filter((c) => !leavers.includes(c));
    assert.ok(new Set(members.map((c) => c.upgradedOn)).size > 1, 'the group has members on several nodes');
    assert.ok(new Set(stayers.map((c) => c.upgradedOn)).size > 1, 'and still does after some leave');
    await Promise.all(members.map((c) => c.connection.invoke('joinGroup', group)));
    const round = async (name: string, receivers: Client[]) => {
      // Everyone sends, members or not, from every node.
      await Promise.all(all.map((c) => c.connection.invoke('toGroup', group, `${name}:${c.name}#1`)));
      const sent = all.map((c) => `${c.name}#1`);
      await expectDeliveries(`toGroup (${name})`, new Map(receivers.map((c) => [c, sent])), (c) =>
        tagged(c.groupMessages, `${group}:${name}:`),
      );
    };
    await round('joined', members);
    await Promise.all(leavers.map((c) => c.connection.invoke('leaveGroup', group)));
    await round('left', stayers);
    await Promise.all(stayers.map((c) => c.connection.invoke('leaveGroup', group)));
  });

  test('client results: a client asks a client on another node, which answers', async () => {
    const all = connected();
    let asked = 0;
    await Promise.all(
      all.map(async (asker) => {
        for (const peer of peersOf(asker)) {
          const question = `from ${asker.name}`;
          const answer = await asker.connection.invoke('askClient', peer.id, question);
          assert.equal(
            answer,
            `${peer.user} answers ${question}`,
            `${asker.name} (n${asker.upgradedOn}) asked ${peer.name} (n${peer.upgradedOn})`,
          );
          asked++;
        }
      }),
    );
    totals.messages += 2 * asked; // the question and its answer
  });

  test('forged, other-user and spent tokens are refused by every node', async () => {
    const all = connected();
    const user = 'token-owner';
    const refuse = async (
      node: NodeProcess | 'proxy',
      token: string,
      headers: Record<string, string>,
      status: number,
      what: string,
    ) => {
      const target = node === 'proxy' ? proxyTarget() : nodeTarget(node);
      const where = node === 'proxy' ? 'through the proxy' : `on node ${nodes.indexOf(node)}`;
      tokenChecks.total++;
      assert.equal(await upgradeStatus(wsUrl(target, token), headers), status, `${what} ${where}`);
      tokenChecks.refused++;
    };
    // A real token, negotiated through the proxy.
    const negotiated = await negotiate(proxyTarget(), 'negotiateVersion=1', bearer(user));
    const token = negotiated.connectionToken as string;
    assert.ok(token && token !== negotiated.connectionId, 'a token distinct from the connection id');
    const negotiatedOn = (proxy as Haproxy).requests.at(-1)?.server;

    // Forged: one character changed, in the payload or in the MAC (the last one's low bits are padding in base64).
    const dot = token.indexOf('.');
    const flip = (at: number) => `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
    for (const at of [0, Math.floor(dot / 2), dot - 1, dot + 1, token.length - 1]) {
      for (const node of nodes) {
        await refuse(node, flip(at), bearer(user), 404, `the token with character ${at} changed`);
      }
    }
    // Another user, or nobody, presenting it.
    for (const node of nodes) {
      await refuse(node, token, bearer('mallory'), 403, "another user's token");
      await refuse(node, token, {}, 403, "an anonymous upgrade with a user's token");
    }

    // Spent: the owner starts its connection through the proxy (wherever that lands)…
    const raw = await RawSocket.open(wsUrl(proxyTarget(), token), bearer(user));
    const socket = new HubSocket(raw, 'json', token);
    sockets.push(socket);
    const startedOn = (proxy as Haproxy).requests.at(-1)?.server;
    socket.raw.send(`${JSON.stringify({ protocol: 'json', version: 1 })}${RS}`);
    assert.deepEqual((await socket.handshakeReply()).value, {});
    socket.invoke('1', 'getUserId', []);
    await socket.expectResult('1', user);
    // …and sends a marker after its node told the others (one outbox, in order): once a client on every node has the
    // marker, every node has heard the claim. A replay from then on is refused everywhere.
    socket.invoke('2', 'toOthers', ['spent-marker']);
    assert.equal((await socket.completion('2')).error ?? undefined, undefined, 'toOthers completed');
    for (let i = 0; i < NODES; i++) {
      assert.ok(
        all.some((c) => c.upgradedOn === i),
        `a client on node ${i}`,
      );
    }
    await waitFor(
      () => all.every((c) => c.messages.includes('spent-marker')),
      DELIVERY_MS,
      'the marker sent after the claim to reach every node',
    );
    for (const node of nodes) await refuse(node, token, bearer(user), 409, 'the spent token');
    for (let i = 0; i < NODES; i++) await refuse('proxy', token, bearer(user), 409, 'the spent token');
    // The connection that spent it still works.
    await socket.expectUsable('still');
    console.log(
      `tokens: negotiated on n${negotiatedOn}, started on n${startedOn}; ${tokenChecks.refused} forged/other-user/spent upgrades refused`,
    );
  });
});
