// What this node holds (its connections by hub and transport, its classic connections), said in every heartbeat of
// the backplane's node registry, and the cluster's presence read back from it: the nodes, and a hub's connection
// count across them (this node's counted now, the others' as of their last heartbeat). The users online and a
// group's members are asked of the nodes themselves, through the hub's bus (bus/presence-query.ts).

import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Backplane, ClusterNode } from './backplane/backplane.js';
import type { ClassicServer } from './classic/classic-server.js';
import type { HttpConnection } from './connection/connection.js';
import { VERSION } from './version.js';

/** Where the presence reads this node's state from (the server). */
export interface PresenceSource {
  connections(): Iterable<HttpConnection>;
  classic(): readonly ClassicServer[];
  address(): AddressInfo | string | null | undefined;
  /** The paths of the hubs this node maps (the nodes that map a hub answer its presence queries). */
  hubPaths?(): Iterable<string>;
}

export class Presence {
  private readonly startedAt = new Date();

  constructor(
    private readonly source: PresenceSource,
    private readonly backplane: Backplane | undefined,
  ) {}

  /**
   * What this node says about itself in the node registry (every heartbeat): its process, address, and the
   * connections it holds, by hub and transport.
   */
  describe(): Record<string, unknown> {
    const hubs: Record<string, number> = {};
    const transports: Record<string, number> = {};
    let connections = 0;
    for (const connection of this.source.connections()) {
      if (connection.state === 'closed') continue;
      connections++;
      hubs[connection.endpointPath] = (hubs[connection.endpointPath] ?? 0) + 1;
      const transport = connection.transportKind ?? 'negotiated';
      transports[transport] = (transports[transport] ?? 0) + 1;
    }
    const classic: Record<string, number> = {};
    for (const endpoint of this.source.classic()) classic[endpoint.basePath] = endpoint.connectionCount;
    const address = this.source.address();
    return {
      version: VERSION,
      node: process.version,
      pid: process.pid,
      host: hostname(),
      address: address && typeof address === 'object' ? `${address.address}:${address.port}` : undefined,
      connections,
      hubs,
      transports,
      classic,
      mapped: this.source.hubPaths ? [...this.source.hubPaths()] : undefined,
    };
  }

  /** The nodes of the cluster (the registry), or this node alone without a backplane. */
  async nodes(): Promise<ClusterNode[]> {
    if (this.backplane) return this.backplane.nodes();
    const now = new Date();
    return [
      {
        id: 'local',
        info: this.describe(),
        startedAt: this.startedAt,
        heartbeatAt: now,
        heartbeatAgeMs: 0,
        alive: true,
        self: true,
      },
    ];
  }

  /** A hub's connections on every live node: this node's counted now, the others' as of their last heartbeat. */
  async count(hubPath: string): Promise<number> {
    let count = 0;
    for (const connection of this.source.connections()) {
      if (connection.state !== 'closed' && connection.endpointPath === hubPath) count++;
    }
    if (!this.backplane) return count;
    for (const node of await this.backplane.nodes()) {
      if (node.self || !node.alive) continue;
      const there = (node.info.hubs as Record<string, unknown> | undefined)?.[hubPath];
      if (typeof there === 'number' && Number.isSafeInteger(there) && there > 0) count += there;
    }
    return count;
  }
}
