// The backplane's row codec: what nodes tell each other (bus/envelope.ts), as binary rows. A row holds a batch of envelopes from one
// node: [FORMAT, publisherNodeId, [envelope, ...], stamp?]. The stamp (with several streams) is the publisher's
// delivered position per stream when it wrote the row: the rows it had seen before (a replay merges streams in
// that order). Each envelope is an array whose first element is its kind;
// readers ignore envelope kinds and trailing elements they do not know, so the format can grow.

import { Packr, Unpackr } from 'msgpackr';
import type { ConnectionRecord } from '../bus/connection-record.js';
import { type Envelope, EnvelopeKind } from '../bus/envelope.js';
import type { Audience } from '../bus/message-bus.js';
import { MessageType } from '../protocol/messages.js';

const FORMAT = 1;

const AUDIENCE_ALL = 0;
const AUDIENCE_CONNECTIONS = 1;
const AUDIENCE_GROUPS = 2;
const AUDIENCE_USERS = 3;

const QUESTION_USERS = 1;
const QUESTION_GROUP = 2;

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

function audienceToWire(audience: Audience): [number, readonly string[] | null, readonly string[] | null] {
  const except = audience.except && audience.except.length > 0 ? audience.except : null;
  if ('all' in audience) return [AUDIENCE_ALL, null, except];
  if ('connections' in audience) return [AUDIENCE_CONNECTIONS, audience.connections, except];
  if ('groups' in audience) return [AUDIENCE_GROUPS, audience.groups, except];
  return [AUDIENCE_USERS, audience.users, except];
}

function audienceFromWire(kind: unknown, targets: unknown, except: unknown): Audience {
  const list = (value: unknown) => (Array.isArray(value) ? (value as string[]) : []);
  const base = except ? { except: list(except) } : {};
  switch (kind) {
    case AUDIENCE_ALL:
      return { ...base, all: true };
    case AUDIENCE_CONNECTIONS:
      return { ...base, connections: list(targets) };
    case AUDIENCE_GROUPS:
      return { ...base, groups: list(targets) };
    case AUDIENCE_USERS:
      return { ...base, users: list(targets) };
    default:
      throw new Error(`Unknown audience kind ${String(kind)}.`);
  }
}

function toWire(envelope: Envelope): unknown[] {
  switch (envelope.kind) {
    case EnvelopeKind.Send:
      return [EnvelopeKind.Send, envelope.hub, ...audienceToWire(envelope.audience), envelope.target, envelope.args];
    case EnvelopeKind.Group:
      return [EnvelopeKind.Group, envelope.hub, envelope.connectionId, envelope.group, envelope.add];
    case EnvelopeKind.Invoke:
      return [
        EnvelopeKind.Invoke,
        envelope.hub,
        envelope.connectionId,
        envelope.invocationId,
        envelope.target,
        envelope.args,
        envelope.replyNode,
      ];
    case EnvelopeKind.Reply:
      return [
        EnvelopeKind.Reply,
        envelope.hub,
        envelope.replyNode,
        envelope.invocationId,
        envelope.error ?? null,
        envelope.result,
      ];
    case EnvelopeKind.Notice:
      return [EnvelopeKind.Notice, envelope.hub, envelope.data];
    case EnvelopeKind.Absent:
      return [EnvelopeKind.Absent, envelope.hub, envelope.replyNode, envelope.invocationId, envelope.node];
    case EnvelopeKind.Query: {
      const { question } = envelope;
      return [
        EnvelopeKind.Query,
        envelope.hub,
        envelope.replyNode,
        envelope.queryId,
        question.what === 'users' ? QUESTION_USERS : QUESTION_GROUP,
        question.what === 'group' ? question.group : null,
      ];
    }
    case EnvelopeKind.Answer:
      return [
        EnvelopeKind.Answer,
        envelope.hub,
        envelope.replyNode,
        envelope.queryId,
        envelope.node,
        envelope.items,
        envelope.total,
      ];
    case EnvelopeKind.Record:
      return [EnvelopeKind.Record, envelope.hub, envelope.connectionId, ...recordToWire(envelope.record)];
  }
}

const RECORD_MARK = 0;

/** A mark: [0, sequenceId, invocationId]; a message: [type, invocationId, …its fields]. */
function recordToWire(record: ConnectionRecord): unknown[] {
  if (record.kind === 'mark') return [RECORD_MARK, record.sequenceId, record.invocationId ?? null];
  const message = record.message;
  switch (message.type) {
    case MessageType.Invocation:
      return [message.type, message.invocationId ?? null, message.target, message.arguments];
    case MessageType.StreamItem:
      return [message.type, message.invocationId, message.item];
    case MessageType.Completion:
      return [message.type, message.invocationId, message.result, message.error ?? null, message.hasResult === true];
  }
}

