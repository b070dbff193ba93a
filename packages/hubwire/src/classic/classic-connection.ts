// One classic SignalR 2 connection on this node: its hub bindings on the shared buses, its registration (resuming
// from a backplane position), the order of its invocations and its lifetime. What it sends the client, and over
// which transport, is its delivery's (classic-delivery.ts).

import { type ResumeTarget, registerOnBus, resumeFrom } from '../backplane/resume.js';
import type { StreamHistory } from '../backplane/stream-history.js';
import type { BusConnection, MessageBus } from '../bus/message-bus.js';
import type { RequestInfo } from '../connection/request-info.js';
import { ClassicDelivery, type DeliveryHost } from './classic-delivery.js';
import { type ClassicHub, ClassicHubBinding, type ClassicInvocation } from './classic-hub.js';
import type { ClassicTransport, ResolvedClassicOptions } from './options.js';
import { PersistentBinding, type PersistentEndpoint } from './persistent.js';

import type { TokenProtector } from './tokens.js';

/** How long a node waits to catch up with a client whose cursor is ahead of it (a real one is ms ahead). */
const CATCH_UP_MS = 5000;
/** Rows one resume replays at most (a forged or very old cursor cannot make a node read more). */
const MAX_REPLAY_ROWS = 20_000;

/** Groups token entries of a persistent connection's groups (hub entries are `Hub.group`; hub names have no ':'). */
const PERSISTENT_GROUP = 'pc:';

export interface ConnectionServices {
  readonly options: ResolvedClassicOptions;
  readonly tokens: TokenProtector;
  /** The server's backplane: connections may move between nodes, and cursors carry backplane positions. */
  readonly engine: StreamHistory | undefined;
  /** The backplane position for a cursor (`<tag>.<ids>`), or undefined without a (started) backplane. */
  position(): string | undefined;
  /**
   * Resolves once the node holding the connection has written everything it had for it when this node's earlier
   * sends reached it (or after `timeoutMs`; at once without a backplane).
   */
  holderWritten(connectionId: string, timeoutMs: number): Promise<void>;
  reportError(error: unknown, where: string): void;
  /** The connection ended: forget it (and how it ended, for late requests). */
  removed(connection: ClassicConnection, stopCalled: boolean): void;
}

export class ClassicConnection implements DeliveryHost {
  /** Subscribed hubs (those in `connectionData`), by lowercase name: registered on each hub's bus. */
  readonly bindings = new Map<string, ClassicHubBinding>();
  /** Hubs the client calls without subscribing: not on the bus (SignalR 2 sends them nothing either). */
  private unsubscribed: Map<string, ClassicHubBinding> | undefined;
  /** On a persistent connection endpoint: this connection's presence on its bus. */
  persistent: PersistentBinding | undefined;
  /** Its buffer, cursors and transport: what it sends the client, and how. */
  readonly delivery: ClassicDelivery;
  /** Rejoining the groups of the client's own token: the client has that token already. */
  private restoring = false;
  private started: Promise<void> | undefined;
  private connectFailed = false;
  private invocations: Promise<unknown> = Promise.resolve();
  private readonly aborter = new AbortController();
  private itemsMap: Map<unknown, unknown> | undefined;
  /** Subscriptions and restored groups in effect: /start and invocations wait for it. */
  ready: Promise<void> = Promise.resolve();
  disposed = false;
  /** A state for one /send or /start on a node that does not hold the connection: nothing is written here. */
  detached = false;
  /** onConnected ran on this node (not only marked started): a node taking over must hear it. */
  startedHere = false;
  /** When this node last received a transport request of the connection (claims between nodes compare it). */
  claimedAt = 0;

  constructor(
    readonly connectionId: string,
    readonly user: unknown,
    readonly userId: string | undefined,
    transport: ClassicTransport,
    public request: RequestInfo | undefined,
    private readonly services: ConnectionServices,
  ) {
    this.delivery = new ClassicDelivery(transport, services.options, () => services.position(), this);
  }

  get items(): Map<unknown, unknown> {
    this.itemsMap ??= new Map();
    return this.itemsMap;
  }
  get connectionAborted(): AbortSignal {
    return this.aborter.signal;
  }
  get isStarted(): boolean {
    return this.started !== undefined;
  }
  /** Its group changes go through the backplane, so another node can pick the connection up. */
  get movable(): boolean {
    return this.services.engine !== undefined;
  }
  /** onConnected ran on another node (or before this node took the connection over): onDisconnected runs here. */
  markStarted(): void {
    this.started ??= Promise.resolve();
  }

  /**
   * A state built for a poll or a reconnect: the client has most likely started already (on some node), so this
   * node reports its disconnect. Unlike markStarted it does not stop a /start that lands here from running
   * onConnected: a long-polling client's first poll may reach this node before its /start does.
   */
  assumeStarted(): void {
    this.assumedStarted = true;
  }
  private assumedStarted = false;

