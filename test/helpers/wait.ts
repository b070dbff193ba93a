// Waiting in tests: for a promise (bounded by a timeout) or for a condition (polled until it holds). Every wait is
// bounded and says what it waited for when it gives up, so a hang fails one test with a clear message.

/** How often `waitFor` polls its condition. */
const POLL_MS = 10;

/** Rejects with `Timed out after <ms> ms: <what>` if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs a test's cleanup steps in order, each bounded to `ms`: a step that fails or hangs is reported on stderr and the
 * next ones still run (an `after` hook must not leave processes, proxies or schemas behind).
 */
export async function cleanUpSteps(steps: readonly [string, () => Promise<unknown>][], ms = 10_000): Promise<void> {
  for (const [what, step] of steps) {
    await withTimeout(step(), ms, `cleanup of ${what}`).catch((error: Error) => console.error(error.message));
  }
}

/**
 * Resolves once `condition` holds (it may be async), polling every 10 ms; rejects with
 * `Timed out after <ms> ms waiting for <what>` if it still does not hold after `ms`.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Resolves after `ms`. For pacing (a rate, a quiet period), never in place of waiting for a condition. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `condition` holds or `ms` passed, with whether it held: for a test that measures what arrived
 * by a deadline (and asserts on it afterwards) rather than failing at the deadline.
 */
export async function settle(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
  return true;
}
