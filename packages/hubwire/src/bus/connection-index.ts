// Local membership, indexed both ways: group → connections and connection → groups; user → connections.

import type { BusConnection } from './message-bus.js';

export class ConnectionIndex {
  readonly connections = new Map<string, BusConnection>();
  private readonly groups = new Map<string, Set<BusConnection>>();
  private readonly groupsOf = new Map<BusConnection, Set<string>>();
  private readonly users = new Map<string, Set<BusConnection>>();

  add(connection: BusConnection): void {
    this.connections.set(connection.connectionId, connection);
    if (connection.userId !== undefined) addTo(this.users, connection.userId, connection);
  }

  remove(connection: BusConnection): void {
    // A connection that moved off this node and back may have a newer registration under the same id.
    if (this.connections.get(connection.connectionId) === connection) this.connections.delete(connection.connectionId);
    if (connection.userId !== undefined) removeFrom(this.users, connection.userId, connection);
    const groups = this.groupsOf.get(connection);
    if (groups) {
      for (const group of groups) removeFrom(this.groups, group, connection);
      this.groupsOf.delete(connection);
    }
  }

  addToGroup(connection: BusConnection, group: string): void {
    addTo(this.groups, group, connection);
    let set = this.groupsOf.get(connection);
    if (!set) {
      set = new Set();
      this.groupsOf.set(connection, set);
    }
    if (set.has(group)) return;
    set.add(group);
    connection.onGroupChange?.(group, true);
  }

  removeFromGroup(connection: BusConnection, group: string): void {
    removeFrom(this.groups, group, connection);
    const set = this.groupsOf.get(connection);
    if (set?.delete(group)) {
      if (set.size === 0) this.groupsOf.delete(connection);
      connection.onGroupChange?.(group, false);
    }
  }

  group(name: string): ReadonlySet<BusConnection> | undefined {
    return this.groups.get(name);
  }

  user(userId: string): ReadonlySet<BusConnection> | undefined {
    return this.users.get(userId);
  }

  /** The distinct user ids of this node's connections. */
  userIds(): Iterable<string> {
    return this.users.keys();
  }

  groupsOfConnection(connection: BusConnection): ReadonlySet<string> | undefined {
    return this.groupsOf.get(connection);
  }
}

function addTo(map: Map<string, Set<BusConnection>>, key: string, connection: BusConnection): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(connection);
}

function removeFrom(map: Map<string, Set<BusConnection>>, key: string, connection: BusConnection): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(connection);
  if (set.size === 0) map.delete(key);
}