  // --- Hubs -------------------------------------------------------------------------------------------------
  /** Registers the connection on the buses of `hubs` (and leaves those no longer listed). */
  async subscribe(hubs: readonly ClassicHub[]): Promise<void> {
    const wanted = new Set(hubs.map((h) => h.lowerName));
    for (const [name, binding] of [...this.bindings]) {
      if (wanted.has(name)) continue;
      this.bindings.delete(name);
      await binding.disconnect(false, undefined);
    }
    for (const hub of hubs) {
      if (this.bindings.has(hub.lowerName)) continue;
      const binding = new ClassicHubBinding(hub, this);
      this.bindings.set(hub.lowerName, binding);
      await hub.endpoint.bus.onConnected(binding);
    }
  }

  /**
   * A new state on this node: registers on the buses of `hubs` (and the persistent endpoint) with the groups of
   * the client's groups token. With `from` (a backplane position from the client's cursor), first replays what
   * was addressed to the connection after it.
   */
  async register(
    hubs: readonly ClassicHub[],
    persistent: PersistentEndpoint | undefined,
    groupsToken: string | null | undefined,
    from: number[] | undefined,
  ): Promise<void> {
    if (this.disposed) return;
    const engine = this.services.engine;
    const resume = engine !== undefined && from !== undefined;
    // Set before anything waits: a poll that arrives meanwhile must not be told it is up to date.
    this.delivery.resuming = resume;
    this.delivery.resumed = resume;
    const entries = this.services.tokens.readGroupsToken(groupsToken, this.connectionId);
    const rejoin = this.services.options.rejoinGroups;
    const allowed = async (hub: string | undefined, groups: string[]): Promise<string[]> => {
      if (!rejoin || groups.length === 0) return groups;
      try {
        const kept = await rejoin(
          { connectionId: this.connectionId, user: this.user, userId: this.userId, hub },
          groups,
        );
        return Array.isArray(kept) ? groups.filter((group) => kept.includes(group)) : [];
      } catch (error) {
        this.reportError(error, `rejoinGroups of classic connection '${this.connectionId}'`);
        return [];
      }
    };
    const targets: (ResumeTarget & { before: Set<string> })[] = [];
    const target = async (bus: MessageBus, connection: BusConnection, hub: string | undefined, groups: string[]) => {
      targets.push({
        bus,
        key: bus.historyKey ?? '',
        connection,
        groups: new Set(await allowed(hub, groups)),
        before: new Set(groups),
      });
    };
    if (persistent) {
      this.persistent = new PersistentBinding(persistent, this);
      const groups = entries.filter((e) => e.startsWith(PERSISTENT_GROUP)).map((e) => e.slice(PERSISTENT_GROUP.length));
      await target(persistent.bus, this.persistent, undefined, groups);
    }
    for (const hub of hubs) {
      const binding = new ClassicHubBinding(hub, this);
      this.bindings.set(hub.lowerName, binding);
      const prefix = `${hub.lowerName}.`;
      const groups = entries.filter((e) => e.toLowerCase().startsWith(prefix)).map((e) => e.slice(prefix.length));
      await target(hub.endpoint.bus, binding, hub.name, groups);
    }
    if (this.disposed) return;
    if (engine && from) {
      try {
        let result: Awaited<ReturnType<typeof resumeFrom>>;
        try {
          result = await resumeFrom(engine, this.connectionId, this.userId, targets, from, () => this.disposed, {
            timeoutMs: this.services.options.connectionTimeout,
            catchUpMs: CATCH_UP_MS,
            maxRows: MAX_REPLAY_ROWS,
            restoring: (on) => {
              this.restoring = on;
            },
          });
        } catch (error) {
          // The database stayed unreachable: this node lets the connection go without reporting a disconnect;
          // the client keeps its cursor and tries again (here or elsewhere).
          this.reportError(error, `resuming classic connection '${this.connectionId}'`);
          this.retire();
          return;
        }
        if (result.missed > 0) {
          this.reportError(
            new Error(
              `${result.missed} backplane rows were trimmed before classic connection '${this.connectionId}' came back; messages in them are lost to it. Raise the backplane retention.`,
            ),
            'resuming a classic connection',
          );
        }
        if (result.behind) {
          this.reportError(
            new Error(
              `This node did not catch up with the backplane position of classic connection '${this.connectionId}' in time; a message may reach it twice.`,
            ),
            'resuming a classic connection',
          );
        }
      } finally {
        this.delivery.resuming = false;
      }
    } else {
      this.restoring = true;
      try {
        for (const t of targets) await registerOnBus(t.bus, t.connection, t.groups);
      } finally {
        this.restoring = false;
      }
    }
    // The client learns its membership when it differs from its token's.
    if (targets.some((t) => !sameSet(t.before, t.groups))) this.delivery.groupsDirty = true;
    this.delivery.refreshPollEcho();
    this.delivery.scheduleFlush();
  }

  /** A /reconnect: the hubs' onReconnected (and the persistent handler's), once subscriptions are in effect. */
  async reconnected(): Promise<void> {
    await this.ready;
    if (this.disposed) return;
    for (const binding of this.bindings.values()) await binding.runReconnected();
    await this.persistent?.runReconnected();
  }

