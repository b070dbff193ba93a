// Checks that a decoded value is a well-formed hub message. Shared by the JSON and MessagePack protocols.

import { HubwireError } from '../errors.js';
import { type Headers, type HubMessage, MessageType } from './messages.js';

function invalid(message: string): HubwireError {
  return new HubwireError('HW_ERR_INVALID_MESSAGE', message);
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(`Expected '${field}' to be of type string.`);
  return value;
}

/** An id or a name: a string that is not empty (an empty one would be sent back as an id no client accepts). */
function requireName(value: unknown, field: string): string {
  const text = requireString(value, field);
  if (text === '') throw invalid(`Missing required property '${field}'.`);
  return text;
}

function optionalName(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requireName(value, field);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requireString(value, field);
}

function requireArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(`Expected '${field}' to be of type array.`);
  return value;
}

function optionalStreamIds(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const ids = requireArray(value, 'streamIds');
  for (const id of ids) requireName(id, 'streamIds');
  return ids.length === 0 ? undefined : (ids as string[]);
}

function optionalHeaders(value: unknown): Headers | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`Expected 'headers' to be of type object.`);
  for (const v of Object.values(value as object)) {
    if (typeof v !== 'string') throw invalid(`Expected header values to be of type string.`);
  }
  return value as Headers;
}

function requireSequenceId(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalid(`Expected 'sequenceId' to be a non-negative integer.`);
  }
  return value;
}

/**
 * Validates a message given as a JSON-shaped object (MessagePack arrays are mapped to this shape first).
 * Returns undefined for a message type this server does not know, which the protocol says to ignore.
 */
export function validateMessage(raw: unknown): HubMessage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('Expected a message object.');
  const m = raw as Record<string, unknown>;
  const type = m.type;
  if (typeof type !== 'number' || !Number.isInteger(type)) throw invalid(`Missing required property 'type'.`);
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const target = requireName(m.target, 'target');
      const args = requireArray(m.arguments, 'arguments');
      const streamIds = optionalStreamIds(m.streamIds);
      const headers = optionalHeaders(m.headers);
      if (type === MessageType.Invocation) {
        const invocationId = optionalName(m.invocationId, 'invocationId');
        return { type: MessageType.Invocation, headers, invocationId, target, arguments: args, streamIds };
      }
      const invocationId = requireName(m.invocationId, 'invocationId');
      return { type: MessageType.StreamInvocation, headers, invocationId, target, arguments: args, streamIds };
    }
    case MessageType.StreamItem:
      return {
        type: MessageType.StreamItem,
        headers: optionalHeaders(m.headers),
        invocationId: requireName(m.invocationId, 'invocationId'),
        item: m.item,
      };
    case MessageType.Completion: {
      const invocationId = requireName(m.invocationId, 'invocationId');
      const error = optionalString(m.error, 'error');
      const hasResult = 'result' in m;
      if (error !== undefined && hasResult)
        throw invalid(`The 'error' and 'result' properties are mutually exclusive.`);
      return {
        type: MessageType.Completion,
        headers: optionalHeaders(m.headers),
        invocationId,
        error,
        result: m.result,
        hasResult,
      };
    }
    case MessageType.CancelInvocation:
      return {
        type: MessageType.CancelInvocation,
        headers: optionalHeaders(m.headers),
        invocationId: requireName(m.invocationId, 'invocationId'),
      };
    case MessageType.Ping:
      return { type: MessageType.Ping };
    case MessageType.Close: {
      const allowReconnect = m.allowReconnect;
      if (allowReconnect !== undefined && allowReconnect !== null && typeof allowReconnect !== 'boolean') {
        throw invalid(`Expected 'allowReconnect' to be of type boolean.`);
      }
      return {
        type: MessageType.Close,
        error: optionalString(m.error, 'error'),
        allowReconnect: allowReconnect === true,
      };
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type, sequenceId: requireSequenceId(m.sequenceId) };
    default:
      return undefined;
  }
}
