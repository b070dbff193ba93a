// Every metric Hubwire exports, defined once: its OpenTelemetry name, its Prometheus name, kind, unit, attributes,
// and how to read its values from a Reading. The OpenTelemetry and Prometheus exporters are both built from this
// table, so the two always agree. SignalR's semantic conventions are followed where they name a metric.

import type { StreamState } from '../backplane/backplane-stats.js';
import { nodeLag } from '../backplane/node-registry.js';
import type { Reading } from './reading.js';

export type InstrumentKind = 'counter' | 'gauge' | 'updown';

/** One observation: attribute values (in the order of `attributes`) and the value. */
export type Observation = readonly [values: readonly string[], value: number];

export interface Instrument {
  /** OpenTelemetry name (dotted). */
  readonly otel: string;
  /** Prometheus name (counters end in _total). */
  readonly prom: string;
  readonly kind: InstrumentKind;
  /** UCUM unit, as OpenTelemetry wants it. */
  readonly unit: string;
  readonly help: string;
  /** Attribute keys (OpenTelemetry); the Prometheus label is the key with dots as underscores. */
  readonly attributes: readonly string[];
  observe(reading: Reading): Observation[];
}

const TRANSPORT = 'signalr.transport';
const HUB = 'hubwire.hub';
const STREAM = 'hubwire.backplane.stream';
const STATES: readonly StreamState[] = ['initial', 'open', 'buffering', 'closed'];

function single(value: number | undefined): Observation[] {
  return value === undefined ? [] : [[[], value]];
}

function perStream(reading: Reading, value: (s: NonNullable<Reading['backplane']>['streams'][number]) => number) {
  return (reading.backplane?.streams ?? []).map((s): Observation => [[String(s.stream)], value(s)]);
}

