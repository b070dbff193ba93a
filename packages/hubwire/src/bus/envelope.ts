// What nodes tell each other through a backplane, as binary rows. A row holds a batch of envelopes from one
// node: [FORMAT, publisherNodeId, [envelope, ...], stamp?]. The stamp (with several streams) is the publisher's
// delivered position per stream when it wrote the row: the rows it had seen before (a replay merges streams in
// that order). Each envelope is an array whose first element is its kind;
// readers ignore envelope kinds and trailing elements they do not know, so the format can grow.

import { Packr, Unpackr } from 'msgpackr';
import type { Audience } from './message-bus.js';

const FORMAT = 1;

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
} as const;

export type Envelope =
  | { kind: 1; hub: string; audience: Audience; target: string; args: unknown[] }
  | { kind: 2; hub: string; connectionId: string; group: string; add: boolean }
  | {
      kind: 3;
      hub: string;
      connectionId: string;
      invocationId: string;
      target: string;
      args: unknown[];
      replyNode: string;
    }
  | { kind: 4; hub: string; replyNode: string; invocationId: string; error: string | undefined; result: unknown }
  | { kind: 5; hub: string; data: unknown };

const AUDIENCE_ALL = 0;
const AUDIENCE_CONNECTIONS = 1;
const AUDIENCE_GROUPS = 2;
const AUDIENCE_USERS = 3;

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
    case 1:
      return [1, envelope.hub, ...audienceToWire(envelope.audience), envelope.target, envelope.args];
    case 2:
      return [2, envelope.hub, envelope.connectionId, envelope.group, envelope.add];
    case 3:
      return [
        3,
        envelope.hub,
        envelope.connectionId,
        envelope.invocationId,
        envelope.target,
        envelope.args,
        envelope.replyNode,
      ];
    case 4:
      return [4, envelope.hub, envelope.replyNode, envelope.invocationId, envelope.error ?? null, envelope.result];
    case 5:
      return [5, envelope.hub, envelope.data];
  }
}

function fromWire(item: unknown): Envelope | undefined {
  if (!Array.isArray(item)) throw new Error('An envelope must be an array.');
  const [kind, hub] = item as [unknown, unknown];
  if (typeof hub !== 'string') throw new Error('An envelope must name its hub.');
  switch (kind) {
    case 1:
      return {
        kind: 1,
        hub,
        audience: audienceFromWire(item[2], item[3], item[4]),
        target: String(item[5]),
        args: Array.isArray(item[6]) ? item[6] : [],
      };
    case 2:
      return { kind: 2, hub, connectionId: String(item[2]), group: String(item[3]), add: item[4] === true };
    case 3:
      return {
        kind: 3,
        hub,
        connectionId: String(item[2]),
        invocationId: String(item[3]),
        target: String(item[4]),
        args: Array.isArray(item[5]) ? item[5] : [],
        replyNode: String(item[6]),
      };
    case 4:
      return {
        kind: 4,
        hub,
        replyNode: String(item[2]),
        invocationId: String(item[3]),
        error: typeof item[4] === 'string' ? item[4] : undefined,
        result: item[5],
      };
    case 5:
      return { kind: 5, hub, data: item[2] };
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
