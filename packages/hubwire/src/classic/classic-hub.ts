// A modern hub seen through the classic protocol: ClassicHub names it, and ClassicHubBinding is one classic
// connection's presence in that hub — what the hub's bus writes to (BusConnection) and what hub code sees as its
// caller (HubCallerContext). Invocations run through the same lookup, authorization and filters as modern ones.

import type { BusConnection } from '../bus/message-bus.js';
import type { RequestInfo } from '../connection/request-info.js';
import { HubError } from '../errors.js';
import { HubCallerClientsImpl } from '../hub/clients.js';
import { runOnConnected, runOnDisconnected } from '../hub/filters.js';
import type { HubCallerContext, HubInstanceState } from '../hub/hub.js';
import type { HubEndpoint } from '../hub/hub-endpoint.js';
import { callHubMethod, clientErrorText, NOT_STORED, sentDuring } from '../hub/hub-invoker.js';
import type { HubProtocol } from '../protocol/hub-protocol.js';
import { type HubMessage, MessageType } from '../protocol/messages.js';
import type { SerializedMessage } from '../protocol/serialized-message.js';
import type { TransportKind } from '../transports/transport.js';
import { sleep } from '../util/timing.js';
import { classicHubProtocol, encodeHubResult, PROGRESS_TARGET } from './envelope.js';
import type { ClassicTransport } from './options.js';

/** SignalR 2's proxy naming: the first letter of each dot-separated part lowercased (`ChatHub` → `chatHub`). */
export function camelCaseName(name: string): string {
  return name
    .split('.')
    .map((part) => part.charAt(0).toLowerCase() + part.slice(1))
    .join('.');
}

export class ClassicHub {
  /** Encodes client invocations as `{"H":name,"M":…,"A":…}`, once per broadcast for all classic connections. */
  readonly protocol: HubProtocol;
  /** The name clients use in `connectionData` and `H` (they lowercase it). */
  readonly lowerName: string;
  readonly proxyName: string;

  constructor(
    /** As given to mapClassicHubs, e.g. `ChatHub` or `chatHub`; sent as `H` in client invocations. */
    readonly name: string,
    readonly endpoint: HubEndpoint,
  ) {
    this.protocol = classicHubProtocol(name);
    this.lowerName = name.toLowerCase();
    this.proxyName = camelCaseName(name);
  }
}

/** What a binding needs from its classic connection. */
export interface BindingOwner {
  readonly connectionId: string;
  readonly user: unknown;
  readonly userId: string | undefined;
  readonly items: Map<unknown, unknown>;
  readonly transportKind: ClassicTransport;
  readonly request: RequestInfo | undefined;
  readonly connectionAborted: AbortSignal;
  /** The connection may move to another node (see BusConnection.movable). */
  readonly movable: boolean;
  abort(): void;
  /** Queues one client message (already-encoded JSON) for the client. */
  enqueue(message: Buffer): void;
  /** Resolves once what was enqueued so far reached the client (or after `timeoutMs`). */
  whenWritten(timeoutMs: number): Promise<void>;
  /** The membership changed: the client gets a new groups token. */
  groupsChanged(): void;
  reportError(error: unknown, where: string): void;
}

const MODERN_KIND: Record<ClassicTransport, TransportKind> = {
  webSockets: 'WebSockets',
  serverSentEvents: 'ServerSentEvents',
  // A streaming HTTP response, as Server-Sent Events are.
  foreverFrame: 'ServerSentEvents',
  longPolling: 'LongPolling',
};

/** An invocation as the client sent it (`{"H","M","A","I","S"}`), already checked for shape. */
export interface ClassicInvocation {
  hub: string;
  method: string;
  args: unknown[];
  id: string;
  state: Record<string, unknown> | undefined;
}

const STATE = Symbol('classicState');
/** How long a result waits for the progress reports before it to reach the client (a long poll's next round). */
const PROGRESS_FLUSH_TIMEOUT = 2000;
/** How long a result follows the progress reports written before it. */
const PROGRESS_LEAD_MS = 20;
const PROGRESS = Symbol('classicProgress');

