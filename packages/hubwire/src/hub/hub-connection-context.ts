// One hub connection: handshake, reading and writing messages, keep-alive, stateful reconnect, lifetime. What its
// invocations and streams do is the dispatcher's (hub-dispatcher.ts).
// The transport below it only moves bytes; the hub above it only sees HubCallerContext and clients/groups.

import type { ConnectionRecord, RecordedMessage } from '../bus/connection-record.js';
import type { BusConnection } from '../bus/message-bus.js';
import type { HttpConnection } from '../connection/connection.js';
import type { RequestInfo } from '../connection/request-info.js';
import { HubwireError } from '../errors.js';
import { chooseProtocol, HANDSHAKE_OK, handshakeError, parseHandshake } from '../protocol/handshake.js';
import { type HubProtocol, type MessageDecoder, pingBytes } from '../protocol/hub-protocol.js';
import { type HubMessage, isTrackable, MessageType } from '../protocol/messages.js';
import type { SerializedMessage } from '../protocol/serialized-message.js';
import type { ConnectionApplication, TransportKind } from '../transports/transport.js';
import { TurnBudget } from '../util/turn-budget.js';
import { HubCallerClientsImpl } from './clients.js';
import { runOnConnected, runOnDisconnected } from './filters.js';
import type { HubCallerContext, HubInstanceState } from './hub.js';
import { HubDispatcher } from './hub-dispatcher.js';
import { clientErrorText } from './hub-invoker.js';
import type { HubServices } from './hub-services.js';
import { MessageInbox } from './message-inbox.js';
import { replayArrival } from './moves/arrival.js';
import type { Checkpoint } from './moves/checkpoint.js';
import type { PortableState } from './moves/portable-state.js';
import { ReconnectBuffer } from './reconnect-buffer.js';

type State = 'handshake' | 'connecting' | 'connected' | 'closed';

/** Messages one connection may have handled (dispatched, invocations started) per event-loop turn. */
const MESSAGES_PER_TURN = 64;
export class HubConnectionContext implements ConnectionApplication, BusConnection, HubCallerContext {
  readonly connectionId: string;
  readonly userId: string | undefined;
  private itemsMap: Map<unknown, unknown> | undefined;
  private state: State = 'handshake';
  /** onConnected (or creating the hub for it) threw. */
  private connectFailed = false;
  private protocol: HubProtocol | undefined;
  private decoder: MessageDecoder | undefined;
  private handshakeBytes: Buffer | undefined;
  private readonly createdAt = Date.now();
  private lastReceived = Date.now();
  private lastWritten = Date.now();
  /** Set on every write and folded into lastWritten by the timer: no clock read per delivery. */
  private wrote = false;
  private reconnect: ReconnectBuffer | undefined;
  /** Set when the connection keeps its state in the backplane: it may move to another node (hub/moves/). */
  private portable: PortableState | undefined;
  /** It moved to another node: nothing more is written or dispatched here, and no onDisconnected runs. */
  private moved = false;
  /** It moved here: the checkpoint it is rebuilt from when its transport is attached. */
  private arriving: { checkpoint: Checkpoint; moves: number } | undefined;
  /** Created on first use: most connections never need one. */
  private abortController: AbortController | undefined;
  private callerClients: HubCallerClientsImpl | undefined;

  /** Client messages between decoding and dispatch. */
  private readonly inbox: MessageInbox;

  private readonly budget = new TurnBudget(MESSAGES_PER_TURN);
  /** What the connection's invocations, streams and results do. */
  private readonly dispatcher: HubDispatcher;

  constructor(
    private readonly endpoint: HubServices,
    private readonly connection: HttpConnection,
  ) {
    this.connectionId = connection.connectionId;
    this.userId = endpoint.userIdOf(connection.user);
    this.dispatcher = new HubDispatcher(endpoint, this, this.budget);
    this.inbox = new MessageInbox(
      this.budget,
      (message) => this.dispatch(message),
      () => this.state === 'closed',
    );
  }

