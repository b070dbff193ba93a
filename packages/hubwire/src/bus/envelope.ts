// What the nodes of a cluster tell each other about a hub (its bus traffic): sends to an audience, group changes,
// client results asked and answered, presence queries and their answers, and notices between the nodes' instances
// of one endpoint. A backplane carries envelopes between nodes (backplane/envelope.ts is its wire codec); history
// readers (StreamHistory) replay them.

import type { ConnectionRecord } from './connection-record.js';
import type { Audience } from './message-bus.js';
import type { PresenceQuestion } from './presence-query.js';

export const EnvelopeKind = {
  /** [1, hub, audienceKind, targets, except, target, args] */
  Send: 1,
  /** [2, hub, connectionId, group, add] */
  Group: 2,
  /** [3, hub, connectionId, invocationId, target, args, replyNode] */
  Invoke: 3,
  /** [4, hub, replyNode, invocationId, error, result] */
  Reply: 4,
  /** [5, hub, data]: a message between the nodes' instances of one endpoint (classic SignalR 2 connection moves). */
  Notice: 5,
  /** [6, hub, replyNode, invocationId, node]: `node` does not hold the connection an Invoke asked for. */
  Absent: 6,
  /** [7, hub, replyNode, queryId, question, group]: every node answers with its local part (presence-query.ts). */
  Query: 7,
  /** [8, hub, replyNode, queryId, node, items, total]: `node`'s part of a Query (at most `items` of `total`). */
  Answer: 8,
  /**
   * [9, hub, connectionId, record…]: a message for one connection that keeps its state in the backplane (a
   * stateful-reconnect connection that may move between nodes), or a mark that it processed a client message;
   * its holder acts on it when read back (connection-record.ts).
   */
  Record: 9,
} as const;

export type Envelope =
  | { kind: typeof EnvelopeKind.Send; hub: string; audience: Audience; target: string; args: unknown[] }
  | { kind: typeof EnvelopeKind.Group; hub: string; connectionId: string; group: string; add: boolean }
  | {
      kind: typeof EnvelopeKind.Invoke;
      hub: string;
      connectionId: string;
      invocationId: string;
      target: string;
      args: unknown[];
      replyNode: string;
    }
  | {
      kind: typeof EnvelopeKind.Reply;
      hub: string;
      replyNode: string;
      invocationId: string;
      error: string | undefined;
      result: unknown;
    }
  | { kind: typeof EnvelopeKind.Notice; hub: string; data: unknown }
  | { kind: typeof EnvelopeKind.Absent; hub: string; replyNode: string; invocationId: string; node: string }
  | { kind: typeof EnvelopeKind.Query; hub: string; replyNode: string; queryId: string; question: PresenceQuestion }
  | {
      kind: typeof EnvelopeKind.Answer;
      hub: string;
      replyNode: string;
      queryId: string;
      node: string;
      items: unknown[];
      /** How many items the node had; more than `items` holds when the answer was over the size bound. */
      total: number;
    }
  | { kind: typeof EnvelopeKind.Record; hub: string; connectionId: string; record: ConnectionRecord };