  /**
   * For a /start that lands on a node not holding the connection: bindings that run onConnected here without
   * joining the bus (what hub code does reaches the connection through the backplane).
   */
  bindDetached(hubs: readonly ClassicHub[], persistent: PersistentEndpoint | undefined): void {
    if (persistent) this.persistent ??= new PersistentBinding(persistent, this);
    for (const hub of hubs) {
      if (!this.bindings.has(hub.lowerName)) this.bindings.set(hub.lowerName, new ClassicHubBinding(hub, this));
    }
  }

  /** Runs onConnected on every subscribed hub, once (a repeated /start only waits for it). */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.startedHere = true;
      await this.ready;
      try {
        for (const binding of this.bindings.values()) await binding.runConnected();
        await this.persistent?.runConnected();
      } catch (error) {
        // As in ASP.NET Core: a connection whose onConnected threw never gets onDisconnected.
        this.connectFailed = true;
        throw error;
      }
    })();
    return this.started;
  }

  /** Runs invocations one at a time, in the order they arrived; resolves with the hub result JSON. */
  invoke(invocation: ClassicInvocation, hub: ClassicHub): Promise<string> {
    let binding = this.bindings.get(hub.lowerName);
    if (!binding) {
      this.unsubscribed ??= new Map();
      binding = this.unsubscribed.get(hub.lowerName);
      if (!binding) {
        binding = new ClassicHubBinding(hub, this);
        this.unsubscribed.set(hub.lowerName, binding);
      }
    }
    const target = binding;
    const result = this.invocations.then(() => target.invoke(invocation));
    this.invocations = result;
    return result;
  }

  /** Data a client sent to a persistent connection: onReceived, in arrival order. Never rejects. */
  receive(text: string, endpoint: PersistentEndpoint): Promise<void> {
    // A /send on a node that does not hold the connection gets a binding that is not on the bus.
    const binding = this.persistent ?? new PersistentBinding(endpoint, this);
    const result = this.invocations.then(() => binding.received(text));
    this.invocations = result;
    return result;
  }

  // --- Writing ---------------------------------------------------------------------------------------------
  get transportKind(): ClassicTransport {
    return this.delivery.transportKind;
  }

  /** Buffers a message for the client (numbered; sent with the next envelope). */
  enqueue(message: Buffer): void {
    this.delivery.enqueue(message);
  }

  /** Its groups changed (not while rejoining the groups of the client's own token: the client has that token). */
  groupsChanged(): void {
    if (this.disposed || this.restoring) return;
    this.delivery.groupsChanged();
  }

  /**
   * Resolves once everything buffered so far has been written to the client, or after `timeoutMs` (see
   * ClassicDelivery.whenWritten); on a node that does not hold the connection, the node that does confirms it.
   */
  whenWritten(timeoutMs: number): Promise<void> {
    if (this.detached) return this.services.holderWritten(this.connectionId, timeoutMs);
    return this.delivery.whenWritten(timeoutMs);
  }

  groupsToken(): string {
    const groups: string[] = [];
    for (const binding of this.bindings.values()) {
      for (const group of binding.groups) groups.push(`${binding.hub.name}.${group}`);
    }
    for (const group of this.persistent?.groups ?? []) groups.push(`${PERSISTENT_GROUP}${group}`);
    return this.services.tokens.groupsToken(this.connectionId, groups);
  }

  timedOut(): void {
    this.dispose(new Error('The client did not come back within the disconnect timeout.'), false);
  }

  // --- Lifetime ---------------------------------------------------------------------------------------------
  /** Hub code ended the connection: the client is told (`E`) and stops. */
  abort(): void {
    if (this.disposed) return;
    this.delivery.sendEnding();
    this.dispose(undefined, true);
  }

  /** The server is stopping: long polls hear `T:1`, streams close; then the hubs hear the disconnect. */
  shutdown(): void {
    if (this.disposed) return;
    this.delivery.answerPoll(true, { shuttingDown: true });
    this.dispose(undefined, false);
  }

  /**
   * The client moved to another node: this node forgets the connection without reporting a disconnect (its
   * transports close, its buses drop it; the node it moved to carries on from the client's cursor).
   */
  retire(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.services.removed(this, false);
    this.delivery.close();
    for (const binding of this.bindings.values()) void binding.disconnect(false, undefined);
    void this.persistent?.disconnect(false, false);
  }

  /** Ends the connection once: transports close, buses forget it, hubs run onDisconnected (if started). */
  dispose(error: Error | undefined, stopCalled: boolean): void {
    if (this.disposed) return;
    this.disposed = true;
    this.services.removed(this, stopCalled);
    this.delivery.close();
    this.aborter.abort();
    const started = (this.started !== undefined || this.assumedStarted) && !this.connectFailed;
    for (const binding of this.bindings.values()) void binding.disconnect(started, error);
    void this.persistent?.disconnect(started, stopCalled);
  }

  reportError(error: unknown, where: string): void {
    this.services.reportError(error, where);
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const item of a) if (!b.has(item)) return false;
  return true;
}
