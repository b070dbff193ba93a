// Shared pieces of the fuzz suite: fast-check parameters (seed and run count from the environment, so a failure
// printed by fast-check can be replayed), the "clean outcome" checks every parser property uses, and the
// arbitraries of hub messages, right and wrong.
//
// Replaying a failure: fast-check prints `{ seed: S, path: "P", ... }`; run the same file with
// `FUZZ_SEED=S FUZZ_PATH=P node scripts/run-tests.mjs test/fuzz/<file>` (FUZZ_RUNS=N scales every property's
// run count by N, e.g. FUZZ_RUNS=10 for a longer hunt).

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { HubwireError } from '../../packages/hubwire/src/errors.ts';
import type { HubMessage } from '../../packages/hubwire/src/protocol/messages.ts';

export const RS = '\x1e';
export const RS_BYTE = 0x1e;

/** fast-check parameters for a property of `numRuns` runs (scaled by FUZZ_RUNS; seed and path from the env). */
export function runs(numRuns: number): fc.Parameters<unknown> {
  const scale = Number(process.env.FUZZ_RUNS ?? '1');
  const parameters: fc.Parameters<unknown> = {
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))),
  };
  if (process.env.FUZZ_SEED !== undefined) parameters.seed = Number(process.env.FUZZ_SEED);
  if (process.env.FUZZ_PATH !== undefined) parameters.path = process.env.FUZZ_PATH;
  return parameters;
}

/** How long one call of a parser may take (generous: a 2-core CI machine with GC pauses; a loop would not end). */
export const PARSE_BOUND_MS = 1000;

/** Runs `fn` and fails when it took longer than `bound` ms (a quadratic blow-up, a loop that nearly never ends). */
export function timed<T>(what: string, fn: () => T, bound = PARSE_BOUND_MS): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const elapsed = performance.now() - start;
    assert.ok(elapsed < bound, `${what} took ${elapsed.toFixed(0)} ms (bound ${bound} ms)`);
  }
}