/** The client state (`$.connection.chatHub.state`) of the current call, when the caller is a classic client. */
export function classicState(context: HubCallerContext): Record<string, unknown> | undefined {
  return (context as { [STATE]?: Record<string, unknown> })[STATE];
}

/**
 * Reports progress of the current call to a classic caller (SignalR 2's `IProgress<T>`: the jQuery client's
 * `invoke(...).progress(fn)`), or undefined when the caller is not a classic client. Each report reaches the
 * caller before the call's result; the returned promise resolves once the report is sent (committed to the
 * backplane, if any).
 */
export function classicProgress(context: HubCallerContext): ((value: unknown) => Promise<void>) | undefined {
  return (context as { [PROGRESS]?: (value: unknown) => Promise<void> })[PROGRESS];
}

export class ClassicHubBinding implements BusConnection, HubCallerContext {
  /** This connection's groups in this hub, as the bus's index reports them (for the groups token). */
  readonly groups = new Set<string>();
  private callerClients: HubCallerClientsImpl | undefined;

  constructor(
    readonly hub: ClassicHub,
    private readonly owner: BindingOwner,
  ) {}

  // --- BusConnection ----------------------------------------------------------------------------------------
  get connectionId(): string {
    return this.owner.connectionId;
  }
  get userId(): string | undefined {
    return this.owner.userId;
  }
  get movable(): boolean {
    return this.owner.movable;
  }

  writeSerialized(message: SerializedMessage): void {
    let bytes: Buffer;
    try {
      bytes = message.bytesFor(this.hub.protocol);
    } catch (error) {
      this.owner.reportError(error, `encoding '${message.message.target}' for classic clients`);
      return;
    }
    this.owner.enqueue(bytes);
  }

  writeMessage(message: HubMessage): void {
    if (message.type !== MessageType.Invocation) return;
    if (message.invocationId !== undefined) {
      // Client results: classic clients have no way to answer, so the hub's invoke() fails at once.
      this.hub.endpoint.bus.setConnectionResult(this.connectionId, {
        type: MessageType.Completion,
        invocationId: message.invocationId,
        error: 'Classic SignalR clients cannot return results.',
      });
      return;
    }
    try {
      this.owner.enqueue(this.hub.protocol.encode(message));
    } catch (error) {
      this.owner.reportError(error, `encoding '${message.target}' for a classic client`);
    }
  }

  onGroupChange(group: string, added: boolean): void {
    if (added) this.groups.add(group);
    else this.groups.delete(group);
    this.owner.groupsChanged();
  }

  // --- HubCallerContext -------------------------------------------------------------------------------------
  get userIdentifier(): string | undefined {
    return this.owner.userId;
  }
  get user(): unknown {
    return this.owner.user;
  }
  get items(): Map<unknown, unknown> {
    return this.owner.items;
  }
  get transport(): TransportKind {
    return MODERN_KIND[this.owner.transportKind];
  }
  /** The classic transport in use (`foreverFrame` reports `ServerSentEvents` as `transport`). */
  get classicTransport(): ClassicTransport {
    return this.owner.transportKind;
  }
  get request(): RequestInfo | undefined {
    return this.owner.request;
  }
  get negotiateRequest(): RequestInfo | undefined {
    return undefined; // classic negotiation keeps no state
  }
  get connectionAborted(): AbortSignal {
    return this.owner.connectionAborted;
  }
  abort(): void {
    this.owner.abort();
  }

  // --- Hub calls --------------------------------------------------------------------------------------------
  private createHub(context: HubCallerContext): object {
    const endpoint = this.hub.endpoint;
    if (!this.callerClients) this.callerClients = new HubCallerClientsImpl(endpoint.bus, this.connectionId);
    const state: HubInstanceState<unknown> = {
      context,
      clients: this.callerClients,
      groups: endpoint.groups,
      signal: this.owner.connectionAborted,
    };
    return endpoint.createHubInstance(state);
  }

