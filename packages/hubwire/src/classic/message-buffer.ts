// The messages of one classic connection, numbered from 1 and kept (up to a capacity) until acknowledged, so a
// client that reconnects or re-polls with its last cursor receives what it missed, in order, none twice.

export class MessageBuffer {
  private items: (Buffer | undefined)[];
  /** Sequence number of the oldest kept message (when count > 0). */
  private first = 1;
  private count = 0;
  private start = 0;
  /** Sequence number of the newest message ever added (0 = none). */
  last = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array(Math.min(capacity, 16));
  }

  push(message: Buffer): number {
    if (this.count === this.capacity) this.dropOldest();
    else if (this.count === this.items.length) this.grow();
    this.items[(this.start + this.count) % this.items.length] = message;
    this.count++;
    this.last++;
    if (this.count === 1) this.first = this.last;
    return this.last;
  }

  /** Forgets every message up to `seq` (the client has it). */
  ack(seq: number): void {
    while (this.count > 0 && this.first <= seq) this.dropOldest();
  }

  /** The kept messages after `seq`, oldest first. */
  after(seq: number): Buffer[] {
    const out: Buffer[] = [];
    const from = Math.max(seq + 1, this.first);
    for (let s = from; s <= this.last && this.count > 0; s++) {
      out.push(this.items[(this.start + (s - this.first)) % this.items.length] as Buffer);
    }
    return out;
  }

  /** Whether messages after `seq` were dropped before the client could have them. */
  lostAfter(seq: number): boolean {
    return this.count > 0 ? this.first > seq + 1 : this.last > seq;
  }

  private dropOldest(): void {
    this.items[this.start] = undefined;
    this.start = (this.start + 1) % this.items.length;
    this.count--;
    this.first++;
  }

  private grow(): void {
    const size = Math.min(this.capacity, this.items.length * 2);
    const copy: (Buffer | undefined)[] = new Array(size);
    for (let i = 0; i < this.count; i++) copy[i] = this.items[(this.start + i) % this.items.length];
    this.items = copy;
    this.start = 0;
  }
}
