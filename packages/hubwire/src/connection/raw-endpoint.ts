// Raw connections (ASP.NET Core's ConnectionHandler): an endpoint without a hub protocol, negotiated and carried
// by the same transports; the application reads and writes text or bytes on each connection.

import type { IncomingMessage } from 'node:http';
import type { ConnectionApplication, TransportKind } from '../transports/transport.js';
import type { HttpConnection } from './connection.js';
import type { Endpoint, EndpointSettings } from './endpoint.js';
import type { RequestInfo } from './request-info.js';

/** One raw connection, as the application sees it. */
export interface RawConnection {
  readonly connectionId: string;
  /** What the authentication hook returned. */
  readonly user: unknown;
  readonly transport: TransportKind;
  readonly request: RequestInfo | undefined;
  readonly negotiateRequest: RequestInfo | undefined;
  /** Per-connection storage. */
  readonly items: Map<unknown, unknown>;
  /** Sends text (WebSocket text frames) or bytes (binary frames). Server-Sent Events carry text only. */
  send(data: string | Uint8Array): void;
  /** Ends the connection after what was sent is flushed. */
  close(): void;
  /** Received data; what arrived before the first listener is kept for it. */
  onData(listener: (data: Buffer) => void): void;
  onClose(listener: (error?: Error) => void): void;
}

/** Called once per connection, when its transport starts. */
export type ConnectionHandler = (connection: RawConnection) => void;

/** The application's side of a raw connection. */
class RawConnectionImpl implements RawConnection {
  readonly items = new Map<unknown, unknown>();
  dataListeners: ((data: Buffer) => void)[] = [];
  closeListeners: ((error?: Error) => void)[] = [];
  /** Data received before the first listener. */
  early: Buffer[] | undefined = [];

  constructor(
    private readonly connection: HttpConnection,
    readonly reportError: (error: unknown, where: string) => void,
  ) {}

  get connectionId(): string {
    return this.connection.connectionId;
  }
  get user(): unknown {
    return this.connection.user;
  }
  get transport(): TransportKind {
    return this.connection.transportKind as TransportKind;
  }
  get request(): RequestInfo | undefined {
    return this.connection.connectRequest;
  }
  get negotiateRequest(): RequestInfo | undefined {
    return this.connection.negotiateRequest;
  }

  send(data: string | Uint8Array): void {
    if (this.connection.state === 'closed') return;
    const binary = typeof data !== 'string';
    const bytes = binary ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data, 'utf8');
    this.connection.transport?.send(bytes, binary);
  }

  close(): void {
    this.connection.close();
  }

  onData(listener: (data: Buffer) => void): void {
    this.dataListeners.push(listener);
    const early = this.early;
    this.early = undefined;
    if (early) for (const chunk of early) this.emit(chunk);
  }

  onClose(listener: (error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  emit(data: Buffer): void {
    for (const listener of this.dataListeners) {
      try {
        listener(data);
      } catch (error) {
        this.reportError(error, `a data listener of connection '${this.connectionId}'`);
      }
    }
  }
}

/** The transport's side: bytes in, end of connection. */
class RawApplication implements ConnectionApplication {
  constructor(readonly raw: RawConnectionImpl) {}

  onData(data: Buffer): undefined {
    if (this.raw.early) this.raw.early.push(Buffer.from(data));
    else this.raw.emit(data);
    return undefined;
  }

  onClose(error?: Error): void {
    const listeners = this.raw.closeListeners;
    this.raw.closeListeners = [];
    for (const listener of listeners) {
      try {
        listener(error);
      } catch (failure) {
        this.raw.reportError(failure, `a close listener of connection '${this.raw.connectionId}'`);
      }
    }
  }
}

export class RawEndpoint implements Endpoint {
  constructor(
    readonly path: string,
    readonly settings: EndpointSettings,
    private readonly handler: ConnectionHandler,
    private readonly authorize: (user: unknown) => boolean | Promise<boolean>,
    private readonly reportError: (error: unknown, where: string) => void,
  ) {}

  authorizeConnection(user: unknown, _request: IncomingMessage): boolean | Promise<boolean> {
    return this.authorize(user);
  }

  createApplication(connection: HttpConnection): ConnectionApplication {
    const raw = new RawConnectionImpl(connection, this.reportError);
    const application = new RawApplication(raw);
    try {
      this.handler(raw);
    } catch (error) {
      this.reportError(error, `the connection handler at '${this.path}'`);
      queueMicrotask(() => connection.close());
    }
    return application;
  }
}
