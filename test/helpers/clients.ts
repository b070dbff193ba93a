// Builds official @microsoft/signalr clients for the test matrix.

import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

export type TransportName = 'WebSockets' | 'ServerSentEvents' | 'LongPolling';
export type ProtocolName = 'json' | 'messagepack';

/** Every transport × protocol pair the official client supports (MessagePack needs binary: not SSE). */
export const MATRIX: { transport: TransportName; protocol: ProtocolName }[] = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'LongPolling', protocol: 'messagepack' },
];

export interface ClientOptions {
  transport?: TransportName;
  protocol?: ProtocolName;
  token?: string;
  statefulReconnect?: boolean;
  automaticReconnect?: number[];
  configure?: (builder: signalR.HubConnectionBuilder) => void;
}

export function buildClient(url: string, options: ClientOptions = {}): signalR.HubConnection {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, {
      transport: signalR.HttpTransportType[options.transport ?? 'WebSockets'],
      ...(options.token ? { accessTokenFactory: () => options.token as string } : {}),
    })
    .configureLogging(signalR.LogLevel.None);
  if (options.protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  if (options.statefulReconnect) builder.withStatefulReconnect();
  if (options.automaticReconnect) builder.withAutomaticReconnect(options.automaticReconnect);
  options.configure?.(builder);
  return builder.build();
}

export async function startClient(url: string, options: ClientOptions = {}): Promise<signalR.HubConnection> {
  const client = buildClient(url, options);
  await client.start();
  return client;
}

/** Collects the arguments of a client method, with a way to wait for the n-th call. */
export function collect<T = unknown>(client: signalR.HubConnection, method: string) {
  const items: T[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  client.on(method, (...args: unknown[]) => {
    items.push((args.length === 1 ? args[0] : args) as T);
    for (const waiter of waiters.filter((w) => items.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  return {
    items,
    waitFor(count: number, timeoutMs = 5000): Promise<T[]> {
      if (items.length >= count) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`Timed out waiting for ${count} '${method}' calls (got ${items.length}).`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(items);
          },
        });
      });
    },
  };
}

/** Reads a server-to-client stream to its end. */
export function readStream<T>(stream: signalR.IStreamResult<T>, timeoutMs = 5000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    const timer = setTimeout(() => reject(new Error('Timed out reading the stream.')), timeoutMs);
    stream.subscribe({
      next: (item) => {
        items.push(item);
      },
      complete: () => {
        clearTimeout(timer);
        resolve(items);
      },
      error: (error) => {
        clearTimeout(timer);
        reject(error);
      },
    });
  });
}

export { delay } from './wait.js';
