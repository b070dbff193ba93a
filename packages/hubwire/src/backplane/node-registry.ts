// The node registry: every node of a cluster keeps a row in its backplane's database (who it is, what it says about
// itself, when it started, its last heartbeat) and removes it on a clean shutdown; a node that died ages out by its
// heartbeat. A store offers it with four methods (optional, all or none: `supportsNodes`); times are the database's
// clock where it has one, so nodes with skewed clocks still agree on who is alive.

/** A node as its registry row has it. */
export interface NodeRecord {
  /** The node's id (a Backplane's nodeId). */
  readonly id: string;
  /** What the node says about itself: JSON text (its address, version, connection counts), at most 4096 bytes. */
  readonly info: string;
  /** When it registered, in milliseconds since 1970. */
  readonly startedAt: number;
  /** Its last heartbeat, in milliseconds since 1970. */
  readonly heartbeatAt: number;
}

export interface NodeStore {
  /**
   * Registers a node or refreshes its row: inserted with startedAt = heartbeatAt = now, or its info and heartbeat
   * updated (startedAt kept). The table is made by install().
   */
  heartbeatNode(id: string, info: string): Promise<void>;
  /** Every registered node (by id), and the clock the times were read with (the database's `now`). */
  readNodes(): Promise<{ now: number; nodes: NodeRecord[] }>;
  /** Removes a node's row (a clean shutdown). Resolves whether there was one. */
  removeNode(id: string): Promise<boolean>;
  /** Removes the rows whose last heartbeat is more than `olderThanMs` old. Resolves with how many. */
  pruneNodes(olderThanMs: number): Promise<number>;
}

/** Whether a store keeps the node registry (all four methods of NodeStore). */
export function supportsNodes<S extends object>(store: S): store is S & NodeStore {
  const methods = store as Partial<NodeStore> | undefined;
  return (
    typeof methods?.heartbeatNode === 'function' &&
    typeof methods.readNodes === 'function' &&
    typeof methods.removeNode === 'function' &&
    typeof methods.pruneNodes === 'function'
  );
}

export const MAX_NODE_ID_LENGTH = 64;
export const MAX_NODE_INFO_BYTES = 4096;

/** Throws a TypeError unless `id` is 1-64 printable ASCII characters without spaces. */
export function validateNodeId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(id)) {
    throw new TypeError(`A node id must be 1-${MAX_NODE_ID_LENGTH} printable ASCII characters without spaces.`);
  }
}

/** Throws a TypeError unless `info` is a string of at most 4096 UTF-8 bytes. */
export function validateNodeInfo(info: unknown): asserts info is string {
  if (typeof info !== 'string' || Buffer.byteLength(info) > MAX_NODE_INFO_BYTES) {
    throw new TypeError(`Node info must be a string of at most ${MAX_NODE_INFO_BYTES} bytes.`);
  }
}

/** Throws a RangeError unless `ms` is a non-negative safe integer. */
export function validateNodeAge(ms: unknown): asserts ms is number {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError('A node age must be a non-negative integer number of milliseconds.');
  }
}

/** A registry row's info as an object: `{}` for text that is not a JSON object (a row written by something else). */
export function parseNodeInfo(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * How many rows a node is behind, summed over streams, from what it said in its last heartbeat (`info.backplane.
 * streams`: position and the head it knew). A live node's own word is the freshest (its heartbeat is at most
 * heartbeatInterval old, and comparing today's heads with its older positions would count traffic it has long
 * delivered); a dead (stopped, partitioned) node cannot speak, so the current `heads` minus its last positions is
 * its lag, growing while others write. Undefined when the node did not say.
 */
export function nodeLag(info: Record<string, unknown>, heads: readonly number[], alive: boolean): number | undefined {
  const streams = (info.backplane as { streams?: unknown } | undefined)?.streams;
  if (!Array.isArray(streams)) return undefined;
  let lag = 0;
  for (const entry of streams as { stream?: unknown; position?: unknown; head?: unknown }[]) {
    if (typeof entry?.stream !== 'number' || typeof entry.position !== 'number') continue;
    const head = alive && typeof entry.head === 'number' ? entry.head : (heads[entry.stream] ?? 0);
    lag += Math.max(0, head - entry.position);
  }
  return lag;
}
