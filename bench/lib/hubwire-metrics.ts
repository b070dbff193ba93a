// Metrics on or off in the benches' Hubwire servers (servers/hubwire.ts, servers/hubwire-node.ts), to price them:
// `off` is `metrics: false`; `on` is the default options (metrics on) with the Prometheus text collected in the
// server once a second, as a scrape would (real scrapes come every 15–60 s: this overstates their cost).

import type { Hubwire, HubwireOptions } from 'hubwire';

export type MetricsSetting = 'on' | 'off';

/** The setting the parent gave the server in `variable` (anything but `off` is on). */
export function metricsSetting(variable: string): MetricsSetting {
  return process.env[variable] === 'off' ? 'off' : 'on';
}

/** The Hubwire option of a setting. */
export function metricsOption(setting: MetricsSetting): Pick<HubwireOptions, 'metrics'> {
  return setting === 'off' ? { metrics: false } : {};
}

/**
 * With metrics on, collects them now (the registry is built on first use: before the bench's memory baseline) and
 * once a second.
 */
export function collectMetrics(hubwire: Hubwire, setting: MetricsSetting, where: string): void {
  if (setting === 'off') return;
  const collect = () =>
    void hubwire.metrics.prometheus().catch((error: unknown) => console.error(`[${where}] metrics:`, error));
  collect();
  setInterval(collect, 1000).unref();
}
