// The dashboard's server side: `mapDashboard` needs an authorize hook; the page and every request of its hub
// (negotiate, the WebSocket upgrade, case variants of the paths, cross-origin requests) go through it; with it, the
// page is served and a viewer on one node hears every node's snapshots through the backplane and reads the registry;
// unwatched, a node publishes nothing.

import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import { after, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import {
  allowLoopback,
  Backplane,
  type DashboardNode,
  Hubwire,
  MemoryDatabase,
  MemoryStore,
  type NodeMetricsSnapshot,
} from 'hubwire';
import { negotiate, tryUpgrade } from '../helpers/http.js';
import { delay, waitFor } from '../helpers/wait.js';

const KEY = 'let-me-see';
/** The app's rule in these tests: a request carrying the key header, or a user with the `ops` role. */
const byKey = (request: IncomingMessage, user: unknown) =>
  request.headers['x-dashboard-key'] === KEY ||
  (user as { roles?: string[] } | undefined)?.roles?.includes('ops') === true;

const servers: Hubwire[] = [];
const clients: signalR.HubConnection[] = [];
after(async () => {
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await Promise.all(servers.map((hubwire) => hubwire.close()));
});

async function node(backplane?: Backplane, interval = 100): Promise<{ hubwire: Hubwire; base: string }> {
  const hubwire = new Hubwire({
    backplane,
    onError: () => {},
    authenticate: (request) =>
      request.headers.authorization === 'Bearer op' ? { id: 'op', roles: ['ops'] } : undefined,
  });
  hubwire.mapDashboard('/hubwire', { authorize: byKey, interval, viewerCheckInterval: interval });
  servers.push(hubwire);
  const port = await hubwire.listen(0);
  return { hubwire, base: `http://127.0.0.1:${port}` };
}

/** GET with another Host header (what a page reached through a DNS-rebound name sends); fetch cannot set it. */
function statusWithHost(url: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode);
    }).on('error', reject);
  });
}

async function viewer(hubUrl: string): Promise<signalR.HubConnection> {
  const client = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, {
      transport: signalR.HttpTransportType.WebSockets,
      headers: { 'x-dashboard-key': KEY },
    })
    .configureLogging(signalR.LogLevel.None)
    .build();
  clients.push(client);
  return client;
}

