// One held long poll of the classic protocol: answered with an envelope as soon as there is something to send,
// or with an empty one after the connection timeout. While held, a space is written every keep-alive so proxies
// and the client see life (JSON.parse skips leading whitespace).

import type { ServerResponse } from 'node:http';

const SPACE = Buffer.from(' ');

export class PendingPoll {
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private headersWritten = false;

  constructor(
    private readonly response: ServerResponse,
    /** The cursor the client polled with (what it has). */
    readonly cursor: number,
    /** The cursor text a poll that ends with nothing new answers with. */
    public echo: string,
    timeout: number,
    onTimeout: (poll: PendingPoll) => void,
  ) {
    this.timer = setTimeout(() => onTimeout(this), timeout);
  }

  get finished(): boolean {
    return this.done || this.response.writableEnded || this.response.destroyed;
  }

  /** Writes a space (the headers first, if not yet sent). */
  keepAlive(): void {
    if (this.finished) return;
    if (!this.headersWritten) {
      this.headersWritten = true;
      this.response.writeHead(200, { 'Content-Type': 'application/json; charset=UTF-8', 'Cache-Control': 'no-cache' });
    }
    this.response.write(SPACE);
  }

  /** Answers the poll with one envelope. */
  finish(body: Buffer): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.response.writableEnded || this.response.destroyed) return;
    if (!this.headersWritten) {
      this.response.writeHead(200, {
        'Content-Type': 'application/json; charset=UTF-8',
        'Cache-Control': 'no-cache',
        'Content-Length': body.length,
      });
    }
    this.response.end(body);
  }

  /** The client went away: nothing more is written. */
  abandon(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
