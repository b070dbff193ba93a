// A connection's client messages between decoding and dispatch: handled at once while nothing waits, else queued
// in arrival order behind what waits (onConnected, a move being rebuilt, backpressure of a dispatched message, or
// the per-turn budget), so one connection never holds the event loop and never reorders its messages.

import type { HubMessage } from '../protocol/messages.js';
import { nextTurn, type TurnBudget } from '../util/turn-budget.js';

export class MessageInbox {
  /** Messages decoded but not yet dispatched, while dispatch waits. */
  private queue: HubMessage[] | undefined;
  private draining: Promise<void> | undefined;

  constructor(
    private readonly budget: TurnBudget,
    /** Handles one message; a promise when the next must wait for it. */
    private readonly dispatch: (message: HubMessage) => Promise<void> | undefined,
    /** The connection ended: what is queued is dropped. */
    private readonly closed: () => boolean,
  ) {}

  /** Dispatches (or queues) messages; a promise while the transport should stop reading. */
  push(messages: HubMessage[]): undefined | Promise<void> {
    if (this.draining) {
      if (!this.queue) this.queue = [];
      for (const message of messages) this.queue.push(message);
      return this.draining;
    }
    for (let i = 0; i < messages.length; i++) {
      // Past this turn's budget the rest waits for the next turn (and the transport stops reading meanwhile).
      if (!this.budget.take()) return this.waitFor(nextTurn(), messages.slice(i));
      const wait = this.dispatch(messages[i] as HubMessage);
      if (wait) return this.waitFor(wait, messages.slice(i + 1));
    }
    return undefined;
  }

  /**
   * Nothing is dispatched until `first` settles; then `messages` and whatever came meanwhile, in order. Called
   * while nothing waits (push, the handshake, a move), which each caller ensures.
   */
  waitFor(first: Promise<void>, messages: HubMessage[] = []): Promise<void> {
    if (this.draining) throw new Error('The inbox is already waiting.');
    this.queue = messages;
    this.draining = this.drain(first);
    return this.draining;
  }

  private async drain(first: Promise<void>): Promise<void> {
    await first;
    while (this.queue && this.queue.length > 0 && !this.closed()) {
      if (!this.budget.take()) {
        await nextTurn();
        continue;
      }
      const message = this.queue.shift() as HubMessage;
      const wait = this.dispatch(message);
      if (wait) await wait;
    }
    this.queue = undefined;
    this.draining = undefined;
  }
}
