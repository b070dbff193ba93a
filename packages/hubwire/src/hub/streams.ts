// A connection's streams: client-to-server uploads by stream id, server-to-client streams by invocation id, and
// the loop that sends a stream's items.

import { HubError } from '../errors.js';
import { UploadStream } from './upload-stream.js';

export class ConnectionStreams {
  /** Client-to-server streams, by the ids the client chose. */
  private uploads: Map<string, UploadStream> | undefined;
  /** Server-to-client streams, by invocation id: aborting one cancels it. */
  private downloads: Map<string, AbortController> | undefined;

  constructor(private readonly capacity: number) {}

  /** Upload streams for an invocation's stream ids; a string error for a duplicate id. */
  openUploads(streamIds: readonly string[] | undefined): UploadStream[] | string {
    const opened: UploadStream[] = [];
    for (const streamId of streamIds ?? []) {
      if (!this.uploads) this.uploads = new Map();
      if (this.uploads.has(streamId)) return `Duplicate stream ID '${streamId}'.`;
      const upload = new UploadStream(this.capacity);
      this.uploads.set(streamId, upload);
      opened.push(upload);
    }
    return opened;
  }

  /** A stream item; a promise when the reader is behind (backpressure). Unknown ids are ignored. */
  pushItem(streamId: string, item: unknown): Promise<void> | undefined {
    return this.uploads?.get(streamId)?.push(item);
  }

  /** Completes an upload; false if `streamId` is not one (then the completion is a client result). */
  completeUpload(streamId: string, error: string | undefined): boolean {
    const upload = this.uploads?.get(streamId);
    if (!upload) return false;
    this.uploads?.delete(streamId);
    // As ASP.NET Core: a HubException, so a method that lets it through tells the caller what the client said.
    upload.complete(error !== undefined ? new HubError(error) : undefined);
    return true;
  }

  /** The invocation is over: its uploads stop accepting items. */
  releaseUploads(streamIds: readonly string[] | undefined): void {
    for (const id of streamIds ?? []) {
      const upload = this.uploads?.get(id);
      if (upload) {
        this.uploads?.delete(id);
        upload.abandon();
      }
    }
  }

  /** Registers a server-to-client stream; undefined when its invocation id is already in use. */
  beginDownload(invocationId: string): AbortController | undefined {
    if (!this.downloads) this.downloads = new Map();
    if (this.downloads.has(invocationId)) return undefined;
    const controller = new AbortController();
    this.downloads.set(invocationId, controller);
    return controller;
  }

  endDownload(invocationId: string): void {
    this.downloads?.delete(invocationId);
  }

  /** CancelInvocation from the client. */
  cancelDownload(invocationId: string): void {
    this.downloads?.get(invocationId)?.abort();
  }

  /** The connection ended. */
  abandonAll(): void {
    if (this.uploads) for (const upload of this.uploads.values()) upload.abandon();
    this.uploads = undefined;
  }
}

/** How long a stream may write items in one event-loop turn before it lets other work run (ms). */
const STREAM_SLICE_MS = 2;

/**
 * Settles like `promise`, or with 'aborted' once `signal` aborts. The abort listener lives only as long as this
 * one wait: racing every item against one long-lived abort promise would keep a reaction per item until the
 * stream ends.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | 'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Sends each item of a server-to-client stream until it ends, fails or is cancelled. Resolves with undefined on
 * success, else the error text for the Completion. Between items it waits while the client is behind (`writable`
 * returns a promise), and it yields to the event loop every few milliseconds: a generator that never awaits
 * anything slow cannot hold the server for everyone else.
 */
export async function pumpStream(
  source: AsyncIterable<unknown>,
  signal: AbortSignal,
  writeItem: (item: unknown) => void,
  writable: () => Promise<void> | undefined,
  describeError: (error: unknown) => string,
): Promise<string | undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let sliceStart = performance.now();
  try {
    for (;;) {
      const next = await untilAborted(iterator.next(), signal);
      if (next === 'aborted') {
        // Do not wait: a generator blocked on its own await finishes its `finally` later.
        iterator.return?.()?.catch(() => undefined);
        return 'Stream canceled by client.';
      }
      if (next.done) return undefined;
      writeItem(next.value);
      const wait = writable();
      if (wait) {
        await untilAborted(wait, signal);
        sliceStart = performance.now();
      } else if (performance.now() - sliceStart > STREAM_SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  } catch (error) {
    return describeError(error);
  }
}
