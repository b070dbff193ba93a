// The classic token keys of one endpoint: the `classicKey` option when given; else, with a backplane whose store
// keeps keys, the key set shared (and rotated) through its database; else a random key of this process.

import type { KeySource } from '../backplane/key-ring.js';
import { SharedKeys } from '../backplane/shared-keys.js';
import type { StreamHistory } from '../backplane/stream-history.js';
import { withTimeout } from '../util/timing.js';
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
  /** The key set shared through the backplane's database. */
  private readonly shared: SharedKeys | undefined;

  constructor(
    private readonly options: ResolvedClassicOptions,
    private readonly engine: StreamHistory | undefined,
    reportError: (error: unknown, where: string) => void,
    where: string,
  ) {
    this.source = options.key;
    if (options.keyGiven || !engine) return;
    const shared = SharedKeys.for(engine, CLASSIC_KEYS_PURPOSE, reportError);
    if (!shared) {
      reportError(
        new Error(
          `The ${engine.store.kind} backplane store cannot keep the classic token keys: pass the same 'classicKey' to every node, or tokens made on one node fail on the others.`,
        ),
        `classic endpoint ${where}`,
      );
      return;
    }
    this.shared = shared;
    const unavailable = () => {
      throw new ClassicHttpError(503, 'The classic token keys are not loaded yet: the backplane is unreachable.');
    };
    this.source = {
      signingKey: () => (shared.ready ? shared.signingKey() : unavailable()),
      verificationKeys: () => (shared.ready ? shared.verificationKeys() : unavailable()),
    };
  }

  /**
   * Waits (a bounded time) until tokens can be made and read, and the backplane has started (cursors carry its
   * positions). A given key needs no database: then only briefly, so an unreachable database stalls no request.
   */
  async wait(): Promise<void> {
    const engine = this.engine;
    if (!engine || this.shared?.ready || (this.options.keyGiven && engine.positions())) return;
    const ms = this.options.keyGiven ? ENGINE_WAIT_MS : KEYS_WAIT_MS;
    await withTimeout(Promise.all([engine.start(), this.shared?.loaded]), ms, undefined);
  }

  close(): void {
    this.shared?.close();
  }
}