  // --- HubCallerContext ---------------------------------------------------------------------------------
  get userIdentifier(): string | undefined {
    return this.userId;
  }
  get user(): unknown {
    return this.connection.user;
  }
  get transport(): TransportKind {
    return this.connection.transportKind as TransportKind;
  }
  get request(): RequestInfo | undefined {
    return this.connection.connectRequest;
  }
  get negotiateRequest(): RequestInfo | undefined {
    return this.connection.negotiateRequest;
  }
  /** The connection ended (or is ending). */
  get closed(): boolean {
    return this.state === 'closed';
  }
  get items(): Map<unknown, unknown> {
    if (!this.itemsMap) this.itemsMap = new Map();
    return this.itemsMap;
  }
  get connectionAborted(): AbortSignal {
    if (!this.abortController) {
      this.abortController = new AbortController();
      if (this.state === 'closed') this.abortController.abort();
    }
    return this.abortController.signal;
  }
  abort(): void {
    this.close(undefined, false);
  }
  /** Its results are records, stored before the client sees them, after what the call sent (DispatcherHost). */
  get resultsFollowSends(): boolean {
    return this.portable !== undefined;
  }
  /** Its group changes go through the backplane, so the node it may move to reads them (BusConnection). */
  get movable(): boolean {
    return this.portable !== undefined;
  }

  // --- Writing ------------------------------------------------------------------------------------------
  writeSerialized(message: SerializedMessage): void {
    if (this.state !== 'connected' && this.state !== 'connecting') return;
    this.writeBytes(message.bytesFor(this.protocol as HubProtocol), true);
  }

  whenWritable(): Promise<void> | undefined {
    if (this.state === 'closed') return undefined;
    return this.portable?.whenWritable() ?? this.connection.whenWritable();
  }

  writeMessage(message: HubMessage): void {
    if (this.portable && isRecorded(message)) {
      // Numbered where it is read back, on whichever node holds the connection then.
      if (this.state !== 'closed') this.portable.send(message);
      return;
    }
    this.writeOut(message);
  }

  /** A record for this connection read back from the backplane (BusConnection). */
  onRecord(record: ConnectionRecord): void {
    if (this.state === 'closed' || !this.portable) return;
    const message = this.portable.read(record);
    if (message) this.writeOut(message);
  }

  onGroupChange(group: string, added: boolean): void {
    this.portable?.groupChanged(group, added);
  }

  private writeOut(message: HubMessage): void {
    if (this.state === 'closed' || !this.protocol) return;
    let bytes: Buffer;
    try {
      bytes = this.protocol.encode(message);
    } catch (error) {
      // A value the protocol cannot encode: report it to the caller of an invocation, never crash.
      if (message.type === MessageType.Completion || message.type === MessageType.StreamItem) {
        bytes = this.protocol.encode({
          type: MessageType.Completion,
          invocationId: message.invocationId,
          error: `The server could not serialize the result: ${(error as Error).message}`,
        });
      } else return;
    }
    this.writeBytes(bytes, isTrackable(message));
  }

  private writeBytes(bytes: Buffer, trackable: boolean): void {
    const reconnect = this.reconnect;
    if (trackable && reconnect && !reconnect.add(bytes)) {
      // Waits for acks (or for the client to come back); past the connection's limit it is a slow client.
      const held = reconnect.heldBytes;
      const limit = this.endpoint.options.statefulReconnectBufferSize + this.connection.limits.maxBytes;
      if (held > limit) this.connection.closeSlow(held, limit, 'did not acknowledge what was sent to it');
      return;
    }
    this.wrote = true;
    this.connection.send(bytes);
    if (trackable && this.endpoint.meter) this.endpoint.meter.messagesSent++;
  }

  // --- Reading ------------------------------------------------------------------------------------------
  onData(data: Buffer): undefined | Promise<void> {
    if (this.state === 'closed') return undefined;
    this.lastReceived = Date.now();
    if (this.state === 'handshake') return this.onHandshakeData(data);
    let messages: HubMessage[];
    try {
      messages = (this.decoder as MessageDecoder).push(data);
    } catch (error) {
      this.close(`Connection closed with an error. ${(error as Error).message}`, false, error);
      return undefined;
    }
    return this.inbox.push(messages);
  }

