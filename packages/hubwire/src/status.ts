// `hubwire status <url>`: what a backplane's tables say about the cluster, read without joining it: the stream
// heads, the nodes of the registry (alive or not, by the database's clock) with what each said in its last
// heartbeat, and each node's lag (the stream heads minus the positions it had delivered at that heartbeat).

import { DEFAULT_NODE_TIMEOUT } from './backplane/backplane-options.js';
import { loadBackplanePackage, type StoreUrlOptions } from './backplane/from-url.js';
import { nodeLag, parseNodeInfo, supportsNodes } from './backplane/node-registry.js';
import { DEFAULT_SCHEMA } from './backplane/store-support.js';

export interface StatusNode {
  id: string;
  alive: boolean;
  /** Since its last heartbeat (ms, by the database's clock). */
  heartbeatAgeMs: number;
  startedAt: string;
  info: Record<string, unknown>;
  /**
   * Rows behind, summed over streams (undefined when it did not say): a live node's own word at its last heartbeat
   * (the heads it knew minus its positions); for a dead one, the current heads minus its last positions.
   */
  lag: number | undefined;
}

export interface BackplaneStatus {
  kind: string;
  schema: string;
  /** The installation's epoch, as the nodes report it (undefined without nodes). */
  epoch: string | undefined;
  /** The schema version the nodes installed or found (undefined without nodes, or when their store does not say). */
  schemaVersion: number | undefined;
  streams: { stream: number; head: number }[];
  nodes: StatusNode[];
}

/** Reads the status; rejects with a clear error for an unreachable or uninstalled database. */
export async function readStatus(
  url: string,
  options: StoreUrlOptions & { nodeTimeout?: number } = {},
): Promise<BackplaneStatus> {
  const backplanePackage = await loadBackplanePackage(url);
  const store = backplanePackage.createStore(url, options);
  const schema = options.schema ?? DEFAULT_SCHEMA;
  try {
    let heads: number[];
    try {
      heads = await Promise.all(Array.from({ length: store.streamCount }, (_, stream) => store.top(stream)));
    } catch (error) {
      throw new Error(`Cannot read the ${store.kind} backplane (schema ${schema}): ${(error as Error).message}`);
    }
    if (!supportsNodes(store)) throw new Error(`The ${store.kind} store keeps no node registry.`);
    let registry: Awaited<ReturnType<typeof store.readNodes>>;
    try {
      registry = await store.readNodes();
    } catch (error) {
      throw new Error(
        `The ${store.kind} backplane (schema ${schema}) has no node registry yet: its nodes run an older version, or run \`hubwire install-schema\` with this version. (${(error as Error).message})`,
      );
    }
    const timeout = options.nodeTimeout ?? DEFAULT_NODE_TIMEOUT;
    const nodes = registry.nodes
      .map((node): StatusNode => {
        const info = parseNodeInfo(node.info);
        const alive = registry.now - node.heartbeatAt <= timeout;
        return {
          id: node.id,
          alive,
          heartbeatAgeMs: Math.max(0, registry.now - node.heartbeatAt),
          startedAt: new Date(node.startedAt).toISOString(),
          info,
          lag: nodeLag(info, heads, alive),
        };
      })
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
    const said = (key: string) =>
      nodes.map((node) => (node.info.backplane as Record<string, unknown> | undefined)?.[key]);
    const epoch = said('epoch').find((value): value is string => typeof value === 'string');
    const versions = said('schemaVersion').filter((value): value is number => typeof value === 'number');
    const schemaVersion = versions.length > 0 ? Math.max(...versions) : undefined;
    return {
      kind: store.kind,
      schema,
      epoch,
      schemaVersion,
      streams: heads.map((head, stream) => ({ stream, head })),
      nodes,
    };
  } finally {
    await store.close().catch(() => {});
  }
}

/** A node's retention, as it said it (rows and age kept per stream). */
function retentionOf(info: Record<string, unknown>): string | undefined {
  const retention = (info.backplane as { retention?: { rows?: unknown; ageMs?: unknown } } | undefined)?.retention;
  if (typeof retention?.rows !== 'number' || typeof retention.ageMs !== 'number') return undefined;
  return `keeps ${retention.rows} rows / ${retention.ageMs / 1000} s`;
}

/** The status as a few lines of text (what `hubwire status` prints without --json). */
export function formatStatus(status: BackplaneStatus): string {
  const alive = status.nodes.filter((node) => node.alive).length;
  const lines = [
    `${status.kind} backplane, schema ${status.schema} (version ${status.schemaVersion ?? '?'}), epoch ${status.epoch ?? '(no node has said)'}`,
    `stream heads: ${status.streams.map((s) => `${s.stream}: ${s.head}`).join(', ')}`,
    `nodes: ${alive} alive, ${status.nodes.length - alive} not (yet aged out)`,
  ];
  for (const node of status.nodes) {
    const info = node.info;
    const fields = [
      node.alive ? 'alive' : 'DEAD ',
      node.id,
      `heartbeat ${(node.heartbeatAgeMs / 1000).toFixed(1)} s ago`,
      `since ${node.startedAt}`,
      `version ${String(info.version ?? '?')}`,
      info.address ? `at ${String(info.address)}` : undefined,
      `connections ${String(info.connections ?? '?')}`,
      `lag ${node.lag ?? '?'} rows`,
      retentionOf(info),
    ];
    lines.push(`  ${fields.filter((field) => field !== undefined).join('  ')}`);
  }
  return `${lines.join('\n')}\n`;
}
