// What a backplane reports about itself: each stream's publishing state and position, and its counters.

export type StreamState = 'initial' | 'open' | 'buffering' | 'closed';

export interface StreamStatus {
  stream: number;
  /** Publishing: open (writes succeed), buffering (database unreachable, sends queue), closed. */
  state: StreamState;
  /** Highest id this node has delivered. */
  position: number;
  /** The newest committed id this node knows of (wake-ups, reads, and a probe every heartbeatInterval). */
  head: number;
  /** Milliseconds since this node last had delivered every row it knew of (0 when caught up). */
  behindMs: number;
}

export interface BackplaneStats {
  nodeId: string;
  epoch: string | undefined;
  streams: StreamStatus[];
  queueLength: number;
  /** Messages accepted by publish(); `published` of them have committed. */
  accepted: number;
  published: number;
  rowsWritten: number;
  rowsRead: number;
  /** Rows delivered as the store pushed them, without a read (PostgreSQL: rows that fit their NOTIFY). */
  rowsPushed: number;
  delivered: number;
  errors: number;
  /** Rows that were trimmed before this node could read them (messages this node missed). */
  gaps: number;
  /** Reads started by the store's wake-ups (pushed rows, notifications) and by poll timers. */
  wakeupsPush: number;
  wakeupsPoll: number;
  /** Trim passes of this node that deleted rows, and the rows they deleted. */
  trims: number;
  rowsTrimmed: number;
  /** Time spent in the store's appends that committed, summed (ms): divide by rowsWritten for the average. */
  appendMs: number;
  /** Time from acceptance to commit, summed over published messages (ms): divide by published. */
  acceptToCommitMs: number;
}
