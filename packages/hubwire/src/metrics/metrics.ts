// A server's metrics: the counters its hot paths bump (ServerMeter), and the ways to read them: a JSON snapshot
// (the dashboard), OpenTelemetry instruments (the application's SDK, if any), and a Prometheus registry and
// endpoint (prom-client, created on first use).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type MeterProvider, metrics } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import { ServerMeter } from './meter.js';
import { registerOpenTelemetry } from './otel.js';
import { createPrometheusRegistry, type PrometheusOptions, prometheusHandler } from './prometheus.js';
import { type MetricsSource, type Reading, takeReading } from './reading.js';
import type { NodeMetricsSnapshot } from './snapshot.js';

export interface MetricsOptions {
  /**
   * The OpenTelemetry MeterProvider to register Hubwire's instruments with. Default: the global one
   * (`metrics.getMeterProvider()` of @opentelemetry/api), a no-op until the application sets up an SDK. `false`: no
   * OpenTelemetry instruments.
   */
  meterProvider?: MeterProvider | false;
  /** The Prometheus registry's options (see `HubwireMetrics.registry`). */
  prometheus?: PrometheusOptions;
}

export class HubwireMetrics {
  /** The counters the server's hot paths bump. */
  readonly meter = new ServerMeter();
  private readonly startedAt = Date.now();
  private promRegistry: Registry | undefined;
  private unregisterOtel: (() => void) | undefined;

  constructor(
    private readonly source: MetricsSource,
    private readonly options: MetricsOptions = {},
  ) {
    const provider = options.meterProvider ?? metrics.getMeterProvider();
    if (provider) this.unregisterOtel = registerOpenTelemetry(provider, this.meter, () => this.read(true));
  }

  /** This node now: connections, calls, messages, bytes, the backplane's counters and lag, recent errors. */
  snapshot(): NodeMetricsSnapshot {
    return takeReading(this.source, this.meter, this.startedAt, undefined).snapshot;
  }

  /** A reading for an exporter; with `cluster`, the registry's nodes too (one read of the database). */
  async read(cluster: boolean): Promise<Reading> {
    let nodes: Reading['nodes'];
    if (cluster) {
      try {
        nodes = await this.source.nodes();
      } catch {
        nodes = undefined; // the database is down: the other metrics still answer
      }
    }
    return takeReading(this.source, this.meter, this.startedAt, nodes);
  }

  /**
   * A prom-client Registry with Hubwire's metrics (and, unless `prometheus.processMetrics` is false, the process's).
   * Merge it with an application's own: `Registry.merge([register, hubwire.metrics.registry])`.
   */
  get registry(): Registry {
    if (!this.promRegistry) {
      this.promRegistry = createPrometheusRegistry(this.meter, () => this.read(true), this.options.prometheus);
    }
    return this.promRegistry;
  }

  /** Hubwire's metrics in Prometheus' text format. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * An HTTP handler for a Prometheus scrape (GET): mount it wherever you like, or serve it on its own port with
   * `http.createServer(hubwire.metrics.handler()).listen(9464)`.
   */
  handler(): (request: IncomingMessage, response: ServerResponse) => void {
    return prometheusHandler(this.registry);
  }

  /** Stops exporting to OpenTelemetry (the server closed). */
  close(): void {
    this.unregisterOtel?.();
    this.unregisterOtel = undefined;
  }
}
