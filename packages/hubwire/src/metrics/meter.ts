// The counters the hot paths bump: plain numbers, no labels to hash, nothing allocated per message. The exporters
// (OpenTelemetry, Prometheus) and the dashboard's snapshot read them when they are collected, never per message.

import type { TransportKind } from '../transports/transport.js';
import type { RecentError } from './snapshot.js';

/** SignalR's semantic-convention names of the transports (`signalr.transport`). */
export const TRANSPORT_NAMES: Record<TransportKind, string> = {
  WebSockets: 'web_sockets',
  ServerSentEvents: 'server_sent_events',
  LongPolling: 'long_polling',
};

/**
 * Why a connection ended (`signalr.connection.status`): SignalR's well-known values, and `slow_client` (Hubwire's:
 * closed because it did not read what was sent to it).
 */
export type ConnectionStatus = 'normal_closure' | 'timeout' | 'app_shutdown' | 'slow_client';

/** A method's calls and the calls that failed (refused, or the method threw). */
export interface MethodTally {
  calls: number;
  errors: number;
}

/** The label under which calls of methods the hub does not have are counted (client-chosen names never become labels). */
export const UNKNOWN_METHOD = '(unknown)';

/** One hub's counters. */
export class HubMeter {
  /** Per method: only the hub's own method names (bounded), and UNKNOWN_METHOD. */
  readonly methods = new Map<string, MethodTally>();
  /** Hub messages written to this hub's connections (one per connection a send reached). */
  messagesSent = 0;

  constructor(readonly path: string) {}

  /** A call finished: `method` is the hub's method, or undefined when the hub has none by that name. */
  invoked(method: string | undefined, failed: boolean): void {
    const name = method ?? UNKNOWN_METHOD;
    let tally = this.methods.get(name);
    if (!tally) {
      tally = { calls: 0, errors: 0 };
      this.methods.set(name, tally);
    }
    tally.calls++;
    if (failed) tally.errors++;
  }
}

/** What a connection's life came to, for the connection-duration histograms. */
export type ConnectionEndListener = (transport: string, status: ConnectionStatus, seconds: number) => void;

const MAX_RECENT_ERRORS = 20;

/** Connections on any node (connection/cross-node.ts): starts adopted, requests forwarded and served, tokens refused. */
export interface CrossNodeTally {
  adopted: number;
  /** Stateful-reconnect connections another node held that continued here (hub/moves/). */
  moved: number;
  forwarded: { send: number; poll: number; stop: number };
  served: { send: number; poll: number; stop: number };
  refused: { forged: number; user: number; spent: number; expired: number; unavailable: number };
}

/** One server's counters: per transport, per hub, connection ends, and its last errors. */
export class ServerMeter {
  readonly bytesIn: Record<TransportKind, number> = { WebSockets: 0, ServerSentEvents: 0, LongPolling: 0 };
  readonly bytesOut: Record<TransportKind, number> = { WebSockets: 0, ServerSentEvents: 0, LongPolling: 0 };
  readonly hubs = new Map<string, HubMeter>();
  /** Connections ended, by transport and status (`transport status` keys). */
  readonly ended = new Map<string, number>();
  readonly recentErrors: RecentError[] = [];
  readonly crossNode: CrossNodeTally = {
    adopted: 0,
    moved: 0,
    forwarded: { send: 0, poll: 0, stop: 0 },
    served: { send: 0, poll: 0, stop: 0 },
    refused: { forged: 0, user: 0, spent: 0, expired: 0, unavailable: 0 },
  };
  errors = 0;
  private readonly endListeners: ConnectionEndListener[] = [];

  hub(path: string): HubMeter {
    let meter = this.hubs.get(path);
    if (!meter) {
      meter = new HubMeter(path);
      this.hubs.set(path, meter);
    }
    return meter;
  }

  onConnectionEnd(listener: ConnectionEndListener): void {
    this.endListeners.push(listener);
  }

  connectionEnded(kind: TransportKind, status: ConnectionStatus, seconds: number): void {
    const transport = TRANSPORT_NAMES[kind];
    const key = `${transport} ${status}`;
    this.ended.set(key, (this.ended.get(key) ?? 0) + 1);
    for (const listener of this.endListeners) listener(transport, status, seconds);
  }

  /** An error the server reported (kept: the newest MAX_RECENT_ERRORS, messages cut to 500 characters). */
  error(error: unknown, where: string): void {
    this.errors++;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.recentErrors.push({ at: Date.now(), where, message: message.slice(0, 500) });
    if (this.recentErrors.length > MAX_RECENT_ERRORS) this.recentErrors.shift();
  }
}
