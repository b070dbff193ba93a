// A key set every node shares through the backplane's database (a KeyRing under one purpose), loaded once the
// backplane has started, retrying with back-off while the database is unreachable. Until it is loaded, signing and
// verifying throw (the caller answers 503): a node never signs with a key the others cannot verify.

import { HubwireError } from '../errors.js';
import { sleep, withTimeout } from '../util/timing.js';
import type { KeySource } from '../util/token-protector.js';
import type { BackplaneStore } from './backplane-store.js';
import { KeyRing, supportsKeys } from './key-ring.js';

/** What the key set needs of the backplane. */
export interface KeyHost {
  readonly store: BackplaneStore;
  start(): Promise<void>;
}

export class SharedKeys implements KeySource {
  private ring: KeyRing | undefined;
  private closed = false;
  /** Settles once the ring is loaded (or the keys were closed). */
  readonly loaded: Promise<void>;

  /** Undefined when the backplane's store keeps no keys (readKeys / addKey / deleteKeys). */
  static for(
    host: KeyHost,
    purpose: string,
    reportError: (error: unknown, where: string) => void,
  ): SharedKeys | undefined {
    return supportsKeys(host.store) ? new SharedKeys(host, purpose, reportError) : undefined;
  }

  private constructor(
    private readonly host: KeyHost,
    private readonly purpose: string,
    private readonly reportError: (error: unknown, where: string) => void,
  ) {
    this.loaded = this.load();
  }

  private async load(): Promise<void> {
    const store = this.host.store;
    if (!supportsKeys(store)) return;
    let delay = 100;
    while (!this.closed) {
      try {
        await this.host.start();
        const ring = await KeyRing.load(store, {
          purpose: this.purpose,
          onError: (error) => this.reportError(error, `refreshing the keys '${this.purpose}'`),
        });
        if (this.closed) ring.close();
        else this.ring = ring;
        return;
      } catch (error) {
        this.reportError(error, `loading the keys '${this.purpose}' from the backplane`);
        await sleep(delay, { unref: true });
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  get ready(): boolean {
    return this.ring !== undefined;
  }

  /** Waits at most `ms` for the keys (the database may be unreachable). */
  async wait(ms: number): Promise<void> {
    if (!this.ring) await withTimeout(this.loaded, ms, undefined);
  }

  private current(): KeyRing {
    if (this.ring) return this.ring;
    throw new HubwireError(
      'HW_ERR_BACKPLANE_UNAVAILABLE',
      `The shared keys '${this.purpose}' are not loaded yet: the backplane is unreachable.`,
    );
  }

  signingKey(): Buffer {
    return this.current().signingKey();
  }

  verificationKeys(): readonly Buffer[] {
    return this.current().verificationKeys();
  }

  close(): void {
    this.closed = true;
    this.ring?.close();
  }
}
