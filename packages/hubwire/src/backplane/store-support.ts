// What every database store needs alike: the stream-count option (one table per stream, 1..64: the original's
// practical ceiling, which also keeps NOTIFY payloads and `<prefix>_messages_<n>` names short) and exact ids.

export const MAX_TABLE_COUNT = 64;

/** Throws a RangeError unless `tableCount` is an integer in 1..MAX_TABLE_COUNT. */
export function validateTableCount(tableCount: unknown): number {
  if (
    typeof tableCount !== 'number' ||
    !Number.isInteger(tableCount) ||
    tableCount < 1 ||
    tableCount > MAX_TABLE_COUNT
  ) {
    throw new RangeError(`tableCount must be an integer from 1 to ${MAX_TABLE_COUNT}, got ${String(tableCount)}.`);
  }
  return tableCount;
}

/**
 * A row id read from a database (bigint text or number) as a JS number; ids past 2^53 - 1 would round and make
 * readers skip rows, so they are refused.
 */
export function parseStoredId(text: unknown): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id)) {
    throw new RangeError(
      `Row id ${String(text)} exceeds Number.MAX_SAFE_INTEGER (2^53 - 1); it cannot be represented.`,
    );
  }
  return id;
}
