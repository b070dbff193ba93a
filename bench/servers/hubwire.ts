// Hubwire under test: one hub at /hub, JSON protocol over WebSockets, default options. The parent's broadcast
// goes through the public API, `hub('/hub').clients.all.send('m', payload)`, as application code would.
//
// BENCH_SERVER_METRICS (set by the parent): `on`, metrics on and collected once a second; `off`, `metrics: false`
// (the broadcast bench's "Hubwire, metrics off"; see lib/hubwire-metrics.ts).

import { Hub, Hubwire } from 'hubwire';
import { runServer } from '../lib/harness.js';
import { collectMetrics, metricsOption, metricsSetting } from '../lib/hubwire-metrics.js';

/** Connections past the handshake and registered with the bus (what a broadcast reaches). */
let connected = 0;

class BenchHub extends Hub {
  override onConnected(): void {
    connected++;
  }
  override onDisconnected(): void {
    connected--;
  }
}

await runServer('hubwire', async () => {
  const metrics = metricsSetting('BENCH_SERVER_METRICS');
  const hubwire = new Hubwire({
    onError: (error, where) => console.error(`[hubwire] ${where}:`, error),
    ...metricsOption(metrics),
  });
  collectMetrics(hubwire, metrics, 'hubwire');
  const hub = hubwire.mapHub('/hub', BenchHub);
  const port = await hubwire.listen(0, '127.0.0.1');
  return {
    port,
    path: '/hub',
    connections: () => connected,
    broadcast: (payload) => {
      hub.clients.all.send('m', payload).catch((error: unknown) => console.error('[hubwire] broadcast:', error));
    },
    close: () => hubwire.close(),
  };
});
