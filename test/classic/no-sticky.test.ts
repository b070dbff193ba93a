// No sticky sessions, at the wire level: two nodes on one backplane (two streams, so cursors carry a position per
// stream), and a classic connection whose requests alternate between them. Every message published while the
// client polls here, there or nowhere arrives once, in each publisher's order; group changes made on one node
// follow the connection to the other; the node a client left does not report it disconnected, the last one does,
// once; /abort on either node ends it everywhere. No `classicKey` is given: the nodes share the token keys through
// the backplane's database.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Backplane, Hubwire, MemoryDatabase, MemoryStore } from 'hubwire';
import { createTestHub, newObservations, type Observations } from '../helpers/test-hub.js';
import { delay, waitFor } from '../helpers/wait.js';
import { http, type Negotiated, negotiate, routeUrl, userFromQuery } from './fixture.js';
import { openStream } from './wire.js';

const DISCONNECT_TIMEOUT = 1500;

interface Node {
  hubwire: Hubwire;
  base: string;
  observations: Observations;
  /** Sends `message(text)` to everyone from this node. */
  broadcast(text: string): Promise<void>;
  toGroup(group: string, text: string): Promise<void>;
}

async function startNode(
  database: MemoryDatabase,
  home?: number,
  engineOptions: ConstructorParameters<typeof Backplane>[1] = {},
): Promise<Node> {
  const observations = newObservations();
  let backplane: Backplane;
  do {
    backplane = new Backplane(new MemoryStore(database), {
      pollInterval: { min: 2, max: 10 },
      onError: () => {},
      ...engineOptions,
    });
  } while (home !== undefined && backplane.homeStream !== home);
  const hubwire = new Hubwire({
    backplane,
    authenticate: userFromQuery,
    onError: () => {},
  });
  hubwire.mapHub('/test', createTestHub(observations));
  hubwire.mapClassicHubs('/signalr', { TestHub: '/test' }, { disconnectTimeout: DISCONNECT_TIMEOUT });
  const port = await hubwire.listen(0, '127.0.0.1');
  await hubwire.ready();
  const hub = hubwire.hub('/test');
  return {
    hubwire,
    base: `http://127.0.0.1:${port}`,
    observations,
    // Stored before they resolve (a send resolves on acceptance): these tests move clients right after sending.
    broadcast: async (text) => {
      await hub.clients.all.send('message', text);
      await backplane.flush();
    },
    toGroup: async (group, text) => {
      await hub.clients.group(group).send('groupMessage', group, text);
      await backplane.flush();
    },
  };
}

interface Envelope {
  C?: string;
  M?: { H: string; M: string; A: unknown[] }[];
  G?: string;
  S?: number;
  E?: string;
}

/** A long-polling client whose every request goes to the node the test names. */
class Poller {
  cursor = '';
  groupsToken = '';
  readonly received: string[] = [];

  constructor(
    readonly negotiated: Negotiated,
    readonly user: string,
  ) {}

  url(node: Node, route: string): string {
    return routeUrl(node.base, route, this.negotiated, 'longPolling', { user: this.user });
  }

  private take(body: string): Envelope {
    const envelope = JSON.parse(body) as Envelope;
    if (envelope.C !== undefined) this.cursor = envelope.C;
    if (envelope.G !== undefined) this.groupsToken = envelope.G;
    for (const m of envelope.M ?? []) this.received.push(m.A.map(String).join(':'));
    return envelope;
  }

  async connect(node: Node): Promise<void> {
    const response = await http(this.url(node, 'connect'), { form: {} });
    assert.equal(response.status, 200, response.body);
    assert.equal(this.take(response.body).S, 1);
  }

  /** One poll (held until there is something, or `hold` ms pass: then the request is dropped). */
  async poll(node: Node, hold = 300): Promise<Envelope | undefined> {
    const form: Record<string, string> = { messageId: this.cursor };
    if (this.groupsToken) form.groupsToken = this.groupsToken;
    try {
      const response = await http(this.url(node, 'poll'), { form, timeoutMs: hold });
      assert.equal(response.status, 200, response.body);
      return this.take(response.body);
    } catch (error) {
      if (/timed out/.test((error as Error).message)) return undefined;
      throw error;
    }
  }

