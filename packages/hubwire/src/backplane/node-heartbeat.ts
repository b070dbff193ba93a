// This node's row in the node registry (node-registry.ts): written when the backplane starts, refreshed every
// heartbeatInterval with what the node says about itself (`setInfo`), removed on close; rows of nodes dead for
// four node timeouts are pruned. `nodes()` reads the registry: every node of the cluster, alive or not.

import { HubwireError } from '../errors.js';
import type { BackplaneStore } from './backplane-store.js';
import { MAX_NODE_INFO_BYTES, type NodeRecord, type NodeStore, parseNodeInfo, supportsNodes } from './node-registry.js';

/** A node of the cluster, as the registry has it. */
export interface ClusterNode {
  readonly id: string;
  /** What the node says about itself (the Hubwire server: address, version, connection counts). */
  readonly info: Record<string, unknown>;
  readonly startedAt: Date;
  readonly heartbeatAt: Date;
  /** How old its last heartbeat was when the registry was read (ms, by the database's clock). */
  readonly heartbeatAgeMs: number;
  /** Its last heartbeat is at most nodeTimeout old (by the database's clock). */
  readonly alive: boolean;
  /** This node. */
  readonly self: boolean;
}

export class NodeHeartbeat {
  private readonly store: (BackplaneStore & NodeStore) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private info: () => Record<string, unknown> = () => ({});
  private beating: Promise<void> | undefined;
  private stopped = false;
  /** A heartbeat went through: there is a row to remove on stop. */
  private registered = false;

  private readonly interval: number;
  private readonly timeout: number;
  /** Where the backplane stands (its epoch, queue, stream positions): the `backplane` part of the info. */
  private readonly standing: () => Record<string, unknown>;

  constructor(
    store: BackplaneStore,
    private readonly nodeId: string,
    options: { heartbeatInterval: number; nodeTimeout: number; standing: () => Record<string, unknown> },
    private readonly fail: (error: unknown, where: string) => void,
  ) {
    this.store = supportsNodes(store) ? store : undefined;
    this.interval = options.heartbeatInterval;
    this.timeout = options.nodeTimeout;
    this.standing = options.standing;
  }

  /** What this node says about itself in each heartbeat (JSON; at most 4096 bytes once encoded). */
  setInfo(provider: () => Record<string, unknown>): void {
    this.info = provider;
  }

  /** Registers this node and keeps its row fresh (after the backplane installed its schema). */
  start(): void {
    if (!this.store || this.stopped || this.timer) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.interval);
    this.timer.unref();
  }

  private beat(): Promise<void> {
    const store = this.store;
    if (!store || this.stopped || this.beating) return this.beating ?? Promise.resolve();
    this.beating = (async () => {
      try {
        await store.heartbeatNode(this.nodeId, this.encodeInfo());
        this.registered = true;
        // Any node prunes: the deletes are idempotent and cheap.
        await store.pruneNodes(this.timeout * 4);
      } catch (error) {
        this.fail(error, 'the node heartbeat');
      } finally {
        this.beating = undefined;
      }
    })();
    return this.beating;
  }

  private encodeInfo(): string {
    let info: string;
    try {
      info = JSON.stringify({ ...this.info(), backplane: this.standing() });
    } catch (error) {
      this.fail(error, 'describing this node for the node registry');
      return '{}';
    }
    if (Buffer.byteLength(info) <= MAX_NODE_INFO_BYTES) return info;
    this.fail(
      new HubwireError('HW_ERR_INVALID_OPTION', `This node's info is over ${MAX_NODE_INFO_BYTES} bytes; sent empty.`),
      'the node heartbeat',
    );
    return '{}';
  }

  /** Every node in the registry (oldest first), this one included once it has registered. */
  async nodes(): Promise<ClusterNode[]> {
    if (!this.store) {
      throw new HubwireError(
        'HW_ERR_INVALID_OPTION',
        'This backplane store keeps no node registry (heartbeatNode, readNodes, removeNode, pruneNodes).',
      );
    }
    const { now, nodes } = await this.store.readNodes();
    return nodes
      .map((node: NodeRecord) => ({
        id: node.id,
        info: parseNodeInfo(node.info),
        startedAt: new Date(node.startedAt),
        heartbeatAt: new Date(node.heartbeatAt),
        heartbeatAgeMs: Math.max(0, now - node.heartbeatAt),
        alive: now - node.heartbeatAt <= this.timeout,
        self: node.id === this.nodeId,
      }))
      .sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || a.id.localeCompare(b.id));
  }

  /** Stops the heartbeat and removes this node's row (a clean shutdown: other nodes see it gone at once). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const store = this.store;
    await this.beating;
    if (!store || !this.registered) return;
    try {
      await store.removeNode(this.nodeId);
    } catch (error) {
      this.fail(error, 'removing this node from the node registry');
    }
  }
}
