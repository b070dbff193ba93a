// What the three processes of the classic move bench share: the parent (bench/classic-move.ts), its two server
// nodes (bench/servers/classic-move-node.ts) and its clients process (bench/clients/classic-move-clients.ts): the
// modes, what the nodes and the clients report, and the IPC messages.

export type Mode = 'sticky' | 'moving';
export const MODES: Mode[] = ['sticky', 'moving'];

export interface ServerStats {
  node: string;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  /** onConnected / onDisconnected calls of the hub on this node so far. */
  connected: number;
  disconnected: number;
  /** Hubwire's onError calls and failed publishes so far. */
  errors: number;
  sendErrors: number;
  /** Every store.readAfter (the engine's own reads and the replays of moved connections): calls and rows. */
  reads: number;
  rowsRead: number;
  /**
   * Timings of the backplane from the outside (instance methods wrapped): the store's appends (ms total), the
   * engine's replays (a moved connection reading the rows after its cursor) and waitFor calls (a moved connection
   * waiting until this node has delivered up to its cursor), count and total ms each.
   */
  timings: {
    appends: number;
    appendMs: number;
    replays: number;
    replayMs: number;
    waits: number;
    waitMs: number;
    waitsTimedOut: number;
  };
  /** Backplane.stats(). */
  engine: { rowsWritten: number; rowsRead: number; published: number; errors: number; gaps: number };
}

export type ToServer =
  | { type: 'stats'; id: number }
  | { type: 'publish'; id: number; firstSeq: number; count: number; rate: number }
  | { type: 'stop' };
export type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'stats'; id: number; stats: ServerStats }
  | { type: 'published'; id: number; firstUs: number; lastUs: number; failed: number; settleTimedOut: boolean }
  | { type: 'fatal'; message: string };

export interface PhaseReport {
  /** Deliveries of this phase's seqs (duplicates included). */
  received: number;
  /** Expected deliveries never received (seq × client). */
  lost: number;
  /** Deliveries of a seq the client already had. */
  duplicates: number;
  /** First deliveries of a seq after a higher seq had arrived at the same client. */
  reordered: number;
  /** Deliveries of seqs outside this phase (late ones of an earlier phase). */
  stray: number;
  lastUs: number;
  buckets: Uint32Array;
  /** Polls answered during the phase, and how many went to the other node than the previous request. */
  polls: number;
  moves: number;
  /** How long each poll took, request to full answer (held while there was nothing to send), µs. */
  pollBuckets: Uint32Array;
  /** Requests retried after a reset of a reused keep-alive socket (client side, see http()). */
  resets: number;
  /** Clients process CPU over the phase, µs. */
  cpuUs: number;
  /** For the first clients with a loss or duplicate: what happened (diagnostics). */
  examples: string[];
}

export type ToClients =
  | { type: 'connect'; id: number }
  | { type: 'mode'; id: number; mode: Mode }
  | { type: 'phase'; id: number; firstSeq: number; count: number }
  | { type: 'end'; id: number }
  | { type: 'stop' };
export type FromClients =
  | { type: 'connected'; id: number; ms: number; home: [number, number] }
  | { type: 'ack'; id: number }
  | { type: 'complete'; firstSeq: number }
  | { type: 'report'; id: number; report: PhaseReport }
  | { type: 'fatal'; message: string };

/** A child's message to the parent; a child whose parent is gone exits. */
export const toParent = (message: FromServer | FromClients) => {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
};

/** This process's CPU time (user + system), µs. */
export const cpuUs = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};
