// The handshake: the client's first bytes are `{"protocol":"json"|"messagepack","version":N}` + 0x1E (always
// JSON); the server answers `{}` + 0x1E, or `{"error":"..."}` + 0x1E and closes.

import { HubwireError } from '../errors.js';
import type { TransportKind } from '../transports/transport.js';
import type { HubProtocol } from './hub-protocol.js';
import { RECORD_SEPARATOR } from './json-protocol.js';

export interface HandshakeRequest {
  protocol: string;
  version: number;
}

export interface HandshakeParseResult {
  request: HandshakeRequest;
  /** Bytes after the handshake's separator: messages may follow in the same buffer. */
  rest: Buffer;
}

function fail(message: string): HubwireError {
  return new HubwireError('HW_ERR_HANDSHAKE', message);
}

/** Returns undefined while the separator has not arrived yet; throws on a malformed request. */
export function parseHandshake(data: Buffer, maxSize: number): HandshakeParseResult | undefined {
  const end = data.indexOf(RECORD_SEPARATOR);
  if (end === -1) {
    if (data.length > maxSize) throw fail('The handshake request exceeds the maximum message size.');
    return undefined;
  }
  if (end > maxSize) throw fail('The handshake request exceeds the maximum message size.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8', 0, end));
  } catch {
    throw fail('The handshake request is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fail('The handshake request must be a JSON object.');
  }
  const { protocol, version } = parsed as Record<string, unknown>;
  if (typeof protocol !== 'string') throw fail(`Missing required property 'protocol' in the handshake request.`);
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw fail(`Missing required property 'version' in the handshake request.`);
  }
  return { request: { protocol, version }, rest: data.subarray(end + 1) };
}

const SEPARATOR = String.fromCharCode(RECORD_SEPARATOR);
export const HANDSHAKE_OK = Buffer.from(`{}${SEPARATOR}`);

export function handshakeError(message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: message }) + SEPARATOR);
}

/**
 * The protocol a handshake asks for, among those offered, or why it cannot be had: an unknown name, a version
 * other than 0..2, or a binary protocol over Server-Sent Events.
 */
export function chooseProtocol(
  request: HandshakeRequest,
  protocols: ReadonlyMap<string, HubProtocol>,
  transport: TransportKind | undefined,
): HubProtocol | string {
  const { protocol: name, version } = request;
  const protocol = protocols.get(name);
  if (!protocol) return `The protocol '${name}' is not supported.`;
  if (version < 0 || version > 2) return `The server does not support version ${version} of the '${name}' protocol.`;
  if (protocol.transferFormat === 'Binary' && transport === 'ServerSentEvents') {
    return `Cannot use the '${name}' protocol on the current transport. The transport does not support 'Binary' transfer format.`;
  }
  return protocol;
}