  private onHandshakeData(data: Buffer): undefined | Promise<void> {
    const buffered = this.handshakeBytes ? Buffer.concat([this.handshakeBytes, data]) : data;
    const limit = this.endpoint.options.maximumReceiveMessageSize || 64 * 1024;
    let parsed: ReturnType<typeof parseHandshake>;
    try {
      parsed = parseHandshake(buffered, limit);
    } catch (error) {
      return this.failHandshake((error as Error).message);
    }
    if (!parsed) {
      this.handshakeBytes = Buffer.from(buffered);
      return undefined;
    }
    this.handshakeBytes = undefined;
    const { version } = parsed.request;
    const transport = this.connection.transportKind;
    const chosen = chooseProtocol(parsed.request, this.endpoint.protocols, transport);
    if (typeof chosen === 'string') return this.failHandshake(chosen);
    const protocol = chosen;
    this.useProtocol(protocol);
    // Stateful reconnect needs the client's opt-in at negotiate, handshake version 2, and a WebSocket.
    const stateful = this.connection.statefulReconnect && version >= 2 && transport === 'WebSockets';
    this.connection.statefulReconnect = stateful;
    if (stateful) {
      this.reconnect = this.newReconnectBuffer();
      if (this.connection.anyNode) this.portable = this.createPortable(protocol.name);
    }
    this.connection.send(HANDSHAKE_OK);
    // From now on whole hub messages only: several may share a frame.
    this.connection.coalesce = true;
    this.wrote = true;
    this.state = 'connecting';

    let messages: HubMessage[] = [];
    if (parsed.rest.length > 0) {
      try {
        messages = (this.decoder as MessageDecoder).push(parsed.rest);
      } catch (error) {
        this.close(`Connection closed with an error. ${(error as Error).message}`, false, error);
        return undefined;
      }
    }
    return this.inbox.waitFor(this.runOnConnected(), messages);
  }

  /** The hub protocol the client chose (at its handshake, or on the node it moved from). */
  private useProtocol(protocol: HubProtocol): void {
    this.protocol = protocol;
    this.decoder = protocol.createDecoder(this.endpoint.options.maximumReceiveMessageSize);
    this.connection.binary = protocol.transferFormat === 'Binary';
  }

  private newReconnectBuffer(): ReconnectBuffer {
    return new ReconnectBuffer(this.endpoint.options.statefulReconnectBufferSize);
  }

  private failHandshake(message: string): undefined {
    this.connection.send(handshakeError(message));
    this.state = 'closed';
    this.connection.close();
    return undefined;
  }

  private async runOnConnected(): Promise<void> {
    try {
      // Registered synchronously: the connection's first checkpoint is the position it starts at.
      const registered = this.endpoint.bus.onConnected(this);
      if (this.portable) {
        this.endpoint.moves?.hold(this.connectionId, this);
        this.portable.publishNow(0);
      }
      await registered;
      if (this.endpoint.runsOnConnected) await runOnConnected(this.endpoint.options.filters, this, this.createHub());
      if (this.state === 'connecting') this.state = 'connected';
    } catch (error) {
      // As ASP.NET Core: logged, the client told, and no onDisconnected for a connection that never connected.
      this.connectFailed = true;
      this.endpoint.reportError(error, `onConnected of '${this.connectionId}'`);
      this.close(this.errorText('Connection closed with an error.', error), false);
    }
  }

  /** Handles one message; returns a promise when reading must wait for it. */
  private dispatch(message: HubMessage): Promise<void> | undefined {
    if (this.state === 'closed') return undefined;
    const reconnect = this.reconnect;
    if (reconnect) {
      if (message.type === MessageType.Sequence) {
        if (!reconnect.onSequence(message.sequenceId))
          this.close("Sequence ID greater than amount of messages we've received.", false);
        return undefined;
      }
      if (reconnect.waitingForSequence) return undefined;
      if (isTrackable(message)) {
        if (!reconnect.shouldProcess()) return undefined;
        this.portable?.take(reconnect.received, message);
      }
    }
    switch (message.type) {
      case MessageType.Invocation:
      case MessageType.StreamInvocation:
      case MessageType.StreamItem:
      case MessageType.Completion:
      case MessageType.CancelInvocation:
        return this.dispatcher.dispatch(message);
      case MessageType.Ping:
        return undefined;
      case MessageType.Close:
        // The client is stopping: end without a Close message of our own.
        this.state = 'closed';
        this.connection.close();
        return undefined;
      case MessageType.Ack:
        if (reconnect) for (const bytes of reconnect.ack(message.sequenceId)) this.connection.send(bytes);
        return undefined;
      case MessageType.Sequence:
        return undefined;
    }
  }

