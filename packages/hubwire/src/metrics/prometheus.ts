// Hubwire's metrics for Prometheus, through prom-client (the Node.js Prometheus client: the text format, a registry
// applications may merge with their own, and the process's own metrics). No OpenTelemetry SDK is needed for it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { INSTRUMENTS, labelOf } from './instruments.js';
import type { ServerMeter } from './meter.js';
import { CONNECTION_DURATION_BUCKETS } from './otel.js';
import type { Reading } from './reading.js';

export interface PrometheusOptions {
  /**
   * Also export the process's metrics (CPU, memory, event-loop delay, GC: prom-client's default metrics, under their
   * usual names `process_*` and `nodejs_*`). Default true.
   */
  processMetrics?: boolean;
  /** Labels added to every metric (e.g. `{ service: 'chat' }`). */
  labels?: Record<string, string>;
}

/** A prom-client registry holding Hubwire's metrics; every scrape takes one Reading. */
export function createPrometheusRegistry(
  meter: ServerMeter,
  read: () => Promise<Reading>,
  options: PrometheusOptions = {},
): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  // One reading per scrape, shared by every metric's collect().
  let pending: Promise<Reading> | undefined;
  const reading = () => {
    if (!pending) {
      pending = read();
      const clear = () => {
        pending = undefined;
      };
      // Cleared once every collect() of this scrape has run (they run in the same turn as the first).
      pending.then(() => setImmediate(clear), clear);
    }
    return pending;
  };
  for (const instrument of INSTRUMENTS) {
    const labelNames = instrument.attributes.map(labelOf);
    /** This scrape's observations of the instrument, with their labels by name. */
    const observed = async () =>
      instrument
        .observe(await reading())
        .map(([values, value]) => [Object.fromEntries(labelNames.map((l, i) => [l, values[i] ?? ''])), value] as const);
    const options = { name: instrument.prom, help: instrument.help, labelNames, registers: [registry] };
    if (instrument.kind === 'counter') {
      new Counter({
        ...options,
        async collect() {
          const points = await observed();
          this.reset();
          for (const [labels, value] of points) this.inc(labels, value);
        },
      });
    } else {
      new Gauge({
        ...options,
        async collect() {
          const points = await observed();
          this.reset();
          for (const [labels, value] of points) this.set(labels, value);
        },
      });
    }
  }
  const duration = new Histogram({
    name: 'signalr_server_connection_duration_seconds',
    help: 'The duration of connections on the server.',
    labelNames: ['signalr_transport', 'signalr_connection_status'],
    buckets: CONNECTION_DURATION_BUCKETS,
    registers: [registry],
  });
  meter.onConnectionEnd((transport, status, seconds) => {
    duration.observe({ signalr_transport: transport, signalr_connection_status: status }, seconds);
  });
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/** An HTTP handler answering with the registry's metrics in Prometheus' text format. */
export function prometheusHandler(registry: Registry): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      response.end('Only GET and HEAD are allowed.\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end(`Could not collect the metrics: ${(error as Error).message}\n`);
      },
    );
  };
}

/** `handler` behind an `authorize` hook (refused: 403; a throwing hook: 500, reported); `handler` itself without one. */
export function guardHandler(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  authorize: ((request: IncomingMessage) => boolean | Promise<boolean>) | undefined,
  reportError: (error: unknown, where: string) => void,
): (request: IncomingMessage, response: ServerResponse) => void {
  if (!authorize) return handler;
  return (request, response) => {
    Promise.resolve()
      .then(() => authorize(request))
      .then(
        (allowed) => {
          if (allowed) return handler(request, response);
          response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
          response.end('Forbidden.\n');
        },
        (error: unknown) => {
          reportError(error, 'authorizing a metrics request');
          response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          response.end('The authorization hook failed.\n');
        },
      );
  };
}