function recordFromWire(item: unknown[]): ConnectionRecord | undefined {
  const [type, id, a, b, c] = item.slice(3);
  if (type === RECORD_MARK) {
    if (!Number.isSafeInteger(id)) return undefined;
    return { kind: 'mark', sequenceId: id as number, invocationId: typeof a === 'string' ? a : undefined };
  }
  switch (type) {
    case MessageType.Invocation:
      return {
        kind: 'message',
        message: {
          type: MessageType.Invocation,
          ...(typeof id === 'string' ? { invocationId: id } : {}),
          target: String(a),
          arguments: Array.isArray(b) ? b : [],
        },
      };
    case MessageType.StreamItem:
      return { kind: 'message', message: { type: MessageType.StreamItem, invocationId: String(id), item: a } };
    case MessageType.Completion:
      return {
        kind: 'message',
        message: {
          type: MessageType.Completion,
          invocationId: String(id),
          ...(typeof b === 'string' ? { error: b } : c === true ? { result: a, hasResult: true } : {}),
        },
      };
    default:
      return undefined; // from a newer version
  }
}

function fromWire(item: unknown): Envelope | undefined {
  if (!Array.isArray(item)) throw new Error('An envelope must be an array.');
  const [kind, hub] = item as [unknown, unknown];
  if (typeof hub !== 'string') throw new Error('An envelope must name its hub.');
  switch (kind) {
    case EnvelopeKind.Send:
      return {
        kind: EnvelopeKind.Send,
        hub,
        audience: audienceFromWire(item[2], item[3], item[4]),
        target: String(item[5]),
        args: Array.isArray(item[6]) ? item[6] : [],
      };
    case EnvelopeKind.Group:
      return {
        kind: EnvelopeKind.Group,
        hub,
        connectionId: String(item[2]),
        group: String(item[3]),
        add: item[4] === true,
      };
    case EnvelopeKind.Invoke:
      return {
        kind: EnvelopeKind.Invoke,
        hub,
        connectionId: String(item[2]),
        invocationId: String(item[3]),
        target: String(item[4]),
        args: Array.isArray(item[5]) ? item[5] : [],
        replyNode: String(item[6]),
      };
    case EnvelopeKind.Reply:
      return {
        kind: EnvelopeKind.Reply,
        hub,
        replyNode: String(item[2]),
        invocationId: String(item[3]),
        error: typeof item[4] === 'string' ? item[4] : undefined,
        result: item[5],
      };
    case EnvelopeKind.Notice:
      return { kind: EnvelopeKind.Notice, hub, data: item[2] };
    case EnvelopeKind.Absent:
      return {
        kind: EnvelopeKind.Absent,
        hub,
        replyNode: String(item[2]),
        invocationId: String(item[3]),
        node: String(item[4]),
      };
    case EnvelopeKind.Query: {
      const question =
        item[4] === QUESTION_USERS
          ? { what: 'users' as const }
          : item[4] === QUESTION_GROUP
            ? { what: 'group' as const, group: String(item[5]) }
            : undefined;
      if (!question) return undefined; // a question from a newer version: not answered
      return { kind: EnvelopeKind.Query, hub, replyNode: String(item[2]), queryId: String(item[3]), question };
    }
    case EnvelopeKind.Answer: {
      const items = Array.isArray(item[5]) ? (item[5] as unknown[]) : [];
      return {
        kind: EnvelopeKind.Answer,
        hub,
        replyNode: String(item[2]),
        queryId: String(item[3]),
        node: String(item[4]),
        items,
        total: Number.isSafeInteger(item[6]) ? (item[6] as number) : items.length,
      };
    }
    case EnvelopeKind.Record: {
      const record = recordFromWire(item);
      return record && { kind: EnvelopeKind.Record, hub, connectionId: String(item[2]), record };
    }
    default:
      return undefined; // a kind from a newer version: ignored
  }
}

export function encodeBatch(publisher: string, envelopes: readonly Envelope[], stamp?: readonly number[]): Buffer {
  const batch: unknown[] = [FORMAT, publisher, envelopes.map(toWire)];
  if (stamp) batch.push(stamp);
  return packr.pack(batch);
}

export interface DecodedBatch {
  publisher: string;
  envelopes: Envelope[];
  /** The publisher's delivered position per stream when it wrote the row (absent with one stream). */
  stamp?: number[];
}

/** Throws on a row this version cannot read. */
export function decodeBatch(payload: Buffer): DecodedBatch {
  const value = unpackr.unpack(payload) as unknown;
  if (!Array.isArray(value) || value[0] !== FORMAT) throw new Error('Unknown backplane row format.');
  const items = Array.isArray(value[2]) ? (value[2] as unknown[]) : [];
  const envelopes: Envelope[] = [];
  for (const item of items) {
    const envelope = fromWire(item);
    if (envelope) envelopes.push(envelope);
  }
  const stamp = Array.isArray(value[3]) && value[3].every((id) => Number.isSafeInteger(id)) ? value[3] : undefined;
  return { publisher: String(value[1]), envelopes, stamp: stamp as number[] | undefined };
}
