// A client-to-server stream: items the client sends arrive here and the hub method reads them with
// `for await`. At most `capacity` items wait unread; past that the connection's reading pauses (backpressure).

export class UploadStream<T = unknown> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: Error | undefined;
  private reader: { resolve(result: IteratorResult<T>): void; reject(error: Error): void } | undefined;
  private spaceWaiter: (() => void) | undefined;
  /** Set when the hub method stopped reading: later items are dropped. */
  private abandoned = false;

  constructor(private readonly capacity: number) {}

  /** Adds an item; returns a promise when the reader is `capacity` items behind. */
  push(item: T): Promise<void> | undefined {
    if (this.done || this.abandoned) return undefined;
    if (this.reader) {
      const reader = this.reader;
      this.reader = undefined;
      reader.resolve({ value: item, done: false });
      return undefined;
    }
    this.items.push(item);
    if (this.items.length < this.capacity) return undefined;
    return new Promise((resolve) => {
      this.spaceWaiter = resolve;
    });
  }

  /** The client completed the stream (with an error, if it sent one). */
  complete(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    const reader = this.reader;
    this.reader = undefined;
    if (reader) {
      if (error) reader.reject(error);
      else reader.resolve({ value: undefined, done: true });
    }
  }

  /** The invocation is over: release a producer waiting for space and ignore what comes later. */
  abandon(): void {
    this.abandoned = true;
    this.items.length = 0;
    this.releaseProducer();
    this.complete();
  }

  private releaseProducer(): void {
    const waiter = this.spaceWaiter;
    this.spaceWaiter = undefined;
    waiter?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) {
          const value = this.items.shift() as T;
          if (this.items.length < this.capacity) this.releaseProducer();
          return Promise.resolve({ value, done: false });
        }
        if (this.done) {
          return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.reader = { resolve, reject };
        });
      },
      return: () => {
        this.abandon();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
