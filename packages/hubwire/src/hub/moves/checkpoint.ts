// Where a connection that may move between nodes stood (connection-record.ts), at a backplane position: its holder
// publishes one now and then, every node keeps the newest per connection, and a node the client reconnects to
// rebuilds the connection from it and the rows after it (stateful-moves.ts).

/** A connection's state at a backplane position (everything in it follows from the rows up to `position`). */
export interface Checkpoint {
  /** The connection id. */
  readonly id: string;
  /** The node that held it when this was written. */
  readonly node: string;
  /** Its hub's bus (its history key). */
  readonly hub: string;
  /** The hub protocol its client chose at the handshake. */
  readonly protocol: string;
  /** Outgoing sequence ids 1..seq were given to the messages for it in the rows up to `position`. */
  readonly seq: number;
  readonly position: readonly number[];
  readonly groups: readonly string[];
  /** The highest client sequence id taken (its marks) in those rows. */
  readonly received: number;
  /** Invocations taken and not completed in those rows. */
  readonly open: readonly string[];
}

/** A checkpoint as read from a notice; undefined for anything malformed. */
export function parseCheckpoint(value: unknown): Checkpoint | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const c = value as Record<string, unknown>;
  const strings = (list: unknown): list is string[] =>
    Array.isArray(list) && list.every((item) => typeof item === 'string');
  const counts = (list: unknown): list is number[] =>
    Array.isArray(list) && list.every((item) => Number.isSafeInteger(item) && (item as number) >= 0);
  if (
    typeof c.id !== 'string' ||
    typeof c.node !== 'string' ||
    typeof c.hub !== 'string' ||
    typeof c.protocol !== 'string' ||
    !Number.isSafeInteger(c.seq) ||
    !Number.isSafeInteger(c.received) ||
    !counts(c.position) ||
    !strings(c.groups) ||
    !strings(c.open)
  ) {
    return undefined;
  }
  return {
    id: c.id,
    node: c.node,
    hub: c.hub,
    protocol: c.protocol,
    seq: c.seq as number,
    position: c.position,
    groups: c.groups,
    received: c.received as number,
    open: c.open,
  };
}
