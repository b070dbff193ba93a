// Rows that travel in their NOTIFY, so that other nodes deliver them without reading them back: one round trip
// and one query less per row. The publishing node encrypts the row (AES-256-CTR); the append statement itself
// computes an HMAC-SHA256 over the stream, the id it assigned and the ciphertext (with sha256(), from the key's
// inner and outer blocks), so the id is authenticated too. The key lives in the schema's keys table: a role that
// can LISTEN or NOTIFY on the channel (any role that can connect to the database) but cannot read that table learns
// nothing from a notification and cannot forge one; a replayed notification names an id the receiver has already
// delivered, with that id's own content.

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StoredKey } from 'hubwire/backplane';

/** The purpose of the push key in the keys table: one key per installation, made by the first node. */
export const PUSH_KEY_PURPOSE = 'hubwire.push';
/** Largest row pushed: its encrypted, base64-encoded form and the header fit NOTIFY's 8000-byte payload. */
export const MAX_PUSH_ROW_BYTES = 5600;
/** Default: rows up to this size are pushed; larger ones (busy moments, many messages per row) are read. */
export const DEFAULT_PUSH_ROW_BYTES = 4096;

const IV_BYTES = 16;
const MAC_BYTES = 32;
const HMAC_BLOCK = 64;

/** The key of an installation, ready to seal (publisher) and open (receiver) pushed rows. */
export class PushKey {
  readonly #encryption: Buffer;
  readonly #authentication: Buffer;
  /** HMAC-SHA256's inner and outer key blocks, given to the append statement as parameters. */
  readonly inner: Buffer;
  readonly outer: Buffer;

  constructor(readonly key: StoredKey) {
    this.#encryption = createHmac('sha256', key.secret).update('hubwire push encryption').digest();
    this.#authentication = createHmac('sha256', key.secret).update('hubwire push authentication').digest();
    const block = Buffer.alloc(HMAC_BLOCK);
    this.#authentication.copy(block);
    this.inner = Buffer.from(block.map((byte) => byte ^ 0x36));
    this.outer = Buffer.from(block.map((byte) => byte ^ 0x5c));
  }

  /** IV followed by the encrypted payload. */
  seal(payload: Buffer): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-ctr', this.#encryption, iv);
    return Buffer.concat([iv, cipher.update(payload), cipher.final()]);
  }

  /** The payload of a pushed row, or undefined when the notification does not authenticate. */
  open(stream: number, id: number, mac: Buffer, sealed: Buffer): Buffer | undefined {
    if (mac.length !== MAC_BYTES || sealed.length < IV_BYTES) return undefined;
    const head = Buffer.alloc(16);
    head.writeBigInt64BE(BigInt(stream), 0);
    head.writeBigInt64BE(BigInt(id), 8);
    const expected = createHmac('sha256', this.#authentication).update(head).update(sealed).digest();
    if (!timingSafeEqual(expected, mac)) return undefined;
    const decipher = createDecipheriv('aes-256-ctr', this.#encryption, sealed.subarray(0, IV_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES)), decipher.final()]);
  }
}

/**
 * The NOTIFY payload expression of the append statement, given the inserted row's `id`: `<stream>:<publisher>:`
 * ($6) and the id; with `push`, then `:<mac>:<sealed row>` in base64, the MAC computed from $7 (inner block),
 * $8 (outer block) and $9 (the sealed row).
 */
export function notifyExpression(push: boolean): string {
  if (!push) return `pg_notify($5, $6 || id)`;
  const mac = `sha256($8::bytea || sha256($7::bytea || int8send($1::int8) || int8send(id) || $9::bytea))`;
  return `pg_notify($5, $6 || id || ':' || encode(${mac}, 'base64') || ':' || encode($9::bytea, 'base64'))`;
}

/** A notification of the channel, parsed. Anyone may NOTIFY the channel: nothing here is trusted yet. */
export interface Notification {
  readonly stream: number;
  readonly publisher: string | undefined;
  readonly id: number | undefined;
  readonly mac: Buffer | undefined;
  readonly sealed: Buffer | undefined;
}

/** `<stream>[:<publisher>[:<id>[:<mac>:<sealed>]]]`; undefined for anything else. */
export function parseNotification(text: string, streamCount: number): Notification | undefined {
  const parts = text.split(':', 6);
  const streamText = parts[0] as string;
  const stream = Number(streamText);
  if (streamText === '' || !Number.isInteger(stream) || stream < 0 || stream >= streamCount) return undefined;
  const idText = parts[2];
  const id = idText === undefined ? undefined : Number(idText);
  const validId = id !== undefined && Number.isSafeInteger(id) && id > 0 ? id : undefined;
  const pushed = validId !== undefined && parts.length === 5;
  return {
    stream,
    publisher: parts[1],
    id: validId,
    mac: pushed ? Buffer.from(parts[3] as string, 'base64') : undefined,
    sealed: pushed ? Buffer.from(parts[4] as string, 'base64') : undefined,
  };
}