  /** A hub instance for one call; `signal` defaults to the connection's (created only if the hub reads it). */
  createHub(signal?: AbortSignal): object {
    if (!this.callerClients) this.callerClients = new HubCallerClientsImpl(this.endpoint.bus, this.connectionId);
    const connection = this;
    const state: HubInstanceState<unknown> = {
      context: this,
      clients: this.callerClients,
      groups: this.endpoint.groups,
      get signal() {
        return signal ?? connection.connectionAborted;
      },
    };
    return this.endpoint.createHubInstance(state);
  }

  /** HubError messages always reach the client; other errors only with detailed errors on. */
  errorText(generic: string, error: unknown): string {
    return clientErrorText(generic, error, this.endpoint.options.enableDetailedErrors);
  }

  // --- Lifetime -----------------------------------------------------------------------------------------
  /** Ends the connection, telling the client why (a Close message) when the handshake is done. */
  close(error: string | undefined, allowReconnect: boolean, cause?: unknown): void {
    if (this.state === 'closed') return;
    if (this.state !== 'handshake') this.writeMessage({ type: MessageType.Close, error, allowReconnect });
    this.state = 'closed';
    // onDisconnected hears the reason with its code when Hubwire raised it (a malformed or oversized message).
    if (error === undefined) this.closeError = undefined;
    else if (cause instanceof HubwireError) this.closeError = new HubwireError(cause.code, error, { cause });
    else this.closeError = new Error(error);
    this.connection.close();
  }
  private closeError: Error | undefined;

  onTick(now: number): void {
    const options = this.endpoint.options;
    if (this.state === 'handshake') {
      if (now - this.createdAt > options.handshakeTimeout) {
        this.connection.closeStatus ??= 'timeout';
        this.failHandshake('Handshake was canceled: no handshake request received in time.');
      }
      return;
    }
    if (this.state === 'closed' || !this.connection.transport) return;
    if (this.connection.transportKind === 'LongPolling') return; // long polling has no pings or client timeout
    if (now - this.lastReceived > options.clientTimeoutInterval) {
      this.connection.closeStatus ??= 'timeout';
      this.close('Server timeout elapsed without receiving a message from the client.', true);
      return;
    }
    if (this.wrote) {
      this.lastWritten = now;
      this.wrote = false;
    }
    const reconnect = this.reconnect;
    if (reconnect) {
      // With the state in the backplane, only what was marked there is acknowledged (the client keeps the rest).
      const ack = reconnect.takeAck(this.portable?.received);
      if (ack !== undefined) this.writeMessage({ type: MessageType.Ack, sequenceId: ack });
      if (this.state === 'connected') this.portable?.tick(now, reconnect.lastSent, reconnect.acked);
    }
    if (now - this.lastWritten >= options.keepAliveInterval) {
      this.writeBytes(pingBytes(this.protocol as HubProtocol), false);
      this.lastWritten = now;
      this.wrote = false;
    }
  }

  onShutdown(): void {
    // As ASP.NET Core does: clients with automatic reconnect may come back (to another node).
    this.close(undefined, true);
  }

  onTransportLost(): void {
    // Nothing is written until the client comes back; the buffer keeps numbered messages.
  }

  onTransportResumed(): void {
    const reconnect = this.reconnect;
    if (!reconnect || this.state === 'closed') return;
    this.lastReceived = Date.now();
    if (this.arriving) {
      this.finishArriving();
      return;
    }
    reconnect.waitingForSequence = true;
    const { sequenceId, messages } = reconnect.replay();
    this.writeMessage({ type: MessageType.Sequence, sequenceId });
    for (const bytes of messages) this.connection.send(bytes);
    this.wrote = true;
  }

  // --- Moving between nodes (hub/moves/) ---------------------------------------------------------------
  private createPortable(protocol: string): PortableState | undefined {
    return this.endpoint.moves?.createState(this.connectionId, this.endpoint.bus, protocol, (error) => {
      this.endpoint.reportError(error, `recording a message for connection '${this.connectionId}'`);
      this.close('The server could not store a message for this connection.', true);
    });
  }

