// What one hub connection's messages do (ASP.NET Core's DefaultHubDispatcher, per connection): invocations in
// their slots (maximumParallelInvocationsPerClient, then a bounded queue), results held until what the call sent is
// stored, server-to-client streams pumped at the client's pace, uploads fed, client results completed.

import {
  type CompletionMessage,
  type HubMessage,
  type InvocationMessage,
  MessageType,
  type StreamInvocationMessage,
} from '../protocol/messages.js';
import { nextTurn, type TurnBudget } from '../util/turn-budget.js';
import type { HubCallerContext } from './hub.js';
import { callHubMethod, clientErrorText, NOT_STORED, sentDuring } from './hub-invoker.js';
import type { HubServices } from './hub-services.js';
import { ConnectionStreams, pumpStream } from './streams.js';
import type { UploadStream } from './upload-stream.js';

/** Invocations that may wait for a free slot before the connection stops reading (backpressure). */
const MAX_QUEUED_INVOCATIONS = 64;
/**
 * Results that may wait for their call's messages to be stored while the next calls already run; past this, a
 * call keeps its slot until its result is written.
 */
const MAX_HELD_RESULTS = 64;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** What the dispatcher needs of its connection. */
export interface DispatcherHost extends HubCallerContext {
  /** The connection ended (or is ending): nothing more is started or written. */
  readonly closed: boolean;
  writeMessage(message: HubMessage): void;
  /** Undefined while the client keeps up; else resolves once it caught up (or the connection ended). */
  whenWritable(): Promise<void> | undefined;
  /** Ends the connection with an error for the client. */
  close(error: string | undefined, allowReconnect: boolean): void;
  /** A hub instance for one call (its `signal`: the call's, default the connection's). */
  createHub(signal?: AbortSignal): object;
  /**
   * Results reach the client through the backplane, after what the call sent (a connection that may move between
   * nodes): they are stored by the time the client sees them, so they are not held for the call's sends.
   */
  readonly resultsFollowSends?: boolean;
}

export class HubDispatcher {
  private activeInvocations = 0;
  private queuedInvocations: (() => void)[] | undefined;
  private queueSpaceWaiter: (() => void) | undefined;
  /** Results waiting for their call's messages to be stored, and the last of them (results go out in order). */
  private heldResults = 0;
  private heldTail: Promise<void> | undefined;
  /** Uploads and server-to-client streams (created on the first stream). */
  private streamsOfConnection: ConnectionStreams | undefined;

  constructor(
    private readonly endpoint: HubServices,
    private readonly host: DispatcherHost,
    /** The connection's per-turn budget (shared with its reading). */
    private readonly budget: TurnBudget,
  ) {}

  private get streams(): ConnectionStreams {
    if (!this.streamsOfConnection) {
      this.streamsOfConnection = new ConnectionStreams(this.endpoint.options.streamBufferCapacity);
    }
    return this.streamsOfConnection;
  }

  /** Handles an invocation, stream item, completion or cancellation; a promise when reading must wait for it. */
  dispatch(
    message: InvocationMessage | StreamInvocationMessage | CompletionMessage | HubMessage,
  ): Promise<void> | undefined {
    switch (message.type) {
      case MessageType.Invocation:
      case MessageType.StreamInvocation:
        return this.onInvocation(message);
      case MessageType.StreamItem:
        return this.streamsOfConnection?.pushItem(message.invocationId, message.item);
      case MessageType.Completion:
        return this.onCompletion(message);
      case MessageType.CancelInvocation:
        this.streamsOfConnection?.cancelDownload(message.invocationId);
        return undefined;
      default:
        return undefined;
    }
  }

  /** The connection ended: streams end, queued invocations are dropped, a reader waiting for queue space goes on. */
  close(): void {
    this.streamsOfConnection?.abandonAll();
    this.queuedInvocations = undefined;
    this.queueSpaceWaiter?.();
  }

  private onCompletion(message: CompletionMessage): undefined {
    if (this.streamsOfConnection?.completeUpload(message.invocationId, message.error)) return undefined;
    this.endpoint.bus.setConnectionResult(this.host.connectionId, message);
    return undefined;
  }

  private onInvocation(message: InvocationMessage | StreamInvocationMessage): Promise<void> | undefined {
    let uploads: UploadStream[] = [];
    if (message.streamIds?.length) {
      const opened = this.streams.openUploads(message.streamIds);
      if (typeof opened === 'string') {
        this.host.close(`Connection closed with an error. ${opened}`, false);
        return undefined;
      }
      uploads = opened;
    }
    if (message.type === MessageType.StreamInvocation) {
      void this.runStream(message, uploads);
      return undefined;
    }
    const run = () => {
      this.activeInvocations++;
      void this.runInvocation(message, uploads);
    };
    if (this.activeInvocations < this.endpoint.options.maximumParallelInvocationsPerClient) {
      run();
      return undefined;
    }
    if (!this.queuedInvocations) this.queuedInvocations = [];
    this.queuedInvocations.push(run);
    if (this.queuedInvocations.length < MAX_QUEUED_INVOCATIONS) return undefined;
    return new Promise((resolve) => {
      this.queueSpaceWaiter = resolve;
    });
  }

  private releaseInvocationSlot(): void {
    this.activeInvocations--;
    if (this.host.closed) return;
    const queue = this.queuedInvocations;
    if (!queue) return;
    const next = queue.shift();
    if (next && this.budget.take()) next();
    else if (next) {
      // This turn's budget is spent: the next call starts in the next turn, its slot held meanwhile.
      this.activeInvocations++;
      void nextTurn().then(() => {
        this.activeInvocations--;
        if (!this.host.closed) next();
      });
    }
    const waiter = this.queueSpaceWaiter;
    if (waiter && queue.length < MAX_QUEUED_INVOCATIONS) {
      this.queueSpaceWaiter = undefined;
      waiter();
    }
  }

