// Connection and groups tokens of the classic protocol: opaque to clients, protected by an HMAC with a purpose per
// token kind (so a groups token never passes as a connection token), base64url on the wire. Under one key, or under
// a key source (a KeyRing shared through the backplane): signed with its signing key, verified against each of its
// verification keys, so tokens survive a rotation. The token carries no key id: the format is the same either way.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { KeySource } from '../backplane/key-ring.js';

const CONNECTION_PURPOSE = 'SignalR.ConnectionToken';
const GROUPS_PURPOSE = 'SignalR.Groups.v1.1';
/** Bytes of the HMAC-SHA256 kept: 128 bits is ample for a MAC and keeps URLs short. */
const MAC_BYTES = 16;
/** The purpose under which the classic token keys are kept in the backplane's database (a KeyRing's purpose). */
export const CLASSIC_KEYS_PURPOSE = 'hubwire.classic.tokens';

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

  /** `"<connectionId>:<userName>"`, the user name empty when anonymous (as SignalR 2). */
  connectionToken(connectionId: string, userName: string | undefined): string {
    return this.protect(CONNECTION_PURPOSE, `${connectionId}:${userName ?? ''}`);
  }

  readConnectionToken(token: string): { connectionId: string; userName: string } | undefined {
    const text = this.unprotect(CONNECTION_PURPOSE, token);
    if (text === undefined) return undefined;
    const colon = text.indexOf(':');
    if (colon <= 0) return undefined;
    return { connectionId: text.slice(0, colon), userName: text.slice(colon + 1) };
  }

  /** `"<connectionId>:" + JSON array of "<Hub>.<group>"`. */
  groupsToken(connectionId: string, groups: readonly string[]): string {
    return this.protect(GROUPS_PURPOSE, `${connectionId}:${JSON.stringify(groups)}`);
  }

  /**
   * The groups of a token, when it verifies and names this connection (ignoring case, as SignalR 2); anything else
   * silently yields no groups.
   */
  readGroupsToken(token: string | null | undefined, connectionId: string): string[] {
    if (!token) return [];
    const text = this.unprotect(GROUPS_PURPOSE, token);
    if (text === undefined) return [];
    const colon = text.indexOf(':');
    if (colon <= 0 || text.slice(0, colon).toLowerCase() !== connectionId.toLowerCase()) return [];
    try {
      const groups: unknown = JSON.parse(text.slice(colon + 1));
      return Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [];
    } catch {
      return [];
    }
  }
}