  /** The connection held by another node continues here: rebuilt from `checkpoint` once its transport attaches. */
  arrive(checkpoint: Checkpoint, moves: number, protocol: HubProtocol): boolean {
    const portable = this.createPortable(protocol.name);
    if (!portable || this.state !== 'handshake') return false;
    this.useProtocol(protocol);
    this.connection.coalesce = true;
    this.reconnect = this.newReconnectBuffer();
    this.reconnect.continueFrom(checkpoint.seq, checkpoint.received);
    portable.startFrom(checkpoint);
    this.portable = portable;
    this.arriving = { checkpoint, moves };
    this.state = 'connecting';
    return true;
  }

  private finishArriving(): void {
    const { checkpoint, moves } = this.arriving as { checkpoint: Checkpoint; moves: number };
    this.arriving = undefined;
    // The client drops the ids it already has: everything after the checkpoint is written again, in order.
    this.writeOut({ type: MessageType.Sequence, sequenceId: checkpoint.seq + 1 });
    this.wrote = true;
    // Client messages wait (in the inbox) until the connection is rebuilt.
    void this.inbox.waitFor(this.rebuild(checkpoint, moves));
  }

  private async rebuild(checkpoint: Checkpoint, moves: number): Promise<void> {
    const portable = this.portable as PortableState;
    const failure = await replayArrival({
      history: (this.endpoint.moves as NonNullable<HubServices['moves']>).history,
      bus: this.endpoint.bus,
      connection: this,
      userId: this.userId,
      checkpoint,
      onRecord: (record) => this.onRecord(record),
      cancelled: () => this.state === 'closed',
    });
    if (this.state === 'closed') return;
    if (failure) {
      this.endpoint.reportError(new Error(failure), `moving connection '${this.connectionId}' to this node`);
      this.close(failure, true);
      return;
    }
    (this.reconnect as ReconnectBuffer).taken(portable.received);
    this.endpoint.moves?.hold(this.connectionId, this, moves);
    portable.adopt(checkpoint);
    this.state = 'connected';
    // What the node it came from was running and never completed.
    for (const invocationId of [...portable.open]) {
      this.writeMessage({ type: MessageType.Completion, invocationId, error: STOPPED_ERROR });
    }
  }

  /** Another node takes the connection over: fail what runs here, leave the bus, and let go without an end. */
  moveAway(): void {
    const portable = this.portable;
    if (!portable || this.state === 'closed') return;
    for (const invocationId of portable.runningHere()) {
      portable.send({ type: MessageType.Completion, invocationId, error: MOVED_ERROR });
    }
    this.moved = true;
    this.state = 'closed';
    this.abortController?.abort();
    this.dispatcher.close();
    this.endpoint.bus.onDisconnected(this).catch((failure: unknown) => {
      this.endpoint.reportError(failure, `moving '${this.connectionId}' to another node`);
    });
    this.connection.close();
  }

  onClose(error?: Error): void {
    if (this.moved) return;
    if (this.portable) this.endpoint.moves?.letGo(this.connectionId, true);
    const wasConnected =
      this.state === 'connected' ||
      this.state === 'connecting' ||
      (this.state === 'closed' && this.protocol !== undefined);
    this.state = 'closed';
    this.abortController?.abort();
    this.dispatcher.close();
    if (!wasConnected) return;
    if (!this.endpoint.runsOnDisconnected || this.connectFailed) {
      this.endpoint.bus.onDisconnected(this).catch((failure: unknown) => {
        this.endpoint.reportError(failure, `disconnecting '${this.connectionId}'`);
      });
      return;
    }
    const reason = error ?? this.closeError;
    void this.runOnDisconnected(reason);
  }

  private async runOnDisconnected(error: Error | undefined): Promise<void> {
    try {
      await this.endpoint.bus.onDisconnected(this);
      await runOnDisconnected(this.endpoint.options.filters, this, this.createHub(), error);
    } catch (failure) {
      this.endpoint.reportError(failure, `onDisconnected of '${this.connectionId}'`);
    }
  }
}

const MOVED_ERROR = 'The connection moved to another server; this invocation was cancelled there.';
const STOPPED_ERROR =
  'The server running this invocation stopped before it completed (the connection moved to another server); it may not have run to the end.';

/** Messages a connection with its state in the backplane gets through it (connection-record.ts). */
function isRecorded(message: HubMessage): message is RecordedMessage {
  return (
    message.type === MessageType.Invocation ||
    message.type === MessageType.StreamItem ||
    message.type === MessageType.Completion
  );
}