  private async call(
    message: InvocationMessage | StreamInvocationMessage,
    uploads: UploadStream[],
    signal: AbortSignal | undefined,
  ): Promise<{ value: unknown } | { error: string }> {
    const args = uploads.length > 0 ? [...message.arguments, ...uploads] : message.arguments;
    const outcome = await callHubMethod(this.endpoint, this.host, message.target, args, () =>
      this.host.createHub(signal),
    );
    if ('value' in outcome) return outcome;
    if ('refused' in outcome) return { error: outcome.refused };
    return {
      error: this.errorText(`An unexpected error occurred invoking '${message.target}' on the server.`, outcome.thrown),
    };
  }

  /** Runs a call in its slot; the slot is released as soon as the method returned (see holdResult). */
  private async runInvocation(message: InvocationMessage, uploads: UploadStream[]): Promise<void> {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.releaseInvocationSlot();
    };
    try {
      const mark = this.sendMark();
      const outcome = await this.call(message, uploads, undefined);
      this.streamsOfConnection?.releaseUploads(message.streamIds);
      if (message.invocationId === undefined) return;
      await this.holdResult(mark, release, (stored) =>
        this.writeResult(message, stored ? outcome : { error: NOT_STORED }),
      );
    } finally {
      release();
    }
  }

  /** Where the bus's accepted messages stand before a call (undefined: its result needs no hold). */
  private sendMark(): number | undefined {
    return this.host.resultsFollowSends ? undefined : this.endpoint.bus.accepted?.();
  }

  /**
   * Writes a call's result (`write(stored)`) once everything the call sent is stored (on a backplane that
   * acknowledges sends on acceptance) and the results held before it are written. The next call may run meanwhile
   * (`release`), unless too many results are held already. `stored` is false when the call's messages could not be
   * stored.
   */
  private async holdResult(
    mark: number | undefined,
    release: () => void,
    write: (stored: boolean) => void,
  ): Promise<void> {
    const sent = sentDuring(this.endpoint.bus, mark);
    const before = this.heldTail;
    if (!sent && !before) return write(true);
    if (this.heldResults < MAX_HELD_RESULTS) release();
    this.heldResults++;
    const tail = (async () => {
      const stored = sent ? await sent : true;
      if (before) await before;
      write(stored);
    })();
    this.heldTail = tail;
    try {
      await tail;
    } finally {
      this.heldResults--;
      if (this.heldTail === tail) this.heldTail = undefined;
    }
  }

  private writeResult(message: InvocationMessage, outcome: { value: unknown } | { error: string }): void {
    if (message.invocationId === undefined) return;
    if ('error' in outcome) {
      this.host.writeMessage({
        type: MessageType.Completion,
        invocationId: message.invocationId,
        error: outcome.error,
      });
      return;
    }
    if (isAsyncIterable(outcome.value)) {
      this.host.writeMessage({
        type: MessageType.Completion,
        invocationId: message.invocationId,
        error: `The client attempted to invoke the streaming '${message.target}' method with a non-streaming invocation.`,
      });
      return;
    }
    const value = outcome.value;
    this.host.writeMessage({
      type: MessageType.Completion,
      invocationId: message.invocationId,
      result: value,
      hasResult: value !== undefined,
    });
  }

  private async runStream(message: StreamInvocationMessage, uploads: UploadStream[]): Promise<void> {
    const invocationId = message.invocationId;
    const streams = this.streams;
    const controller = streams.beginDownload(invocationId);
    if (!controller) {
      this.host.writeMessage({
        type: MessageType.Completion,
        invocationId,
        error: `Invocation ID '${invocationId}' is already in use.`,
      });
      return;
    }
    const onConnectionAbort = () => controller.abort();
    const connectionAborted = this.host.connectionAborted;
    connectionAborted.addEventListener('abort', onConnectionAbort, { once: true });
    let error: string | undefined;
    const mark = this.sendMark();
    try {
      const outcome = await this.call(message, uploads, controller.signal);
      if ('error' in outcome) error = outcome.error;
      else if (!isAsyncIterable(outcome.value)) {
        error = `The client attempted to invoke the non-streaming '${message.target}' method with a streaming invocation.`;
      } else {
        error = await pumpStream(
          outcome.value,
          controller.signal,
          (item) => this.host.writeMessage({ type: MessageType.StreamItem, invocationId, item }),
          () => this.host.whenWritable(),
          (failure) =>
            this.errorText(
              `An error occurred on the server while streaming results from '${message.target}'.`,
              failure,
            ),
        );
      }
    } finally {
      streams.endDownload(invocationId);
      connectionAborted.removeEventListener('abort', onConnectionAbort);
      streams.releaseUploads(message.streamIds);
    }
    if (this.host.closed) return;
    // As for invocations: the completion waits for what the stream's method sent to be stored.
    const sent = sentDuring(this.endpoint.bus, mark);
    if (sent && !(await sent) && error === undefined) error = NOT_STORED;
    this.host.writeMessage(
      error === undefined
        ? { type: MessageType.Completion, invocationId }
        : { type: MessageType.Completion, invocationId, error },
    );
  }

  /** HubError messages always reach the client; other errors only with detailed errors on. */
  private errorText(generic: string, error: unknown): string {
    return clientErrorText(generic, error, this.endpoint.options.enableDetailedErrors);
  }
}
