// What a classic connection sends its client, and how: its numbered message buffer and cursors, the envelopes
// (messages, groups token, init, shutdown), and its current transport, a stream (SSE, forever frame, WebSocket) or
// held long polls, with keep-alives and the disconnect timeout. ClassicConnection owns one.

import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { withTimeout } from '../util/timing.js';
import { encodeEnvelope, KEEP_ALIVE } from './envelope.js';
import { PendingPoll } from './long-polling.js';
import { MessageBuffer } from './message-buffer.js';
import type { ClassicTransport, ResolvedClassicOptions } from './options.js';
import type { StreamTransport } from './transports.js';

/** What the delivery needs of its connection. */
export interface DeliveryHost {
  readonly disposed: boolean;
  /** The connection's current groups, as a token for the client. */
  groupsToken(): string;
  /** The client did not come back within the disconnect timeout. */
  timedOut(): void;
}

export class ClassicDelivery {
  private readonly buffer: MessageBuffer;
  /** Prefix of this connection state's cursors: a cursor from an earlier state (or node) is not misread. */
  private readonly epoch = randomBytes(3).toString('base64url');
  transportKind: ClassicTransport;
  private stream: StreamTransport | undefined;
  /** What the current stream has been sent, as a sequence number. */
  private sentSeq = 0;
  private poll: PendingPoll | undefined;
  /** The next envelope carries a new groups token. */
  groupsDirty = false;
  private flushScheduled = false;
  private lastActive = Date.now();
  private lastWrite = Date.now();
  /** Replaying what the client missed from the backplane: nothing is sent until it is done. */
  resuming = false;
  /** Built from a backplane position (the buffer holds only what came after the client's cursor). */
  resumed = false;
  /** The newest buffered message written to a transport (a stream, or a poll's answer). */
  private written = 0;
  private writtenWaiters: { seq: number; resolve(): void }[] = [];

  constructor(
    transport: ClassicTransport,
    private readonly options: ResolvedClassicOptions,
    /** The backplane position for a cursor (`<tag>.<ids>`), or undefined without a (started) backplane. */
    private readonly position: () => string | undefined,
    private readonly host: DeliveryHost,
  ) {
    this.transportKind = transport;
    this.buffer = new MessageBuffer(options.messageBufferSize);
  }

  /** Whether a cursor was written by this connection state (its buffer can answer it). */
  ownsCursor(cursor: string | null | undefined): boolean {
    return cursor?.startsWith(`${this.epoch}-`) === true;
  }

  /** A poll held while resuming echoes the client's cursor; once resumed, it names this state's own. */
  refreshPollEcho(): void {
    if (this.poll && !this.ownsCursor(this.poll.echo)) this.poll.echo = this.cursor(this.poll.cursor);
  }

  // --- Writing ----------------------------------------------------------------------------------------------
  /**
   * `<state>-<seq>`, and with a backplane `.<tag>.<ids>`: the position up to which the client then has everything
   * addressed to it (every message of rows this node delivered is in the buffer by then; seq names the newest).
   */
  cursor(seq: number): string {
    const position = this.position();
    return position === undefined
      ? `${this.epoch}-${seq.toString(36)}`
      : `${this.epoch}-${seq.toString(36)}.${position}`;
  }

  /** The sequence number a cursor names, or undefined when it comes from another connection state. */
  parseCursor(cursor: string | null | undefined): number | undefined {
    if (!cursor?.startsWith(`${this.epoch}-`)) return undefined;
    const text = cursor.slice(this.epoch.length + 1).split('.')[0] ?? '';
    if (!/^[0-9a-z]{1,11}$/.test(text)) return undefined;
    const seq = Number.parseInt(text, 36);
    return Number.isSafeInteger(seq) && seq >= 0 && seq <= this.buffer.last ? seq : undefined;
  }

