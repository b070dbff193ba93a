// The stream-count option every backplane store shares: one table per stream, 1..64 (the original's practical
// ceiling; it also keeps NOTIFY payloads and `<prefix>_messages_<n>` names short).

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
