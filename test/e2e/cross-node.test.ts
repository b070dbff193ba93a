// Connections on any node (issue 15, first slice): with a backplane, negotiate on one node answers with a token
// every node can verify, so the connection's WebSocket may land on another node. Forged, other-user, expired and
// spent tokens are refused on every node; `stickySessions: true` keeps tokens local (ASP.NET Core's behaviour).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Backplane, getAccessToken, Hubwire, MemoryDatabase, MemoryStore } from 'hubwire';
import { TestHub } from '../helpers/test-hub.js';
import { waitFor } from '../helpers/wait.js';
import {
  bearer,
  connUrl,
  HubSocket,
  negotiate,
  RawSocket,
  RS,
  request,
  SseStream,
  type Target,
  upgradeStatus,
  wsUrl,
} from '../helpers/wire-client.js';

const servers: Hubwire[] = [];
after(async () => {
  await Promise.all(servers.map((hubwire) => hubwire.close()));
});

async function cluster(
  options: { stickySessions?: boolean; tokenAdoptionWindow?: number; longPollTimeout?: number } = {},
) {
  const database = new MemoryDatabase();
  const nodes: (Target & { hubwire: Hubwire })[] = [];
  for (let i = 0; i < 2; i++) {
    const backplane = new Backplane(new MemoryStore(database), { onError: () => {} });
    const hubwire = new Hubwire({
      backplane,
      authenticate: (request) => {
        const token = getAccessToken(request);
        return token ? { id: token } : undefined;
      },
      onError: () => {},
      ...options,
    });
    hubwire.mapHub('/test', TestHub);
    servers.push(hubwire);
    await hubwire.ready();
    const port = await hubwire.listen(0);
    nodes.push({ hubwire, port, url: `http://127.0.0.1:${port}/test` });
  }
  return nodes as [(typeof nodes)[number], (typeof nodes)[number]];
}

/** Opens the WebSocket of a token on `server` and completes the JSON handshake. */
async function connectWith(server: Target, token: string, headers: Record<string, string> = {}): Promise<HubSocket> {
  const socket = new HubSocket(await RawSocket.open(wsUrl(server, token), headers), 'json', token);
  socket.raw.send(`${JSON.stringify({ protocol: 'json', version: 1 })}${RS}`);
  assert.deepEqual((await socket.handshakeReply()).value, {});
  return socket;
}

