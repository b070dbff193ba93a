// The MessagePack hub protocol: each message is a MessagePack array, prefixed by its length as a VarInt
// (7 bits per byte, low group first, high bit set on every byte but the last; at most 5 bytes).

import { Packr, Unpackr } from 'msgpackr';
import { HubwireError } from '../errors.js';
import type { HubProtocol, MessageDecoder } from './hub-protocol.js';
import { tooLarge } from './json-protocol.js';
import { type HubMessage, MessageType } from './messages.js';
import { validateMessage } from './validate.js';

// Plain MessagePack as other SignalR clients expect it: maps (not msgpackr "records"), bin for bytes,
// the timestamp extension for dates, nil for undefined.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

const EMPTY_HEADERS = {};
/** The marks of an error from inside the decoder rather than one about the data. */
const INTERNAL = /TypeError|RangeError|ReferenceError|Cannot read|is not a function|is not defined|undefined|null/;

/**
 * What plain MessagePack cannot carry but msgpackr decodes from its own extensions (undefined, Error, RegExp, Set,
 * typed arrays, shared and cyclic references, ...): a description of the first one in `value`, or undefined when
 * there is none. Hub methods get nil, booleans, numbers, strings, bin, timestamps, arrays and maps only.
 */
function foreignValue(value: unknown): string | undefined {
  const pending: unknown[] = [value];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const item = pending.pop();
    if (item === null || typeof item === 'boolean' || typeof item === 'number' || typeof item === 'string') continue;
    if (item === undefined) return 'an extension value (undefined) is not allowed';
    if (typeof item !== 'object') return `a ${typeof item} is not allowed`;
    if (item instanceof Date || item instanceof Uint8Array) continue;
    if (seen.has(item)) return 'shared or cyclic references are not allowed';
    seen.add(item);
    if (Array.isArray(item)) {
      for (const element of item) pending.push(element);
      continue;
    }
    const prototype = Object.getPrototypeOf(item);
    if (prototype !== Object.prototype && prototype !== null) {
      return `an extension type (${(item as object).constructor?.name ?? 'object'}) is not allowed`;
    }
    for (const key of Object.keys(item)) pending.push((item as Record<string, unknown>)[key]);
  }
  return undefined;
}

function toWireArray(message: HubMessage): unknown[] {
  switch (message.type) {
    case MessageType.Invocation:
      return message.streamIds?.length
        ? [
            1,
            message.headers ?? EMPTY_HEADERS,
            message.invocationId ?? null,
            message.target,
            message.arguments,
            message.streamIds,
          ]
        : [1, message.headers ?? EMPTY_HEADERS, message.invocationId ?? null, message.target, message.arguments];
    case MessageType.StreamItem:
      return [2, message.headers ?? EMPTY_HEADERS, message.invocationId, message.item ?? null];
    case MessageType.Completion:
      if (message.error !== undefined)
        return [3, message.headers ?? EMPTY_HEADERS, message.invocationId, 1, message.error];
      if (message.hasResult)
        return [3, message.headers ?? EMPTY_HEADERS, message.invocationId, 3, message.result ?? null];
      return [3, message.headers ?? EMPTY_HEADERS, message.invocationId, 2];
    case MessageType.StreamInvocation:
      return message.streamIds?.length
        ? [
            4,
            message.headers ?? EMPTY_HEADERS,
            message.invocationId,
            message.target,
            message.arguments,
            message.streamIds,
          ]
        : [4, message.headers ?? EMPTY_HEADERS, message.invocationId, message.target, message.arguments];
    case MessageType.CancelInvocation:
      return [5, message.headers ?? EMPTY_HEADERS, message.invocationId];
    case MessageType.Ping:
      return [6];
    case MessageType.Close:
      return [7, message.error ?? null, message.allowReconnect === true];
    case MessageType.Ack:
    case MessageType.Sequence:
      return [message.type, message.sequenceId];
  }
}

function invalid(text: string): HubwireError {
  return new HubwireError('HW_ERR_INVALID_MESSAGE', text);
}