  async send(node: Node, method: string, ...args: unknown[]): Promise<unknown> {
    const data = JSON.stringify({ H: 'testhub', M: method, A: args, I: 0 });
    const response = await http(this.url(node, 'send'), { form: { data } });
    assert.equal(response.status, 200, response.body);
    const result = JSON.parse(response.body) as { R?: unknown; E?: string };
    assert.equal(result.E, undefined, `hub error: ${result.E}`);
    return result.R;
  }
}

function checkExactlyOnceInOrder(received: string[], expected: string[]): void {
  const seen = new Map<string, number>();
  for (const item of received) seen.set(item, (seen.get(item) ?? 0) + 1);
  const missing = expected.filter((item) => !seen.has(item));
  const duplicated = [...seen].filter(([, count]) => count > 1).map(([item]) => item);
  assert.deepEqual({ missing, duplicated }, { missing: [], duplicated: [] }, `received: ${received.join(' ')}`);
  // Each publisher's own order holds.
  for (const prefix of new Set(expected.map((item) => item.split('-')[0]))) {
    const mine = received.filter((item) => item.split('-')[0] === prefix);
    assert.deepEqual(
      mine,
      expected.filter((item) => item.split('-')[0] === prefix),
      `order of ${prefix}`,
    );
  }
}

describe('classic connections without sticky sessions (two nodes, one backplane)', () => {
  const database = new MemoryDatabase(2);
  let a: Node;
  let b: Node;

  before(async () => {
    a = await startNode(database);
    b = await startNode(database);
  });
  after(async () => {
    await a?.hubwire.close();
    await b?.hubwire.close();
  });

  test('long polls alternating between nodes get every message once, in order, with their groups', async () => {
    const client = new Poller(await negotiate(a.base, 'ann'), 'ann');
    await client.connect(a);
    // /start lands on the other node: onConnected runs there.
    const started = await http(client.url(b, 'start'));
    assert.equal(started.status, 200, started.body);
    assert.deepEqual(b.observations.connected, [client.negotiated.ConnectionId]);
    // Joined through node B while the transport is on A: the change crosses the backplane.
    await client.send(b, 'joinGroup', 'room');
    const expected: string[] = [];
    let n = 0;
    const publish = async (node: Node, name: string) => {
      const text = `${name}-${++n}`;
      expected.push(text);
      await node.broadcast(text);
    };
    const publishToGroup = async (node: Node, name: string) => {
      const text = `${name}-${++n}`;
      expected.push(`room:${text}`);
      await node.toGroup('room', text);
    };
    const nodes = [a, b];
    for (let round = 0; round < 12; round++) {
      // Every poll goes to the other node than the last one. Published while no poll is held, on both nodes:
      // the node that answered the last poll has them; the next poll is on the other one.
      await publish(a, 'A');
      await publish(b, 'B');
      await publishToGroup(round % 2 ? a : b, round % 2 ? 'GA' : 'GB');
      const held = client.poll(nodes[round % 2] as Node, 2000);
      // And while the poll is held.
      await delay(30);
      await publish(b, 'B');
      await publish(a, 'A');
      await held;
    }
    // Collect what is still on its way, alternating nodes.
    for (let i = 0; i < 6 && !expected.every((item) => client.received.includes(item)); i++) {
      await client.poll(nodes[i % 2] as Node);
    }
    checkExactlyOnceInOrder(client.received, expected);
    // The groups token the client holds names the group, wherever it was issued.
    assert.ok(client.groupsToken, 'the client received a groups token');
  });

  test("a long poll that reaches a node before the client's /start does: /start there still runs onConnected", async () => {
    // jQuery's long polling polls right after /connect, beside /start: the poll may land first, on another node.
    const client = new Poller(await negotiate(a.base, 'pam'), 'pam');
    const id = client.negotiated.ConnectionId;
    await client.connect(a);
    const held = client.poll(b, 1000);
    await delay(100); // the poll is held on node B
    const started = await http(client.url(b, 'start'));
    assert.equal(started.status, 200, started.body);
    assert.ok([...a.observations.connected, ...b.observations.connected].includes(id), 'onConnected ran on some node');
    // The client stops: the held poll ends with it (not at the poll's 110 s connection timeout).
    await http(client.url(b, 'abort'), { form: {} });
    await held;
    await waitFor(
      () => [...a.observations.disconnected, ...b.observations.disconnected].some((d) => d.id === id),
      5000,
      'the disconnect',
    );
  });

  test('the node a client left does not report it disconnected; the last one does, once', async () => {
    const client = new Poller(await negotiate(b.base, 'bob'), 'bob');
    const id = client.negotiated.ConnectionId;
    await client.connect(b);
    assert.equal((await http(client.url(a, 'start'))).status, 200);
    // Keep polling, alternating, for longer than the disconnect timeout.
    const until = Date.now() + DISCONNECT_TIMEOUT * 2;
    let i = 0;
    while (Date.now() < until) {
      const node = i++ % 2 ? a : b;
      const held = client.poll(node, 400);
      await delay(50);
      await node.broadcast(`tick-${i}`);
      await held;
    }
    const reported = () =>
      [...a.observations.disconnected, ...b.observations.disconnected].filter((entry) => entry.id === id);
    assert.deepEqual(reported(), [], 'no disconnect while the client polls');
    // Now the client goes away: exactly one node reports it, once.
    await waitFor(() => reported().length > 0, DISCONNECT_TIMEOUT * 4, 'the disconnect');
    await delay(DISCONNECT_TIMEOUT * 1.5);
    assert.equal(reported().length, 1, JSON.stringify(reported()));
  });

  test('a stream that breaks on one node resumes on the other from its cursor', async () => {
    const negotiated = await negotiate(a.base, 'cat');
    const sse = (node: Node, route: string, extra: Record<string, string> = {}) =>
      routeUrl(node.base, route, negotiated, 'serverSentEvents', { user: 'cat', ...extra });
    const first = await openStream(sse(a, 'connect'));
    await first.waitFor(/"S":1/);
    assert.equal((await http(sse(a, 'start'))).status, 200);
    await a.broadcast('S-1');
    await b.broadcast('S-2');
    await first.waitFor(/S-2/);
    const cursors = [...first.text().matchAll(/"C":"([^"]+)"/g)].map((m) => m[1] as string);
    const cursor = cursors.at(-1) as string;
    first.close();
    // While the client has no transport anywhere.
    await b.broadcast('S-3');
    await a.broadcast('S-4');
    const second = await openStream(sse(b, 'reconnect', { messageId: cursor }));
    await second.waitFor(/S-4/);
    await a.broadcast('S-5');
    await second.waitFor(/S-5/);
    const texts = [...second.text().matchAll(/"(S-\d)"/g)].map((m) => m[1]);
    assert.deepEqual(texts, ['S-3', 'S-4', 'S-5']);
    second.close();
    await http(sse(a, 'abort'), { form: {} });
  });

  test('a move while the database is unreachable replays what was missed (from memory), reporting no disconnect', async () => {
    const client = new Poller(await negotiate(a.base, 'eve'), 'eve');
    const id = client.negotiated.ConnectionId;
    await client.connect(a);
    assert.equal((await http(client.url(a, 'start'))).status, 200);
    const first = client.poll(a, 3000);
    await delay(30);
    await a.broadcast('D-1');
    await first;
    await a.broadcast('D-2');
    database.down = true;
    try {
      // B cannot read the rows after the client's cursor yet: the poll is held, nothing is reported.
      const moved = client.poll(b, 5000);
      await delay(400);
      const reported = [...a.observations.disconnected, ...b.observations.disconnected].filter((e) => e.id === id);
      assert.deepEqual(reported, []);
      database.down = false;
      await moved;
    } finally {
      database.down = false;
    }
    assert.deepEqual(client.received, ['D-1', 'D-2']);
    await http(client.url(b, 'abort'), { form: {} });
  });

  test('forged cursors: malformed, another installation, far ahead, far behind: clear answers, nothing extra', async () => {
    const client = new Poller(await negotiate(a.base, 'ivy'), 'ivy');
    await client.connect(a);
    assert.equal((await http(client.url(a, 'start'))).status, 200);
    const position = client.cursor.split('.').slice(1);
    const tag = position[0] as string;
    const poll = async (node: Node, messageId: string) => {
      const held = http(client.url(node, 'poll'), { form: { messageId }, timeoutMs: 9000 });
      await delay(50);
      await node.broadcast(`F-${messageId.length}`);
      const response = await held;
      assert.equal(response.status, 200, response.body);
      return JSON.parse(response.body) as Envelope;
    };
    // Not a cursor at all, and a position of another backplane installation: this node goes on from now.
    for (const messageId of ['garbage', `x-1.other0.${position.slice(1).join('.')}`]) {
      const envelope = await poll(b, messageId);
      assert.deepEqual(
        envelope.M?.map((m) => m.A[0]),
        [`F-${messageId.length}`],
      );
    }
    // Far ahead of the backplane: the client claims it has everything up to there, so nothing below it is sent;
    // the node waits a bounded time (5 s) for positions that never come, then serves what comes next.
    const ahead = `x-1.${tag}.${position
      .slice(1)
      .map(() => 'zzzzzz')
      .join('.')}`;
    const started = Date.now();
    const held = http(client.url(a, 'poll'), { form: { messageId: ahead }, timeoutMs: 9000 });
    await delay(5500);
    await a.broadcast('F-after');
    const late = JSON.parse((await held).body) as Envelope;
    assert.ok(Date.now() - started < 8000, 'bounded wait');
    assert.deepEqual(
      late.M?.map((m) => m.A[0]),
      ['F-after'],
    );
    // From the very start: only what was addressed to this connection comes back (broadcasts), never others' sends.
    const behind = `x-1.${tag}.${position
      .slice(1)
      .map(() => '0')
      .join('.')}`;
    const replayed = JSON.parse(
      (await http(client.url(b, 'poll'), { form: { messageId: behind }, timeoutMs: 9000 })).body,
    ) as Envelope;
    const texts = (replayed.M ?? []).map((m) => String(m.A[0]));
    assert.ok(texts.length > 0, 'replayed the broadcasts since the start');
    assert.ok(
      texts.every((text) => !text.startsWith('room:')),
      `no group messages of groups it never joined: ${texts.join(' ')}`,
    );
    await http(client.url(a, 'abort'), { form: {} });
  });

  test('/abort on the node that does not hold the connection ends it everywhere, reported once', async () => {
    const client = new Poller(await negotiate(a.base, 'dan'), 'dan');
    const id = client.negotiated.ConnectionId;
    await client.connect(a);
    assert.equal((await http(client.url(a, 'start'))).status, 200);
    const held = client.poll(a, 3000);
    await delay(50);
    const aborted = await http(client.url(b, 'abort'), { form: {} });
    assert.equal(aborted.status, 200);
    const ending = await held;
    assert.ok(ending, 'the held poll was answered');
    const reported = () =>
      [...a.observations.disconnected, ...b.observations.disconnected].filter((entry) => entry.id === id);
    await waitFor(() => reported().length === 1, 3000, 'the disconnect');
    const late = await http(client.url(b, 'poll'), { form: { messageId: client.cursor } });
    assert.match(late.body, /"E":"The connection has ended\."/);
    await delay(200);
    assert.equal(reported().length, 1);
  });
});

