// The client processes of the hostile-clients bench (bench/hostile.ts), one file, two roles:
//
// - `probe <port>`: one well-behaved Core WebSocket client calling `echo` (with invocation ids) every 10 ms, open
//   loop (a call goes out on time whether or not the previous one was answered), timing each round trip.
// - `hostile <port> <scenario>`: the scenario's hostile client and, for scenarios 1–6, the sender that fills group
//   `g` with 1 KB messages (non-blocking `sendToGroup` invocations) at ~6,000/s.
//
// Every client speaks the protocol by hand over raw `ws` sockets and HTTP requests, to 127.0.0.1 only. Every wait is
// bounded; the process exits when the parent's IPC channel closes.

import { Histogram } from './lib/common.js';
import {
  classicInvocation,
  classicQuery,
  countOf,
  EventStream,
  expectOk,
  type FromHostile,
  type FromProbe,
  GROUP,
  type HostileReport,
  http,
  invocation,
  negotiateClassic,
  negotiateCore,
  openCoreSocket,
  PING,
  RS,
  SCENARIOS,
  type SenderReport,
  Socket,
  sleep,
  type ToHostile,
  type ToProbe,
} from './lib/hostile.js';
import { WebSocket } from './lib/ws.js';

const role = process.argv[2];
const port = Number(process.argv[3]);

function toParent(message: FromProbe | FromHostile): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
}

function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Resolves when `check()` is true (polled every 20 ms) or after `ms`; returns whether it became true. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

const errorText = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

// --- Probe ---------------------------------------------------------------------------------------------------

const PROBE_INTERVAL_MS = 10;
/** A call not answered within this long counts as timed out (and enters the histogram at this age). */
const PROBE_TIMEOUT_MS = envNumber('BENCH_PROBE_TIMEOUT_MS', 5000);

async function probe(): Promise<void> {
  const socket = await openCoreSocket(port);
  socket.forgetText();
  let histogram = new Histogram();
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let timedOut = 0;
  let lost: string | undefined;
  /** Invocation id → when it was sent (performance.now(), ms). */
  let outstanding = new Map<string, number>();
  let nextId = 0;
  let timer: NodeJS.Timeout | undefined;

  socket.onFrame((data) => {
    const now = performance.now();
    for (const record of data.toString('utf8').split(RS)) {
      if (record === '') continue;
      const message = JSON.parse(record) as { type: number; invocationId?: string; error?: string };
      if (message.type === 7) lost ??= `the server sent Close${message.error ? `: ${message.error}` : ''}`;
      if (message.type !== 3 || message.invocationId === undefined) continue;
      const sentAt = outstanding.get(message.invocationId);
      if (sentAt === undefined) continue; // from an earlier phase, or already timed out
      outstanding.delete(message.invocationId);
      histogram.add((now - sentAt) * 1000);
      if (message.error !== undefined) failed++;
      else answered++;
    }
  });
  socket.ws.on('close', (code: number, reason: Buffer) => {
    lost ??= `the probe's socket closed (${code}${reason.length ? ` ${reason}` : ''})`;
    failed += outstanding.size;
    outstanding.clear();
    if (timer) clearInterval(timer);
  });

  const expire = () => {
    const now = performance.now();
    for (const [id, sentAt] of outstanding) {
      if (now - sentAt < PROBE_TIMEOUT_MS) continue;
      outstanding.delete(id);
      histogram.add((now - sentAt) * 1000);
      timedOut++;
    }
  };
  // The server drops clients silent for 30 s; between phases the probe only pings.
  setInterval(() => socket.send(PING), 5000).unref();
  setInterval(expire, 100).unref();

  process.on('message', (message: ToProbe) => {
    if (message.type === 'start') {
      histogram = new Histogram();
      sent = answered = failed = timedOut = 0;
      outstanding = new Map();
      const startedAt = performance.now();
      let slots = 0;
      if (timer) clearInterval(timer);
      timer = setInterval(() => {
        if (lost) return;
        const due = Math.floor((performance.now() - startedAt) / PROBE_INTERVAL_MS) + 1;
        // A late timer (a busy machine) catches up a little, never with a burst.
        if (due - slots > 5) slots = due - 5;
        for (; slots < due; slots++) {
          const id = String(++nextId);
          outstanding.set(id, performance.now());
          socket.send(invocation('echo', [nextId], id));
          sent++;
        }
      }, PROBE_INTERVAL_MS);
      return;
    }
    if (message.type === 'stop') {
      if (timer) clearInterval(timer);
      timer = undefined;
      // Every call still out is answered or times out within PROBE_TIMEOUT_MS.
      void until(() => {
        expire();
        return outstanding.size === 0;
      }, PROBE_TIMEOUT_MS + 500).then(() => {
        expire();
        toParent({
          type: 'report',
          id: message.id,
          report: { buckets: histogram.buckets, sent, answered, failed, timedOut, lost },
        });
      });
    }
  });
  toParent({ type: 'ready' });
}

