// Metrics: the official client drives a hub over real sockets; the counters are read back through the JSON
// snapshot, the Prometheus endpoint (prom-client's text format) and a real OpenTelemetry SDK MeterProvider.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { Backplane, Hub, Hubwire, HubwireError, MemoryDatabase, MemoryStore } from 'hubwire';
import { collect, startClient } from '../helpers/clients.js';
import { sample } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

interface MeteredClient {
  message(text: string): void;
}

class MeteredHub extends Hub<MeteredClient> {
  send(text: string): Promise<void> {
    return this.clients.all.message(text);
  }
  fail(): void {
    throw new Error('boom');
  }
}

/** A reader that collects when asked (the SDK's own pull path, as a Prometheus exporter would use it). */
class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const servers: Hubwire[] = [];
const clients: signalR.HubConnection[] = [];

after(async () => {
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await Promise.all(servers.map((hubwire) => hubwire.close()));
});

async function start(options: ConstructorParameters<typeof Hubwire>[0] = {}) {
  const hubwire = new Hubwire({ onError: () => {}, ...options });
  hubwire.mapHub('/metered', MeteredHub);
  servers.push(hubwire);
  const port = await hubwire.listen(0);
  return { hubwire, base: `http://127.0.0.1:${port}` };
}

async function connect(url: string, transport?: 'LongPolling' | 'ServerSentEvents'): Promise<signalR.HubConnection> {
  const client = await startClient(url, transport ? { transport } : {});
  clients.push(client);
  return client;
}

async function scrape(base: string, path = '/metrics'): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(base + path);
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
}

