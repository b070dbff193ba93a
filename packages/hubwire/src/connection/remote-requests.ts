// Transport requests of a connection that reach a node which does not hold it (no sticky sessions): a Server-Sent
// Events stream's POSTs, long polling's polls, POSTs and DELETE. The node that received the request (the requester)
// forwards it through the backplane; the node holding the connection (the holder) serves it and answers. Every node
// reads every row, so a request needs no address: only the holder acts. The holder first acknowledges (a requester
// that hears nothing within ACK_MS answers 404: no node holds the connection), then answers when done. A client
// sends its POSTs one at a time and waits for each answer, and the holder applies them as it reads them, so what it
// sends reaches its hub in order whichever nodes the POSTs landed on.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type LongPollingTransport, respond as respondPoll } from '../transports/long-polling.js';
import type { HttpConnection } from './connection.js';
import type { ClusterLink } from './cross-node.js';
import { HttpError, readBody, respond as respondText } from './http-util.js';

/** How long a requester waits for the holder to acknowledge a forwarded request (ms). */
const ACK_MS = 5000;
/** How long a forwarded send may take once acknowledged (the hub may apply backpressure) (ms). */
const SEND_MS = 60_000;

export type RemoteKind = 'send' | 'poll' | 'stop';

/** What a requester gets back: an HTTP status, and for a poll its body. */
export interface RemoteAnswer {
  status: number;
  message?: string;
  body?: Buffer;
  binary?: boolean;
}

type Request = { op: 'req'; req: string; from: string; id: string; path: string; kind: RemoteKind; data?: string };
type Cancel = { op: 'cancel'; req: string; id: string };
type Response = {
  op: 'res';
  req: string;
  to: string;
  /** The holder. */
  node?: string;
  phase: 'ack' | 'done';
  status: number;
  message?: string;
  data?: string;
  binary?: boolean;
};

interface Waiting {
  acked: boolean;
  /** The node that acknowledged (holds the connection). */
  holder?: string;
  timer: NodeJS.Timeout;
  resolve(answer: RemoteAnswer): void;
  doneMs: number;
}

/** What the holder side needs from the dispatcher. */
export interface HolderHooks {
  /** This node's connection with that id, on that endpoint path (lower case). */
  connection(connectionId: string, path: string): HttpConnection | undefined;
  /** Whether this node held that connection until recently (it answers 404 at once rather than let it time out). */
  endedHere(connectionId: string): boolean;
  /** A forwarded request this node serves (metrics). */
  served(kind: RemoteKind): void;
}