describe('classic moves with nodes writing to different streams', () => {
  const database = new MemoryDatabase(2);
  let x: Node;
  let y: Node;
  before(async () => {
    x = await startNode(database, 0);
    y = await startNode(database, 1);
  });
  after(async () => {
    await x?.hubwire.close();
    await y?.hubwire.close();
  });

  test('a group send made after a join on another stream reaches a client that moves (replay follows stamps)', async () => {
    const client = new Poller(await negotiate(x.base, 'fay'), 'fay');
    await client.connect(x);
    assert.equal((await http(client.url(x, 'start'))).status, 200);
    const held = client.poll(x, 2000);
    await delay(30);
    await x.broadcast('first');
    await held;
    // Between polls: the join goes into Y's stream, then X (having delivered it) sends to the group in its own.
    await client.send(y, 'joinGroup', 'room');
    await delay(100);
    await x.toGroup('room', 'G-1');
    await delay(100);
    await client.poll(y, 1000);
    for (let i = 0; i < 3 && !client.received.includes('room:G-1'); i++) await client.poll(i % 2 ? y : x, 500);
    assert.deepEqual(client.received, ['first', 'room:G-1']);
    await http(client.url(x, 'abort'), { form: {} });
  });

  test('/start on a node whose transport failed, before the claim arrives: the disconnect is still reported once', async () => {
    const negotiated = await negotiate(x.base, 'gus');
    const id = negotiated.ConnectionId;
    // The first transport (SSE) lands on Y and fails.
    const sse = await openStream(routeUrl(y.base, 'connect', negotiated, 'serverSentEvents', { user: 'gus' }));
    await sse.waitFor(/"S":1/);
    sse.close();
    await delay(20);
    // Long polling connects on X; its claim reaches Y late (the database is briefly unreachable); /start lands on Y.
    const client = new Poller(negotiated, 'gus');
    database.down = true;
    try {
      await client.connect(x);
      const started = await http(client.url(y, 'start'));
      assert.equal(started.status, 200, started.body);
    } finally {
      database.down = false;
    }
    assert.deepEqual(y.observations.connected, [id]);
    for (let i = 0; i < 3; i++) {
      const held = client.poll(x, 300);
      await delay(20);
      await x.broadcast(`x-${i}`);
      await held;
    }
    const reported = () =>
      [...x.observations.disconnected, ...y.observations.disconnected].filter((entry) => entry.id === id);
    await waitFor(() => reported().length > 0, DISCONNECT_TIMEOUT * 4, 'the disconnect');
    await delay(DISCONNECT_TIMEOUT);
    assert.equal(reported().length, 1, JSON.stringify(reported()));
  });
});

