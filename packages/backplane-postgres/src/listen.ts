// One LISTEN subscription: its dedicated connection, the reconnect loop with back-off, the health ping, stop.

import pg from 'pg';
import { quoteIdentifier } from './schema.js';

/** Reconnect delays grow from 100 ms to 5 s, each jittered to 50–100% so that nodes do not reconnect in step. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/**
 * A silently dead TCP connection (a NAT or firewall dropping it) raises no error until the kernel gives up, which
 * takes minutes. A cheap query every 30 s, answered within 10 s or the connection is replaced, bounds that.
 */
const PING_INTERVAL_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

export interface ListenOptions {
  /** Connection settings; the connection is always our own `pg.Client`, never one from a pool. */
  readonly config: pg.ClientConfig;
  /** The channel, unquoted (quoted here for LISTEN). */
  readonly channel: string;
  /** Called synchronously with each notification's payload, in the order PostgreSQL sent them. */
  readonly onNotification: (payload: string) => void;
  /** Called after the connection was re-established and LISTEN succeeded again (not after the first one). */
  readonly onReconnect: () => void;
  /** Errors handled here (connection lost, reconnect failed, a callback threw): for logs only. */
  readonly onError: (error: Error) => void;
}

/**
 * Holds a LISTEN open for as long as it runs. Everything NOTIFYed while it is down is lost (PostgreSQL keeps no
 * backlog for absent listeners); that is why `onReconnect` exists: the caller reads from its cursor then.
 */
export class ListenConnection {
  readonly #options: ListenOptions;
  #client: pg.Client | undefined;
  #stopped = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  /** The connect in progress, awaited by stop() so that nothing is left open behind it. */
  #opening: Promise<pg.Client> | undefined;

  constructor(options: ListenOptions) {
    this.#options = options;
  }

  /** Connects and LISTENs once; rejects (without retrying) when that fails, e.g. a wrong address or password. */
  async start(): Promise<void> {
    try {
      this.#adopt(await this.#open());
    } catch (error) {
      this.#stopped = true;
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot LISTEN on PostgreSQL channel ${this.#options.channel}: ${reason}`, { cause: error });
    }
    this.#pingTimer = setInterval(() => this.#ping(), PING_INTERVAL_MS);
    this.#pingTimer.unref();
  }

  /** Ends the subscription for good; no callback is called once this resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pingTimer);
    await this.#opening?.catch(() => {});
    const client = this.#client;
    this.#client = undefined;
    // UNLISTEN is implied by ending the session.
    await client?.end().catch(() => {});
  }

  /** A new client, connected and listening. Its listeners ignore it once it is no longer the current one. */
  #open(): Promise<pg.Client> {
    const client = new pg.Client({
      ...this.#options.config,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('PostgreSQL LISTEN connection ended')));
    client.on('notification', (message) => {
      if (client !== this.#client || message.channel !== this.#options.channel) return;
      try {
        this.#options.onNotification(message.payload ?? '');
      } catch (error) {
        this.#report(error);
      }
    });
    const opening = (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${quoteIdentifier(this.#options.channel)}`);
        return client;
      } catch (error) {
        await client.end().catch(() => {});
        throw error;
      }
    })();
    this.#opening = opening;
    return opening.finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
  }

  #adopt(client: pg.Client): void {
    this.#client = client;
    this.#attempt = 0;
  }

  /** The current connection failed or ended: drop it (once) and reconnect, unless stopped. */
  #lost(client: pg.Client, error: Error): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    // Not awaited: on a dead socket end() may take as long as the kernel does; its outcome changes nothing.
    client.end().catch(() => {});
    if (this.#stopped) return;
    this.#report(error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#attempt);
    this.#attempt++;
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnect();
    }, delay);
    // A reconnect in progress should not keep the process alive on its own.
    this.#reconnectTimer.unref();
  }

  async #reconnect(): Promise<void> {
    let client: pg.Client;
    try {
      client = await this.#open();
    } catch (error) {
      this.#report(error);
      this.#scheduleReconnect();
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.#adopt(client);
    try {
      this.#options.onReconnect();
    } catch (error) {
      this.#report(error);
    }
  }

  #ping(): void {
    const client = this.#client;
    if (!client || this.#stopped) return;
    // query_timeout rejects the query on our side; the connection is then treated as lost and replaced.
    client.query({ text: 'SELECT 1', query_timeout: PING_TIMEOUT_MS } as pg.QueryConfig).catch((error: unknown) => {
      this.#lost(client, error instanceof Error ? error : new Error(String(error)));
    });
  }

  #report(error: unknown): void {
    try {
      this.#options.onError(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // A throwing logger must not break the reconnect loop.
    }
  }
}
