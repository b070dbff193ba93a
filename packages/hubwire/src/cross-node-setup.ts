// Wires connections on any node (connection/cross-node.ts) to a backplane: connection tokens are signed with a key
// set the nodes share through the backplane's database, and the nodes' claims travel as notices on the backplane.

import type { Backplane } from './backplane/backplane.js';
import { SharedKeys } from './backplane/shared-keys.js';
import { EnvelopeKind } from './bus/envelope.js';
import {
  CLAIMS_KEY,
  type ClusterLink,
  CONNECTION_KEYS_PURPOSE,
  type CrossNodeOptions,
} from './connection/cross-node.js';

/** How long after negotiate a token may start its connection on another node, by default (ms). */
export const DEFAULT_ADOPTION_WINDOW = 60_000;

/**
 * The options of connections on any node over `backplane`, and what to close with the server; undefined (and an
 * error reported) when its store keeps no keys: then tokens stay random and each works on its own node only.
 */
export function crossNodeSetup(
  backplane: Backplane,
  adoptionWindow: number,
  reportError: (error: unknown, where: string) => void,
): { options: CrossNodeOptions; close(): void } | undefined {
  const keys = SharedKeys.for(backplane, CONNECTION_KEYS_PURPOSE, reportError);
  if (!keys) {
    reportError(
      new Error(
        `The ${backplane.store.kind} backplane store keeps no keys: connection tokens work only on the node that negotiated them (use sticky sessions).`,
      ),
      'connections on any node',
    );
    return undefined;
  }
  return {
    options: { keys, adoptionWindow, reportError, link: clusterLink(backplane, CLAIMS_KEY) },
    close: () => keys.close(),
  };
}

/** The nodes' notices under `key` on the backplane, as a ClusterLink. */
export function clusterLink(backplane: Backplane, key: string): ClusterLink {
  const publish = (data: unknown) => backplane.publish({ kind: EnvelopeKind.Notice, hub: key, data });
  return {
    nodeId: backplane.nodeId,
    publish,
    publishCommitted: async (data) => {
      await publish(data);
      await backplane.whenCommitted(backplane.accepted);
    },
    aliveNodes: async () => {
      const nodes = await backplane.recentNodes();
      return new Set(nodes.filter((node) => node.alive).map((node) => node.id));
    },
    barrier: async (timeoutMs) => {
      const store = backplane.store;
      const heads = await Promise.all(Array.from({ length: store.streamCount }, (_, stream) => store.top(stream)));
      return backplane.waitFor(heads, timeoutMs);
    },
    listen: (handler) =>
      backplane.register(key, (envelope) => {
        if (envelope.kind === EnvelopeKind.Notice) handler(envelope.data);
      }),
  };
}
