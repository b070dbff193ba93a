// An in-process BackplaneStore: several engines in one process share a MemoryDatabase. For tests (with fault
// injection) and for trying scaleout without a database; it does not survive the process.

import { randomUUID } from 'node:crypto';
import type { AppendResult, BackplaneStore, StoredKey, StoredRow } from './backplane-store.js';
import { validateKeyPurpose, validateKeyTime, validateStoredKey } from './key-ring.js';
import { type NodeRecord, validateNodeAge, validateNodeId, validateNodeInfo } from './node-registry.js';

interface Row extends StoredRow {
  readonly publisher: string;
  readonly batchSeq: number;
  readonly createdAt: number;
}

/** The shared "database". */
export class MemoryDatabase {
  readonly epoch = randomUUID();
  readonly streams: Row[][];
  readonly tops: number[];
  /** Keys by purpose (see `addKey`), in insertion order. */
  readonly keys = new Map<string, StoredKey[]>();
  /** The node registry (see `heartbeatNode`), by node id. */
  readonly nodes = new Map<string, NodeRecord>();
  private readonly listeners = new Set<(stream: number) => void>();
  /** While true, every operation fails as if the database were unreachable. */
  down = false;
  /** The next N appends commit, then fail as if the connection dropped before the reply (ambiguous). */
  ambiguousCommits = 0;

  constructor(readonly streamCount = 1) {
    this.streams = Array.from({ length: streamCount }, () => []);
    this.tops = Array.from({ length: streamCount }, () => 0);
  }

  check(): void {
    if (this.down) throw new Error('connect ECONNREFUSED (memory database is down)');
  }

  notify(stream: number): void {
    for (const listener of this.listeners) queueMicrotask(() => listener(stream));
  }

  listen(listener: (stream: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export class MemoryStore implements BackplaneStore {
  readonly kind = 'memory';
  constructor(readonly database: MemoryDatabase = new MemoryDatabase()) {}

  get streamCount(): number {
    return this.database.streamCount;
  }

  async install(): Promise<{ epoch: string }> {
    this.database.check();
    return { epoch: this.database.epoch };
  }

  async append(stream: number, publisher: string, batchSeq: number, payload: Buffer): Promise<AppendResult> {
    const db = this.database;
    db.check();
    const rows = db.streams[stream] as Row[];
    if (rows.some((r) => r.publisher === publisher && r.batchSeq === batchSeq)) return { id: undefined };
    const id = (db.tops[stream] as number) + 1;
    db.tops[stream] = id;
    rows.push({ id, payload, publisher, batchSeq, createdAt: Date.now() });
    db.notify(stream);
    if (db.ambiguousCommits > 0) {
      db.ambiguousCommits--;
      throw new Error('Connection terminated unexpectedly (after commit)');
    }
    return { id };
  }

  async readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]> {
    this.database.check();
    const rows = this.database.streams[stream] as Row[];
    const out: StoredRow[] = [];
    for (const row of rows) {
      if (row.id > afterId) out.push({ id: row.id, payload: row.payload });
      if (out.length >= limit) break;
    }
    return out;
  }

  async top(stream: number): Promise<number> {
    this.database.check();
    return this.database.tops[stream] as number;
  }

  async trim(stream: number, keepRows: number, maxAgeMs: number): Promise<number> {
    this.database.check();
    const rows = this.database.streams[stream] as Row[];
    const cutoffId = (this.database.tops[stream] as number) - keepRows;
    const cutoffTime = Date.now() - maxAgeMs;
    const keep = rows.filter((r) => r.id > cutoffId || r.createdAt > cutoffTime);
    const removed = rows.length - keep.length;
    this.database.streams[stream] = keep;
    return removed;
  }

  async subscribe(onChange: (stream: number, publisher?: string) => void): Promise<() => Promise<void>> {
    this.database.check();
    const stop = this.database.listen(onChange);
    return async () => {
      stop();
    };
  }

  async readKeys(purpose: string): Promise<StoredKey[]> {
    validateKeyPurpose(purpose);
    this.database.check();
    const keys = this.database.keys.get(purpose) ?? [];
    return keys
      .map((key) => ({ id: key.id, secret: Buffer.from(key.secret), createdAt: key.createdAt }))
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  async addKey(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean> {
    validateKeyPurpose(purpose);
    validateStoredKey(key);
    validateKeyTime('unlessNewerThan', unlessNewerThan);
    this.database.check();
    // Check and insert in one synchronous step: no other call runs in between.
    const keys = this.database.keys.get(purpose) ?? [];
    if (keys.some((other) => other.createdAt > unlessNewerThan)) return false;
    if (keys.some((other) => other.id === key.id)) throw new Error(`Key '${key.id}' of '${purpose}' exists.`);
    keys.push({ id: key.id, secret: Buffer.from(key.secret), createdAt: key.createdAt });
    this.database.keys.set(purpose, keys);
    return true;
  }

  async deleteKeys(purpose: string, createdBefore: number): Promise<number> {
    validateKeyPurpose(purpose);
    validateKeyTime('createdBefore', createdBefore);
    this.database.check();
    const keys = this.database.keys.get(purpose) ?? [];
    const kept = keys.filter((key) => key.createdAt >= createdBefore);
    if (kept.length > 0) this.database.keys.set(purpose, kept);
    else this.database.keys.delete(purpose);
    return keys.length - kept.length;
  }
  async heartbeatNode(id: string, info: string): Promise<void> {
    validateNodeId(id);
    validateNodeInfo(info);
    const now = Date.now();
    const row = this.database.nodes.get(id);
    this.database.nodes.set(id, { id, info, startedAt: row?.startedAt ?? now, heartbeatAt: now });
  }

  async readNodes(): Promise<{ now: number; nodes: NodeRecord[] }> {
    return { now: Date.now(), nodes: [...this.database.nodes.values()] };
  }

  async removeNode(id: string): Promise<boolean> {
    validateNodeId(id);
    return this.database.nodes.delete(id);
  }

  async pruneNodes(olderThanMs: number): Promise<number> {
    validateNodeAge(olderThanMs);
    const bound = Date.now() - olderThanMs;
    let pruned = 0;
    for (const [id, row] of this.database.nodes) {
      if (row.heartbeatAt < bound) {
        this.database.nodes.delete(id);
        pruned++;
      }
    }
    return pruned;
  }

  async close(): Promise<void> {}
}