// --- Hostile ---------------------------------------------------------------------------------------------------

/** How long the end of a scenario reads a paused connection to find whether the server closed it. */
const DRAIN_MS = envNumber('BENCH_DRAIN_MS', 5000);
/** The drain stops early once nothing arrived for this long (the server is not closing, only quiet). */
const QUIET_MS = 1000;
const SENDER_RATE = envNumber('BENCH_SENDER_RATE', 6000);
const MESSAGE_BYTES = envNumber('BENCH_MESSAGE_BYTES', 1024);
/** The sender stops handing frames to its socket while more than this is buffered (the server stopped reading). */
const SENDER_MAX_BUFFERED = 1024 * 1024;
const STREAM_COUNT = envNumber('BENCH_STREAM_COUNT', 200_000);
const HUGE_FRAME_CALLS = envNumber('BENCH_HUGE_FRAME_CALLS', 14_000);
/** Below the server's default maxWebSocketFrameSize (1 MiB). */
const HUGE_FRAME_MAX_BYTES = 1024 * 1024 - 1024;
const FLOOD_CALLS = envNumber('BENCH_FLOOD_CALLS', 50_000);
const FLOOD_PER_FRAME = envNumber('BENCH_FLOOD_PER_FRAME', 100);

const CLOSE_MESSAGE = Buffer.from('{"type":7');
const COMPLETION = Buffer.from('{"type":3');
const STREAM_ITEM = Buffer.from('{"type":2');
/** Classic envelopes that end a connection: an error (`E`, an abort), reconnect (`T`), disconnect (`D`). */
const CLASSIC_ENDINGS = [Buffer.from('"E":"'), Buffer.from('"T":1'), Buffer.from('"D":1')];

/** What the hostile client saw of the server ending its connection. */
class CloseWatch {
  closed: { how: string; atMs?: number } | undefined;
  /** Set before the client closes the connection itself: nothing after that is the server's doing. */
  ending = false;
  draining = false;
  goAt = 0;

  see(how: string): void {
    if (this.ending) return;
    if (this.closed) {
      // Keep the first sighting; add what followed (e.g. a Close message, then the close frame).
      if (!this.closed.how.includes(how) && this.closed.how.length < 300) this.closed.how += `; ${how}`;
      return;
    }
    this.closed = { how, atMs: this.draining || this.goAt === 0 ? undefined : Date.now() - this.goAt };
  }
}

/** Reports what a Core socket shows of the server closing it: a Close message, a close frame, an error. */
function watchCoreSocket(socket: Socket, watch: CloseWatch): void {
  socket.onFrame((data) => {
    const at = data.indexOf(CLOSE_MESSAGE);
    if (at < 0) return;
    const end = data.indexOf(RS, at);
    const text = data.subarray(at, end < 0 ? undefined : end).toString('utf8');
    try {
      const message = JSON.parse(text) as { error?: string };
      watch.see(`Close message${message.error ? ` "${message.error}"` : ''}`);
    } catch {
      watch.see('Close message');
    }
  });
  watchSocketEnd(socket, watch);
}

