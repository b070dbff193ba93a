// Presence queries across the cluster, as Socket.IO's adapters answer fetchSockets(): the asking node publishes a
// Query envelope; every node that reads it answers with its local part in an Answer envelope addressed to the asker
// (the asker takes its own part when it reads its own Query back, so every part is as of the query's place in the
// stream). The asker merges the parts once every other live node of the registry that maps this hub has answered,
// or when the timeout passes: nodes that have not answered by then are left out. Costs one row to ask and one per
// answering node (batched with other traffic), and a database round trip.

import { type Envelope, EnvelopeKind } from '../bus/envelope.js';
import { MAX_ANSWER_ITEMS, type PresenceQuestion } from '../bus/presence-query.js';
import { HubwireError } from '../errors.js';

/** At most this many characters of ids in one node's answer (with MAX_ANSWER_ITEMS, the bound of an answer). */
export const MAX_ANSWER_CHARS = 1 << 20;

type QueryEnvelope = Extract<Envelope, { kind: typeof EnvelopeKind.Query }>;
type AnswerEnvelope = Extract<Envelope, { kind: typeof EnvelopeKind.Answer }>;

/** What the queries need of the backplane. */
export interface QueryHost {
  readonly nodeId: string;
  publish(envelope: Envelope): Promise<void>;
}

interface Part {
  items: unknown[];
  /** How many items the node had (more than `items` holds when its answer was over the bound). */
  total: number;
}

interface PendingQuery {
  question: PresenceQuestion;
  /** The other nodes that must answer: undefined until the registry was read (or when it cannot be). */
  expected: Set<string> | undefined;
  /** The parts received, by node (this node's too). */
  parts: Map<string, Part>;
  timer: NodeJS.Timeout;
  resolve(parts: unknown[][]): void;
  reject(error: Error): void;
}

/**
 * Whether a node (by what it says in the registry) answers this hub's queries: a Hubwire server lists the hub paths
 * it maps (`mapped`). A node that does not say (a bare Backplane, or custom node info) is waited for all the same.
 */
export function mapsHub(info: Record<string, unknown>, hub: string): boolean {
  return !Array.isArray(info.mapped) || info.mapped.includes(hub);
}

export class ClusterQueries {
  private readonly pending = new Map<string, PendingQuery>();
  private nextQueryId = 0;

  constructor(
    private readonly host: QueryHost,
    /** The bus's name on the backplane (the `hub` of its envelopes). */
    private readonly hub: string,
    /** The other live nodes that map this hub: each must answer. */
    private readonly liveNodes: () => Promise<Set<string>>,
    /** This node's part of a question. */
    private readonly answer: (question: PresenceQuestion) => unknown[],
  ) {}

  /**
   * Asks every live node; resolves with each node's part once all of them answered, or after `timeout` ms with the
   * parts that arrived (this node's always). Rejects when the query cannot be published, or when a node's part was
   * over the bound of an answer.
   */
  ask(question: PresenceQuestion, timeout: number): Promise<unknown[][]> {
    const nodeId = this.host.nodeId;
    const queryId = `${nodeId}:q${++this.nextQueryId}`;
    return new Promise<unknown[][]>((resolve, reject) => {
      const entry: PendingQuery = {
        question,
        expected: undefined,
        parts: new Map(),
        timer: setTimeout(() => this.finish(queryId), timeout),
        resolve,
        reject,
      };
      this.pending.set(queryId, entry);
      this.liveNodes().then(
        (expected) => {
          entry.expected = expected;
          this.check(queryId);
        },
        () => {
          // No registry (or the database is unreachable now): the timeout decides.
        },
      );
      this.host
        .publish({ kind: EnvelopeKind.Query, hub: this.hub, replyNode: nodeId, queryId, question })
        .catch((error: Error) => this.settle(queryId)?.reject(error));
    });
  }

  /** A Query read from the backplane: this node's part, to the asker (or kept, when this node asked). */
  onQuery(envelope: QueryEnvelope): void {
    const items = this.answer(envelope.question);
    const nodeId = this.host.nodeId;
    if (envelope.replyNode === nodeId) {
      const entry = this.pending.get(envelope.queryId);
      if (!entry) return;
      entry.parts.set(nodeId, { items, total: items.length });
      this.check(envelope.queryId);
      return;
    }
    const fits = items.length <= MAX_ANSWER_ITEMS && idChars(items) <= MAX_ANSWER_CHARS;
    this.host
      .publish({
        kind: EnvelopeKind.Answer,
        hub: this.hub,
        replyNode: envelope.replyNode,
        queryId: envelope.queryId,
        node: nodeId,
        items: fits ? items : [],
        total: items.length,
      })
      .catch(() => {
        // The asker's timeout leaves this node out.
      });
  }

  /** An Answer read from the backplane. */
  onAnswer(envelope: AnswerEnvelope): void {
    if (envelope.replyNode !== this.host.nodeId) return;
    const entry = this.pending.get(envelope.queryId);
    if (!entry) return;
    entry.parts.set(envelope.node, { items: envelope.items, total: envelope.total });
    this.check(envelope.queryId);
  }

  /** How many queries this node is waiting on. */
  get size(): number {
    return this.pending.size;
  }

  /** Rejects every query still waiting. */
  close(error: Error): void {
    for (const queryId of [...this.pending.keys()]) this.settle(queryId)?.reject(error);
  }

  private check(queryId: string): void {
    const entry = this.pending.get(queryId);
    if (!entry?.expected || !entry.parts.has(this.host.nodeId)) return;
    for (const node of entry.expected) if (!entry.parts.has(node)) return;
    this.finish(queryId);
  }

  /** Every expected node answered, or the timeout passed: merges what arrived. */
  private finish(queryId: string): void {
    const entry = this.settle(queryId);
    if (!entry) return;
    const nodeId = this.host.nodeId;
    // This node's own Query was not read back in time (the database is slow): its part as of now.
    if (!entry.parts.has(nodeId)) {
      const items = this.answer(entry.question);
      entry.parts.set(nodeId, { items, total: items.length });
    }
    for (const [node, part] of entry.parts) {
      if (node === nodeId || part.total <= part.items.length) continue;
      entry.reject(
        new HubwireError(
          'HW_ERR_MESSAGE_TOO_LARGE',
          `Node '${node}' has ${part.total} ${entry.question.what === 'users' ? 'users' : 'members'} to report, more than a presence answer carries (${MAX_ANSWER_ITEMS} ids, ${MAX_ANSWER_CHARS} characters).`,
        ),
      );
      return;
    }
    entry.resolve([...entry.parts.values()].map((part) => part.items));
  }

  private settle(queryId: string): PendingQuery | undefined {
    const entry = this.pending.get(queryId);
    if (!entry) return undefined;
    this.pending.delete(queryId);
    clearTimeout(entry.timer);
    return entry;
  }
}

/** The characters of the ids in an answer (user ids; or connection id and user id pairs). */
function idChars(items: readonly unknown[]): number {
  let chars = 0;
  for (const item of items) {
    if (typeof item === 'string') chars += item.length;
    else if (Array.isArray(item)) for (const id of item) if (typeof id === 'string') chars += id.length;
  }
  return chars;
}
