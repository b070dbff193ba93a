// Tokens protected by an HMAC-SHA256 (truncated to 128 bits) with a purpose per kind of token, so a token of one kind
// never passes as another; base64url on the wire. Under one key, or under a key source (a KeyRing shared through the
// backplane): signed with its signing key, verified against each of its verification keys, so tokens survive a
// rotation. The classic protocol's tokens and the ASP.NET Core protocol's connection tokens are made with it.

import { createHmac, timingSafeEqual } from 'node:crypto';

/** What signs and verifies: one signing key, and every key a token may have been signed with. */
export interface KeySource {
  /** The key new tokens are signed with. */
  signingKey(): Buffer;
  /** Every key a valid token may carry, the signing key included. */
  verificationKeys(): readonly Buffer[];
}

/** Bytes of the HMAC-SHA256 kept: 128 bits is ample for a MAC and keeps URLs short. */
const MAC_BYTES = 16;

export class TokenProtector {
  private readonly keys: KeySource;

  /** One fixed key (e.g. the `classicKey` option), or a key source whose keys may change (a KeyRing). */
  constructor(keys: Buffer | KeySource) {
    if (Buffer.isBuffer(keys)) {
      const verification = [keys];
      this.keys = { signingKey: () => keys, verificationKeys: () => verification };
    } else if (
      keys !== null &&
      typeof keys === 'object' &&
      typeof keys.signingKey === 'function' &&
      typeof keys.verificationKeys === 'function'
    ) {
      this.keys = keys;
    } else {
      throw new TypeError('TokenProtector needs a key (a Buffer) or a key source (signingKey, verificationKeys).');
    }
  }

  private mac(key: Buffer, purpose: string, payload: Buffer): Buffer {
    return createHmac('sha256', key).update(purpose).update('\0').update(payload).digest().subarray(0, MAC_BYTES);
  }

  protect(purpose: string, text: string): string {
    const payload = Buffer.from(text, 'utf8');
    const mac = this.mac(this.keys.signingKey(), purpose, payload);
    return `${payload.toString('base64url')}.${mac.toString('base64url')}`;
  }

  /** The protected text, or undefined when the token is malformed or was not made under one of the keys and purpose. */
  unprotect(purpose: string, token: string): string | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return undefined;
    const payloadText = token.slice(0, dot);
    const macText = token.slice(dot + 1);
    const payload = Buffer.from(payloadText, 'base64url');
    const mac = Buffer.from(macText, 'base64url');
    // Only the canonical encoding passes: base64 decoders ignore stray trailing bits, and a token must not have
    // look-alikes.
    if (payload.toString('base64url') !== payloadText || mac.toString('base64url') !== macText) return undefined;
    if (mac.length !== MAC_BYTES) return undefined;
    // Every key is tried (no early exit), each comparison in constant time.
    let valid = false;
    for (const key of this.keys.verificationKeys()) {
      if (timingSafeEqual(mac, this.mac(key, purpose, payload))) valid = true;
    }
    return valid ? payload.toString('utf8') : undefined;
  }
}
