// Stateful reconnect bookkeeping for one connection (HubProtocol.md, "Stateful reconnect"): outgoing trackable
// messages are numbered from 1 and kept until the client acks them; incoming ones are counted so that replays
// after a reconnect are recognised and dropped.

export class ReconnectBuffer {
  /** Outgoing entries not yet acked, oldest first; the first `sentCount` have been written. */
  private entries: { sequenceId: number; bytes: Buffer }[] = [];
  private sentCount = 0;
  private sentBytes = 0;
  /** Bytes of every entry kept: written and not acked, and not written yet. */
  private heldTotal = 0;
  private lastSequenceId = 0;

  /** Highest incoming sequence id processed. */
  private receivedSequenceId = 0;
  /** Id the next incoming trackable message carries. */
  private nextIncomingId = 1;
  private lastAckSent = 0;
  /** After a reconnect, client messages are ignored until the client's Sequence message. */
  waitingForSequence = false;

  /** The highest outgoing sequence id the client acknowledged. */
  private ackedId = 0;

  constructor(private readonly limit: number) {}

  /**
   * A connection that moved here from another node (hub/moves/): the next outgoing message carries `seq + 1`, client
   * messages up to `received` were taken there, and the client's Sequence message comes first.
   */
  continueFrom(seq: number, received: number): void {
    this.lastSequenceId = seq;
    this.ackedId = seq;
    this.taken(received);
    this.lastAckSent = received;
    this.waitingForSequence = true;
  }

  /** Client messages up to `received` were taken (on another node): their copies are dropped. */
  taken(received: number): void {
    if (received <= this.receivedSequenceId) return;
    this.receivedSequenceId = received;
    this.nextIncomingId = received + 1;
  }

  /** The sequence id the last outgoing message got. */
  get lastSent(): number {
    return this.lastSequenceId;
  }

  /** The highest outgoing sequence id the client acknowledged. */
  get acked(): number {
    return this.ackedId;
  }

  /** The sequence id of the client message processed last. */
  get received(): number {
    return this.receivedSequenceId;
  }

  /** Bytes kept for the client: written and not acknowledged, and waiting to be written. */
  get heldBytes(): number {
    return this.heldTotal;
  }

  /** Numbers an outgoing message; returns true when it may be written now (within the buffer limit). */
  add(bytes: Buffer): boolean {
    this.entries.push({ sequenceId: ++this.lastSequenceId, bytes });
    this.heldTotal += bytes.length;
    if (
      this.sentCount === this.entries.length - 1 &&
      (this.sentBytes + bytes.length <= this.limit || this.sentCount === 0)
    ) {
      this.sentCount++;
      this.sentBytes += bytes.length;
      return true;
    }
    return false;
  }

  /** The client processed everything up to `sequenceId`: forget it; returns messages now allowed out. */
  ack(sequenceId: number): Buffer[] {
    if (sequenceId > this.ackedId) this.ackedId = Math.min(sequenceId, this.lastSequenceId);
    while (
      this.entries.length > 0 &&
      this.sentCount > 0 &&
      (this.entries[0] as { sequenceId: number }).sequenceId <= sequenceId
    ) {
      const entry = this.entries.shift() as { bytes: Buffer };
      this.sentCount--;
      this.sentBytes -= entry.bytes.length;
      this.heldTotal -= entry.bytes.length;
    }
    return this.release();
  }

  private release(): Buffer[] {
    const out: Buffer[] = [];
    while (this.sentCount < this.entries.length) {
      const entry = this.entries[this.sentCount] as { bytes: Buffer };
      if (this.sentCount > 0 && this.sentBytes + entry.bytes.length > this.limit) break;
      this.sentCount++;
      this.sentBytes += entry.bytes.length;
      out.push(entry.bytes);
    }
    return out;
  }

  /** After a reconnect: the id to announce in our Sequence message, and every message to write again, in order. */
  replay(): { sequenceId: number; messages: Buffer[] } {
    const sequenceId =
      this.entries.length > 0 ? (this.entries[0] as { sequenceId: number }).sequenceId : this.lastSequenceId + 1;
    const messages = this.entries.slice(0, this.sentCount).map((e) => e.bytes);
    messages.push(...this.release());
    return { sequenceId, messages };
  }

  /** Counts an incoming trackable message; false when it is a duplicate already processed. */
  shouldProcess(): boolean {
    const id = this.nextIncomingId++;
    if (id <= this.receivedSequenceId) return false;
    this.receivedSequenceId = id;
    return true;
  }

  /** The client's Sequence message: its next message carries `sequenceId`. False if that would leave a gap. */
  onSequence(sequenceId: number): boolean {
    if (sequenceId > this.receivedSequenceId + 1) return false;
    this.nextIncomingId = sequenceId;
    this.waitingForSequence = false;
    return true;
  }

  /** The id to ack, if there is something new to ack (at most `upTo`: what the backplane has, when it keeps it). */
  takeAck(upTo = this.receivedSequenceId): number | undefined {
    const id = Math.min(upTo, this.receivedSequenceId);
    if (id <= this.lastAckSent) return undefined;
    this.lastAckSent = id;
    return id;
  }
}
