// Presence queries: the users a hub has online, and the connections of a group. Each node answers from its own
// connection index (Core and classic connections alike); a scaleout bus asks every live node through the backplane
// (backplane/cluster-query.ts) and merges their parts here.

import { HubwireError } from '../errors.js';
import type { ConnectionIndex } from './connection-index.js';

/** What a presence query asks of each node. */
export type PresenceQuestion = { readonly what: 'users' } | { readonly what: 'group'; readonly group: string };

/** A connection in a group, on some node of the cluster. */
export interface GroupMember {
  readonly connectionId: string;
  /** The connection's user id (what the user-id provider gave it), when it has one. */
  readonly userId?: string;
}

export interface PresenceQueryOptions {
  /**
   * With a backplane: how long to wait for the live nodes' answers, in ms. Default: the hub's client-result
   * timeout, at most 5000 ms. Nodes that have not answered by then are left out.
   */
  timeout?: number;
}

/** At most this many items (users, or members) in one node's answer through the backplane. */
export const MAX_ANSWER_ITEMS = 10_000;

/** The longest default wait for the nodes' answers (ms). */
export const MAX_DEFAULT_QUERY_TIMEOUT = 5000;

/** The default wait for a bus whose client results time out after `clientResultTimeout` ms (0 = never). */
export function defaultQueryTimeout(clientResultTimeout: number): number {
  return clientResultTimeout > 0 ? Math.min(clientResultTimeout, MAX_DEFAULT_QUERY_TIMEOUT) : MAX_DEFAULT_QUERY_TIMEOUT;
}

/** The wait a query's options ask for, or the default; throws on a timeout that is not a positive number. */
export function queryTimeout(options: PresenceQueryOptions | undefined, fallback: number): number {
  const timeout = options?.timeout;
  if (timeout === undefined) return fallback;
  if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new HubwireError('HW_ERR_INVALID_OPTION', `A presence query's timeout must be a positive number of ms.`);
  }
  return timeout;
}

/**
 * This node's part of a query: its distinct user ids, or the group's members as [connectionId, userId | null]
 * pairs (the wire form of a GroupMember).
 */
export function answerLocally(index: ConnectionIndex, question: PresenceQuestion): unknown[] {
  if (question.what === 'users') return [...index.userIds()];
  const members = index.group(question.group);
  if (!members) return [];
  return [...members].map((connection) => [connection.connectionId, connection.userId ?? null]);
}

/** The distinct user ids of every node's part, sorted (items that are not user ids are skipped). */
export function mergeUsers(parts: Iterable<readonly unknown[]>): string[] {
  const users = new Set<string>();
  for (const part of parts) for (const item of part) if (typeof item === 'string') users.add(item);
  return [...users].sort();
}

/**
 * The members of every node's part, once each (a classic connection moving between nodes may be in two parts for
 * a moment), sorted by connection id; malformed items are skipped.
 */
export function mergeMembers(parts: Iterable<readonly unknown[]>): GroupMember[] {
  const members = new Map<string, GroupMember>();
  for (const part of parts) {
    for (const item of part) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || members.has(item[0])) continue;
      const userId = item[1];
      members.set(item[0], typeof userId === 'string' ? { connectionId: item[0], userId } : { connectionId: item[0] });
    }
  }
  return [...members.values()].sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
}