  /** Where a client whose cursor this state cannot read starts: all of a resumed buffer, else from now. */
  private defaultSeq(): number {
    return this.resumed ? 0 : this.buffer.last;
  }

  enqueue(message: Buffer): void {
    if (this.host.disposed) return;
    this.buffer.push(message);
    this.scheduleFlush();
  }

  /** The connection's groups changed: the next envelope carries a new groups token. */
  groupsChanged(): void {
    if (this.host.disposed) return;
    this.groupsDirty = true;
    this.scheduleFlush();
  }

  /** Sends in the next microtask, so a burst of messages travels in one envelope. */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.host.disposed || this.resuming) return;
    if (this.stream) {
      const messages = this.buffer.after(this.sentSeq);
      if (messages.length === 0 && !this.groupsDirty) return;
      this.writeStream(this.envelope(messages));
      this.sentSeq = this.buffer.last;
      this.wrote(this.buffer.last);
    } else if (this.poll) this.answerPoll(false);
  }

  private envelope(messages: Buffer[], extra: { init?: boolean; shuttingDown?: boolean } = {}): Buffer {
    const groupsToken = this.groupsDirty ? this.host.groupsToken() : undefined;
    this.groupsDirty = false;
    const longPollDelay = this.transportKind === 'longPolling' ? this.options.longPollDelay : 0;
    return encodeEnvelope(this.cursor(this.buffer.last), messages, { ...extra, groupsToken, longPollDelay });
  }

  writeStream(payload: Buffer | string): void {
    const stream = this.stream;
    if (!stream) return;
    stream.write(payload);
    this.lastWrite = Date.now();
    // A client that does not read its stream: drop the stream (not the connection). When it reads again it sees
    // the stream end and reconnects with its cursor; else the disconnect timeout ends the connection.
    if (stream.bufferedBytes > this.options.maxQueuedBytes) {
      stream.abort();
      this.detachStream(stream);
    }
  }

  private wrote(seq: number): void {
    if (seq <= this.written) return;
    this.written = seq;
    if (this.writtenWaiters.length === 0) return;
    const ready = this.writtenWaiters.filter((w) => w.seq <= seq);
    this.writtenWaiters = this.writtenWaiters.filter((w) => w.seq > seq);
    for (const waiter of ready) waiter.resolve();
  }

  /**
   * Resolves once everything buffered so far has been written to the client (a stream, or the answer of a poll),
   * or after `timeoutMs`: a hub result then cannot overtake the progress reports before it.
   */
  whenWritten(timeoutMs: number): Promise<void> {
    const seq = this.buffer.last;
    if (this.host.disposed || seq <= this.written) return Promise.resolve();
    const written = new Promise<void>((resolve) => this.writtenWaiters.push({ seq, resolve }));
    return withTimeout(written, timeoutMs, undefined);
  }

  /** Writes a hub result on the current WebSocket (other transports answer it as the /send response). */
  writeResult(result: string): void {
    if (this.stream?.kind === 'webSockets') this.writeStream(result);
  }

  // --- Transports -------------------------------------------------------------------------------------------
  /**
   * A stream takes over: on connect it sends the init message; on reconnect it replays what came after the
   * client's cursor (from now, when the cursor is not this state's).
   */
  attachStream(stream: StreamTransport, reconnectCursor: string | null | undefined, init: boolean): void {
    const previous = this.stream;
    this.stream = stream;
    this.transportKind = stream.kind;
    previous?.close();
    this.endPoll();
    this.lastActive = Date.now();
    if (init) {
      this.writeStream(this.envelope([], { init: true }));
      this.sentSeq = this.buffer.last;
      return;
    }
    this.sentSeq = this.parseCursor(reconnectCursor) ?? this.defaultSeq();
    this.flush();
  }

  /** The stream ended (the client left, or it was replaced): the disconnect timeout runs from now. */
  detachStream(stream: StreamTransport): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.lastActive = Date.now();
  }

  /** Long polling's /connect: the init message, answered at once. */
  connectLongPolling(response: ServerResponse): void {
    this.switchToLongPolling();
    this.lastActive = Date.now();
    respondJson(response, this.envelope([], { init: true }));
  }

  /** A /poll (or long polling's /reconnect): answered when there is something after `cursor`, or held. */
  longPoll(response: ServerResponse, cursorText: string | null | undefined): void {
    this.switchToLongPolling();
    this.endPoll();
    const parsed = this.parseCursor(cursorText);
    const cursor = parsed ?? this.defaultSeq();
    // The client has everything up to its cursor: nothing before it is replayed again.
    this.buffer.ack(cursor);
    // What a poll that ends with nothing new answers: the client's own cursor while this state cannot name it yet.
    const echo = parsed !== undefined || this.resuming ? (cursorText ?? '') : this.cursor(cursor);
    this.poll = new PendingPoll(response, cursor, echo, this.options.connectionTimeout, (poll) => {
      if (this.poll === poll) this.answerPoll(true);
    });
    const poll = this.poll;
    response.on('close', () => {
      poll.abandon(); // stops its timer (a no-op once answered)
      if (this.poll === poll) {
        this.poll = undefined;
        this.lastActive = Date.now();
      }
    });
    this.answerPoll(false);
  }

  private switchToLongPolling(): void {
    this.transportKind = 'longPolling';
    const stream = this.stream;
    this.stream = undefined;
    stream?.close();
  }

  /** Answers the held poll if there is something to say (or `always`, on its timeout). */
  answerPoll(always: boolean, extra?: { shuttingDown?: boolean }): void {
    const poll = this.poll;
    if (!poll) return;
    if (this.resuming) {
      if (!always) return;
      this.poll = undefined;
      poll.finish(encodeEnvelope(poll.echo, [], extra));
      return;
    }
    const messages = this.buffer.after(poll.cursor);
    if (!always && messages.length === 0 && !this.groupsDirty) return;
    this.poll = undefined;
    this.lastActive = Date.now();
    this.lastWrite = this.lastActive;
    poll.finish(this.envelope(messages, extra));
    this.wrote(this.buffer.last);
  }

  /** A newer request superseded the held poll: it ends with nothing new. */
  endPoll(): void {
    const poll = this.poll;
    if (!poll) return;
    this.poll = undefined;
    poll.finish(encodeEnvelope(poll.echo, []));
  }

  /** About once a second: keep-alives, and the disconnect timeout. */
  tick(now: number): void {
    if (this.host.disposed) return;
    const keepAlive = this.options.keepAlive;
    if (this.stream) {
      if (keepAlive !== null && now - this.lastWrite >= keepAlive) this.writeStream(KEEP_ALIVE);
      return;
    }
    if (this.poll) {
      if (keepAlive !== null && now - this.lastWrite >= keepAlive) {
        this.poll.keepAlive();
        this.lastWrite = now;
      }
      return;
    }
    if (now - this.lastActive > this.options.disconnectTimeout) {
      this.host.timedOut();
    }
  }

  /** Hub code ended the connection: the client is told (`E`) on its stream or held poll. */
  sendEnding(): void {
    const ending = encodeEnvelope(this.cursor(this.buffer.last), [], {
      error: 'The connection was ended by the server.',
    });
    if (this.stream) this.writeStream(ending);
    else if (this.poll) {
      const poll = this.poll;
      this.poll = undefined;
      poll.finish(ending);
    }
  }

  /** The connection is over here: the stream closes, a held poll ends with nothing new. */
  close(): void {
    const stream = this.stream;
    this.stream = undefined;
    stream?.close();
    this.endPoll();
  }
}

export function respondJson(response: ServerResponse, body: Buffer | string, status = 200): void {
  if (response.headersSent) {
    if (!response.writableEnded) response.end();
    return;
  }
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-cache',
  });
  response.end(body);
}
