// Hubs for the server-surface tests (issue 6): request info, payload fidelity, policies, broken hubs.

import { Hub, HubError, type RequestInfo } from 'hubwire';

export interface SurfaceClient {
  message(value: unknown): void;
  payload(...values: unknown[]): void;
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

export class SurfaceHub extends Hub<SurfaceClient> {
  override onConnected(): void {
    // Hub code may read the request while connecting too.
    this.context.items.set('onConnected', {
      header: this.context.request?.headers['x-test'],
      transport: this.context.transport,
    });
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
  echo(value: unknown): unknown {
    return value;
  }
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
  async askCallerForBytes() {
    return describeValue(await this.clients.caller.invoke('bytes'));
  }
  throwHubError(message: string): never {
    throw new HubError(message);
  }
  throwPlain(): never {
    throw new Error('secret internal detail');
  }
  adminOnly(): string {
    return 'admin stuff';
  }
  ownerOnly(): string {
    return 'owner stuff';
  }
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

export class ThrowingOnConnectedHub extends Hub {
  override onConnected(): void {
    throw new Error('onConnected failed: secret detail');
  }
  ping(): string {
    return 'pong';
  }
}

export class HubErrorOnConnectedHub extends Hub {
  override async onConnected(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new HubError('you may not connect today');
  }
  ping(): string {
    return 'pong';
  }
}
