// The streaming transports of the classic protocol: each writes one JSON value (an envelope, `{}`, or a hub
// result) per frame, event or script tag. Long polling is request/response and lives in long-polling.ts.

import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { ClassicTransport } from './options.js';

/** A live streaming transport of one classic connection. Writes never throw. */
export interface StreamTransport {
  readonly kind: ClassicTransport;
  write(payload: Buffer | string): void;
  /** Bytes written and not yet handed to the operating system (the client is not reading them). */
  readonly bufferedBytes: number;
  close(): void;
  /** Ends the stream at once, dropping what was not sent (a client that does not read). */
  abort(): void;
}

const OPEN = 1;
const TEXT = { binary: false };

export class WebSocketStream implements StreamTransport {
  readonly kind = 'webSockets' as const;
  constructor(readonly socket: WebSocket) {}

  write(payload: Buffer | string): void {
    if (this.socket.readyState === OPEN) this.socket.send(payload, TEXT);
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  close(): void {
    if (this.socket.readyState === OPEN) this.socket.close(1000);
  }

  abort(): void {
    this.socket.terminate();
  }
}

/** What the HTTP streams (Server-Sent Events, forever frame) share: their response's buffer and abort. */
abstract class ResponseStream {
  constructor(protected readonly response: ServerResponse) {}

  get bufferedBytes(): number {
    return this.response.writableLength;
  }

  abort(): void {
    this.response.destroy();
  }
}

const STREAM_HEADERS = { 'Cache-Control': 'no-cache, no-store', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' };

/** Server-Sent Events: `data: <json>` per message; the client ignores the leading `initialized`. */
export class EventStream extends ResponseStream implements StreamTransport {
  readonly kind = 'serverSentEvents' as const;
  constructor(response: ServerResponse) {
    super(response);
    response.writeHead(200, { 'Content-Type': 'text/event-stream', ...STREAM_HEADERS });
    response.socket?.setNoDelay(true);
    response.write('data: initialized\n\n');
  }

  write(payload: Buffer | string): void {
    if (this.response.writableEnded) return;
    // JSON.stringify never emits a raw line break, so one `data:` line holds the whole value.
    this.response.write(`data: ${payload}\n\n`);
  }

  close(): void {
    if (!this.response.writableEnded) this.response.end();
  }
}

/** Escapes JSON for a script element: no `</script>` or `<!--` can appear, nor line separators old engines reject. */
function scriptSafe(json: string): string {
  return json.replace(/[<>\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * foreverFrame (old IE): an HTML page that never ends, loaded in a hidden iframe. Its prologue binds to the parent
 * page's connection `frameId`; each message is a script that hands the JSON to the parent's transport.
 */
export class ForeverFrameStream extends ResponseStream implements StreamTransport {
  readonly kind = 'foreverFrame' as const;
  constructor(response: ServerResponse, frameId: number) {
    super(response);
    response.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8', ...STREAM_HEADERS });
    response.socket?.setNoDelay(true);
    response.write(
      '<!DOCTYPE html><html><head><title>SignalR Forever Frame Transport Stream</title>\r\n' +
        '<script>\r\n' +
        '  var $ = window.parent.jQuery,\r\n' +
        '      ff = $ ? $.signalR.transports.foreverFrame : null,\r\n' +
        `      c = ff ? ff.getConnection('${frameId}') : null,\r\n` +
        '      r = ff ? ff.receive : function () {};\r\n' +
        "  ff ? ff.started(c) : '';\r\n" +
        '</script></head><body>\r\n',
    );
  }

  write(payload: Buffer | string): void {
    if (this.response.writableEnded) return;
    this.response.write(`<script>r(c, ${scriptSafe(payload.toString())});</script>\r\n`);
  }

  close(): void {
    if (!this.response.writableEnded) this.response.end('</body></html>');
  }
}