  /** Runs one invocation and returns the hub result JSON. Never rejects. */
  async invoke(invocation: ClassicInvocation): Promise<string> {
    const endpoint = this.hub.endpoint;
    const state = invocation.state ?? {};
    const before = new Map(Object.entries(state).map(([key, value]) => [key, JSON.stringify(value)]));
    // Progress goes through the bus like any message to the caller (it may be on another node).
    const reports: Promise<void>[] = [];
    const progress = (value: unknown): Promise<void> => {
      const sent = endpoint.bus.send({ connections: [this.connectionId] }, PROGRESS_TARGET, [invocation.id, value]);
      reports.push(sent.catch(() => {}));
      return sent;
    };
    // The call's context: this binding, plus the client state hub code may read and change, and progress.
    const context = Object.create(this, {
      [STATE]: { value: state },
      [PROGRESS]: { value: progress },
    }) as HubCallerContext;
    const mark = endpoint.bus.accepted?.();
    let outcome = await callHubMethod(endpoint, context, invocation.method, invocation.args, () =>
      this.createHub(context),
    );
    // The result waits for what the call sent to be stored (a backplane acknowledging sends on acceptance).
    const sent = sentDuring(endpoint.bus, mark);
    if (sent && !(await sent)) outcome = { refused: NOT_STORED };
    if (reports.length > 0) {
      // The client drops progress that arrives after the result: let the reports go out first.
      await Promise.all(reports);
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.owner.whenWritten(PROGRESS_FLUSH_TIMEOUT);
      // Written is not yet seen: the reports travel on the client's stream, the result on another HTTP response,
      // and a browser may process the two connections in either order. A short lead keeps them in order.
      await sleep(PROGRESS_LEAD_MS);
    }
    const changed = changedState(state, before);
    const id = invocation.id;
    if ('refused' in outcome) return encodeHubResult({ id, error: outcome.refused, state: changed });
    if ('thrown' in outcome) {
      const error = outcome.thrown;
      if (error instanceof HubError) {
        const data = (error as { data?: unknown }).data;
        return encodeHubResult({ id, error: error.message, hubException: true, errorData: data, state: changed });
      }
      const generic = `There was an error invoking Hub method '${invocation.hub}.${invocation.method}'.`;
      const text = endpoint.options.enableDetailedErrors
        ? error instanceof Error
          ? error.message
          : String(error)
        : clientErrorText(generic, error, false);
      return encodeHubResult({ id, error: text, state: changed });
    }
    const value = outcome.value;
    if (isAsyncIterable(value)) {
      return encodeHubResult({
        id,
        error: `The method '${invocation.method}' streams its results, which classic clients cannot receive.`,
      });
    }
    return encodeHubResult({ id, result: value, state: changed });
  }

  // --- Lifetime ---------------------------------------------------------------------------------------------
  /** Runs the hub's onConnected (and the filters around it). */
  async runConnected(): Promise<void> {
    const endpoint = this.hub.endpoint;
    if (!endpoint.runsOnConnected) return;
    await runOnConnected(endpoint.options.filters, this, this.createHub(this));
  }

  /** Runs the hub's onReconnected, if it has one (a classic client's /reconnect). Never rejects. */
  async runReconnected(): Promise<void> {
    const endpoint = this.hub.endpoint;
    try {
      const hub = this.createHub(this) as { onReconnected?: () => unknown };
      await hub.onReconnected?.();
    } catch (error) {
      endpoint.reportError(error, `onReconnected of classic connection '${this.connectionId}'`);
    }
  }

  /** Leaves the bus, then runs the hub's onDisconnected when onConnected ran. Never rejects. */
  async disconnect(started: boolean, error: Error | undefined): Promise<void> {
    const endpoint = this.hub.endpoint;
    try {
      await endpoint.bus.onDisconnected(this);
      if (!started || !endpoint.runsOnDisconnected) return;
      await runOnDisconnected(endpoint.options.filters, this, this.createHub(this), error);
    } catch (failure) {
      endpoint.reportError(failure, `onDisconnected of classic connection '${this.connectionId}'`);
    }
  }
}

function changedState(
  state: Record<string, unknown>,
  before: Map<string, string | undefined>,
): Record<string, unknown> | undefined {
  let changed: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(state)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      continue;
    }
    if (before.get(key) === json) continue;
    changed ??= {};
    changed[key] = value;
  }
  return changed;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}