describe('classic moves that must read the database (no replay cache)', () => {
  const database = new MemoryDatabase(1);
  let a: Node;
  let b: Node;
  before(async () => {
    a = await startNode(database, undefined, { replayCache: { rows: 0 } });
    b = await startNode(database, undefined, { replayCache: { rows: 0 } });
  });
  after(async () => {
    await a?.hubwire.close();
    await b?.hubwire.close();
  });

  test('a move while the database is unreachable holds the poll, retries, then replays what was missed', async () => {
    const client = new Poller(await negotiate(a.base, 'hal'), 'hal');
    const id = client.negotiated.ConnectionId;
    await client.connect(a);
    assert.equal((await http(client.url(a, 'start'))).status, 200);
    const first = client.poll(a, 3000);
    await delay(30);
    await a.broadcast('R-1');
    await first;
    await a.broadcast('R-2');
    await a.broadcast('R-3');
    database.down = true;
    let moved: Promise<Envelope | undefined>;
    try {
      // B has to read the rows after the client's cursor from the database, which fails for now.
      moved = client.poll(b, 8000);
      await delay(600);
      assert.deepEqual(client.received, ['R-1'], 'nothing yet');
      const reported = [...a.observations.disconnected, ...b.observations.disconnected].filter((e) => e.id === id);
      assert.deepEqual(reported, []);
    } finally {
      database.down = false;
    }
    await moved;
    assert.deepEqual(client.received, ['R-1', 'R-2', 'R-3']);
    await http(client.url(a, 'abort'), { form: {} });
  });
});
