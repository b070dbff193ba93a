// Hubwire's metrics through the OpenTelemetry metrics API (@opentelemetry/api only: the application brings the SDK
// and its exporters, or nothing, and then every instrument is a no-op). Observable instruments read one Reading per
// collection; the connection-duration histogram is recorded when a connection ends.

import type { Attributes, Meter, MeterProvider, ObservableResult } from '@opentelemetry/api';
import { VERSION } from '../version.js';
import { INSTRUMENTS, type Instrument } from './instruments.js';
import type { ServerMeter } from './meter.js';
import type { Reading } from './reading.js';

/** The meter's name (its instrumentation scope). */
export const METER_NAME = 'hubwire';

/** SignalR's semantic conventions' buckets for signalr.server.connection.duration (seconds). */
export const CONNECTION_DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

function attributesOf(instrument: Instrument, values: readonly string[]): Attributes {
  const attributes: Attributes = {};
  instrument.attributes.forEach((key, i) => {
    attributes[key] = values[i];
  });
  return attributes;
}

/** Registers every instrument on `provider`'s meter; returns a function that removes the callback. */
export function registerOpenTelemetry(
  provider: MeterProvider,
  meter: ServerMeter,
  read: () => Promise<Reading>,
): () => void {
  const otel: Meter = provider.getMeter(METER_NAME, VERSION);
  const duration = otel.createHistogram('signalr.server.connection.duration', {
    unit: 's',
    description: 'The duration of connections on the server.',
    advice: { explicitBucketBoundaries: CONNECTION_DURATION_BUCKETS },
  });
  meter.onConnectionEnd((transport, status, seconds) => {
    duration.record(seconds, { 'signalr.transport': transport, 'signalr.connection.status': status });
  });
  const observables = INSTRUMENTS.map((instrument) => {
    const options = { unit: instrument.unit, description: instrument.help };
    const observable =
      instrument.kind === 'counter'
        ? otel.createObservableCounter(instrument.otel, options)
        : instrument.kind === 'updown'
          ? otel.createObservableUpDownCounter(instrument.otel, options)
          : otel.createObservableGauge(instrument.otel, options);
    return { instrument, observable };
  });
  const callback = async (result: {
    observe(observable: (typeof observables)[number]['observable'], value: number, attributes?: Attributes): void;
  }) => {
    const reading = await read();
    for (const { instrument, observable } of observables) {
      for (const [values, value] of instrument.observe(reading)) {
        result.observe(observable, value, attributesOf(instrument, values));
      }
    }
  };
  const list = observables.map((o) => o.observable);
  otel.addBatchObservableCallback(callback, list);
  return () => otel.removeBatchObservableCallback(callback, list);
}

export type { ObservableResult };
