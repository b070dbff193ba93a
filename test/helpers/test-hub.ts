// The test hub: one hub with every feature the tests exercise, for modern and classic (SignalR 2) clients alike —
// results, sends to every audience, groups, streams both ways, client results, errors, the connection's requests,
// and payloads ASP.NET Core encodes specially — recording what it sees. Also a few hubs that fail on purpose.

import { classicState, Hub, HubError, type RequestInfo } from 'hubwire';

/** The client methods the test hub calls. */
export interface TestClient {
  message(value: unknown): void;
  groupMessage(group: string, text: unknown): void;
  payload(...values: unknown[]): void;
}

/** What a test hub saw. */
export interface Observations {
  /** Connections whose onConnected ran (and did not refuse them). */
  connected: string[];
  /** Connections whose onDisconnected ran, with the error they ended with. */
  disconnected: { id: string; error: string | undefined }[];
  /** Streams of `forever` that ended (cancelled by the client or by the connection ending). */
  cancelledStreams: number;
}

export function newObservations(): Observations {
  return { connected: [], disconnected: [], cancelledStreams: 0 };
}

/** The fields of a request that the tests check. */
export function pickRequest(request: RequestInfo | undefined) {
  if (!request) return undefined;
  return {
    method: request.method,
    path: request.path,
    q: request.query.get('q'),
    hasId: request.query.has('id'),
    header: request.headers['x-test'],
    session: request.cookies.session,
    other: request.cookies.other,
    remoteAddress: request.remoteAddress,
    remotePortType: typeof request.remotePort,
  };
}

export const FIXED_DATE = new Date('2024-02-29T12:34:56.789Z');

/** A value with every kind of payload ASP.NET Core encodes specially. */
export function specialPayload() {
  return {
    buffer: Buffer.from([1, 2, 3, 255]),
    uint8: Uint8Array.of(4, 5, 6),
    arrayBuffer: Uint8Array.of(7, 8).buffer,
    sliced: Buffer.from([9, 9, 10, 11, 9]).subarray(2, 4),
    empty: new Uint8Array(0),
    date: FIXED_DATE,
    safeBig: 2n ** 40n,
    list: [Buffer.from('hi'), FIXED_DATE],
    text: 'plain',
  };
}

/** What a received value is, as the hub sees it. */
export function describeValue(value: unknown) {
  return {
    type: typeof value,
    isBytes: value instanceof Uint8Array,
    isDate: value instanceof Date,
    bytes: value instanceof Uint8Array ? [...value] : null,
    iso: value instanceof Date ? value.toISOString() : null,
  };
}

export class TestHub extends Hub<TestClient> {
  /** Where this hub class records what it sees: one record per process, unless `createTestHub` gave it its own. */
  static observations: Observations = newObservations();

  private get observed(): Observations {
    return (this.constructor as typeof TestHub).observations;
  }

  /** Refuses the user `refused`; records the connection; keeps what hub code may read while connecting. */
  override onConnected(): void {
    if (this.context.userIdentifier === 'refused') throw new HubError('not today');
    this.observed.connected.push(this.context.connectionId);
    this.context.items.set('onConnected', {
      header: this.context.request?.headers['x-test'],
      transport: this.context.transport,
    });
  }
  override onDisconnected(error: Error | undefined): void {
    this.observed.disconnected.push({ id: this.context.connectionId, error: error?.message });
  }