/** Maps a decoded MessagePack array to the JSON-shaped object that validateMessage checks. */
function fromWireArray(value: unknown): HubMessage | undefined {
  if (!Array.isArray(value) || value.length === 0) throw invalid('Expected a MessagePack array.');
  const type = value[0];
  const need = (n: number) => {
    if (value.length < n) throw invalid(`Invalid payload for message type ${type}: expected at least ${n} elements.`);
  };
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      need(5);
      return validateMessage({
        type,
        headers: value[1],
        invocationId: value[2],
        target: value[3],
        arguments: value[4],
        streamIds: value[5],
      });
    case MessageType.StreamItem:
      need(4);
      return validateMessage({ type, headers: value[1], invocationId: value[2], item: value[3] });
    case MessageType.Completion: {
      need(4);
      const kind = value[3];
      const base = { type, headers: value[1], invocationId: value[2] };
      if (kind === 1) {
        need(5);
        return validateMessage({ ...base, error: value[4] });
      }
      if (kind === 2) return validateMessage(base);
      if (kind === 3) {
        need(5);
        return validateMessage({ ...base, result: value[4] });
      }
      throw invalid(`Invalid completion result kind: ${String(kind)}.`);
    }
    case MessageType.CancelInvocation:
      need(3);
      return validateMessage({ type, headers: value[1], invocationId: value[2] });
    case MessageType.Ping:
      return { type: MessageType.Ping };
    case MessageType.Close:
      need(2);
      return validateMessage({ type, error: value[1], allowReconnect: value[2] });
    case MessageType.Ack:
    case MessageType.Sequence:
      need(2);
      return validateMessage({ type, sequenceId: value[1] });
    default:
      if (typeof type !== 'number') throw invalid('Expected the message type to be an integer.');
      return undefined;
  }
}

/** Reads the VarInt length prefix at `offset`: [length, prefixBytes], or undefined when more bytes are needed. */
function readLength(data: Buffer, offset: number): [number, number] | undefined {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    if (offset + i >= data.length) return undefined;
    const byte = data[offset + i] as number;
    if (i === 4 && byte > 0x07) throw invalid('Messages over 2GB are not supported.');
    length += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [length, i + 1];
  }
  throw invalid('Invalid message length prefix.');
}

function writeLength(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

class MessagePackDecoder implements MessageDecoder {
  private pending: Buffer | undefined;
  constructor(private readonly maxMessageSize: number) {}

  push(chunk: Buffer): HubMessage[] {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    const messages: HubMessage[] = [];
    let offset = 0;
    while (offset < data.length) {
      const header = readLength(data, offset);
      if (!header) break;
      const [length, prefix] = header;
      // Check the limit before buffering the body.
      if (this.maxMessageSize > 0 && length > this.maxMessageSize) throw tooLarge(this.maxMessageSize);
      if (offset + prefix + length > data.length) break;
      let decoded: unknown;
      try {
        decoded = unpackr.unpack(data.subarray(offset + prefix, offset + prefix + length));
      } catch (error) {
        // msgpackr's own errors say what is wrong; one from inside it (a TypeError, even wrapped in its own text)
        // says nothing useful to a client and shows our internals.
        const reason =
          error instanceof Error &&
          !(error instanceof TypeError || error instanceof RangeError) &&
          !INTERNAL.test(error.message)
            ? error.message
            : 'the data could not be decoded';
        throw invalid(`Invalid MessagePack message: ${reason}.`);
      }
      const extension = foreignValue(decoded);
      if (extension) throw invalid(`Invalid MessagePack message: ${extension}.`);
      const message = fromWireArray(decoded);
      if (message) messages.push(message);
      offset += prefix + length;
    }
    if (offset < data.length) this.pending = Buffer.from(data.subarray(offset));
    return messages;
  }
}

export const messagePackHubProtocol: HubProtocol = {
  name: 'messagepack',
  version: 1,
  transferFormat: 'Binary',
  createDecoder: (maxMessageSize) => new MessagePackDecoder(maxMessageSize),
  encode(message) {
    const body = packr.pack(toWireArray(message));
    return Buffer.concat([writeLength(body.length), body]);
  },
};