describe('metrics', () => {
  test('snapshot and Prometheus endpoint count connections, calls, errors, messages and bytes', async () => {
    const { hubwire, base } = await start();
    hubwire.mapMetrics();
    const ws = await connect(`${base}/metered`);
    const lp = await connect(`${base}/metered`, 'LongPolling');
    const received = collect<string>(ws, 'message');
    await ws.invoke('send', 'hello');
    await lp.invoke('send', 'again');
    await assert.rejects(ws.invoke('fail'));
    await assert.rejects(ws.invoke('noSuchMethod'));
    await received.waitFor(2);

    const snapshot = hubwire.metrics.snapshot();
    assert.equal(snapshot.node, 'local');
    assert.equal(snapshot.connections.total, 2);
    assert.deepEqual(snapshot.connections.byTransport, { web_sockets: 1, long_polling: 1 });
    assert.deepEqual(snapshot.connections.byHub, { '/metered': 2 });
    assert.deepEqual(snapshot.invocations, { total: 4, errors: 2 });
    // 2 broadcasts × 2 connections, plus 4 completions.
    assert.ok(snapshot.messagesSent >= 8, `messagesSent ${snapshot.messagesSent}`);
    assert.ok(snapshot.bytesIn > 0 && snapshot.bytesOut > 0);
    assert.equal(snapshot.backplane, undefined);

    const { status, text, type } = await scrape(base);
    assert.equal(status, 200);
    assert.match(type ?? '', /text\/plain/);
    assert.equal(sample(text, 'signalr_server_active_connections', { signalr_transport: 'web_sockets' }), 1);
    assert.equal(sample(text, 'signalr_server_active_connections', { signalr_transport: 'long_polling' }), 1);
    const send = { hubwire_hub: '/metered', hubwire_method: 'send' };
    assert.equal(sample(text, 'hubwire_invocations_total', send), 2);
    assert.equal(sample(text, 'hubwire_invocation_errors_total', send), 0);
    assert.equal(sample(text, 'hubwire_invocation_errors_total', { hubwire_method: 'fail' }), 1);
    // A name the hub does not have never becomes a label of its own.
    assert.equal(sample(text, 'hubwire_invocations_total', { hubwire_method: '(unknown)' }), 1);
    assert.equal(sample(text, 'hubwire_invocations_total', { hubwire_method: 'noSuchMethod' }), undefined);
    assert.ok(
      (sample(text, 'hubwire_transport_io_bytes_total', {
        signalr_transport: 'web_sockets',
        network_io_direction: 'receive',
      }) ?? 0) > 0,
    );
    assert.ok(
      (sample(text, 'hubwire_transport_io_bytes_total', {
        signalr_transport: 'long_polling',
        network_io_direction: 'transmit',
      }) ?? 0) > 0,
    );
    assert.ok((sample(text, 'hubwire_messages_sent_total', { hubwire_hub: '/metered' }) ?? 0) >= 8);
    assert.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'process metrics are there');
    assert.equal(sample(text, 'hubwire_node_info', { hubwire_node: 'local' }), 1);

    // A connection that ends is counted in the duration histogram, with SignalR's status and transport.
    await ws.stop();
    await waitFor(() => hubwire.metrics.snapshot().connections.total === 1, 5000, 'the connection to end');
    const after = (await scrape(base)).text;
    const ended = { signalr_transport: 'web_sockets', signalr_connection_status: 'normal_closure' };
    assert.equal(sample(after, 'signalr_server_connection_duration_seconds_count', ended), 1);
    assert.equal(sample(after, 'hubwire_connections_closed_total', ended), 1);
    assert.equal(sample(after, 'signalr_server_active_connections', { signalr_transport: 'web_sockets' }), undefined);
  });

  test('the endpoint answers only GET and HEAD, and honours its authorize hook', async () => {
    const { hubwire, base } = await start();
    hubwire.mapMetrics('/private/metrics', { authorize: (request) => request.headers['x-scraper'] === 'yes' });
    assert.equal((await scrape(base, '/private/metrics')).status, 403);
    const allowed = await fetch(`${base}/private/metrics?x=1`, { headers: { 'x-scraper': 'yes' } });
    assert.equal(allowed.status, 200);
    assert.match(await allowed.text(), /signalr_server_active_connections|hubwire_node_info/);
    // Matched as the hubs are: case-insensitive, dot segments resolved.
    const dotted = await fetch(`${base}/private/x/../METRICS/`, { headers: { 'x-scraper': 'yes' } });
    assert.equal(dotted.status, 200);
    const post = await fetch(`${base}/private/metrics`, { method: 'POST', headers: { 'x-scraper': 'yes' } });
    assert.equal(post.status, 405);
    assert.throws(() => hubwire.mapMetrics('/private/metrics'), /already mapped/);
  });

  test('a backplane adds its counters, stream positions, heads and lag', async () => {
    const database = new MemoryDatabase();
    const backplane = new Backplane(new MemoryStore(database), { heartbeatInterval: 100, onError: () => {} });
    const { hubwire, base } = await start({ backplane });
    hubwire.mapMetrics();
    await hubwire.ready();
    const client = await connect(`${base}/metered`);
    const received = collect<string>(client, 'message');
    for (let i = 0; i < 5; i++) await client.invoke('send', `m${i}`);
    await received.waitFor(5);
    const snapshot = hubwire.metrics.snapshot();
    const b = snapshot.backplane;
    assert.ok(b, 'backplane part');
    assert.equal(snapshot.node, backplane.nodeId);
    assert.ok(b.published >= 5 && b.received >= 5 && b.rowsWritten >= 1, JSON.stringify(b));
    assert.equal(b.streams[0]?.state, 'open');
    assert.equal(b.streams[0]?.lag, 0);
    assert.ok((b.streams[0]?.head ?? 0) >= 1);
    const text = (await scrape(base)).text;
    assert.ok(
      (sample(text, 'hubwire_backplane_messages_total', { hubwire_backplane_direction: 'published' }) ?? 0) >= 5,
    );
    assert.equal(sample(text, 'hubwire_backplane_streams', { hubwire_backplane_stream_state: 'open' }), 1);
    assert.equal(sample(text, 'hubwire_backplane_lag_rows', { hubwire_backplane_stream: '0' }), 0);
    assert.equal(sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'alive' }), 1);
    assert.equal(sample(text, 'hubwire_cluster_node_lag_rows', { hubwire_node: backplane.nodeId }), 0);
  });

  test('OpenTelemetry: a real SDK MeterProvider sees the SignalR semantic-convention instruments', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    const { hubwire, base } = await start({ metrics: { meterProvider: provider } });
    const client = await connect(`${base}/metered`, 'ServerSentEvents');
    await client.invoke('send', 'x');
    await client.stop();
    await waitFor(() => hubwire.metrics.snapshot().connections.total === 0, 5000, 'the connection to end');
    const second = await connect(`${base}/metered`);
    await second.invoke('send', 'y');
    const { resourceMetrics } = await reader.collect();
    const found = metricsByName(resourceMetrics);
    const active = found.get('signalr.server.active_connections');
    assert.deepEqual(
      active?.map((p) => [p.attributes['signalr.transport'], p.value]),
      [['web_sockets', 1]],
    );
    const duration = found.get('signalr.server.connection.duration');
    assert.equal(duration?.[0]?.attributes['signalr.transport'], 'server_sent_events');
    assert.equal(duration?.[0]?.attributes['signalr.connection.status'], 'normal_closure');
    assert.equal((duration?.[0]?.value as { count: number } | undefined)?.count, 1);
    const calls = found.get('hubwire.invocations');
    assert.equal(calls?.find((p) => p.attributes['hubwire.method'] === 'send')?.value, 2);
    await provider.shutdown();
  });

  test('metrics: false turns the counters off, with a clear error for hubwire.metrics', async () => {
    const { hubwire, base } = await start({ metrics: false });
    const client = await connect(`${base}/metered`);
    await client.invoke('send', 'x');
    assert.throws(
      () => hubwire.metrics,
      (error: unknown) => error instanceof HubwireError && /metrics: false/.test(error.message),
    );
    assert.throws(() => hubwire.mapMetrics(), /metrics: false/);
  });
});

function metricsByName(resource: ResourceMetrics) {
  const byName = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
  for (const scope of resource.scopeMetrics) {
    for (const metric of scope.metrics) {
      byName.set(
        metric.descriptor.name,
        metric.dataPoints.map((p) => ({ attributes: p.attributes as Record<string, unknown>, value: p.value })),
      );
    }
  }
  return byName;
}
