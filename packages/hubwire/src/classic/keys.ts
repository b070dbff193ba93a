// The classic token keys of one endpoint: the `classicKey` option when given; else, with a backplane whose store
// keeps keys, the key set shared (and rotated) through its database; else a random key of this process.

import { KeyRing, type KeySource, supportsKeys } from '../backplane/key-ring.js';
import type { StreamHistory } from '../backplane/stream-history.js';
import { sleep, withTimeout } from '../util/timing.js';
import type { ResolvedClassicOptions } from './options.js';
import { ClassicHttpError } from './requests.js';
import { CLASSIC_KEYS_PURPOSE } from './tokens.js';

/** How long a request waits for the shared key set while the backplane's database is unreachable at startup. */
const KEYS_WAIT_MS = 10_000;
/** How long a request waits for the backplane to start when the key is given (cursors then carry positions). */
const ENGINE_WAIT_MS = 1000;

export class ClassicKeys {
  /** What the TokenProtector signs and verifies with. */
  readonly source: Buffer | KeySource;
  /** The key set shared through the backplane's database, once loaded. */
  private ring: KeyRing | undefined;
  /** Settles when the ring is loaded (at once when there is none to load). */
  private readonly loaded: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly options: ResolvedClassicOptions,
    private readonly engine: StreamHistory | undefined,
    private readonly reportError: (error: unknown, where: string) => void,
    where: string,
  ) {
    this.source = options.key;
    if (options.keyGiven || !engine) return;
    const store = engine.store;
    if (!supportsKeys(store)) {
      reportError(
        new Error(
          `The ${store.kind} backplane store cannot keep the classic token keys: pass the same 'classicKey' to every node, or tokens made on one node fail on the others.`,
        ),
        `classic endpoint ${where}`,
      );
      return;
    }
    this.loaded = this.load(engine, store);
    const unavailable = () => {
      throw new ClassicHttpError(503, 'The classic token keys are not loaded yet: the backplane is unreachable.');
    };
    this.source = {
      signingKey: () => this.ring?.signingKey() ?? unavailable(),
      verificationKeys: () => this.ring?.verificationKeys() ?? unavailable(),
    };
  }

  /** Loads the ring once the backplane has started, retrying with back-off while the database is unreachable. */
  private async load(engine: StreamHistory, store: Parameters<typeof KeyRing.load>[0]): Promise<void> {
    let delay = 100;
    while (!this.closed) {
      try {
        await engine.start();
        const ring = await KeyRing.load(store, {
          purpose: CLASSIC_KEYS_PURPOSE,
          onError: (error) => this.reportError(error, 'refreshing the classic token keys'),
        });
        if (this.closed) ring.close();
        else this.ring = ring;
        return;
      } catch (error) {
        this.reportError(error, 'loading the classic token keys from the backplane');
        await sleep(delay, { unref: true });
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /**
   * Waits (a bounded time) until tokens can be made and read, and the backplane has started (cursors carry its
   * positions). A given key needs no database: then only briefly, so an unreachable database stalls no request.
   */
  async wait(): Promise<void> {
    const engine = this.engine;
    if (!engine || this.ring || (this.options.keyGiven && engine.positions())) return;
    const ms = this.options.keyGiven ? ENGINE_WAIT_MS : KEYS_WAIT_MS;
    await withTimeout(Promise.all([engine.start(), this.loaded]), ms, undefined);
  }

  close(): void {
    this.closed = true;
    this.ring?.close();
  }
}
