// A connection arriving from another node (stateful-moves.ts): the rows after its checkpoint are replayed through
// it (sends addressed to it, its group changes, its records), numbered from the checkpoint's sequence id exactly as
// its holder numbered them, and it is registered on the bus in the same turn as the last of them.

import { resumeFrom } from '../../backplane/resume.js';
import type { StreamHistory } from '../../backplane/stream-history.js';
import type { ConnectionRecord } from '../../bus/connection-record.js';
import type { BusConnection, MessageBus } from '../../bus/message-bus.js';
import type { Checkpoint } from './checkpoint.js';

/** Rows one arrival replays at most: more than that since a checkpoint means something is badly wrong. */
const MAX_REPLAY_ROWS = 100_000;
/** How long an arrival retries reading the rows while the database does not answer (ms). */
const REPLAY_TIMEOUT_MS = 10_000;

/** Replays the rows after `checkpoint` into `connection`; resolves with an error text when it could not. */
export async function replayArrival(options: {
  history: StreamHistory;
  bus: MessageBus;
  connection: BusConnection;
  userId: string | undefined;
  checkpoint: Checkpoint;
  onRecord(record: ConnectionRecord): void;
  cancelled(): boolean;
}): Promise<string | undefined> {
  const { bus, connection, checkpoint } = options;
  const recordFor = bus.recordFor?.bind(bus);
  if (!recordFor) return 'This hub cannot resume connections from another node.';
  const target = {
    bus,
    key: checkpoint.hub,
    connection,
    groups: new Set(checkpoint.groups),
    other: (envelope: Parameters<typeof recordFor>[0]) => {
      const record = recordFor(envelope, connection.connectionId);
      if (record) options.onRecord(record);
    },
  };
  try {
    const result = await resumeFrom(
      options.history,
      connection.connectionId,
      options.userId,
      [target],
      checkpoint.position,
      options.cancelled,
      { timeoutMs: REPLAY_TIMEOUT_MS, catchUpMs: 0, maxRows: MAX_REPLAY_ROWS, restoring: () => {} },
    );
    if (result.missed > 0) {
      return `The connection could not be resumed on this node: ${result.missed} backplane rows it needed were trimmed. Reconnect to start a new connection.`;
    }
    return undefined;
  } catch (error) {
    return `The connection could not be resumed on this node: ${(error as Error).message}`;
  }
}
