// How much work one connection may do in one event-loop turn before the others get theirs: a client that sends a
// megabyte of invocations in one frame, or a flood of them, is served a slice per turn, not all at once.

/** Resolves in the next event-loop turn (after the I/O of this one). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class TurnBudget {
  private left: number;
  private refillScheduled = false;

  constructor(private readonly perTurn: number) {
    this.left = perTurn;
  }

  /** Takes one unit of this turn's budget; false when it is spent (go on after `nextTurn()`, which refills it). */
  take(): boolean {
    if (!this.refillScheduled) {
      this.refillScheduled = true;
      // Scheduled before any nextTurn() of the caller: the budget is full again when that resolves.
      setImmediate(() => {
        this.left = this.perTurn;
        this.refillScheduled = false;
      });
    }
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}
