// Classic cursors as backplane positions. With a backplane, every cursor (`C`) a classic client receives also
// names the backplane position up to which the client has been given everything addressed to it. A node that
// did not hold the connection (the client moved: no sticky sessions, or the node it was on died) rebuilds it from
// that position: it reads the rows after it back from the database, picks out what was addressed to the
// connection (following its group changes), and only then registers it for live delivery, so the client gets
// what it missed in stream order, none twice (backplane/resume.ts).

import type { StreamHistory } from '../backplane/stream-history.js';

/** A short, URL-safe tag of the backplane installation: a position from another installation is never used. */
export function positionTag(engine: StreamHistory): string | undefined {
  const epoch = engine.epoch;
  return epoch === undefined ? undefined : epoch.replace(/[^A-Za-z0-9]/g, '').slice(0, 8);
}

/** `<tag>.<id of stream 0>.<id of stream 1>…` (ids in base 36), or undefined before the engine reads. */
export function formatPosition(engine: StreamHistory): string | undefined {
  const positions = engine.positions();
  const tag = positionTag(engine);
  if (!positions || !tag) return undefined;
  return `${tag}.${positions.map((id) => id.toString(36)).join('.')}`;
}

/** The backplane position in a cursor `…<state cursor>.<tag>.<ids>`, when it is this installation's. */
export function parsePosition(cursor: string | null | undefined, engine: StreamHistory): number[] | undefined {
  if (!cursor) return undefined;
  const tag = positionTag(engine);
  const parts = cursor.split('.');
  if (!tag || parts.length !== engine.store.streamCount + 2 || parts[1] !== tag) return undefined;
  const ids: number[] = [];
  for (const part of parts.slice(2)) {
    if (!/^[0-9a-z]{1,11}$/.test(part)) return undefined;
    const id = Number.parseInt(part, 36);
    if (!Number.isSafeInteger(id)) return undefined;
    ids.push(id);
  }
  return ids;
}