describe('the dashboard', () => {
  test('mapDashboard without an authorize function throws: the dashboard is never open by default', () => {
    const hubwire = new Hubwire();
    // @ts-expect-error: authorize is required
    assert.throws(() => hubwire.mapDashboard('/hubwire', {}), /needs an 'authorize' function/);
    assert.throws(
      () => hubwire.mapDashboard('/hubwire', { authorize: 'loopback' as never }),
      /needs an 'authorize' function/,
    );
  });

  test('the page: 403 with a clear body when authorize refuses, the page when it allows', async () => {
    const { base } = await node();
    for (const path of ['/hubwire', '/hubwire/', '/HubWire']) {
      const refused = await fetch(base + path);
      assert.equal(refused.status, 403, path);
      assert.match(await refused.text(), /Forbidden: the Hubwire dashboard's authorize hook refused this request/);
    }
    const page = await fetch(`${base}/hubwire`, { headers: { 'x-dashboard-key': KEY } });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await page.text();
    assert.match(html, /<title>Hubwire dashboard<\/title>/);
    assert.match(html, /data-hub="\/hubwire\/hub"/);
    // The user that the server's authenticate returned is what authorize sees.
    const asUser = await fetch(`${base}/hubwire`, { headers: { authorization: 'Bearer op' } });
    assert.equal(asUser.status, 200);
    assert.equal((await fetch(`${base}/hubwire`, { method: 'POST', headers: { 'x-dashboard-key': KEY } })).status, 405);
  });

  test('the hub: negotiate, the WebSocket and the official client are refused without authorization', async () => {
    const { base } = await node();
    for (const hub of [`${base}/hubwire/hub`, `${base}/HUBWIRE/Hub`]) {
      const refused = await negotiate(hub);
      assert.equal(refused.status, 403, hub);
      assert.match(await refused.text(), /authorize hook refused/);
      const upgrade = await tryUpgrade(hub);
      assert.deepEqual(upgrade.open, false, hub);
      assert.equal((upgrade as { status: number }).status, 403);
    }
    assert.equal((await negotiate(`${base}/hubwire/hub`, { 'x-dashboard-key': KEY })).status, 200);
    assert.deepEqual(await tryUpgrade(`${base}/hubwire/hub`, { headers: { 'x-dashboard-key': KEY } }), { open: true });
    // Another web site's page in an authorized user's browser: refused although the credentials are there.
    const crossSite = await tryUpgrade(`${base}/hubwire/hub`, {
      origin: 'https://evil.example',
      headers: { 'x-dashboard-key': KEY },
    });
    assert.equal(crossSite.open, false);
    assert.equal((crossSite as { status: number }).status, 403);
    const anonymous = new signalR.HubConnectionBuilder()
      .withUrl(`${base}/hubwire/hub`)
      .configureLogging(signalR.LogLevel.None)
      .build();
    await assert.rejects(anonymous.start(), /403/);
  });

  test('allowLoopback: this machine only, not through a proxy, not under another host name', async () => {
    const hubwire = new Hubwire({ onError: () => {} });
    hubwire.mapDashboard('/ops', { authorize: allowLoopback });
    servers.push(hubwire);
    const base = `http://127.0.0.1:${await hubwire.listen(0)}`;
    assert.equal((await fetch(`${base}/ops`)).status, 200);
    assert.equal((await fetch(`${base}/ops`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 403);
    assert.equal((await fetch(`${base}/ops`, { headers: { forwarded: 'for=203.0.113.9' } })).status, 403);
    assert.equal(await statusWithHost(`${base}/ops`, 'rebound.example'), 403);
    assert.deepEqual(await tryUpgrade(`${base}/ops/hub`), { open: true });
  });

  test('a viewer on one node hears both nodes through the backplane and reads the registry', async () => {
    const database = new MemoryDatabase();
    const options = { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} };
    const a = await node(new Backplane(new MemoryStore(database), options));
    const b = await node(new Backplane(new MemoryStore(database), options));
    const idOf = async (hubwire: Hubwire) => (await hubwire.nodes()).find((n) => n.self)?.id as string;
    const [idA, idB] = [await idOf(a.hubwire), await idOf(b.hubwire)];

    const client = await viewer(`${a.base}/hubwire/hub`);
    const snapshots: NodeMetricsSnapshot[] = [];
    client.on('snapshot', (snapshot: NodeMetricsSnapshot) => snapshots.push(snapshot));
    await client.start();
    const from = (id: string) => snapshots.filter((s) => s.node === id);
    await waitFor(() => from(idA).length >= 3 && from(idB).length >= 3, 10_000, 'snapshots from both nodes');
    const last = from(idB).at(-1) as NodeMetricsSnapshot;
    assert.equal(typeof last.at, 'number');
    assert.equal(typeof last.connections.total, 'number');
    assert.ok(last.backplane, 'a node on a backplane reports it');
    assert.ok(from(idA).at(-1)?.connections.byHub['/hubwire/hub'] === 1, 'node A counts its viewer');

    const registry = await client.invoke<DashboardNode[]>('nodes');
    assert.deepEqual(registry.map((n) => n.id).sort(), [idA, idB].sort());
    for (const n of registry) {
      assert.equal(n.alive, true);
      assert.equal(n.self, n.id === idA);
      assert.ok(n.heartbeatAge >= 0 && n.heartbeatAge < 5000);
    }
    await assert.rejects(client.invoke('hubDefinition'), /Unknown hub method 'hubDefinition'/);
  });

  test('unwatched, a node publishes nothing; it starts with a viewer anywhere and stops after the last leaves', async () => {
    const database = new MemoryDatabase();
    const options = { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} };
    const backplaneA = new Backplane(new MemoryStore(database), options);
    const backplaneB = new Backplane(new MemoryStore(database), options);
    const a = await node(backplaneA, 50);
    const b = await node(backplaneB, 50);
    await Promise.all([a.hubwire.ready(), b.hubwire.ready()]);
    const published = () => backplaneA.stats().accepted;

    const before = published();
    await delay(500);
    assert.equal(published(), before, 'ten intervals without viewers: nothing published');

    // A viewer on B: A learns of it from the registry (B's heartbeat) and starts sending.
    const client = await viewer(`${b.base}/hubwire/hub`);
    const fromA: NodeMetricsSnapshot[] = [];
    const idA = (await a.hubwire.nodes()).find((n) => n.self)?.id;
    client.on('snapshot', (s: NodeMetricsSnapshot) => s.node === idA && fromA.push(s));
    await client.start();
    await waitFor(() => fromA.length >= 2, 5000, "node A's snapshots reaching a viewer on node B");
    assert.ok(published() > before);

    await client.stop();
    // B's next heartbeat says it has no viewer; A stops after its next check.
    await waitFor(
      async () => {
        const count = published();
        await delay(300);
        return published() === count;
      },
      5000,
      'node A to stop publishing once nobody watches',
    );
  });
});
