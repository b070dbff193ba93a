// The seam between bytes and hub messages: each hub protocol (JSON, MessagePack) implements HubProtocol.

import { type HubMessage, MessageType } from './messages.js';

export type TransferFormat = 'Text' | 'Binary';

/** Turns a byte stream into whole hub messages. Throws a HubwireError on malformed or oversized input. */
export interface MessageDecoder {
  /** Feed the next chunk; returns every message it completes (possibly none). */
  push(chunk: Buffer): HubMessage[];
}

export interface HubProtocol {
  /** The name clients send in the handshake: `json` or `messagepack`. */
  readonly name: string;
  readonly version: number;
  readonly transferFormat: TransferFormat;
  /** A decoder that rejects any single message larger than `maxMessageSize` bytes (0 = no limit). */
  createDecoder(maxMessageSize: number): MessageDecoder;
  /** One message, already framed (record separator or length prefix). */
  encode(message: HubMessage): Buffer;
}

const pingCache = new WeakMap<HubProtocol, Buffer>();
/** The encoded Ping of a protocol, made once. */
export function pingBytes(protocol: HubProtocol): Buffer {
  let bytes = pingCache.get(protocol);
  if (!bytes) {
    bytes = protocol.encode({ type: MessageType.Ping });
    pingCache.set(protocol, bytes);
  }
  return bytes;
}
