// A set of secret keys shared by every node through the backplane's database, with rotation and overlap: one
// signs, all that are not expired verify. Database-independent: any store with readKeys/addKey/deleteKeys.
// Also the argument checks that every store's key methods share.

import { randomBytes, randomUUID } from 'node:crypto';
import type { KeySource } from '../util/token-protector.js';
import type { BackplaneStore, StoredKey } from './backplane-store.js';

export type { KeySource } from '../util/token-protector.js';

/** A store that keeps keys: the key methods of {@link BackplaneStore}, all present. */
export interface KeyStore {
  readonly kind?: string;
  readKeys(purpose: string): Promise<StoredKey[]>;
  addKey(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean>;
  deleteKeys(purpose: string, createdBefore: number): Promise<number>;
}

/** True when the store implements the (optional) key methods, so a {@link KeyRing} can live in its database. */
export function supportsKeys<S extends Partial<KeyStore>>(store: S): store is S & KeyStore {
  return (
    typeof store?.readKeys === 'function' &&
    typeof store.addKey === 'function' &&
    typeof store.deleteKeys === 'function'
  );
}

export const MAX_KEY_PURPOSE_LENGTH = 100;
export const MAX_KEY_ID_LENGTH = 64;
export const MAX_KEY_SECRET_BYTES = 1024;
/** Printable ASCII without spaces: the same bytes in every database's text types and collations. */
const PRINTABLE = /^[\x21-\x7e]+$/;

/** Throws a TypeError unless `purpose` is 1-100 printable ASCII characters without spaces. */
export function validateKeyPurpose(purpose: unknown): string {
  if (typeof purpose !== 'string' || purpose.length > MAX_KEY_PURPOSE_LENGTH || !PRINTABLE.test(purpose)) {
    throw new TypeError(
      `A key purpose must be 1-${MAX_KEY_PURPOSE_LENGTH} printable ASCII characters without spaces, got ${JSON.stringify(purpose)}.`,
    );
  }
  return purpose;
}

/** Throws a RangeError unless `value` is a safe integer (a time in ms since 1970, or a bound). */
export function validateKeyTime(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new RangeError(`${name} must be an integer number of milliseconds, got ${String(value)}.`);
  }
  return value;
}

/** Throws unless `key` is a valid {@link StoredKey}: an id, a secret of 1-1024 bytes, a createdAt ≥ 0. */
export function validateStoredKey(key: unknown): StoredKey {
  if (key === null || typeof key !== 'object') throw new TypeError('A stored key must be an object.');
  const { id, secret, createdAt } = key as Partial<StoredKey>;
  if (typeof id !== 'string' || id.length > MAX_KEY_ID_LENGTH || !PRINTABLE.test(id)) {
    throw new TypeError(
      `A key id must be 1-${MAX_KEY_ID_LENGTH} printable ASCII characters without spaces, got ${JSON.stringify(id)}.`,
    );
  }
  if (!Buffer.isBuffer(secret) || secret.length === 0 || secret.length > MAX_KEY_SECRET_BYTES) {
    throw new TypeError(`A key secret must be a Buffer of 1-${MAX_KEY_SECRET_BYTES} bytes.`);
  }
  if (validateKeyTime('createdAt', createdAt) < 0) throw new RangeError(`createdAt must be ≥ 0, got ${createdAt}.`);
  return key as StoredKey;
}

/** Options of {@link KeyRing.load}. Times are milliseconds. */
export interface KeyRingOptions {
  /** Which keys: the purpose they are stored under, e.g. `hubwire.classic.tokens`. */
  readonly purpose: string;
  /** A node adds a new key when the newest one is this old. Default 7 days. */
  readonly rotateAfterMs?: number;
  /**
   * How long a key verifies: until it is this old, and in any case until `expireAfterMs - rotateAfterMs` after its
   * successor was made (so a late rotation, e.g. after a database outage, never cuts the overlap short). The
   * newest key never expires. Keys past it are deleted from the database. Must exceed `rotateAfterMs +
   * activateAfterMs`. Default 14 days.
   */
  readonly expireAfterMs?: number;
  /** How often the ring reads the keys again (and rotates and expires them). Default 60 s. */
  readonly refreshMs?: number;
  /**
   * A new key signs only once it is this old, so every node has loaded it (and verifies with it) before any node
   * signs with it. At least `2 * refreshMs`. Default `3 * refreshMs`. (The very first key of a purpose, or a key
   * made when every other one is gone, signs at once: nothing else could.)
   */
  readonly activateAfterMs?: number;
  /** Bytes of a new key's secret. Default 32. */
  readonly secretBytes?: number;
  /** The clock, ms since 1970. Default `Date.now`. */
  readonly now?: () => number;
  /** Failures of the periodic refresh (the ring keeps its last keys meanwhile). Default: ignored. */
  readonly onError?: (error: Error) => void;
}