function watchClassicSocket(socket: Socket, watch: CloseWatch): void {
  socket.onFrame((data) => {
    for (const marker of CLASSIC_ENDINGS) {
      if (data.indexOf(marker) >= 0) watch.see(`classic envelope ${marker.toString()}…`);
    }
  });
  watchSocketEnd(socket, watch);
}

function watchSocketEnd(socket: Socket, watch: CloseWatch): void {
  socket.ws.on('error', (error: Error) => watch.see(`socket error ${errorText(error)}`));
  socket.ws.on('close', (code: number, reason: Buffer) =>
    watch.see(`WebSocket closed ${code}${reason.length ? ` "${reason.toString()}"` : ''}`),
  );
}

/**
 * At the end of a scenario: reads a paused connection again until the server's close shows up, nothing more
 * arrives for QUIET_MS (the server did not close it), or DRAIN_MS pass (still reading its backlog: unknown).
 */
async function drain(
  watch: CloseWatch,
  report: HostileReport,
  bytesRead: () => number,
  resume: () => void,
  isOpen: () => boolean,
): Promise<void> {
  if (watch.closed || !isOpen()) return;
  watch.draining = true;
  const before = bytesRead();
  resume();
  const started = Date.now();
  let last = before;
  let lastChange = started;
  let quiet = false;
  while (!watch.closed && Date.now() - started < DRAIN_MS) {
    await sleep(20);
    const now = bytesRead();
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    } else if (Date.now() - lastChange >= QUIET_MS) {
      quiet = true;
      break;
    }
  }
  report.bytesDrained = bytesRead() - before;
  if (!watch.closed && !quiet) {
    report.closed = 'unknown';
    report.notes.push(
      `still reading the server's backlog after ${DRAIN_MS} ms of draining (${mb(report.bytesDrained)} read): ` +
        'whether the server would have closed it is unknown',
    );
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

interface Hostile {
  /** Connects (and joins group `g`); resolves when the client is ready for 'go'. */
  setup(): Promise<void>;
  go(): void;
  /** Stops the client's work, finds out whether the server closed it, and closes it. */
  end(): Promise<void>;
}

interface Context {
  watch: CloseWatch;
  report: HostileReport;
  /** Scenarios 8–10 call it once their work is over. */
  done(): void;
  pingers: NodeJS.Timeout[];
}

/** Pings every 5 s so that the server's client timeout (30 s) never ends a client that only stopped reading. */
function pingEvery5s(context: Context, ping: () => void): void {
  context.pingers.push(setInterval(ping, 5000));
}

/** A Core WebSocket client that joined `g`, read the join's completion, then stopped reading (scenario 1). */
function pausedCoreSocket(context: Context, query = '', version: 1 | 2 = 1, pause = true): Hostile {
  let socket: Socket;
  return {
    async setup() {
      socket = await openCoreSocket(port, query, version);
      watchCoreSocket(socket, context.watch);
      const joined = socket.next(/"invocationId":"join"/, 10_000, 'joinGroup completion');
      socket.send(invocation('joinGroup', [GROUP], 'join'));
      await joined;
      socket.forgetText();
      if (pause) socket.ws.pause();
      pingEvery5s(context, () => socket.send(PING));
    },
    go() {},
    async end() {
      const report = context.report;
      report.bytesRead = socket.bytesRead;
      if (pause) {
        await drain(
          context.watch,
          report,
          () => socket.bytesRead,
          () => socket.ws.resume(),
          () => socket.ws.readyState === WebSocket.OPEN,
        );
      }
      context.watch.ending = true;
      await socket.close();
    },
  };
}

/** Scenario 6: stateful reconnect granted, everything read, never an Ack. */
function statefulNoAck(context: Context): Hostile {
  let inner: Hostile | undefined;
  return {
    async setup() {
      const { token, body } = await negotiateCore(port, 'negotiateVersion=1&useStatefulReconnect=true');
      if (body.useStatefulReconnect !== true) {
        context.report.notes.push('the server did NOT grant stateful reconnect (useStatefulReconnect missing)');
      } else context.report.notes.push('stateful reconnect granted; handshake version 2');
      inner = pausedCoreSocket(context, `?id=${encodeURIComponent(token)}`, 2, false);
      await inner.setup();
    },
    go() {},
    async end() {
      await inner?.end();
    },
  };
}

/** Scenario 2: classic WebSockets: negotiate, connect, start, joinGroup (its result read), then paused. */
function pausedClassicSocket(context: Context): Hostile {
  let socket: Socket;
  return {
    async setup() {
      const token = await negotiateClassic(port);
      socket = await Socket.open(`ws://127.0.0.1:${port}/signalr/connect?${classicQuery('webSockets', token)}`);
      watchClassicSocket(socket, context.watch);
      const init = socket.next(/"S":1/, 10_000, 'classic init message');
      await init;
      expectOk(await http(port, 'GET', `/signalr/start?${classicQuery('webSockets', token)}`), 'classic start');
      const joined = socket.next(/"I":"0"/, 10_000, 'classic joinGroup result');
      socket.send(classicInvocation('joinGroup', [GROUP], 0));
      await joined;
      socket.forgetText();
      socket.ws.pause();
    },
    go() {},
    async end() {
      context.report.bytesRead = socket.bytesRead;
      await drain(
        context.watch,
        context.report,
        () => socket.bytesRead,
        () => socket.ws.resume(),
        () => socket.ws.readyState === WebSocket.OPEN,
      );
      context.watch.ending = true;
      await socket.close();
    },
  };
}

function watchStream(stream: EventStream, watch: CloseWatch, markers: Buffer[]): void {
  stream.onEnd((how) => watch.see(how));
  stream.onChunk((chunk) => {
    for (const marker of markers) if (chunk.indexOf(marker) >= 0) watch.see(`${marker.toString()}… on the stream`);
  });
}

/** Scenario 3: classic Server-Sent Events: connect, start, joinGroup over /send, then the stream is not read. */
function pausedClassicSse(context: Context): Hostile {
  let stream: EventStream;
  return {
    async setup() {
      const token = await negotiateClassic(port);
      const query = classicQuery('serverSentEvents', token);
      stream = await EventStream.open(port, `/signalr/connect?${query}`);
      watchStream(stream, context.watch, CLASSIC_ENDINGS);
      await stream.waitFor(/"S":1/, 10_000, 'classic init message');
      expectOk(await http(port, 'GET', `/signalr/start?${query}`), 'classic start');
      const result = expectOk(
        await http(port, 'POST', `/signalr/send?${query}`, {
          body: `data=${encodeURIComponent(classicInvocation('joinGroup', [GROUP], 0))}`,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        }),
        'classic /send joinGroup',
      );
      if (!result.includes('"I":"0"')) throw new Error(`classic joinGroup: unexpected result ${result}`);
      stream.forgetText();
      stream.pause();
    },
    go() {},
    async end() {
      context.report.bytesRead = stream.bytesRead;
      await drain(
        context.watch,
        context.report,
        () => stream.bytesRead,
        () => stream.resume(),
        () => !stream.response.complete && !stream.response.destroyed,
      );
      context.watch.ending = true;
      stream.close();
    },
  };
}

/** Pings a Core HTTP connection by POST; a 404 means the server disposed of it. */
async function postPing(context: Context, path: string, timeoutMs = 4000): Promise<void> {
  try {
    const answer = await http(port, 'POST', path, { body: PING, timeoutMs });
    if (answer.status === 404) context.watch.see(`HTTP 404 to a ping POST (${answer.body.trim()})`);
    else if (answer.status !== 200) context.report.notes.push(`a ping POST got HTTP ${answer.status}`);
  } catch (error) {
    context.report.notes.push(`a ping POST failed: ${errorText(error)}`);
  }
}

/** Scenario 4: Core Server-Sent Events: handshake and joinGroup by POST, their answers read, then not read. */
function pausedCoreSse(context: Context): Hostile {
  let stream: EventStream;
  let path = '';
  return {
    async setup() {
      const { token } = await negotiateCore(port);
      path = `/chat?id=${encodeURIComponent(token)}`;
      stream = await EventStream.open(port, path);
      watchStream(stream, context.watch, [CLOSE_MESSAGE]);
      expectOk(await http(port, 'POST', path, { body: `{"protocol":"json","version":1}${RS}` }), 'SSE handshake');
      await stream.waitFor(/data: \{\}/, 10_000, 'handshake response');
      expectOk(await http(port, 'POST', path, { body: invocation('joinGroup', [GROUP], 'join') }), 'SSE joinGroup');
      await stream.waitFor(/"invocationId":"join"/, 10_000, 'joinGroup completion');
      stream.forgetText();
      stream.pause();
      pingEvery5s(context, () => void postPing(context, path));
    },
    go() {},
    async end() {
      context.report.bytesRead = stream.bytesRead;
      await drain(
        context.watch,
        context.report,
        () => stream.bytesRead,
        () => stream.resume(),
        () => !stream.response.complete && !stream.response.destroyed,
      );
      context.watch.ending = true;
      stream.close();
    },
  };
}

/** Scenario 5: Core long polling: the first poll, the handshake and joinGroup by POST, then pings, never a poll. */
function longPollingNeverPolls(context: Context): Hostile {
  let path = '';
  return {
    async setup() {
      const { token } = await negotiateCore(port);
      path = `/chat?id=${encodeURIComponent(token)}`;
      // The first poll starts the transport and answers at once.
      expectOk(await http(port, 'GET', path), 'first poll');
      expectOk(await http(port, 'POST', path, { body: `{"protocol":"json","version":1}${RS}` }), 'LP handshake');
      // Its completion is never read (no more polls); the parent waits until the server counts the join.
      expectOk(await http(port, 'POST', path, { body: invocation('joinGroup', [GROUP], 'join') }), 'LP joinGroup');
      pingEvery5s(context, () => void postPing(context, path));
    },
    go() {},
    async end() {
      // A last ping says whether the connection still exists; then DELETE ends it.
      await postPing(context, path, 3000);
      context.watch.ending = true;
      try {
        const answer = await http(port, 'DELETE', path, { timeoutMs: 3000 });
        if (answer.status === 404) context.report.notes.push('DELETE at the end: 404 (the connection was gone)');
      } catch (error) {
        context.report.notes.push(`DELETE at the end failed: ${errorText(error)}`);
      }
    },
  };
}

/** Scenarios 7 and 8: `countTo(STREAM_COUNT)` as a StreamInvocation; paused at once, or read to its end. */
function streamReader(context: Context, paused: boolean): Hostile {
  let socket: Socket;
  let items = 0;
  let goAt = 0;
  let finished = false;
  return {
    async setup() {
      socket = await openCoreSocket(port);
      socket.forgetText();
      watchCoreSocket(socket, context.watch);
      if (!paused) {
        socket.onFrame((data) => {
          items += countOf(data, STREAM_ITEM);
          if (!finished && data.indexOf(COMPLETION) >= 0) {
            finished = true;
            context.report.workMs = Date.now() - goAt;
            const text = data.subarray(data.indexOf(COMPLETION)).toString('utf8');
            if (text.includes('"error"')) context.report.notes.push(`the stream ended with ${text.split(RS)[0]}`);
            context.done();
          }
        });
      }
      pingEvery5s(context, () => socket.send(PING));
    },
    go() {
      goAt = Date.now();
      socket.send(`{"type":4,"invocationId":"s","target":"countTo","arguments":[${STREAM_COUNT}]}${RS}`);
      if (paused) socket.ws.pause();
    },
    async end() {
      const report = context.report;
      report.bytesRead = socket.bytesRead;
      if (!paused) {
        report.items = items;
        report.expected = STREAM_COUNT;
      } else {
        await drain(
          context.watch,
          report,
          () => socket.bytesRead,
          () => socket.ws.resume(),
          () => socket.ws.readyState === WebSocket.OPEN,
        );
      }
      context.watch.ending = true;
      await socket.close();
    },
  };
}

/** Scenarios 9 and 10: many `echo` calls with ids, in one huge frame or as a flood of frames; answers read. */
function echoBurst(context: Context, frames: () => { frames: string[]; calls: number }): Hostile {
  let socket: Socket;
  let payload: string[] = [];
  let expected = 0;
  let answers = 0;
  let goAt = 0;
  return {
    async setup() {
      socket = await openCoreSocket(port);
      socket.forgetText();
      watchCoreSocket(socket, context.watch);
      ({ frames: payload, calls: expected } = frames());
      socket.onFrame((data) => {
        const before = answers;
        answers += countOf(data, COMPLETION);
        if (before < expected && answers >= expected) {
          context.report.workMs = Date.now() - goAt;
          context.done();
        }
      });
      pingEvery5s(context, () => socket.send(PING));
      context.report.notes.push(
        `${expected.toLocaleString('en-US')} echo calls in ${payload.length.toLocaleString('en-US')} frame(s) of ` +
          `${mb(Buffer.byteLength(payload[0] ?? ''))} (first)`,
      );
    },
    go() {
      goAt = Date.now();
      // As fast as it can: every frame handed to the socket at once.
      for (const frame of payload) socket.send(frame);
      payload = [];
    },
    async end() {
      context.report.bytesRead = socket.bytesRead;
      context.report.answers = answers;
      context.report.expected = expected;
      context.watch.ending = true;
      await socket.close();
    },
  };
}

function hugeFrame(): { frames: string[]; calls: number } {
  let frame = '';
  let calls = 0;
  for (let i = 1; i <= HUGE_FRAME_CALLS; i++) {
    const next = invocation('echo', [i], String(i));
    if (frame.length + next.length > HUGE_FRAME_MAX_BYTES) break;
    frame += next;
    calls++;
  }
  return { frames: [frame], calls };
}

function floodFrames(): { frames: string[]; calls: number } {
  const frames: string[] = [];
  for (let i = 1; i <= FLOOD_CALLS; i += FLOOD_PER_FRAME) {
    let frame = '';
    for (let j = i; j < Math.min(i + FLOOD_PER_FRAME, FLOOD_CALLS + 1); j++)
      frame += invocation('echo', [j], String(j));
    frames.push(frame);
  }
  return { frames, calls: FLOOD_CALLS };
}

/** Scenarios 1–6: a Core WebSocket client sending 1 KB chat messages to group `g` at SENDER_RATE. */
class Sender {
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly frame = invocation('sendToGroup', [GROUP, 'sender', 'x'.repeat(MESSAGE_BYTES)]);
  private readonly frameBytes = Buffer.byteLength(this.frame);
  private messages = 0;
  private heldBack = 0;
  private startedAt = 0;
  private stoppedAt = 0;
  private lost: string | undefined;

  async setup(): Promise<void> {
    this.socket = await openCoreSocket(port);
    this.socket.forgetText();
    this.socket.ws.on('close', (code: number) => {
      this.lost ??= `the sender's socket closed (${code})`;
    });
  }

  go(): void {
    const socket = this.socket as Socket;
    this.startedAt = performance.now();
    let slots = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.startedAt) * SENDER_RATE) / 1000);
      // Never more than 50 ms of messages at once after a late timer.
      if (due - slots > SENDER_RATE / 20) {
        this.heldBack += due - slots - SENDER_RATE / 20;
        slots = due - SENDER_RATE / 20;
      }
      if (socket.ws.readyState !== WebSocket.OPEN) return;
      if (socket.ws.bufferedAmount > SENDER_MAX_BUFFERED) {
        this.heldBack += due - slots;
        slots = due;
        return;
      }
      for (; slots < due; slots++) {
        socket.ws.send(this.frame);
        this.messages++;
      }
    }, 1);
  }

  stop(): SenderReport {
    if (this.timer) clearInterval(this.timer);
    this.stoppedAt = performance.now();
    const buffered = this.socket?.ws.bufferedAmount ?? 0;
    const report: SenderReport = {
      messages: this.messages,
      bytesSent: Math.max(0, this.messages * this.frameBytes - buffered),
      bytesBuffered: buffered,
      heldBack: this.heldBack,
      seconds: this.startedAt ? (this.stoppedAt - this.startedAt) / 1000 : 0,
      lost: this.lost,
    };
    this.socket?.ws.terminate();
    return report;
  }
}

