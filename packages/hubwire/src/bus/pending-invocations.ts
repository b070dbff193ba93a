// Client results waiting for an answer: each settles once, by a reply, its timeout, its abort signal, or its
// connection going away. Shared by the local bus and the scaleout bus.

import { HubwireError } from '../errors.js';
import type { InvokeOptions } from './message-bus.js';

interface Pending {
  connectionId: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class PendingInvocations {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly defaultTimeout: number) {}

  /**
   * Registers an invocation and calls `send` to write it. The promise settles on `resolve`/`reject`, after the
   * timeout (`HW_ERR_CLIENT_RESULT_TIMEOUT`), or when `options.signal` aborts.
   */
  start(
    invocationId: string,
    connectionId: string,
    target: string,
    options: InvokeOptions,
    send: () => void,
    timeoutHint = '',
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const timeout = options.timeout ?? this.defaultTimeout;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(options.signal?.reason ?? new Error('The invocation was aborted.')));
      const settle = (action: () => void) => {
        if (!this.pending.delete(invocationId)) return;
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        action();
      };
      this.pending.set(invocationId, {
        connectionId,
        resolve: (value) => settle(() => resolve(value)),
        reject: (error) => settle(() => reject(error)),
      });
      if (timeout > 0) {
        timer = setTimeout(() => {
          const message = `Client '${connectionId}' did not answer '${target}' within ${timeout} ms${timeoutHint}.`;
          settle(() => reject(new HubwireError('HW_ERR_CLIENT_RESULT_TIMEOUT', message)));
        }, timeout);
      }
      if (options.signal) {
        if (options.signal.aborted) {
          onAbort();
          return;
        }
        options.signal.addEventListener('abort', onAbort, { once: true });
      }
      send();
    });
  }

  /** How many invocations are waiting for an answer. */
  get size(): number {
    return this.pending.size;
  }

  /** The connection an invocation was sent to, if it is still waiting. */
  connectionOf(invocationId: string): string | undefined {
    return this.pending.get(invocationId)?.connectionId;
  }

  resolve(invocationId: string, value: unknown): void {
    this.pending.get(invocationId)?.resolve(value);
  }

  reject(invocationId: string, error: Error): void {
    this.pending.get(invocationId)?.reject(error);
  }

  /** Rejects every invocation waiting on `connectionId` (or on any connection when undefined). */
  rejectAll(error: Error, connectionId?: string): void {
    for (const pending of [...this.pending.values()]) {
      if (connectionId === undefined || pending.connectionId === connectionId) pending.reject(error);
    }
  }
}