describe('connections on any node', () => {
  test('negotiate on A, WebSocket on B: the connection lives on B and works both ways', async () => {
    const [a, b] = await cluster();
    const negotiated = await negotiate(a, 'negotiateVersion=1', bearer('alice'));
    const token = negotiated.connectionToken as string;
    assert.notEqual(token, negotiated.connectionId, 'the token is not the public id');
    assert.ok(!token.includes(negotiated.connectionId) || token.length > 60, 'the token is signed, not the id');
    const socket = await connectWith(b, token, bearer('alice'));
    socket.invoke('1', 'echo', ['hi']);
    await socket.expectResult('1', 'hi');
    socket.invoke('2', 'getConnectionId', []);
    await socket.expectResult('2', negotiated.connectionId);
    socket.invoke('3', 'getUserId', []);
    await socket.expectResult('3', 'alice');
    // The node that negotiated let its unused connection go once it heard the claim.
    await waitFor(() => a.hubwire.metrics.snapshot().connections.total === 0, 2000, 'A to hold nothing');
    assert.equal(b.hubwire.metrics.snapshot().connections.total, 1);
    socket.raw.terminate();
  });

  test('forged, other-user, spent and expired tokens are refused on every node', async () => {
    const [a, b] = await cluster({ tokenAdoptionWindow: 400 });
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    // Forged: one character of the payload changed, or a MAC that is not ours.
    const [payload = '', mac = ''] = token.split('.');
    const flipped = `${payload.slice(0, -2)}${payload.at(-2) === 'A' ? 'B' : 'A'}${payload.at(-1)}.${mac}`;
    for (const node of [a, b]) {
      assert.equal(await upgradeStatus(wsUrl(node, flipped), bearer('alice')), 404);
      assert.equal(await upgradeStatus(wsUrl(node, `${payload}.${'A'.repeat(22)}`), bearer('alice')), 404);
      assert.equal(await upgradeStatus(wsUrl(node, 'not-a-token'), bearer('alice')), 404);
    }
    // Another user (or nobody) presenting alice's token.
    assert.equal(await upgradeStatus(wsUrl(b, token), bearer('mallory')), 403);
    assert.equal(await upgradeStatus(wsUrl(b, token)), 403);
    // Spent: once the connection started on B, neither A nor B starts another with it.
    const socket = await connectWith(b, token, bearer('alice'));
    socket.invoke('1', 'echo', [1]);
    await socket.expectResult('1', 1);
    await waitFor(async () => (await upgradeStatus(wsUrl(a, token), bearer('alice'))) === 409, 2000, 'A to refuse');
    assert.equal(await upgradeStatus(wsUrl(b, token), bearer('alice')), 409);
    socket.raw.terminate();
    // Expired: a token not used within the adoption window starts nothing on another node.
    const late = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await upgradeStatus(wsUrl(b, late), bearer('alice')), 404);
    // Both nodes' metrics count the refusals of tokens from elsewhere (B's own connection refuses locally).
    let metrics = '';
    for (const node of [a, b]) {
      node.hubwire.mapMetrics();
      metrics += await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
    }
    for (const [reason, least] of [
      ['forged', 6],
      ['user', 2],
      ['spent', 1],
      ['expired', 1],
    ] as const) {
      const pattern = new RegExp(
        `^hubwire_cross_node_tokens_refused_total\\{hubwire_token_refusal="${reason}"\\} (\\d+)$`,
        'gm',
      );
      const total = [...metrics.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
      assert.ok(total >= least, `${reason}: ${total}`);
    }
  });

  test('a token of one hub does not open another hub', async () => {
    const [a, b] = await cluster();
    b.hubwire.mapHub('/other', TestHub);
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    const other = { port: b.port, url: `http://127.0.0.1:${b.port}/other` };
    assert.equal(await upgradeStatus(wsUrl(other, token), bearer('alice')), 404);
  });

  test('Server-Sent Events: the stream on B, the POSTs on A and B alike; in order, results on the stream', async () => {
    const [a, b] = await cluster();
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    const stream = await SseStream.open(connUrl(b, token), bearer('alice'));
    const post = (node: Target, body: string) =>
      request('POST', connUrl(node, token), { headers: bearer('alice'), body });
    assert.equal((await post(a, `${JSON.stringify({ protocol: 'json', version: 1 })}${RS}`)).status, 200);
    assert.equal(await stream.events.next('handshake reply'), `{}${RS}`);
    // Sends alternate between the nodes; each POST is answered once the holder (B) took it, so order is kept.
    for (let i = 0; i < 10; i++) {
      const node = i % 2 ? b : a;
      const invocation = { type: 1, invocationId: String(i), target: 'add', arguments: [i, 1] };
      assert.equal((await post(node, `${JSON.stringify(invocation)}${RS}`)).status, 200);
    }
    const results: unknown[] = [];
    while (results.length < 10) {
      const text = await stream.events.next('completions');
      for (const part of text.split(RS).filter(Boolean)) {
        const message = JSON.parse(part) as { type: number; invocationId?: string; result?: unknown };
        if (message.type === 3) results.push([message.invocationId, message.result]);
      }
    }
    assert.deepEqual(
      results,
      Array.from({ length: 10 }, (_, i) => [String(i), i + 1]),
    );
    // A second event stream with the same token is refused on either node.
    for (const node of [a, b]) {
      const second = await request('GET', connUrl(node, token), {
        headers: { ...bearer('alice'), Accept: 'text/event-stream' },
      });
      assert.equal(second.status, 409);
    }
    // Another user's POST with the token is refused wherever it lands.
    assert.equal((await request('POST', connUrl(a, token), { headers: bearer('mallory'), body: 'x' })).status, 403);
    stream.close();
  });

  test('long polling: polls, sends and the DELETE on either node; nothing lost, nothing twice, in order', async () => {
    const [a, b] = await cluster();
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    const poll = (node: Target) => request('GET', connUrl(node, token), { headers: bearer('alice') });
    const post = (node: Target, body: string) =>
      request('POST', connUrl(node, token), { headers: bearer('alice'), body });
    // The first poll starts the connection on B; the handshake is sent through A.
    assert.deepEqual([(await poll(b)).status], [200]);
    assert.equal((await post(a, `${JSON.stringify({ protocol: 'json', version: 1 })}${RS}`)).status, 200);
    const received: string[] = [];
    const drain = async (node: Target) => {
      const answer = await poll(node);
      assert.equal(answer.status, 200);
      received.push(...answer.body.split(RS).filter(Boolean));
    };
    await drain(a);
    assert.deepEqual(received.shift(), '{}', 'the handshake reply, polled through A');
    for (let i = 0; i < 6; i++) {
      const invocation = { type: 1, invocationId: String(i), target: 'add', arguments: [i, 1] };
      assert.equal((await post(i % 2 ? a : b, `${JSON.stringify(invocation)}${RS}`)).status, 200);
      await drain(i % 2 ? b : a);
    }
    const completions = received
      .map((text) => JSON.parse(text) as { type: number; invocationId?: string; result?: unknown })
      .filter((message) => message.type === 3)
      .map((message) => [message.invocationId, message.result]);
    assert.deepEqual(
      completions,
      Array.from({ length: 6 }, (_, i) => [String(i), i + 1]),
    );
    // DELETE through A stops the connection held by B.
    assert.equal((await request('DELETE', connUrl(a, token), { headers: bearer('alice') })).status, 202);
    await waitFor(() => b.hubwire.metrics.snapshot().connections.total === 0, 2000, 'B to drop the connection');
    assert.equal((await poll(a)).status, 404);
    // The metrics say what happened where.
    const text = async (node: Target) => (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
    a.hubwire.mapMetrics();
    b.hubwire.mapMetrics();
    const [promA, promB] = [await text(a), await text(b)];
    assert.match(promB, /^hubwire_cross_node_adopted_total 1$/m);
    assert.match(promA, /^hubwire_cross_node_forwarded_total\{hubwire_request_kind="poll"\} [4-9]$/m);
    assert.match(promA, /^hubwire_cross_node_forwarded_total\{hubwire_request_kind="stop"\} 1$/m);
    assert.match(promB, /^hubwire_cross_node_served_total\{hubwire_request_kind="send"\} [3-9]$/m);
  });

  test('a forwarded poll whose client goes away loses nothing: the next poll gets what was sent meanwhile', async () => {
    const [a, b] = await cluster();
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    const poll = (node: Target) => request('GET', connUrl(node, token), { headers: bearer('alice') });
    const post = (node: Target, body: string) =>
      request('POST', connUrl(node, token), { headers: bearer('alice'), body });
    assert.equal((await poll(b)).status, 200); // starts the connection on B
    assert.equal((await post(a, `${JSON.stringify({ protocol: 'json', version: 1 })}${RS}`)).status, 200);
    assert.equal((await poll(a)).body, `{}${RS}`);
    // A poll through A is held (nothing to send), then abandoned by its client.
    const controller = new AbortController();
    const abandoned = fetch(connUrl(a, token), { headers: bearer('alice'), signal: controller.signal }).catch(
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await abandoned;
    await new Promise((resolve) => setTimeout(resolve, 100));
    // What is sent now waits for the next poll instead of going to the abandoned one.
    const invocation = { type: 1, invocationId: '1', target: 'add', arguments: [2, 3] };
    assert.equal((await post(b, `${JSON.stringify(invocation)}${RS}`)).status, 200);
    const next = await poll(a);
    assert.equal(next.status, 200);
    assert.deepEqual(JSON.parse(next.body.split(RS)[0] as string), { type: 3, invocationId: '1', result: 5 });
  });

  test('a forwarded poll that times out empty is answered 200 empty, at the poll timeout', async () => {
    const [a, b] = await cluster({ longPollTimeout: 300 });
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    const poll = (node: Target) => request('GET', connUrl(node, token), { headers: bearer('alice') });
    assert.equal((await poll(b)).status, 200); // starts the connection on B
    const started = Date.now();
    const empty = await poll(a);
    assert.deepEqual([empty.status, empty.body], [200, '']);
    assert.ok(Date.now() - started < 2000, `answered at the poll timeout, not later (${Date.now() - started} ms)`);
  });

  test('stickySessions: true keeps tokens on the node that issued them', async () => {
    const [a, b] = await cluster({ stickySessions: true });
    const token = (await negotiate(a, 'negotiateVersion=1', bearer('alice'))).connectionToken as string;
    assert.equal(await upgradeStatus(wsUrl(b, token), bearer('alice')), 404);
    const socket = await connectWith(a, token, bearer('alice'));
    socket.invoke('1', 'echo', ['ok']);
    await socket.expectResult('1', 'ok');
    socket.raw.terminate();
  });
});