async function hostile(name: string): Promise<void> {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario) throw new Error(`unknown scenario '${name}'`);
  const watch = new CloseWatch();
  const report: HostileReport = { closed: 'no', bytesRead: 0, bytesDrained: 0, notes: [] };
  let doneSent = false;
  const context: Context = {
    watch,
    report,
    pingers: [],
    done: () => {
      if (doneSent) return;
      doneSent = true;
      toParent({ type: 'done', ms: Date.now() - watch.goAt });
    },
  };
  const implementations: Record<string, () => Hostile> = {
    'core-ws-paused': () => pausedCoreSocket(context),
    'classic-ws-paused': () => pausedClassicSocket(context),
    'classic-sse-paused': () => pausedClassicSse(context),
    'core-sse-paused': () => pausedCoreSse(context),
    'core-lp-no-poll': () => longPollingNeverPolls(context),
    'stateful-no-ack': () => statefulNoAck(context),
    'stream-paused': () => streamReader(context, true),
    'stream-fast': () => streamReader(context, false),
    'huge-frame': () => echoBurst(context, hugeFrame),
    flood: () => echoBurst(context, floodFrames),
  };
  const client = (implementations[name] as () => Hostile)();
  const sender = scenario.sender ? new Sender() : undefined;

  process.on('message', (message: ToHostile) => {
    if (message.type === 'setup') {
      (async () => {
        await client.setup();
        await sender?.setup();
        toParent({ type: 'set-up', id: message.id, notes: [...report.notes] });
      })().catch((error: unknown) => toParent({ type: 'fatal', message: `set-up: ${(error as Error).message}` }));
    } else if (message.type === 'go') {
      watch.goAt = Date.now();
      client.go();
      sender?.go();
    } else if (message.type === 'end') {
      (async () => {
        if (sender) report.sender = sender.stop();
        for (const pinger of context.pingers) clearInterval(pinger);
        await client.end();
        if (watch.closed) {
          report.closed = 'yes';
          report.closedHow = watch.closed.how;
          report.closedAtMs = watch.closed.atMs;
        }
        toParent({ type: 'report', id: message.id, report });
      })().catch((error: unknown) => toParent({ type: 'fatal', message: `end: ${(error as Error).message}` }));
    }
  });
  toParent({ type: 'ready' });
}

if (!process.send) {
  console.error('This file is a child process of bench/hostile.ts; run `npm run bench:hostile`.');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
(role === 'probe'
  ? probe()
  : role === 'hostile'
    ? hostile(process.argv[4] ?? '')
    : Promise.reject(new Error(role))
).catch((error: unknown) => {
  toParent({ type: 'fatal', message: `${role}: ${(error as Error).message}` });
  process.exit(1);
});
