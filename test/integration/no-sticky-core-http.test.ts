// No sticky sessions for Core clients over Server-Sent Events and long polling (issue 15): three Hubwire processes
// on the PostgreSQL backplane behind HAProxy in round robin, which balances every HTTP request on its own, so a
// connection's negotiate, event stream or polls, sends and DELETE land on different nodes. The official client
// (SSE: JSON; long polling: JSON and MessagePack) broadcasts, sends to users and groups, and answers client
// results; every delivery is checked once and in each sender's order, and HAProxy's log shows each connection's
// requests spread over the nodes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { dropSchema } from '../helpers/classic-node.js';
import { type ProtocolName, startClient, type TransportName } from '../helpers/clients.js';
import { nodesOfConnection } from '../helpers/connection-tokens.js';
import { type Haproxy, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { delay, waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const NODES = 3;
const SENDS = 20;
const KINDS: { transport: TransportName; protocol: ProtocolName }[] = [
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
];

interface Client {
  user: string;
  kind: (typeof KINDS)[number];
  connection: signalR.HubConnection;
  id: string;
  messages: string[];
  groupMessages: string[];
}

describe('Core clients over SSE and long polling behind round-robin HAProxy', { timeout: 120_000 }, () => {
  const schema = `hw_nosticky_http_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let proxy: Haproxy | undefined;
  const clients: Client[] = [];

  before(async () => {
    nodes = await startNodeProcesses(NODES, ['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', '200']);
    proxy = await startRoundRobin({ backends: nodes.map((node) => node.port) });
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.connection.stop().catch(() => {})));
    await proxy?.close();
    await Promise.all(nodes.map((node) => node.stop()));
    await dropSchema(DATABASE_URL, schema);
  });

  test('every request of a connection may land anywhere: messages, users, groups and client results work', async () => {
    const url = `${(proxy as Haproxy).url}/test`;
    for (const [i, kind] of KINDS.entries()) {
      const user = `user${i}`;
      const connection = await startClient(url, { ...kind, token: user });
      const client: Client = { user, kind, connection, id: '', messages: [], groupMessages: [] };
      connection.on('message', (text: string) => client.messages.push(text));
      connection.on('groupMessage', (group: string, text: string) => client.groupMessages.push(`${group}:${text}`));
      connection.on('answer', (question: string) => `${user} answers ${question}`);
      client.id = await connection.invoke('getConnectionId');
      assert.equal(await connection.invoke('getUserId'), user);
      clients.push(client);
    }

    // Broadcasts: every client gets every client's, once, in each sender's order.
    await Promise.all(
      clients.map(async (client) => {
        for (let n = 0; n < SENDS; n++) await client.connection.invoke('broadcast', `${client.user}#${n}`);
      }),
    );
    const expected = clients.length * SENDS;
    await waitFor(() => clients.every((c) => c.messages.length >= expected), 20_000, 'every broadcast everywhere');
    let lost = 0;
    let duplicated = 0;
    let reordered = 0;
    for (const receiver of clients) {
      for (const sender of clients) {
        const seen = receiver.messages
          .filter((m) => m.startsWith(`${sender.user}#`))
          .map((m) => Number(m.split('#')[1]));
        lost += SENDS - new Set(seen).size;
        duplicated += seen.length - new Set(seen).size;
        if (seen.some((n, k) => k > 0 && n < (seen[k - 1] as number))) reordered++;
      }
    }
    assert.deepEqual({ lost, duplicated, reordered }, { lost: 0, duplicated: 0, reordered: 0 });

    // Users, groups and client results between clients on different transports (and so on different nodes).
    for (const [i, client] of clients.entries()) {
      const peer = clients[(i + 1) % clients.length] as Client;
      await client.connection.invoke('toUser', peer.user, `to-${peer.user}`);
      assert.equal(await client.connection.invoke('askClient', peer.id, 'q'), `${peer.user} answers q`);
    }
    const members = clients.filter((_, i) => i % 2 === 0);
    for (const member of members) await member.connection.invoke('joinGroup', 'evens');
    await (clients[1] as Client).connection.invoke('toGroup', 'evens', 'hello evens');
    await waitFor(
      () =>
        clients.every((c) => c.messages.includes(`to-${c.user}`)) &&
        members.every((c) => c.groupMessages.includes('evens:hello evens')),
      10_000,
      'user and group sends',
    );
    await delay(300); // a quiet period: a duplicate would show up in it
    for (const client of clients) {
      assert.equal(client.messages.filter((m) => m === `to-${client.user}`).length, 1);
      assert.equal(client.groupMessages.length, members.includes(client) ? 1 : 0);
    }

    // HAProxy's log: each connection's requests (its token in the query) spread over the nodes.
    const requests = (proxy as Haproxy).requests;
    const perConnection = clients.map((client) => nodesOfConnection(requests, client.id).length);
    console.log(
      `[no-sticky-core-http] connections ${clients.length} (${clients.map((c) => `${c.kind.transport}/${c.kind.protocol}`).join(', ')}), nodes per connection ${JSON.stringify(perConnection)}, deliveries ${expected * clients.length}, lost ${lost}, duplicated ${duplicated}, reordered ${reordered}`,
    );
    assert.ok(
      perConnection.every((n) => n >= 2),
      'every connection used more than one node',
    );

    // Stopping through the proxy (long polling's DELETE lands anywhere) ends the connection on its node.
    for (const client of clients) await client.connection.stop();
    await waitFor(
      async () => {
        const counts = await Promise.all(
          nodes.map(async (node) => {
            const text = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
            return /^hubwire_connections\{[^}]*hubwire_hub="\/test"[^}]*\} [1-9]/m.test(text);
          }),
        );
        return counts.every((busy) => !busy);
      },
      10_000,
      'every node to drop its connections',
    );
  });
});