export class RemoteRequests {
  private sequence = 0;
  private readonly waiting = new Map<string, Waiting>();
  /** Polls this node serves for other nodes, by request id: their cancel ends them. */
  private readonly remotePolls = new Map<string, () => void>();
  /** While requests wait for holders: checks that the holders are alive (a holder that died fails its requests). */
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: ClusterLink,
    private readonly hooks: HolderHooks,
    private readonly reportError: (error: unknown, where: string) => void,
  ) {}

  // --- The requester's side ------------------------------------------------------------------------------
  /** Forwards a request to the node holding the connection; resolves with its answer (404 when none answers). */
  forward(
    connectionId: string,
    path: string,
    kind: RemoteKind,
    data: Buffer | undefined,
    doneMs: number,
    abandoned?: (cancel: () => void) => void,
  ): Promise<RemoteAnswer> {
    const req = `${this.link.nodeId}:${++this.sequence}`;
    const message: Request = { op: 'req', req, from: this.link.nodeId, id: connectionId, path, kind };
    if (data) message.data = data.toString('base64');
    return new Promise<RemoteAnswer>((resolve) => {
      const finish = (answer: RemoteAnswer) => {
        const entry = this.waiting.get(req);
        if (!entry) return;
        clearTimeout(entry.timer);
        this.waiting.delete(req);
        resolve(answer);
      };
      const timer = setTimeout(() => finish({ status: 404, message: 'No Connection with that ID' }), ACK_MS);
      timer.unref();
      this.waiting.set(req, { acked: false, timer, resolve: finish, doneMs });
      abandoned?.(() => {
        if (!this.waiting.has(req)) return;
        finish({ status: 499, message: 'The client went away.' });
        this.publish({ op: 'cancel', req, id: connectionId });
      });
      this.publish(message);
    });
  }

  /**
   * Serves a transport request of a connection another node holds, through that node: a poll (GET), a send (POST)
   * or a stop (DELETE). Throws an HttpError for what the client must be told.
   */
  async serveHttp(
    method: string,
    connectionId: string,
    path: string,
    settings: { longPollTimeout: number; maxRequestBodySize: number },
    request: IncomingMessage,
    response: ServerResponse,
    count: (kind: RemoteKind) => void,
  ): Promise<void> {
    if (method === 'GET') {
      count('poll');
      await this.forwardPoll(connectionId, path, settings.longPollTimeout, request, response);
      return;
    }
    if (method !== 'POST' && method !== 'DELETE') throw new HttpError(405, `Method ${method} is not allowed.`);
    const body = method === 'POST' ? await readBody(request, settings.maxRequestBodySize) : undefined;
    if (!body) request.resume();
    const kind = body ? 'send' : 'stop';
    count(kind);
    const answer = await this.forward(connectionId, path, kind, body, SEND_MS);
    if (answer.status >= 300) throw new HttpError(answer.status, answer.message ?? '');
    respondText(response, answer.status, answer.status === 202 ? '' : undefined);
  }

  /** Forwards a long poll and writes its answer to `response`. */
  async forwardPoll(
    connectionId: string,
    path: string,
    pollTimeout: number,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const answer = await this.forward(connectionId, path, 'poll', undefined, pollTimeout + ACK_MS, (cancel) =>
      request.on('close', () => {
        if (!response.writableEnded) cancel();
      }),
    );
    if (answer.status === 499) return;
    if (answer.status === 200 || answer.status === 204) {
      respondPoll(response, answer.status, answer.body, answer.binary ?? false);
    } else {
      response.writeHead(answer.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(answer.message ?? '');
    }
  }

  // --- Both sides: what arrives ------------------------------------------------------------------------
  receive(data: unknown): boolean {
    const message = data as { op?: unknown; req?: unknown; to?: unknown } | null;
    if (!message || typeof message.req !== 'string') return false;
    if (message.op === 'res') {
      if (message.to === this.link.nodeId) this.answered(message as unknown as Response);
      return true;
    }
    if (message.op === 'req') {
      this.serve(message as unknown as Request);
      return true;
    }
    if (message.op === 'cancel') {
      this.remotePolls.get(message.req as string)?.();
      return true;
    }
    return false;
  }

  private answered(message: Response): void {
    const entry = this.waiting.get(message.req);
    if (!entry) return;
    if (message.phase === 'ack') {
      if (entry.acked) return;
      entry.acked = true;
      entry.holder = message.node;
      clearTimeout(entry.timer);
      this.watch();
      entry.timer = setTimeout(
        () => entry.resolve({ status: 503, message: 'The node holding the connection did not answer in time.' }),
        entry.doneMs,
      );
      entry.timer.unref();
      return;
    }
    entry.resolve({
      status: message.status,
      message: message.message,
      // The codec carries a missing body as null.
      body: typeof message.data === 'string' ? Buffer.from(message.data, 'base64') : undefined,
      binary: message.binary,
    });
  }

  // --- The holder's side ---------------------------------------------------------------------------------
  private serve(message: Request): void {
    if (typeof message.id !== 'string' || typeof message.path !== 'string' || typeof message.from !== 'string') return;
    if (message.from === this.link.nodeId) return; // this node would have served it itself
    if (message.kind !== 'send' && message.kind !== 'poll' && message.kind !== 'stop') return;
    const connection = this.hooks.connection(message.id, message.path);
    if (!connection || connection.state === 'closed') {
      // Not ours: the holder (if any) answers. If it was ours, the client learns at once that it is over.
      if (this.hooks.endedHere(message.id)) {
        this.publish({
          op: 'res',
          req: message.req,
          to: message.from,
          phase: 'done',
          status: 404,
          message: 'No Connection with that ID',
        });
      }
      return;
    }
    const node = this.link.nodeId;
    // The answer is the acknowledgement when it is ready in this turn; else an acknowledgement goes first (below).
    let answered = false;
    const reply = (phase: 'ack' | 'done', status: number, extra: Partial<Response> = {}) => {
      if (phase === 'done') answered = true;
      this.publish({ op: 'res', req: message.req, to: message.from, node, phase, status, ...extra });
    };
    queueMicrotask(() => {
      if (!answered) reply('ack', 202);
    });
    this.hooks.served(message.kind);
    const fail = (status: number, text: string) => reply('done', status, { message: text });
    switch (message.kind) {
      case 'send': {
        if (connection.transportKind === 'WebSockets') {
          fail(405, 'POST requests are not allowed for WebSocket connections.');
          return;
        }
        const application = connection.application;
        if (!application) {
          fail(400, 'Start a transport before sending.');
          return;
        }
        const body = Buffer.from(message.data ?? '', 'base64');
        connection.noteReceived(body.length);
        let wait: Promise<void> | undefined;
        try {
          wait = application.onData(body);
        } catch (error) {
          this.reportError(error, `a send forwarded for connection '${message.id}'`);
          fail(500, 'Internal server error.');
          return;
        }
        if (!wait) {
          reply('done', 200);
          return;
        }
        wait.then(
          () => reply('done', 200),
          () => fail(404, 'No Connection with that ID'),
        );
        return;
      }
      case 'poll': {
        if (connection.transportKind !== 'LongPolling') {
          fail(400, `Cannot change transports mid-connection (${connection.transportKind} in use).`);
          return;
        }
        const transport = connection.transport as LongPollingTransport | undefined;
        if (!transport) {
          fail(404, 'No Connection with that ID');
          return;
        }
        let abandon: (() => void) | undefined;
        this.remotePolls.set(message.req, () => abandon?.());
        transport.pollInto({
          answer: (status, body, binary) => {
            this.remotePolls.delete(message.req);
            reply('done', status, body ? { data: body.toString('base64'), binary } : { binary });
          },
          onAbandoned: (listener) => {
            abandon = () => {
              this.remotePolls.delete(message.req);
              listener();
            };
          },
        });
        return;
      }
      case 'stop': {
        if (connection.transportKind !== 'LongPolling') {
          fail(400, 'DELETE is only supported for long polling.');
          return;
        }
        (connection.transport as LongPollingTransport | undefined)?.stop();
        connection.dispose();
        reply('done', 202);
        return;
      }
    }
  }

  /**
   * Once a second while acknowledged requests wait: a holder the registry no longer counts alive (it died after
   * acknowledging) fails its requests with 404, so the client reconnects instead of waiting out a long poll.
   */
  private watch(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => void this.checkHolders(), 1000);
    this.watchdog.unref();
  }

  private async checkHolders(): Promise<void> {
    const holders = new Set<string>();
    for (const entry of this.waiting.values()) if (entry.acked && entry.holder) holders.add(entry.holder);
    if (holders.size === 0) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
      return;
    }
    let alive: ReadonlySet<string> | undefined;
    try {
      alive = await this.link.aliveNodes();
    } catch {
      return; // the registry cannot be read now: wait for the answers' own timeouts
    }
    if (!alive) return;
    for (const entry of [...this.waiting.values()]) {
      if (entry.acked && entry.holder && !alive.has(entry.holder)) {
        entry.resolve({ status: 404, message: 'No Connection with that ID (the node holding it stopped).' });
      }
    }
  }

  /** Stops the watchdog (the server closes). */
  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private publish(message: Request | Cancel | Response): void {
    this.link.publish(message).catch((error: unknown) => {
      this.reportError(error, `forwarding a request of connection '${'id' in message ? message.id : message.req}'`);
    });
  }
}
