// Resuming a connection on a node that did not hold it, from a backplane position: the rows after it are read back,
// what was addressed to the connection (following its group changes) is given to it, and only then is it
// registered for live delivery, in the same turn, so it gets what it missed in stream order and none twice. Used by
// classic SignalR 2 connections (their cursors are positions) and by stateful-reconnect connections that move
// between nodes (hub/moves/).

import { type Envelope, EnvelopeKind } from '../bus/envelope.js';
import type { Audience, BusConnection, MessageBus } from '../bus/message-bus.js';
import { SerializedMessage } from '../protocol/serialized-message.js';
import { sleep } from '../util/timing.js';
import type { EnvelopeObserver, StreamHistory } from './stream-history.js';

/** One bus the resuming connection is on (a hub, or a persistent endpoint), with its membership there. */
export interface ResumeTarget {
  readonly bus: MessageBus;
  /** The bus's name on the backplane. */
  readonly key: string;
  readonly connection: BusConnection;
  /** Groups at the client's position (from its groups token); updated by the group changes replayed. */
  readonly groups: Set<string>;
  /** Told of every other envelope of its bus replayed (not a send, nor a group change of this connection). */
  readonly other?: (envelope: Envelope) => void;
}

export interface ResumeResult {
  /** Rows trimmed before they could be read: messages the client will not get. */
  missed: number;
  /** This node could not catch up with the client's position in time (a message may come twice). */
  behind: boolean;
}

/**
 * Gives each target's connection what was addressed to it after `from`, then registers it on its bus (with the
 * membership the replay ended with) in the same turn as the last replayed envelope, so no live message falls
 * between the two and none is delivered twice.
 */
export async function resumeFrom(
  engine: StreamHistory,
  connectionId: string,
  userId: string | undefined,
  targets: readonly ResumeTarget[],
  from: readonly number[],
  /** True when the connection ended meanwhile: it is not registered. */
  cancelled: () => boolean,
  options: { timeoutMs: number; catchUpMs: number; maxRows: number; restoring(on: boolean): void },
): Promise<ResumeResult> {
  // Two classic names may map to one hub: both bindings get its messages.
  const byKey = new Map<string, ResumeTarget[]>();
  for (const target of targets) byKey.set(target.key, [...(byKey.get(target.key) ?? []), target]);
  const apply = (envelope: Envelope) => {
    const list = byKey.get(envelope.hub);
    if (!list) return;
    for (const target of list) {
      if (envelope.kind === EnvelopeKind.Send) {
        if (addressed(envelope.audience, connectionId, userId, target.groups)) {
          target.connection.writeSerialized(new SerializedMessage(envelope.target, envelope.args));
        }
      } else if (envelope.kind === EnvelopeKind.Group && envelope.connectionId === connectionId) {
        if (envelope.add) target.groups.add(envelope.group);
        else target.groups.delete(envelope.group);
      } else target.other?.(envelope);
    }
  };
  // Rows this node delivers from now on are seen here; the rows before them come from the database.
  const live: [Envelope, number, number][] = [];
  const observer: EnvelopeObserver = (envelope, stream, id) => {
    if (byKey.has(envelope.hub)) live.push([envelope, stream, id]);
  };
  const stop = engine.observe(observer);
  try {
    const start = engine.positions();
    const deadline = Date.now() + options.timeoutMs;
    let missed = 0;
    if (start) {
      let delay = 50;
      // A database error retries (the client's poll stays held meanwhile); most replays come from memory.
      for (;;) {
        try {
          const replayed = await engine.replay(from, start, options.maxRows);
          missed = replayed.missed;
          for (const row of replayed.rows) for (const envelope of row.envelopes) apply(envelope);
          break;
        } catch (error) {
          if (cancelled() || Date.now() + delay > deadline) throw error;
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
        }
      }
    }
    // The client may have seen rows this node has not delivered yet (it came from a node ahead of this one).
    // Only a little ahead when genuine (the other node read a row first); a forged cursor waits no longer.
    const behind = !(await engine.waitFor(from, options.catchUpMs));
    if (cancelled()) return { missed, behind };
    for (const [envelope, stream, id] of live) if (id > (from[stream] ?? 0)) apply(envelope);
    stop();
    options.restoring(true);
    try {
      for (const target of targets) {
        registerOnBus(target.bus, target.connection, target.groups).catch(() => {
          // Only a bus of another kind gets here: it reports its own failures; the connection goes on without.
        });
      }
    } finally {
      options.restoring(false);
    }
    return { missed, behind };
  } finally {
    stop();
  }
}

/**
 * Registers a connection with its groups: on our buses synchronously (before this returns), without publishing
 * anything; on a bus of another kind through its interface (the promise settles when it is done).
 */
export async function registerOnBus(bus: MessageBus, connection: BusConnection, groups: Iterable<string>) {
  if (bus.restore) {
    bus.restore(connection, groups);
    return;
  }
  const list = [...groups];
  await bus.onConnected(connection);
  for (const group of list) await bus.addToGroup(connection.connectionId, group);
}

/** Whether a send to `audience` reaches the connection (LocalBus.deliver's rules, for one connection). */
function addressed(
  audience: Audience,
  connectionId: string,
  userId: string | undefined,
  groups: ReadonlySet<string>,
): boolean {
  if (audience.except?.includes(connectionId)) return false;
  if ('all' in audience) return true;
  if ('connections' in audience) return audience.connections.includes(connectionId);
  if ('groups' in audience) return audience.groups.some((group) => groups.has(group));
  return userId !== undefined && audience.users.includes(userId);
}
