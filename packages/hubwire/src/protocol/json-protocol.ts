// The JSON hub protocol: one UTF-8 JSON object per message, each followed by the record separator 0x1E.

import { HubwireError } from '../errors.js';
import type { HubProtocol, MessageDecoder } from './hub-protocol.js';
import { type HubMessage, MessageType } from './messages.js';
import { validateMessage } from './validate.js';

export const RECORD_SEPARATOR = 0x1e;
const SEPARATOR_STRING = String.fromCharCode(RECORD_SEPARATOR);

/** Serialises a message to the JSON object the protocol expects (only the fields that apply). */
function toWireObject(message: HubMessage): Record<string, unknown> {
  switch (message.type) {
    case MessageType.Invocation: {
      const o: Record<string, unknown> = {
        type: MessageType.Invocation,
        target: message.target,
        arguments: message.arguments,
      };
      if (message.invocationId !== undefined) o.invocationId = message.invocationId;
      if (message.headers) o.headers = message.headers;
      if (message.streamIds?.length) o.streamIds = message.streamIds;
      return o;
    }
    case MessageType.StreamInvocation: {
      const o: Record<string, unknown> = {
        type: MessageType.StreamInvocation,
        invocationId: message.invocationId,
        target: message.target,
        arguments: message.arguments,
      };
      if (message.headers) o.headers = message.headers;
      if (message.streamIds?.length) o.streamIds = message.streamIds;
      return o;
    }
    case MessageType.StreamItem: {
      const o: Record<string, unknown> = {
        type: MessageType.StreamItem,
        invocationId: message.invocationId,
        item: message.item ?? null,
      };
      if (message.headers) o.headers = message.headers;
      return o;
    }
    case MessageType.Completion: {
      const o: Record<string, unknown> = { type: MessageType.Completion, invocationId: message.invocationId };
      if (message.headers) o.headers = message.headers;
      if (message.error !== undefined) o.error = message.error;
      else if (message.hasResult) o.result = message.result ?? null;
      return o;
    }
    case MessageType.CancelInvocation: {
      const o: Record<string, unknown> = { type: MessageType.CancelInvocation, invocationId: message.invocationId };
      if (message.headers) o.headers = message.headers;
      return o;
    }
    case MessageType.Ping:
      return { type: MessageType.Ping };
    case MessageType.Close: {
      const o: Record<string, unknown> = { type: MessageType.Close };
      if (message.error !== undefined) o.error = message.error;
      if (message.allowReconnect) o.allowReconnect = true;
      return o;
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type: message.type, sequenceId: message.sequenceId };
  }
}

/**
 * Values as ASP.NET Core's System.Text.Json writes them, so .NET and Java clients read them: bytes (Buffer,
 * Uint8Array, ArrayBuffer) become base64 strings, dates ISO-8601 strings (Date.toJSON already does that),
 * bigints numbers when exact, else strings. Buffer's own toJSON runs before the replacer, so the holder is read.
 */
function asAspNetCore(this: Record<string, unknown>, key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') {
      if (Number.isSafeInteger(Number(value))) return Number(value);
      // Beyond 64 bits no .NET integer holds it: a string, as for other unbindable values.
      if (value < INT64_MIN || value > UINT64_MAX) return value.toString();
      // An Int64/UInt64 must stay exact, which no JavaScript number is: mark it, write its digits after stringify.
      bigintsMarked = true;
      return `${BIGINT_MARK}${value.toString()}${BIGINT_MARK}`;
    }
    return value;
  }
  const original = this[key];
  if (original instanceof Uint8Array)
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  if (original instanceof ArrayBuffer) return Buffer.from(original).toString('base64');
  return value;
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
// A per-process random marker (escaped by JSON.stringify as \u0000…), so no client string can forge one.
const BIGINT_MARK = `\u0000${Math.random().toString(36).slice(2)}\u0000`;
/** The marker as it appears inside JSON text, escaped for a RegExp. */
const MARK_IN_JSON = JSON.stringify(BIGINT_MARK).slice(1, -1).replaceAll('\\', '\\\\');
const MARKED_BIGINT = new RegExp(`"${MARK_IN_JSON}(-?\\d+)${MARK_IN_JSON}"`, 'g');
let bigintsMarked = false;

/**
 * JSON.stringify as ASP.NET Core's System.Text.Json writes values, so .NET and Java clients read them: bytes
 * (Buffer, Uint8Array, ArrayBuffer) as base64 strings, dates as ISO-8601 strings, bigints as exact numbers.
 */
export function stringifyAsAspNetCore(value: unknown): string {
  bigintsMarked = false;
  const json = JSON.stringify(value, asAspNetCore);
  return bigintsMarked ? json.replace(MARKED_BIGINT, '$1') : json;
}

class JsonDecoder implements MessageDecoder {
  private pending: Buffer | undefined;
  constructor(private readonly maxMessageSize: number) {}

  push(chunk: Buffer): HubMessage[] {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    const messages: HubMessage[] = [];
    let start = 0;
    for (;;) {
      const end = data.indexOf(RECORD_SEPARATOR, start);
      if (end === -1) break;
      if (this.maxMessageSize > 0 && end - start > this.maxMessageSize) throw tooLarge(this.maxMessageSize);
      const text = data.toString('utf8', start, end);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new HubwireError('HW_ERR_INVALID_MESSAGE', `Invalid JSON message: ${(error as Error).message}`);
      }
      const message = validateMessage(parsed);
      if (message) messages.push(message);
      start = end + 1;
    }
    if (start < data.length) {
      if (this.maxMessageSize > 0 && data.length - start > this.maxMessageSize) throw tooLarge(this.maxMessageSize);
      // Copy so a small tail does not pin a large transport buffer.
      this.pending = Buffer.from(data.subarray(start));
    }
    return messages;
  }
}

export function tooLarge(limit: number): HubwireError {
  return new HubwireError('HW_ERR_MESSAGE_TOO_LARGE', `The maximum message size of ${limit}B was exceeded.`);
}

export const jsonHubProtocol: HubProtocol = {
  name: 'json',
  version: 1,
  transferFormat: 'Text',
  createDecoder: (maxMessageSize) => new JsonDecoder(maxMessageSize),
  encode: (message) => Buffer.from(stringifyAsAspNetCore(toWireObject(message)) + SEPARATOR_STRING, 'utf8'),
};