export const INSTRUMENTS: readonly Instrument[] = [
  // --- SignalR's semantic conventions -------------------------------------------------------------------
  {
    otel: 'signalr.server.active_connections',
    prom: 'signalr_server_active_connections',
    kind: 'updown',
    unit: '{connection}',
    help: 'Number of connections that are currently active on the server.',
    attributes: [TRANSPORT],
    observe: (r) => Object.entries(r.snapshot.connections.byTransport).map(([t, n]) => [[t], n]),
  },
  // signalr.server.connection.duration is a histogram, recorded when a connection ends (see the exporters).
  // --- The hub layer --------------------------------------------------------------------------------------
  {
    otel: 'hubwire.connections',
    prom: 'hubwire_connections',
    kind: 'updown',
    unit: '{connection}',
    help: 'Live ASP.NET Core protocol connections, by hub and transport.',
    attributes: [HUB, TRANSPORT],
    observe: (r) => r.connections.map((c) => [[c.hub, c.transport], c.count]),
  },
  {
    otel: 'hubwire.connections.closed',
    prom: 'hubwire_connections_closed_total',
    kind: 'counter',
    unit: '{connection}',
    help: 'Connections that ended, by transport and closure status (normal_closure, timeout, app_shutdown, slow_client).',
    attributes: [TRANSPORT, 'signalr.connection.status'],
    observe: (r) => r.ended.map((e) => [[e.transport, e.status], e.count]),
  },
  {
    otel: 'hubwire.classic.connections',
    prom: 'hubwire_classic_connections',
    kind: 'updown',
    unit: '{connection}',
    help: 'Live classic (ASP.NET SignalR 2) connections, by endpoint.',
    attributes: ['hubwire.endpoint'],
    observe: (r) => Object.entries(r.classic).map(([path, n]) => [[path], n]),
  },
  {
    otel: 'hubwire.invocations',
    prom: 'hubwire_invocations_total',
    kind: 'counter',
    unit: '{invocation}',
    help: "Hub method calls (Core and classic), by hub and method; a name the hub does not have counts as '(unknown)'.",
    attributes: [HUB, 'hubwire.method'],
    observe: (r) => r.methods.map((m) => [[m.hub, m.method], m.calls]),
  },
  {
    otel: 'hubwire.invocation.errors',
    prom: 'hubwire_invocation_errors_total',
    kind: 'counter',
    unit: '{invocation}',
    help: 'Hub method calls that failed (refused, or the method threw), by hub and method.',
    attributes: [HUB, 'hubwire.method'],
    observe: (r) => r.methods.map((m) => [[m.hub, m.method], m.errors]),
  },
  {
    otel: 'hubwire.messages.sent',
    prom: 'hubwire_messages_sent_total',
    kind: 'counter',
    unit: '{message}',
    help: 'Hub messages (invocations, stream items, completions) written to client connections, by hub.',
    attributes: [HUB],
    observe: (r) => r.sentByHub.map((h) => [[h.hub], h.count]),
  },
  {
    otel: 'hubwire.transport.io',
    prom: 'hubwire_transport_io_bytes_total',
    kind: 'counter',
    unit: 'By',
    help: 'Bytes received from and sent to ASP.NET Core protocol clients, by transport.',
    attributes: [TRANSPORT, 'network.io.direction'],
    observe: (r) => r.io,
  },
  {
    otel: 'hubwire.client_results.pending',
    prom: 'hubwire_client_results_pending',
    kind: 'updown',
    unit: '{invocation}',
    help: 'Client results this node is waiting for.',
    attributes: [],
    observe: (r) => single(r.snapshot.clientResultsPending),
  },
  {
    otel: 'hubwire.errors',
    prom: 'hubwire_errors_total',
    kind: 'counter',
    unit: '{error}',
    help: 'Errors this node reported (onError), the backplane included.',
    attributes: [],
    observe: (r) => single(r.errors),
  },
  // --- Connections on any node ---------------------------------------------------------------------------------
  {
    otel: 'hubwire.cross_node.adopted',
    prom: 'hubwire_cross_node_adopted_total',
    kind: 'counter',
    unit: '{connection}',
    help: 'Connections negotiated on another node that started here (no sticky sessions).',
    attributes: [],
    observe: (r) => single(r.crossNode.adopted),
  },
  {
    otel: 'hubwire.cross_node.moved',
    prom: 'hubwire_cross_node_moved_total',
    kind: 'counter',
    unit: '{connection}',
    help: 'Stateful-reconnect connections another node held that continued here after their client reconnected.',
    attributes: [],
    observe: (r) => single(r.crossNode.moved),
  },
  {
    otel: 'hubwire.cross_node.forwarded',
    prom: 'hubwire_cross_node_forwarded_total',
    kind: 'counter',
    unit: '{request}',
    help: 'Requests of connections held by another node, forwarded there: send (POST), poll, stop (DELETE).',
    attributes: ['hubwire.request.kind'],
    observe: (r) => Object.entries(r.crossNode.forwarded).map(([kind, n]) => [[kind], n]),
  },
  {
    otel: 'hubwire.cross_node.served',
    prom: 'hubwire_cross_node_served_total',
    kind: 'counter',
    unit: '{request}',
    help: "Other nodes' forwarded requests this node served for the connections it holds.",
    attributes: ['hubwire.request.kind'],
    observe: (r) => Object.entries(r.crossNode.served).map(([kind, n]) => [[kind], n]),
  },
  {
    otel: 'hubwire.cross_node.tokens_refused',
    prom: 'hubwire_cross_node_tokens_refused_total',
    kind: 'counter',
    unit: '{request}',
    help: 'Connection tokens of other nodes refused: forged, another user, spent, expired, keys unavailable.',
    attributes: ['hubwire.token.refusal'],
    observe: (r) => Object.entries(r.crossNode.refused).map(([reason, n]) => [[reason], n]),
  },
  // --- The backplane (SignalR's scaleout counters) ----------------------------------------------------------
  {
    otel: 'hubwire.backplane.messages',
    prom: 'hubwire_backplane_messages_total',
    kind: 'counter',
    unit: '{message}',
    help: 'Backplane messages: accepted for publishing, published (committed), received (delivered here).',
    attributes: ['hubwire.backplane.direction'],
    observe: (r) => {
      const b = r.snapshot.backplane;
      if (!b) return [];
      return [
        [['accepted'], b.accepted],
        [['published'], b.published],
        [['received'], b.received],
      ];
    },
  },
  {
    otel: 'hubwire.backplane.rows',
    prom: 'hubwire_backplane_rows_total',
    kind: 'counter',
    unit: '{row}',
    help: 'Backplane rows: written by this node, read, and pushed (delivered from a notification without a read).',
    attributes: ['hubwire.backplane.direction'],
    observe: (r) => {
      const b = r.snapshot.backplane;
      if (!b) return [];
      return [
        [['written'], b.rowsWritten],
        [['read'], b.rowsRead],
        [['pushed'], b.rowsPushed],
      ];
    },
  },
  {
    otel: 'hubwire.backplane.append.time',
    prom: 'hubwire_backplane_append_seconds_total',
    kind: 'counter',
    unit: 's',
    help: 'Time spent in appends that committed (divide by rows written for the mean append).',
    attributes: [],
    observe: (r) => single(r.backplane && r.backplane.appendMs / 1000),
  },
  {
    otel: 'hubwire.backplane.streams',
    prom: 'hubwire_backplane_streams',
    kind: 'updown',
    unit: '{stream}',
    help: 'Streams by publishing state: open, buffering (database unreachable, sends queue), closed.',
    attributes: ['hubwire.backplane.stream.state'],
    observe: (r) => {
      const streams = r.backplane?.streams;
      if (!streams) return [];
      return STATES.map((state) => [[state], streams.filter((s) => s.state === state).length]);
    },
  },
  {
    otel: 'hubwire.backplane.queue.length',
    prom: 'hubwire_backplane_queue_length',
    kind: 'gauge',
    unit: '{message}',
    help: 'Messages accepted and not committed yet (the send queue; bounded by maxQueueLength).',
    attributes: [],
    observe: (r) => single(r.backplane?.queueLength),
  },
  {
    otel: 'hubwire.backplane.errors',
    prom: 'hubwire_backplane_errors_total',
    kind: 'counter',
    unit: '{error}',
    help: 'Errors of the backplane (failed appends, reads, subscriptions, trims).',
    attributes: [],
    observe: (r) => single(r.backplane?.errors),
  },
  {
    otel: 'hubwire.backplane.lag',
    prom: 'hubwire_backplane_lag_rows',
    kind: 'gauge',
    unit: '{row}',
    help: 'Rows committed that this node has not delivered yet: the newest id it knows minus its position.',
    attributes: [STREAM],
    observe: (r) => perStream(r, (s) => Math.max(0, s.head - s.position)),
  },
  {
    otel: 'hubwire.backplane.lag.age',
    prom: 'hubwire_backplane_lag_age_seconds',
    kind: 'gauge',
    unit: 's',
    help: 'Seconds since this node last had delivered every row it knew of (0 when caught up).',
    attributes: [STREAM],
    observe: (r) => perStream(r, (s) => s.behindMs / 1000),
  },
  {
    otel: 'hubwire.backplane.stream.head',
    prom: 'hubwire_backplane_stream_head',
    kind: 'gauge',
    unit: '{row}',
    help: 'The newest committed id of each stream this node knows of.',
    attributes: [STREAM],
    observe: (r) => perStream(r, (s) => s.head),
  },
  {
    otel: 'hubwire.backplane.stream.position',
    prom: 'hubwire_backplane_stream_position',
    kind: 'gauge',
    unit: '{row}',
    help: 'The highest id of each stream this node has delivered.',
    attributes: [STREAM],
    observe: (r) => perStream(r, (s) => s.position),
  },
  {
    otel: 'hubwire.backplane.wakeups',
    prom: 'hubwire_backplane_wakeups_total',
    kind: 'counter',
    unit: '{wakeup}',
    help: "Reads started by the store's push (notifications) and by poll timers.",
    attributes: ['hubwire.backplane.wakeup'],
    observe: (r) => {
      const b = r.backplane;
      if (!b) return [];
      return [
        [['push'], b.wakeupsPush],
        [['poll'], b.wakeupsPoll],
      ];
    },
  },
  {
    otel: 'hubwire.backplane.trims',
    prom: 'hubwire_backplane_trims_total',
    kind: 'counter',
    unit: '{trim}',
    help: 'Trim passes of this node that deleted rows.',
    attributes: [],
    observe: (r) => single(r.backplane?.trims),
  },
  {
    otel: 'hubwire.backplane.rows.trimmed',
    prom: 'hubwire_backplane_rows_trimmed_total',
    kind: 'counter',
    unit: '{row}',
    help: 'Rows deleted by this node trimming old rows.',
    attributes: [],
    observe: (r) => single(r.backplane?.rowsTrimmed),
  },
  {
    otel: 'hubwire.backplane.gaps',
    prom: 'hubwire_backplane_gaps_total',
    kind: 'counter',
    unit: '{gap}',
    help: 'Rows trimmed before this node read them (messages it missed: raise the retention).',
    attributes: [],
    observe: (r) => single(r.backplane?.gaps),
  },
  // --- The cluster, as the node registry has it ---------------------------------------------------------------
  {
    otel: 'hubwire.cluster.nodes',
    prom: 'hubwire_cluster_nodes',
    kind: 'gauge',
    unit: '{node}',
    help: 'Nodes in the registry: alive (a heartbeat within nodeTimeout) or dead (not aged out yet).',
    attributes: ['hubwire.node.state'],
    observe: (r) => {
      if (!r.nodes) return [];
      const alive = r.nodes.filter((n) => n.alive).length;
      return [
        [['alive'], alive],
        [['dead'], r.nodes.length - alive],
      ];
    },
  },
  {
    otel: 'hubwire.cluster.node.heartbeat.age',
    prom: 'hubwire_cluster_node_heartbeat_age_seconds',
    kind: 'gauge',
    unit: 's',
    help: "Seconds since each node's last heartbeat, by the database's clock.",
    attributes: ['hubwire.node'],
    observe: (r) => (r.nodes ?? []).map((n) => [[n.id], n.heartbeatAgeMs / 1000]),
  },
  {
    otel: 'hubwire.cluster.node.lag',
    prom: 'hubwire_cluster_node_lag_rows',
    kind: 'gauge',
    unit: '{row}',
    help: "Rows each node is behind: a live node's own word at its last heartbeat; a dead one's, the heads now minus its last positions.",
    attributes: ['hubwire.node'],
    observe: (r) =>
      (r.nodes ?? []).flatMap((n): Observation[] => {
        const lag = n.self
          ? (r.backplane?.streams ?? []).reduce((sum, s) => sum + Math.max(0, s.head - s.position), 0)
          : nodeLag(
              n.info,
              (r.backplane?.streams ?? []).map((s) => s.head),
              n.alive,
            );
        return lag === undefined ? [] : [[[n.id], lag]];
      }),
  },
  {
    otel: 'hubwire.node.info',
    prom: 'hubwire_node_info',
    kind: 'gauge',
    unit: '1',
    help: "This node's id and Hubwire version (always 1).",
    attributes: ['hubwire.node', 'hubwire.version'],
    observe: (r) => [[[r.snapshot.node, r.version], 1]],
  },
];

/** The Prometheus label of an attribute key. */
export function labelOf(attribute: string): string {
  return attribute.replace(/\./g, '_');
}