const DAY_MS = 86_400_000;

/**
 * The keys of one purpose, loaded from a store and refreshed every `refreshMs` (on an unref'd timer). The first
 * node to find no key adds one; when the newest key is `rotateAfterMs` old, one node (whichever `addKey` lets
 * through) adds the next. Signing: the newest key that is at least `activateAfterMs` old. Verifying: every key
 * that has not expired. While the database is unreachable the ring goes on with the keys it last read and
 * reports each failed refresh through `onError`.
 */
export class KeyRing implements KeySource {
  readonly purpose: string;
  readonly rotateAfterMs: number;
  readonly expireAfterMs: number;
  readonly refreshMs: number;
  readonly activateAfterMs: number;

  readonly #store: KeyStore;
  readonly #secretBytes: number;
  readonly #now: () => number;
  readonly #onError: (error: Error) => void;
  /** The keys last read, newest first. Never empty once loaded. */
  #keys: StoredKey[] = [];
  #refreshing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(store: KeyStore, options: KeyRingOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('KeyRing needs options.');
    this.purpose = validateKeyPurpose(options.purpose);
    this.refreshMs = positive('refreshMs', options.refreshMs ?? 60_000);
    this.activateAfterMs = positive('activateAfterMs', options.activateAfterMs ?? 3 * this.refreshMs);
    this.rotateAfterMs = positive('rotateAfterMs', options.rotateAfterMs ?? 7 * DAY_MS);
    this.expireAfterMs = positive('expireAfterMs', options.expireAfterMs ?? 14 * DAY_MS);
    if (this.activateAfterMs < 2 * this.refreshMs) {
      throw new RangeError(
        `activateAfterMs (${this.activateAfterMs}) must be at least 2 * refreshMs (${2 * this.refreshMs}).`,
      );
    }
    if (this.rotateAfterMs <= this.activateAfterMs) {
      throw new RangeError(
        `rotateAfterMs (${this.rotateAfterMs}) must exceed activateAfterMs (${this.activateAfterMs}).`,
      );
    }
    if (this.expireAfterMs <= this.rotateAfterMs + this.activateAfterMs) {
      throw new RangeError(
        `expireAfterMs (${this.expireAfterMs}) must exceed rotateAfterMs + activateAfterMs (${this.rotateAfterMs + this.activateAfterMs}).`,
      );
    }
    this.#secretBytes = options.secretBytes ?? 32;
    if (!Number.isInteger(this.#secretBytes) || this.#secretBytes < 16 || this.#secretBytes > MAX_KEY_SECRET_BYTES) {
      throw new RangeError(`secretBytes must be an integer from 16 to ${MAX_KEY_SECRET_BYTES}.`);
    }
    this.#store = store;
    this.#now = options.now ?? Date.now;
    const onError = options.onError;
    this.#onError = (error) => {
      try {
        onError?.(error);
      } catch {
        // A throwing logger must not stop the refreshes.
      }
    };
  }

  /**
   * Reads the keys of `options.purpose` from the store (installed already), adding the first key if there is
   * none, and starts the periodic refresh. Rejects when the store cannot be read (nothing keeps running then).
   */
  static async load(store: KeyStore, options: KeyRingOptions): Promise<KeyRing> {
    if (!supportsKeys(store)) {
      throw new TypeError(
        `The ${(store as { kind?: string } | undefined)?.kind ?? 'given'} store does not keep keys (it lacks readKeys, addKey or deleteKeys).`,
      );
    }
    const ring = new KeyRing(store, options);
    await ring.refresh();
    ring.#timer = setInterval(() => {
      // A refresh still running (a slow database) is not joined: its failure is reported once.
      if (ring.#refreshing) return;
      ring.refresh().catch((error: unknown) => {
        if (!ring.#closed) ring.#onError(asError(error));
      });
    }, ring.refreshMs);
    ring.#timer.unref();
    return ring;
  }

  /** The key new tokens are signed with: the newest active key (or, if none is active yet, the oldest key). */
  signingKey(): Buffer {
    return this.#signing(this.#now()).secret;
  }

  /** Every key that has not expired, newest first (pending keys, the signing key and older ones in overlap). */
  verificationKeys(): readonly Buffer[] {
    const now = this.#now();
    const keys: Buffer[] = [];
    for (const [index, key] of this.#keys.entries()) {
      if (this.#expiresAt(index) > now) keys.push(key.secret);
    }
    return keys;
  }

  /** The keys as last read, newest first, with their state at the ring's clock (for logs and tests). */
  describe(): Array<{ id: string; createdAt: number; state: 'pending' | 'signing' | 'verifying' | 'expired' }> {
    const now = this.#now();
    const signing = this.#keys.length > 0 ? this.#signing(now) : undefined;
    let past = false;
    return this.#keys.map((key, index) => {
      let state: 'pending' | 'signing' | 'verifying' | 'expired';
      if (key === signing) {
        state = 'signing';
        past = true;
      } else if (!past) state = 'pending';
      else state = this.#expiresAt(index) > now ? 'verifying' : 'expired';
      return { id: key.id, createdAt: key.createdAt, state };
    });
  }

  /**
   * Reads the keys again; adds the first or the next key when due (one node wins a race: the others read the
   * winner's), and deletes expired keys. The periodic refresh calls this; callers may too. Rejects when the store
   * fails, keeping the keys read before.
   */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Stops the periodic refresh. The ring goes on signing and verifying with its last keys. Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #refresh(): Promise<void> {
    const store = this.#store;
    let keys = sortNewestFirst(await store.readKeys(this.purpose));
    const now = this.#now();
    const newest = keys[0];
    if (newest === undefined || now - newest.createdAt >= this.rotateAfterMs) {
      const key: StoredKey = { id: randomUUID(), secret: randomBytes(this.#secretBytes), createdAt: now };
      // Only when no other node added one since it became due: exactly one node's key goes in.
      const added = await store.addKey(this.purpose, key, now - this.rotateAfterMs);
      keys = added ? [key, ...keys] : sortNewestFirst(await store.readKeys(this.purpose));
      if (keys.length === 0) throw new Error(`No key for '${this.purpose}' although addKey found a newer one.`);
    }
    this.#keys = keys;
    // Expired keys are the oldest ones (expiry grows with age): delete everything older than the oldest valid key.
    let oldestValid = keys.length - 1;
    while (oldestValid > 0 && this.#expiresAt(oldestValid) <= now) oldestValid--;
    if (oldestValid < keys.length - 1) {
      const cutoff = (keys[oldestValid] as StoredKey).createdAt;
      await store.deleteKeys(this.purpose, cutoff);
      this.#keys = keys.filter((key) => key.createdAt >= cutoff);
    }
  }

  /** The newest key at least activateAfterMs old; when none is, the oldest key. Needs a loaded ring. */
  #signing(now: number): StoredKey {
    const keys = this.#keys;
    if (keys.length === 0) throw new Error('The key ring has no keys.');
    for (const key of keys) {
      if (now - key.createdAt >= this.activateAfterMs) return key;
    }
    return keys[keys.length - 1] as StoredKey;
  }

  /** When the key at `index` (newest first) stops verifying: never for the newest key. */
  #expiresAt(index: number): number {
    if (index === 0) return Number.POSITIVE_INFINITY;
    const key = this.#keys[index] as StoredKey;
    const successor = this.#keys[index - 1] as StoredKey;
    return Math.max(key.createdAt + this.expireAfterMs, successor.createdAt + this.expireAfterMs - this.rotateAfterMs);
  }
}

function sortNewestFirst(keys: StoredKey[]): StoredKey[] {
  return [...keys].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${String(value)}.`);
  }
  return value;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
