// The classic protocol's JSON on the receive channel: envelopes `{"C","S","T","G","L","M"}`, hub results
// `{"I","R","S","E","H","D"}`, and client invocations `{"H","M","A"}` made by a per-hub pseudo HubProtocol, so a
// broadcast is encoded once for every classic connection of a hub (SerializedMessage caches bytes per protocol).

import type { HubProtocol } from '../protocol/hub-protocol.js';
import { stringifyAsAspNetCore } from '../protocol/json-protocol.js';
import { type HubMessage, MessageType } from '../protocol/messages.js';

/** `{}`: keeps the client's keep-alive timer happy; carries nothing. */
export const KEEP_ALIVE = Buffer.from('{}');

const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');

export interface EnvelopeFields {
  /** The init message (`S:1`): the client then calls /start. */
  init?: boolean;
  /** The server is shutting down (`T:1`): long polling reconnects. */
  shuttingDown?: boolean;
  /** A new groups token, sent only after the connection's membership changed. */
  groupsToken?: string;
  /** Long-poll delay in ms. */
  longPollDelay?: number;
  /** Ends the client with this error (`E`). */
  error?: string;
}

/** One envelope: the cursor after `messages` (each already-encoded JSON), plus the optional fields in SignalR 2's order. */
export function encodeEnvelope(cursor: string, messages: readonly Buffer[], fields?: EnvelopeFields): Buffer {
  let head = `{"C":${JSON.stringify(cursor)}`;
  if (fields) {
    if (fields.init) head += ',"S":1';
    if (fields.shuttingDown) head += ',"T":1';
    if (fields.groupsToken !== undefined) head += `,"G":${JSON.stringify(fields.groupsToken)}`;
    if (fields.longPollDelay) head += `,"L":${fields.longPollDelay}`;
    if (fields.error !== undefined) head += `,"E":${JSON.stringify(fields.error)}`;
  }
  head += ',"M":[';
  if (messages.length === 0) return Buffer.from(`${head}]}`);
  const parts: Buffer[] = [Buffer.from(head)];
  for (let i = 0; i < messages.length; i++) {
    if (i > 0) parts.push(COMMA);
    parts.push(messages[i] as Buffer);
  }
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

export interface HubResult {
  /** The client's invocation id, always as a string (node-signalr drops a numeric 0). */
  id: string;
  /** The return value; omitted when undefined (void). */
  result?: unknown;
  /** Caller state that the method changed. */
  state?: Record<string, unknown>;
  error?: string;
  /** The error came from a HubError: the client rejects with source "HubException" and `data`. */
  hubException?: boolean;
  errorData?: unknown;
}

/** A hub result; a result that cannot be serialized becomes an error result. */
export function encodeHubResult(result: HubResult): string {
  const o: Record<string, unknown> = { I: result.id };
  if (result.state !== undefined) o.S = result.state;
  if (result.error !== undefined) {
    o.E = result.error;
    if (result.hubException) {
      o.H = true;
      if (result.errorData !== undefined) o.D = result.errorData;
    }
  } else if (result.result !== undefined) o.R = result.result;
  try {
    return stringifyAsAspNetCore(o);
  } catch (error) {
    return JSON.stringify({
      I: result.id,
      E: `The server could not serialize the result: ${(error as Error).message}`,
    });
  }
}

/**
 * The bus target of a progress report (`IProgress<T>` in SignalR 2): arguments [invocation id, value]. It is sent
 * only to the classic connection that made the call, and encoded as `{"I":"P|id","P":{"I":"id","D":value}}`.
 */
export const PROGRESS_TARGET = '\u0000classic:progress';

/**
 * The pseudo protocol of one classic hub: `encode` turns an invocation into `{"H":hub,"M":method,"A":args}`.
 * Only SerializedMessage calls it; classic connections never decode through it.
 */
export function classicHubProtocol(hubName: string): HubProtocol {
  const prefix = `{"H":${JSON.stringify(hubName)},"M":`;
  return {
    name: `classic:${hubName}`,
    version: 0,
    transferFormat: 'Text',
    createDecoder() {
      throw new Error('Classic hub messages are not decoded through a HubProtocol.');
    },
    encode(message: HubMessage): Buffer {
      if (message.type !== MessageType.Invocation)
        throw new Error(`Classic clients receive only invocations (not type ${message.type}).`);
      if (message.target === PROGRESS_TARGET) {
        const id = String(message.arguments[0]);
        const data = stringifyAsAspNetCore(message.arguments[1] === undefined ? null : message.arguments[1]);
        return Buffer.from(`{"I":${JSON.stringify(`P|${id}`)},"P":{"I":${JSON.stringify(id)},"D":${data}}}`);
      }
      // Bytes and bigints as ASP.NET writes them (Json.NET also sends byte[] as base64).
      return Buffer.from(`${prefix}${JSON.stringify(message.target)},"A":${stringifyAsAspNetCore(message.arguments)}}`);
    },
  };
}
