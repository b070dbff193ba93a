// One reading of a server's metrics, taken when an exporter collects (a Prometheus scrape, an OpenTelemetry
// collection, the dashboard's tick): the counters of the ServerMeter, the live connections counted now, and the
// backplane's stats. Nothing here runs per message.

import type { BackplaneStats } from '../backplane/backplane-stats.js';
import type { ClusterNode } from '../backplane/node-heartbeat.js';
import type { TransportKind } from '../transports/transport.js';
import { VERSION } from '../version.js';
import { type ServerMeter, TRANSPORT_NAMES } from './meter.js';
import type { NodeMetricsSnapshot } from './snapshot.js';

/** What a reading is taken from (the server). */
export interface MetricsSource {
  /** This node's id on the backplane ('local' without one). */
  nodeId(): string;
  /** Live ASP.NET Core protocol connections: hub path and transport (undefined before a transport started). */
  connections(): Iterable<{ endpointPath: string; transportKind: TransportKind | undefined; state: string }>;
  /** Classic (SignalR 2) connections by endpoint path. */
  classicConnections(): Record<string, number>;
  /** Client results this node awaits. */
  pendingResults(): number;
  backplane(): BackplaneStats | undefined;
  /** The cluster's nodes (the backplane's registry); undefined without a backplane. */
  nodes(): Promise<ClusterNode[]> | undefined;
}

export interface Reading {
  snapshot: NodeMetricsSnapshot;
  /** Live connections by hub and transport (SignalR names). */
  connections: { hub: string; transport: string; count: number }[];
  classic: Record<string, number>;
  /** Calls per hub and method. */
  methods: { hub: string; method: string; calls: number; errors: number }[];
  sentByHub: { hub: string; count: number }[];
  /** Connections ended, by transport and status. */
  ended: { transport: string; status: string; count: number }[];
  /** Bytes by transport and direction (receive, transmit). */
  io: (readonly [readonly string[], number])[];
  /** Errors this node reported. */
  errors: number;
  version: string;
  crossNode: ServerMeter['crossNode'];
  backplane: BackplaneStats | undefined;
  /** The registry's nodes, when the reading asked for them (undefined without a backplane, or when it failed). */
  nodes: ClusterNode[] | undefined;
}

export function takeReading(
  source: MetricsSource,
  meter: ServerMeter,
  startedAt: number,
  nodes: ClusterNode[] | undefined,
): Reading {
  const now = Date.now();
  const byKey = new Map<string, { hub: string; transport: string; count: number }>();
  const byHub: Record<string, number> = {};
  const byTransport: Record<string, number> = {};
  let total = 0;
  for (const connection of source.connections()) {
    if (connection.state === 'closed' || !connection.transportKind) continue;
    const transport = TRANSPORT_NAMES[connection.transportKind];
    const key = `${connection.endpointPath} ${transport}`;
    let entry = byKey.get(key);
    if (!entry) {
      entry = { hub: connection.endpointPath, transport, count: 0 };
      byKey.set(key, entry);
    }
    entry.count++;
    total++;
    byHub[connection.endpointPath] = (byHub[connection.endpointPath] ?? 0) + 1;
    byTransport[transport] = (byTransport[transport] ?? 0) + 1;
  }
  const classic = source.classicConnections();
  const methods: Reading['methods'] = [];
  const sentByHub: Reading['sentByHub'] = [];
  let calls = 0;
  let callErrors = 0;
  let sent = 0;
  for (const hub of meter.hubs.values()) {
    sentByHub.push({ hub: hub.path, count: hub.messagesSent });
    sent += hub.messagesSent;
    for (const [method, tally] of hub.methods) {
      methods.push({ hub: hub.path, method, calls: tally.calls, errors: tally.errors });
      calls += tally.calls;
      callErrors += tally.errors;
    }
  }
  const ended = [...meter.ended].map(([key, count]) => {
    const [transport = '', status = ''] = key.split(' ');
    return { transport, status, count };
  });
  const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
  const stats = source.backplane();
  const pendingResults = source.pendingResults();
  return {
    snapshot: {
      node: source.nodeId(),
      at: now,
      uptime: (now - startedAt) / 1000,
      connections: { total, byHub, byTransport, classic: sum(classic) },
      invocations: { total: calls, errors: callErrors },
      messagesSent: sent,
      bytesIn: sum(meter.bytesIn),
      bytesOut: sum(meter.bytesOut),
      clientResultsPending: pendingResults,
      backplane: stats && {
        epoch: stats.epoch,
        queueLength: stats.queueLength,
        accepted: stats.accepted,
        published: stats.published,
        received: stats.delivered,
        rowsWritten: stats.rowsWritten,
        rowsRead: stats.rowsRead,
        rowsPushed: stats.rowsPushed,
        wakeupsPush: stats.wakeupsPush,
        wakeupsPoll: stats.wakeupsPoll,
        trims: stats.trims,
        rowsTrimmed: stats.rowsTrimmed,
        gaps: stats.gaps,
        errors: stats.errors,
        streams: stats.streams.map((s) => ({
          stream: s.stream,
          state: s.state,
          position: s.position,
          head: s.head,
          lag: Math.max(0, s.head - s.position),
          lagSeconds: s.behindMs / 1000,
        })),
      },
      errors: [...meter.recentErrors],
    },
    connections: [...byKey.values()],
    classic,
    methods,
    sentByHub,
    ended,
    io: (Object.keys(TRANSPORT_NAMES) as TransportKind[]).flatMap((kind) => [
      [[TRANSPORT_NAMES[kind], 'receive'], meter.bytesIn[kind]] as const,
      [[TRANSPORT_NAMES[kind], 'transmit'], meter.bytesOut[kind]] as const,
    ]),
    errors: meter.errors,
    version: VERSION,
    crossNode: meter.crossNode,
    backplane: stats,
    nodes,
  };
}