/** A short description of anything thrown, for assertion messages. */
export function describeThrown(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}\n${error.stack ?? ''}`;
  return `a non-Error: ${typeof error} ${String(error)}`;
}

/**
 * Text that only a programming error produces (a property read on undefined, a call of a non-function, ...):
 * never acceptable in what a client is told, even wrapped in a HubwireError.
 */
const BUG_TEXT =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not defined|Cannot convert/;

/**
 * How strictly an error's text is checked: `strict`, free of programming-error text; `loose`, only not empty;
 * `ours`, strict unless the text is a third-party library's error passed on (after `thirdPartyPrefix`).
 */
export type TextCheck = 'strict' | 'loose' | 'ours';
/** The prefix under which the MessagePack decoder passes on what msgpackr threw (its data errors only). */
export const MSGPACKR_PREFIX = 'Invalid MessagePack message: ';

/** The parser failed as designed: a HubwireError with one of `codes` and a message that says something. */
export function assertCleanError(error: unknown, codes: readonly string[], text: TextCheck = 'strict'): void {
  assert.ok(error instanceof HubwireError, `expected a HubwireError, got ${describeThrown(error)}`);
  assert.ok(codes.includes(error.code), `unexpected code ${error.code}: ${error.message}`);
  assert.ok(error.message.trim().length > 0, 'the error message is not empty');
  if (text === 'strict' || (text === 'ours' && !error.message.startsWith(MSGPACKR_PREFIX))) {
    assertClearText(error.message);
  }
}

/** A non-empty message without the marks of a programming error. */
export function assertClearText(message: unknown): void {
  assert.equal(typeof message, 'string', 'the error has a message');
  assert.ok((message as string).trim().length > 0, 'the error message is not empty');
  assert.doesNotMatch(message as string, BUG_TEXT, 'the error message is that of a programming error');
}

/**
 * Calls `fn`; a throw must be a clean HubwireError of `codes`, its text checked as `text` says. Returns the value,
 * or the error.
 */
export function cleanly<T>(
  what: string,
  fn: () => T,
  codes: readonly string[],
  text: TextCheck = 'strict',
): { value: T } | { error: Error } {
  try {
    return { value: timed(what, fn) };
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assertCleanError(error, codes, text);
    return { error: error as Error };
  }
}

const isString = (v: unknown) => typeof v === 'string';
const isOptionalString = (v: unknown) => v === undefined || typeof v === 'string';

/** What a decoder hands to the hub layer must be a well-formed message (the types of messages.ts hold). */
export function assertWellFormed(message: HubMessage): void {
  const m = message as unknown as Record<string, unknown>;
  assert.equal(typeof m, 'object');
  assert.ok(Number.isInteger(m.type) && (m.type as number) >= 1 && (m.type as number) <= 9, `type ${String(m.type)}`);
  if ('headers' in m && m.headers !== undefined) {
    assert.ok(typeof m.headers === 'object' && m.headers !== null && !Array.isArray(m.headers), 'headers object');
    for (const value of Object.values(m.headers as object)) assert.equal(typeof value, 'string', 'header value');
  }
  switch (message.type) {
    case 1:
    case 4:
      assert.ok(isString(message.target), 'target');
      assert.ok(Array.isArray(message.arguments), 'arguments');
      if (message.type === 4) assert.ok(isString(message.invocationId), 'invocationId');
      else assert.ok(isOptionalString(message.invocationId), 'invocationId');
      if (message.streamIds !== undefined) {
        assert.ok(Array.isArray(message.streamIds) && message.streamIds.length > 0, 'streamIds');
        for (const id of message.streamIds) assert.ok(isString(id), 'stream id');
      }
      break;
    case 2:
    case 5:
      assert.ok(isString(message.invocationId), 'invocationId');
      break;
    case 3:
      assert.ok(isString(message.invocationId), 'invocationId');
      assert.ok(isOptionalString(message.error), 'error');
      assert.ok(!(message.error !== undefined && message.hasResult), 'error and result together');
      break;
    case 6:
      break;
    case 7:
      assert.ok(isOptionalString(message.error), 'error');
      assert.equal(typeof message.allowReconnect, 'boolean', 'allowReconnect');
      break;
    case 8:
    case 9:
      assert.ok(Number.isInteger(message.sequenceId) && message.sequenceId >= 0, 'sequenceId');
      break;
  }
}

/**
 * A message as a protocol carries it, for comparisons: undefined fields and defaults a protocol may add or drop
 * (empty headers, `hasResult: false`, `allowReconnect: false`) removed.
 */
export function normalize(message: HubMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined) continue;
    if (key === 'headers' && Object.keys(value as object).length === 0) continue;
    if (key === 'hasResult' && value === false) continue;
    if (key === 'allowReconnect' && value === false) continue;
    if (key === 'streamIds' && (value as unknown[]).length === 0) continue;
    out[key] = value;
  }
  if (message.type === 3 && !message.hasResult) delete out.result;
  return out;
}

// --- Arbitraries --------------------------------------------------------------------------------------------

/** Strings of every kind: ASCII, any code unit (lone surrogates included), whole graphemes. */
export const anyString = (maxLength = 24) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
  );

/** JSON values as they survive a JSON round trip (no -0), well-formed Unicode. */
export const jsonValue = (maxDepth = 3) =>
  fc.jsonValue({ maxDepth, stringUnit: 'grapheme' }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

/** Ids and names of valid messages are not empty (an empty invocation id or target is refused, as ASP.NET Core does). */
const id = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
const headers = fc.option(
  fc.dictionary(id, fc.string({ unit: 'grapheme', maxLength: 12 }), { maxKeys: 3, noNullPrototype: true }),
  { nil: undefined },
);
const args = fc.array(jsonValue(2), { maxLength: 4 });
const streamIds = fc.option(fc.array(id, { minLength: 1, maxLength: 3 }), { nil: undefined });

/** Every message type, well formed, with values both protocols carry exactly (JSON values, valid Unicode). */
export const validMessage: fc.Arbitrary<HubMessage> = fc.oneof(
  fc
    .record({ headers, invocationId: fc.option(id, { nil: undefined }), target: id, arguments: args, streamIds })
    .map((m) => ({ type: 1 as const, ...m })),
  fc.record({ headers, invocationId: id, item: jsonValue(2) }).map((m) => ({ type: 2 as const, ...m })),
  fc
    .record({
      headers,
      invocationId: id,
      outcome: fc.oneof(
        fc.record({ error: fc.string({ unit: 'grapheme', maxLength: 20 }) }),
        fc.record({ result: jsonValue(2) }),
        fc.constant({}),
      ),
    })
    .map(({ headers, invocationId, outcome }) =>
      'error' in outcome
        ? { type: 3 as const, headers, invocationId, error: outcome.error }
        : 'result' in outcome
          ? { type: 3 as const, headers, invocationId, result: outcome.result, hasResult: true }
          : { type: 3 as const, headers, invocationId },
    ),
  fc
    .record({ headers, invocationId: id, target: id, arguments: args, streamIds })
    .map((m) => ({ type: 4 as const, ...m })),
  fc.record({ headers, invocationId: id }).map((m) => ({ type: 5 as const, ...m })),
  fc.constant({ type: 6 as const }),
  fc
    .record({ error: fc.option(fc.string({ unit: 'grapheme', maxLength: 20 }), { nil: undefined }) })
    .chain(({ error }) => fc.boolean().map((allowReconnect) => ({ type: 7 as const, error, allowReconnect }))),
  fc.record({ type: fc.constantFrom(8 as const, 9 as const), sequenceId: fc.nat() }),
);

/** A message type as a client might send it: known, unknown, or not an integer at all. */
const messageType = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 9 }) },
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 300 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      1.5,
      '1',
      null,
      true,
      [1],
      { type: 1 },
      1e308,
      2 ** 53,
      -1,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
  },
);

/** Some right and some wrong value for a field. */
const fieldValue = (right: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 3, arbitrary: right }, { weight: 2, arbitrary: jsonValue(2) });

/**
 * Objects shaped like hub messages with fields of the wrong types (or missing): what a buggy or hostile client
 * sends to get past the decoder.
 */
export const messageShaped: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    type: messageType,
    headers: fieldValue(headers),
    invocationId: fieldValue(id),
    target: fieldValue(id),
    arguments: fieldValue(args),
    streamIds: fieldValue(streamIds),
    item: jsonValue(2),
    result: jsonValue(2),
    error: fieldValue(fc.string({ maxLength: 12 })),
    allowReconnect: fieldValue(fc.boolean()),
    sequenceId: fieldValue(fc.oneof(fc.nat(), fc.integer(), fc.double())),
  },
  { requiredKeys: [] },
);

/** `n` nested arrays (`[[[…]]]`), as JSON text: deep enough to overflow a recursive serializer. */
export const nestedArrays = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);
/** `n` nested objects (`{"a":{"a":…}}`), as JSON text. */
export const nestedObjects = (depth: number, inner = '1') => '{"a":'.repeat(depth) + inner + '}'.repeat(depth);

/** A nesting depth: mostly shallow, sometimes past what JSON.stringify or msgpackr recursion can handle. */
export const depth = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: 1000, max: 6000 }),
  fc.integer({ min: 6000, max: 20_000 }),
);

/** Cuts `bytes` at the given points (any order, repeats allowed): the chunks a transport might deliver. */
export function splitAt(bytes: Buffer, points: readonly number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}