  // Results and the caller's identity.
  echo(value: unknown): unknown {
    return value;
  }
  add(a: number, b: number): number {
    return a + b;
  }
  noReturn(): void {}
  async slow(ms: number, value: unknown): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return value;
  }
  getConnectionId(): string {
    return this.context.connectionId;
  }
  getUserId(): string | undefined {
    return this.context.userIdentifier;
  }
  getUser(): unknown {
    return this.context.user;
  }
  getTransport(): string {
    return this.context.transport;
  }
  /** The process running the call: in a multi-process cluster, which node holds the caller's connection. */
  processId(): number {
    return process.pid;
  }
  /** Ends the caller's connection from the server. */
  abortMe(): void {
    this.context.abort();
  }

  // The connection's HTTP requests.
  whereAmI(): string | undefined {
    return this.context.request?.path;
  }
  requestInfo() {
    return {
      transport: this.context.transport,
      request: pickRequest(this.context.request) ?? null,
      negotiate: pickRequest(this.context.negotiateRequest) ?? null,
      onConnected: this.context.items.get('onConnected') ?? null,
    };
  }

  // Errors: a HubError's message (and, for classic clients, its data) reaches the client; other errors do not.
  throwHubError(message: string): never {
    throw Object.assign(new HubError(message), { data: { code: 42 } });
  }
  throwPlain(): never {
    throw new Error('secret internal detail');
  }

  // Sends to every audience.
  broadcast(text: unknown): Promise<void> {
    return this.clients.all.message(text);
  }
  toCaller(text: unknown): Promise<void> {
    return this.clients.caller.message(text);
  }
  toOthers(text: unknown): Promise<void> {
    return this.clients.others.message(text);
  }
  toClient(connectionId: string, text: unknown): Promise<void> {
    return this.clients.client(connectionId).message(text);
  }
  toAllExcept(connectionId: string, text: unknown): Promise<void> {
    return this.clients.allExcept([connectionId]).message(text);
  }
  toUser(userId: string, text: unknown): Promise<void> {
    return this.clients.user(userId).message(text);
  }
  toUsers(userIds: string[], text: unknown): Promise<void> {
    return this.clients.users(userIds).message(text);
  }

  // Groups.
  joinGroup(group: string): Promise<void> {
    return this.groups.add(this.context.connectionId, group);
  }
  leaveGroup(group: string): Promise<void> {
    return this.groups.remove(this.context.connectionId, group);
  }
  toGroup(group: string, text: unknown): Promise<void> {
    return this.clients.group(group).groupMessage(group, text);
  }
  toGroups(groups: string[], text: unknown): Promise<void> {
    return this.clients.groups(groups).groupMessage(groups.join(','), text);
  }
  toGroupExcept(group: string, connectionId: string, text: unknown): Promise<void> {
    return this.clients.groupExcept(group, [connectionId]).groupMessage(group, text);
  }
  toOthersInGroup(group: string, text: unknown): Promise<void> {
    return this.clients.othersInGroup(group).groupMessage(group, text);
  }

  // Presence across the cluster, as hub code asks it (0: the default timeout).
  usersOnline(timeout = 0): Promise<string[]> {
    return this.clients.usersOnline(timeout > 0 ? { timeout } : undefined);
  }
  groupMembers(group: string, timeout = 0): Promise<{ connectionId: string; userId?: string }[]> {
    return this.clients.groupMembers(group, timeout > 0 ? { timeout } : undefined);
  }

  // Streams, both ways.
  async *countTo(n: number): AsyncGenerator<number> {
    for (let i = 1; i <= n; i++) yield i;
  }
  async *forever(): AsyncGenerator<number> {
    let i = 0;
    try {
      while (!this.signal.aborted) {
        yield i++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      this.observed.cancelledStreams++;
    }
  }
  async *failingStream(): AsyncGenerator<number> {
    yield 1;
    throw new HubError('stream broke');
  }
  async sum(numbers: AsyncIterable<number>): Promise<number> {
    let total = 0;
    for await (const n of numbers) total += n;
    return total;
  }
  async *doubleEach(numbers: AsyncIterable<number>): AsyncGenerator<number> {
    for await (const n of numbers) yield n * 2;
  }

  // Client results.
  async askCaller(question: string): Promise<unknown> {
    return this.clients.caller.invoke('answer', question);
  }
  /** Asks another connection; a failure (a classic client cannot answer) reaches the caller as a HubError. */
  async askClient(connectionId: string, question = ''): Promise<unknown> {
    try {
      return await this.clients.client(connectionId).invokeWithOptions('answer', [question], { timeout: 2000 });
    } catch (error) {
      throw new HubError((error as Error).message);
    }
  }
  async askCallerForBytes() {
    return describeValue(await this.clients.caller.invoke('bytes'));
  }

  // Classic client state: counts calls in the caller's `state.counter`.
  increment(): number {
    const state = classicState(this.context);
    if (!state) throw new HubError('not a classic caller');
    state.counter = Number(state.counter ?? 0) + 1;
    return state.counter as number;
  }

  // Payloads ASP.NET Core encodes specially: bytes, dates, big integers.
  describe(value: unknown) {
    return describeValue(value);
  }
  payload() {
    return specialPayload();
  }
  hugeBigInt(): bigint {
    return 2n ** 70n;
  }
  /** An Int64 that a double cannot hold (2^53 + 1), as a .NET `long` result would be. */
  int64(): bigint {
    return 2n ** 53n + 1n;
  }
  sendPayloadToCaller(): Promise<void> {
    return this.clients.caller.payload(Buffer.from([1, 2, 3]), FIXED_DATE);
  }
  async *payloadStream(): AsyncGenerator<unknown> {
    yield Buffer.from([42]);
    yield FIXED_DATE;
  }

  // Targets for method authorization policies.
  adminOnly(): string {
    return 'admin stuff';
  }
  ownerOnly(): string {
    return 'owner stuff';
  }
}

/** The test hub recording into `observed`: each server that maps it gets its own record. */
export function createTestHub(observed: Observations): typeof TestHub {
  return class OwnRecordTestHub extends TestHub {
    static override observations = observed;
  };
}

/** A hub whose constructor always throws, without onConnected. */
export class ThrowingConstructorHub extends Hub {
  constructor() {
    super();
    throw new Error('constructor failed: missing dependency');
  }
  ping(): string {
    return 'pong';
  }
}

/** A hub whose constructor always throws, with onConnected. */
export class ThrowingConstructorConnectedHub extends Hub {
  constructor() {
    super();
    throw new Error('constructor failed: missing dependency');
  }
  override onConnected(): void {}
  ping(): string {
    return 'pong';
  }
}

/** A hub whose constructor throws a HubError (its message may reach the client). */
export class HubErrorConstructorHub extends Hub {
  constructor() {
    super();
    throw new HubError('the hub is not available right now');
  }
  ping(): string {
    return 'pong';
  }
}

/** A hub whose onConnected throws (the detail reaches the client only with detailed errors). */
export class ThrowingOnConnectedHub extends Hub {
  override onConnected(): void {
    throw new Error('onConnected failed: secret detail');
  }
  ping(): string {
    return 'pong';
  }
}

/** A hub whose onConnected throws a HubError after a moment (its message reaches the client). */
export class HubErrorOnConnectedHub extends Hub {
  override async onConnected(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new HubError('you may not connect today');
  }
  ping(): string {
    return 'pong';
  }
}
