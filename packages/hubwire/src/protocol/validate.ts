// Checks that a decoded value is a well-formed hub message. Shared by the JSON and MessagePack protocols.

import { HubwireError } from '../errors.js';
import type { Headers, HubMessage } from './messages.js';

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
    case 1:
    case 4: {
      const target = requireName(m.target, 'target');
      const args = requireArray(m.arguments, 'arguments');
      const streamIds = optionalStreamIds(m.streamIds);
      const headers = optionalHeaders(m.headers);
      if (type === 1) {
        const invocationId = optionalName(m.invocationId, 'invocationId');
        return { type: 1, headers, invocationId, target, arguments: args, streamIds };
      }
      const invocationId = requireName(m.invocationId, 'invocationId');
      return { type: 4, headers, invocationId, target, arguments: args, streamIds };
    }
    case 2:
      return {
        type: 2,
        headers: optionalHeaders(m.headers),
        invocationId: requireName(m.invocationId, 'invocationId'),
        item: m.item,
      };
    case 3: {
      const invocationId = requireName(m.invocationId, 'invocationId');
      const error = optionalString(m.error, 'error');
      const hasResult = 'result' in m;
      if (error !== undefined && hasResult)
        throw invalid(`The 'error' and 'result' properties are mutually exclusive.`);
      return { type: 3, headers: optionalHeaders(m.headers), invocationId, error, result: m.result, hasResult };
    }
    case 5:
      return {
        type: 5,
        headers: optionalHeaders(m.headers),
        invocationId: requireName(m.invocationId, 'invocationId'),
      };
    case 6:
      return { type: 6 };
    case 7: {
      const allowReconnect = m.allowReconnect;
      if (allowReconnect !== undefined && allowReconnect !== null && typeof allowReconnect !== 'boolean') {
        throw invalid(`Expected 'allowReconnect' to be of type boolean.`);
      }
      return { type: 7, error: optionalString(m.error, 'error'), allowReconnect: allowReconnect === true };
    }
    case 8:
    case 9:
      return { type, sequenceId: requireSequenceId(m.sequenceId) };
    default:
      return undefined;
  }
}
