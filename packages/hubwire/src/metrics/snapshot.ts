// What one node reports about itself at a moment: the JSON the dashboard charts and `hubwire.metrics.snapshot()`
// returns. Counters are cumulative since the node started (rates are differences between two snapshots).

export interface StreamSnapshot {
  stream: number;
  /** Publishing state: open, buffering (database unreachable, sends queue), closed. */
  state: string;
  /** Highest id this node has delivered. */
  position: number;
  /** Newest committed id this node knows of (from wake-ups and reads). */
  head: number;
  /** head − position: rows committed that this node has not delivered yet. */
  lag: number;
  /** Age of the oldest row this node knows of and has not delivered (seconds; 0 when caught up). */
  lagSeconds: number;
}

export interface BackplaneSnapshot {
  epoch: string | undefined;
  queueLength: number;
  /** Messages accepted by publish() / committed (published) / delivered here from every node (received). */
  accepted: number;
  published: number;
  received: number;
  rowsWritten: number;
  rowsRead: number;
  rowsPushed: number;
  wakeupsPush: number;
  wakeupsPoll: number;
  /** Trim passes of this node that deleted rows, and the rows they deleted. */
  trims: number;
  rowsTrimmed: number;
  gaps: number;
  errors: number;
  streams: StreamSnapshot[];
}

export interface RecentError {
  /** Epoch milliseconds. */
  at: number;
  where: string;
  message: string;
}

export interface NodeMetricsSnapshot {
  /** The backplane's node id, or 'local' without a backplane. */
  node: string;
  /** Epoch milliseconds. */
  at: number;
  /** Seconds since this server started. */
  uptime: number;
  connections: {
    /** ASP.NET Core protocol connections, live now. */
    total: number;
    byHub: Record<string, number>;
    /** By transport: web_sockets, server_sent_events, long_polling (SignalR's semantic-convention names). */
    byTransport: Record<string, number>;
    /** Classic (SignalR 2) connections. */
    classic: number;
  };
  invocations: { total: number; errors: number };
  /** Hub messages written to client connections (one per connection a send reached). */
  messagesSent: number;
  bytesIn: number;
  bytesOut: number;
  clientResultsPending: number;
  backplane: BackplaneSnapshot | undefined;
  /** The last errors this node reported (newest last, at most 20). */
  errors: RecentError[];
}
